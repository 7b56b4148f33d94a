//! The MCP endpoint `/mcp/{server}` (POST, GET, DELETE) and `/healthz`.
//!
//! Per call: check the origin, find the route, authenticate the caller's JWT, obtain the
//! upstream credential (cached), then forward with the caller's JWT replaced by it and
//! the client's session id by the upstream's (see `session_ids`).
//! POSTs, nearly all of the traffic, are answered by [`dispatch`] itself; the rest goes
//! through the axum router.

use std::convert::Infallible;
use std::sync::Arc;

use adp_listener::{BodyTimeout, TimedBody};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Either, Limited};
use hyper::body::Incoming;
use serde_json::{Value, json};
use tower::ServiceExt;
use tracing::Instrument;

use crate::consent::{self, Caller};
use crate::control_plane_client::CredentialError;
use crate::errors::ProxyError;
use crate::forward::Upstream;
use crate::mcp::{ClientView, Message, header_version};
use crate::session_ids::OpenedSession;

const SESSION_HEADER: &str = "mcp-session-id";

pub use crate::shared::{Admitted, Shared};

/// One worker thread's state: the shared caches, and its own upstream connection pool
/// (whose connections run on that thread's runtime, so a call never hops threads).
#[derive(Debug)]
pub struct AppState {
    pub shared: Arc<Shared>,
    pub upstream: Upstream,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.shared
    }
}

/// What the proxy answers with: an upstream's body passed through untouched, or one
/// of its own.
pub type ProxyBody = Either<Incoming, Body>;

/// Everything but MCP POSTs: the SSE stream (GET), session ends (DELETE), health, and
/// (merged in by the caller) the gRPC gateway.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        // POSTs never get here (see `dispatch`); listed so a 405's `Allow` names POST
        .route(
            "/mcp/{server}",
            get(mcp_get)
                .delete(mcp_delete)
                .post(|| async { StatusCode::NOT_FOUND }),
        )
        .route("/healthz", get(health))
        .with_state(state)
}

/// The body of a client's request, due within `ADP_REQUEST_BODY_TIMEOUT_SECS`.
pub type RequestBody = TimedBody<Incoming>;

/// One request on a worker, in its own span (see [`request_span`]): `POST /mcp/{server}`
/// straight to [`mcp_post`] (no routing, no extractors, the upstream's body not
/// re-boxed), everything else, the gRPC gateway included, to `router`.
pub async fn dispatch(
    state: Arc<AppState>,
    router: Router,
    request: http::Request<RequestBody>,
) -> Result<http::Response<ProxyBody>, Infallible> {
    let span = request_span(&request);
    route(state, router, request).instrument(span).await
}

/// The span a request runs in: its id (`x-request-id` when it is a plausible id, `-`
/// otherwise), then the server and the caller's subject once `Shared::admit` knows
/// them. Never a token.
pub fn request_span<B>(request: &http::Request<B>) -> tracing::Span {
    let request_id = request
        .headers()
        .get(adp_core::metadata::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| plausible_request_id(id))
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        request_id = %request_id,
        server = tracing::field::Empty,
        subject = tracing::field::Empty,
    )
}

/// A client's request id is logged with every line of its request: at most 128
/// characters of `[A-Za-z0-9._:-]`, so it can neither bloat the logs nor forge fields.
fn plausible_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

async fn route(
    state: Arc<AppState>,
    router: Router,
    request: http::Request<RequestBody>,
) -> Result<http::Response<ProxyBody>, Infallible> {
    if request.method() == Method::POST
        && let Some(server) = request.uri().path().strip_prefix("/mcp/")
        && !server.is_empty()
        && !server.contains('/')
    {
        // decoded as axum's `Path` does for GET and DELETE
        let server = percent_encoding::percent_decode_str(server)
            .decode_utf8_lossy()
            .into_owned();
        return Ok(mcp_post(&state, &server, request).await);
    }
    let response = router
        .oneshot(request.map(Body::new))
        .await
        .unwrap_or_else(|never| match never {});
    Ok(response.map(Either::Right))
}

fn own(response: Response) -> http::Response<ProxyBody> {
    response.map(Either::Right)
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    let status = state.feed.status.borrow().clone();
    let body = json!({
        "status": if status.has_config { "serving" } else { "waiting_for_config" },
        "config": {
            "revision": status.revision,
            "connected": status.connected,
            "lastError": status.last_error,
        },
    });
    let code = if status.has_config {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(body)).into_response()
}

async fn admit(
    state: &AppState,
    server: &str,
    headers: &HeaderMap,
) -> Result<Admitted, ProxyError> {
    if let Some(origin) = headers.get(http::header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        if !state.allowed_origins.iter().any(|o| o == origin) {
            return Err(ProxyError::OriginRefused(origin.to_owned()));
        }
    }
    let authorization = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    state.admit(server, authorization).await
}

