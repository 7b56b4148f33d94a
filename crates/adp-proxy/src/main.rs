use adp_proxy::app::{Proxy, init_logging};
use adp_proxy::settings::{Cli, Settings};
use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let settings =
        match adp_settings::process_env().and_then(|env| Settings::resolve(&cli.flags, env)) {
            Ok(settings) => settings,
            Err(error) => {
                eprintln!("adp-proxy: {error}");
                return std::process::ExitCode::from(2);
            }
        };
    init_logging(settings.log_format);
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if settings.worker_threads > 0 {
        runtime.worker_threads(settings.worker_threads);
    }
    let result = runtime
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| {
            runtime.block_on(async { Proxy::start(settings).await?.run_until_signal().await })
        });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
