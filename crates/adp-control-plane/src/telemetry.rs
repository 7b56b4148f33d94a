//! Structured logs. sqlx is held at warn: it logs every statement at info.

use adp_settings::shared::LogFormat;

pub fn init(format: LogFormat) {
    adp_settings::shared::init_logging(format, "info,sqlx=warn,sea_orm=warn");
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
