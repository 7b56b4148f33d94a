//! Structured logs. sqlx is held at warn: it logs every statement at info.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// The span every gRPC call runs in: method and request id, never a token.
pub fn grpc_span<B>(request: &http::Request<B>) -> tracing::Span {
    let request_id = request
        .headers()
        .get(adp_core::metadata::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!("grpc", method = %request.uri().path(), request_id = %request_id)
}