/// The session named by the request, opened for this caller and server (see
/// `session_ids`): an id the proxy did not issue to them, whether forged, someone
/// else's, or the upstream's own, is as good as unknown and never reaches the upstream.
fn opened_session(
    state: &AppState,
    headers: &HeaderMap,
    caller: Caller<'_>,
) -> Result<Option<OpenedSession>, ProxyError> {
    let mut presented = headers.get_all(SESSION_HEADER).iter();
    let Some(first) = presented.next() else {
        return Ok(None);
    };
    // two ids would leave the upstream to pick one
    if presented.next().is_some() {
        return Err(ProxyError::UnknownSession);
    }
    let id = first.to_str().map_err(|_| ProxyError::UnknownSession)?;
    state
        .session_ids
        .open(id, caller)
        .map(Some)
        .map_err(|_| ProxyError::UnknownSession)
}

/// The headers as the upstream must see them: its own session id in place of ours.
fn to_upstream(headers: &mut HeaderMap, session: Option<&OpenedSession>) -> Result<(), ProxyError> {
    if let Some(session) = session {
        let id =
            HeaderValue::from_str(&session.upstream_id).map_err(|_| ProxyError::UnknownSession)?;
        headers.insert(SESSION_HEADER, id);
    }
    Ok(())
}

/// The upstream's session id, on any response that names one, replaced with ours for
/// this caller: the client only ever holds ids the proxy can check.
fn from_upstream<B>(
    state: &AppState,
    response: &mut http::Response<B>,
    caller: Caller<'_>,
    view: &ClientView,
) -> Result<(), ProxyError> {
    let Some(upstream_id) = response.headers().get(SESSION_HEADER) else {
        return Ok(());
    };
    let upstream_id = upstream_id.to_str().map_err(|_| {
        ProxyError::Upstream("the upstream sent an Mcp-Session-Id that is not visible ASCII".into())
    })?;
    let ours = state
        .session_ids
        .issue(caller, upstream_id, view)
        .map_err(|e| ProxyError::Upstream(e.to_string()))?;
    let ours = HeaderValue::from_str(&ours)
        .map_err(|_| ProxyError::Upstream("cannot wrap the upstream's session id".into()))?;
    response.headers_mut().insert(SESSION_HEADER, ours);
    Ok(())
}

enum Credentialed {
    Header(Option<(http::HeaderName, http::HeaderValue)>),
    Consent(Box<crate::control_plane_client::ConsentRequired>),
}

async fn credential(state: &AppState, admitted: &Admitted) -> Result<Credentialed, ProxyError> {
    match state.credential(admitted).await {
        Ok(header) => Ok(Credentialed::Header(header)),
        Err(CredentialError::Consent(consent)) => Ok(Credentialed::Consent(consent)),
        Err(CredentialError::Refused(status)) => Err(ProxyError::from_status(&status)),
        Err(other) => Err(ProxyError::Credential {
            code: adp_core::Code::Unavailable,
            reason: String::new(),
            message: other.to_string(),
        }),
    }
}

async fn mcp_post(
    state: &AppState,
    server: &str,
    request: http::Request<RequestBody>,
) -> http::Response<ProxyBody> {
    let too_large = || own(ProxyError::TooLarge(state.max_request_bytes).into_response_for(None));
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > state.max_request_bytes) {
        return too_large();
    }
    let body = match Limited::new(body, state.max_request_bytes).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            if let Some(late) = error.downcast_ref::<BodyTimeout>() {
                let late = ProxyError::BodyTimeout(late.0.as_secs());
                return own(late.into_response_for(None));
            }
            return too_large();
        }
    };
    let message = match Message::parse(&body) {
        Ok(message) => message,
        Err(error) => return own(ProxyError::Parse(error.to_string()).into_response_for(None)),
    };
    let id = message.id.clone();
    match post(state, server, parts.headers, body, message).await {
        Ok(response) => response,
        Err(error) => own(error.into_response_for(id.as_ref())),
    }
}

