//! The browser side of consent: `GET /oauth/v1/connect/{state}` says which account, which
//! scopes and which server asked; its Continue button (`POST` to the same URL) binds the
//! attempt to this browser with a cookie and redirects to the provider;
//! `/oauth/v1/callback` finishes.

use axum::extract::{Path, Query, State as AxumState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};

use crate::connections::{CallbackOutcome, CallbackParams};
use crate::state::SharedState;

const COOKIE: &str = "adp_consent";

/// The page an authorize URL opens: what is being asked, before anything happens.
pub async fn prompt(
    AxumState(state): AxumState<SharedState>,
    Path(attempt): Path<String>,
) -> Response {
    match state.connections.consent_prompt(&attempt).await {
        Ok(Some(prompt)) => {
            let scopes = if prompt.scopes.is_empty() {
                "<p>No particular permissions are requested.</p>".to_owned()
            } else {
                let items: String = prompt
                    .scopes
                    .iter()
                    .map(|s| format!("<li><code>{}</code></li>", escape(s)))
                    .collect();
                format!("<p>It will ask you to grant:</p><ul>{items}</ul>")
            };
            let why = match &prompt.server_name {
                Some(server) => format!(
                    "<p>The MCP server <strong>{}</strong> needs it to act on your behalf.</p>",
                    escape(server)
                ),
                None => String::new(),
            };
            let title = format!("Connect your {} account", prompt.provider_display_name);
            let body = format!(
                "<p>You are about to connect your <strong>{provider}</strong> account.</p>{why}{scopes}\
                 <form method=\"post\"><button type=\"submit\" autofocus>Continue to {provider}</button></form>",
                provider = escape(&prompt.provider_display_name),
            );
            html_page(StatusCode::OK, &title, &body)
        }
        Ok(None) => page(
            StatusCode::BAD_REQUEST,
            "Link expired",
            "This link has expired or was already used. Start again from your application.",
        ),
        Err(error) => {
            tracing::warn!(%error, "consent prompt failed");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Cannot continue",
                "Try again shortly.",
            )
        }
    }
}

pub async fn connect(
    AxumState(state): AxumState<SharedState>,
    Path(attempt): Path<String>,
) -> Response {
    let cookie = crate::connections::random_token();
    match state.connections.provider_redirect(&attempt, &cookie).await {
        Ok(Some(url)) => {
            let secure = if state.public_url.starts_with("https://") {
                "; Secure"
            } else {
                ""
            };
            let set_cookie = format!(
                "{COOKIE}={cookie}; Path=/oauth/v1; Max-Age=900; HttpOnly; SameSite=Lax{secure}"
            );
            let mut response = Redirect::to(&url).into_response();
            if let Ok(value) = HeaderValue::from_str(&set_cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Ok(None) => page(
            StatusCode::BAD_REQUEST,
            "Link expired",
            "This link has expired, was already used, or was opened in another browser. Start again from your application.",
        ),
        Err(error) => {
            tracing::warn!(%error, "consent redirect failed");
            page(
                StatusCode::BAD_GATEWAY,
                "Cannot continue",
                "The provider is not reachable right now. Try again shortly.",
            )
        }
    }
}

pub async fn callback(
    AxumState(state): AxumState<SharedState>,
    Query(params): Query<CallbackParams>,
    headers: HeaderMap,
) -> Response {
    let cookie = cookie_value(&headers, COOKIE);
    match state
        .connections
        .complete_callback(&params, cookie.as_deref())
        .await
    {
        CallbackOutcome::Connected {
            provider_display_name,
        } => page(
            StatusCode::OK,
            "Connected",
            &format!("Your {provider_display_name} account is connected. You can close this tab."),
        ),
        CallbackOutcome::Failed { status, message } => page(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            "Not connected",
            &message,
        ),
    }
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

fn page(status: StatusCode, title: &str, message: &str) -> Response {
    html_page(status, title, &format!("<p>{}</p>", escape(message)))
}

/// `body` is trusted HTML; everything user-supplied in it must already be escaped.
fn html_page(status: StatusCode, title: &str, body: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title} — ADP</title></head><body><main><h1>{title}</h1>{body}</main></body></html>",
        title = escape(title),
    );
    let mut response = (status, Html(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
        .headers_mut()
        .insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    response
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
