use adp_proxy::app::{Proxy, init_logging};
use adp_proxy::settings::Settings;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let settings =
        match Settings::resolve(std::env::args_os().collect(), &|k| std::env::var(k).ok()) {
            Ok(settings) => settings,
            Err(error) => match error.downcast::<clap::Error>() {
                Ok(clap_error) => clap_error.exit(),
                Err(error) => {
                    eprintln!("adp-proxy: {error:#}");
                    return std::process::ExitCode::from(2);
                }
            },
        };
    init_logging(settings.log_format);
    let result = match Proxy::start(settings).await {
        Ok(proxy) => proxy.run_until_signal().await,
        Err(error) => Err(error),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
