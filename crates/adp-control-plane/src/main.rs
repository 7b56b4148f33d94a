#[tokio::main]
async fn main() -> std::process::ExitCode {
    match adp_control_plane::cli::run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("adp-control-plane: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