async fn post(
    state: &AppState,
    server: &str,
    headers: HeaderMap,
    mut body: Bytes,
    mut message: Message,
) -> Result<http::Response<ProxyBody>, ProxyError> {
    if body.len() > state.max_request_bytes {
        return Err(ProxyError::TooLarge(state.max_request_bytes));
    }
    let admitted = admit(state, server, &headers).await?;
    let caller = Caller {
        issuer: &admitted.identity.issuer,
        subject: &admitted.identity.subject,
        server,
    };
    let session = opened_session(state, &headers, caller)?;
    let view = message
        .self_described()
        .or_else(|| session.as_ref().map(|s| s.view.clone()))
        .unwrap_or_else(|| ClientView {
            version: header_version(&headers),
            url_elicitation: false,
        });
    let method = message.method.clone().unwrap_or_default();
    if view.is_modern() {
        body = spend_request_state(state, &mut message, caller, &method)?.unwrap_or(body);
    }
    let header = match credential(state, &admitted).await? {
        Credentialed::Header(header) => header,
        Credentialed::Consent(consent) => {
            let table = state.feed.table.borrow().clone();
            let display = table.provider_display_name(&consent.provider_name);
            tracing::info!(
                server,
                subject = %admitted.identity.subject,
                reason = %consent.reason,
                version = %view.version,
                "consent required"
            );
            let reply: Response = consent::reply(
                &consent,
                display,
                &view,
                consent::Request {
                    method: &method,
                    id: message.id.as_ref(),
                    params: message.params(),
                },
                &state.request_states,
                caller,
            )
            .into();
            return Ok(own(reply));
        }
    };
    let mut headers = headers;
    to_upstream(&mut headers, session.as_ref())?;
    let mut response = state
        .upstream
        .send(
            Method::POST,
            upstream_target(&admitted)?,
            headers,
            body,
            header,
        )
        .await?;
    from_upstream(state, &mut response, caller, &view)?;
    Ok(response.map(Either::Left))
}

fn upstream_target(admitted: &Admitted) -> Result<&crate::forward::Target, ProxyError> {
    admitted
        .route
        .upstream
        .as_ref()
        .ok_or_else(|| ProxyError::NoUpstream(admitted.route.server.name.clone()))
}

/// A 2026-07-28 retry carries the `requestState` we sealed: check and spend it, and
/// forward the request without it (the upstream never issued it). Returns the new body.
fn spend_request_state(
    state: &AppState,
    message: &mut Message,
    caller: Caller<'_>,
    method: &str,
) -> Result<Option<Bytes>, ProxyError> {
    let Some(sealed) = message
        .params()
        .and_then(|p| p.get("requestState"))
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return Ok(None);
    };
    state
        .request_states
        .open(&sealed, caller, method, message.params())
        .map_err(|e| ProxyError::BadRequestState(e.to_string()))?;
    Ok(message.body_without_params(&["requestState", "inputResponses"]))
}

async fn mcp_get(
    State(state): State<Arc<AppState>>,
    Path(server): Path<String>,
    headers: HeaderMap,
) -> Response {
    bodiless(&state, Method::GET, &server, &headers)
        .await
        .unwrap_or_else(|error| error.into_response_for(None))
}

async fn mcp_delete(
    State(state): State<Arc<AppState>>,
    Path(server): Path<String>,
    headers: HeaderMap,
) -> Response {
    // nothing to forget: session ids are checked, not stored
    bodiless(&state, Method::DELETE, &server, &headers)
        .await
        .unwrap_or_else(|error| error.into_response_for(None))
}

/// GET (the server-to-client SSE stream) and DELETE (end of session). A consent
/// condition here has no request to answer: it is a plain 403 naming the URL.
async fn bodiless(
    state: &AppState,
    method: Method,
    server: &str,
    headers: &HeaderMap,
) -> Result<Response, ProxyError> {
    let admitted = admit(state, server, headers).await?;
    let caller = Caller {
        issuer: &admitted.identity.issuer,
        subject: &admitted.identity.subject,
        server,
    };
    let session = opened_session(state, headers, caller)?;
    let header = match credential(state, &admitted).await? {
        Credentialed::Header(header) => header,
        Credentialed::Consent(consent) => {
            return Err(ProxyError::Credential {
                code: adp_core::Code::PermissionDenied,
                reason: consent.reason.clone(),
                message: format!("{} (connect at {})", consent.message, consent.authorize_url),
            });
        }
    };
    let mut forwarded = headers.clone();
    to_upstream(&mut forwarded, session.as_ref())?;
    let mut response = state
        .upstream
        .send(
            method,
            upstream_target(&admitted)?,
            forwarded,
            Bytes::new(),
            header,
        )
        .await?;
    let view = session.map_or_else(
        || ClientView {
            version: header_version(headers),
            url_elicitation: false,
        },
        |s| s.view,
    );
    from_upstream(state, &mut response, caller, &view)?;
    Ok(response.map(Body::new))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_plausible_request_id_is_logged() {
        assert!(plausible_request_id("req-7f3a_01:2.b"));
        assert!(!plausible_request_id(""));
        assert!(!plausible_request_id(&"a".repeat(129)));
        assert!(!plausible_request_id("id\" subject=\"admin"));
        assert!(!plausible_request_id("id with spaces"));
    }
}
