//! The HTTP listener: `/healthz`, the consent routes and the Connections page.

use axum::Router;
use axum::extract::State as AxumState;
use axum::http::StatusCode;
use axum::routing::get;

use crate::state::SharedState;

pub fn router(state: SharedState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route(
            "/oauth/v1/connect/{attempt}",
            get(crate::consent_http::prompt).post(crate::consent_http::connect),
        )
        .route("/oauth/v1/callback", get(crate::consent_http::callback))
        .merge(crate::web::router())
        .with_state(state)
}

async fn healthz(AxumState(state): AxumState<SharedState>) -> (StatusCode, &'static str) {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ok\n"),
        Err(error) => {
            tracing::warn!(%error, "health check: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n")
        }
    }
}
