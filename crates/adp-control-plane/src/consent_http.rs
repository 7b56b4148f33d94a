//! The browser side of consent: `GET /oauth/v1/connect/{state}` says which account, which
//! scopes and which server asked; its Continue button (`POST` to the same URL) binds the
//! attempt to this browser with a cookie and redirects to the provider;
//! `/oauth/v1/callback` finishes, and returns to the Connections page when the browser
//! is signed in there as the same person.

use axum::extract::{Path, Query, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use crate::connections::{CallbackOutcome, CallbackParams};
use crate::state::SharedState;
use crate::web::html::{self, escape};
use crate::web::{cookies, session};

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
                format!("<p>It will ask you to grant:</p><ul class=\"scopes\">{items}</ul>")
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
                "<h1>{title}</h1><p>You are about to connect your <strong>{provider}</strong> account.</p>{why}{scopes}\
                 <form method=\"post\" class=\"actions\"><button type=\"submit\" autofocus>Continue to {provider}</button></form>",
                title = escape(&title),
                provider = escape(&prompt.provider_display_name),
            );
            html::respond(StatusCode::OK, html::document(&title, "", &body))
        }
        Ok(None) => html::message(
            StatusCode::BAD_REQUEST,
            "Link expired",
            "This link has expired or was already used. Start again from your application.",
        ),
        Err(error) => {
            tracing::warn!(%error, "consent prompt failed");
            html::message(
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
    send_to_provider(&state, &attempt).await
}

/// Binds consent attempt `attempt` to this browser (a fresh cookie) and redirects it
/// to the provider's authorization endpoint.
pub async fn send_to_provider(state: &SharedState, attempt: &str) -> Response {
    let cookie = crate::connections::random_token();
    match state.connections.provider_redirect(attempt, &cookie).await {
        Ok(Some(url)) => {
            let mut response = Redirect::to(&url).into_response();
            cookies::set(
                &mut response,
                cookies::CONSENT,
                &cookie,
                "/oauth/v1",
                900,
                session::secure(state),
            );
            response
        }
        Ok(None) => html::message(
            StatusCode::BAD_REQUEST,
            "Link expired",
            "This link has expired, was already used, or was opened in another browser. Start again from your application.",
        ),
        Err(error) => {
            tracing::warn!(%error, "consent redirect failed");
            html::message(
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
    let cookie = cookies::read(&headers, cookies::CONSENT);
    match state
        .connections
        .complete_callback(&params, cookie.as_deref())
        .await
    {
        CallbackOutcome::Connected {
            provider_display_name,
            key,
        } => {
            let text = format!("Your {provider_display_name} account is connected.");
            // signed in to the Connections page as the same person: back to the cards
            if let Ok(Some(visitor)) = session::visitor(&state, &headers).await {
                let identity = visitor.identity();
                if identity.issuer == key.issuer && identity.subject == key.subject {
                    return session::redirect_with_notice(
                        &state,
                        &identity,
                        &text,
                        Some(&format!("card-{}", key.provider_name)),
                    );
                }
            }
            html::message(
                StatusCode::OK,
                "Connected",
                &format!("{text} You can close this tab."),
            )
        }
        CallbackOutcome::Failed { status, message } => html::message(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            "Not connected",
            &message,
        ),
    }
}
