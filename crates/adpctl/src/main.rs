use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = adpctl::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("adpctl: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(adpctl::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(failure) => std::process::ExitCode::from(failure.report()),
    }
}
