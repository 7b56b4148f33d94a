use clap::Parser;

fn main() -> std::process::ExitCode {
    match adpctl::run(adpctl::Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("adpctl: {error:#}");
            std::process::ExitCode::from(1)
        }
    }
}
