//! The browser side of consent: `GET /oauth/v1/connect/{state}` says which account,
//! which scopes and which server asked, and whose ADP account the connection will
//! belong to; its Continue button (`POST` to the same URL, CSRF-protected and
//! Origin-checked) binds the attempt to this browser with a cookie and redirects to the
//! provider; `/oauth/v1/callback` finishes, and returns to the Connections page when
//! the browser is signed in there as the same person.
//!
//! A link is only as safe as the check of who opens it: with browser sign-in the
//! browser must be signed in as the (issuer, subject) that asked for the link, else a
//! user could send their link to someone else and have that person's upstream account
//! stored under their own identity. Without sign-in this works in development only.

use axum::body::Bytes;
use axum::extract::{Path, Query, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::Markup;

use crate::connections::{CallbackOutcome, CallbackParams, ConsentPrompt};
use crate::state::{ConsentBinding, SharedState};
use crate::web::html;
use crate::web::{cookies, session};

const CONSENT_PATH: &str = "/oauth/v1/connect";

/// The link's attempt, when the person at the browser may act on it; else the page
/// to answer with. `form` is the posted form on Continue, `None` on the GET.
async fn admitted(
    state: &SharedState,
    attempt: &str,
    headers: &HeaderMap,
    form: Option<&[u8]>,
) -> Result<(ConsentPrompt, Opener), Response> {
    if let Some(form) = form {
        session::same_origin(state, headers)?;
        if state.consent_binding == ConsentBinding::Development {
            let cookie = cookies::read(headers, cookies::CONSENT_FORM).unwrap_or_default();
            if cookie.is_empty() || !session::csrf_matches(&cookie, form) {
                tracing::warn!("consent page: form without a valid csrf token refused");
                return Err(session::refused("it did not carry this page's CSRF token"));
            }
        }
    }
    let prompt = match state.connections.consent_prompt(attempt).await {
        Ok(Some(prompt)) => prompt,
        Ok(None) => return Err(expired()),
        Err(error) => {
            tracing::warn!(%error, "consent prompt failed");
            return Err(html::message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Cannot continue",
                "Try again shortly.",
            ));
        }
    };
    match state.consent_binding {
        ConsentBinding::Unavailable => Err(html::message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Browser sign-in is not set up",
            "This link cannot be used: ADP connects an account only for the person who asked, \
             and checks that through browser sign-in, which is not configured here. An \
             administrator sets ADP_OIDC_ISSUER and ADP_OIDC_CLIENT_ID to turn it on.",
        )),
        ConsentBinding::Development => Ok((prompt, Opener::Anyone)),
        ConsentBinding::SignedIn => {
            let visitor = match form {
                Some(form) => session::admit_post(state, headers, form).await?,
                None => match session::visitor(state, headers).await? {
                    Some(visitor) => visitor,
                    None => {
                        return Err(session::sign_in_then(&format!("{CONSENT_PATH}/{attempt}")));
                    }
                },
            };
            if !prompt.is_for(&visitor.identity()) {
                tracing::warn!(
                    provider = %prompt.key.provider_name,
                    visitor = %visitor.session.subject,
                    "consent link opened by someone other than the user it was made for"
                );
                return Err(html::message_with_link(
                    StatusCode::FORBIDDEN,
                    "This link is for another account",
                    &format!(
                        "This connection link was made for another ADP account, and you are signed in as {}. \
                         Nothing was connected. If the link is yours, sign out and sign in with the account that asked for it; \
                         otherwise ask its owner to connect it themselves.",
                        visitor.session.display_name
                    ),
                    "Your connections",
                    "/connections",
                ));
            }
            Ok((prompt, Opener::SignedIn(visitor)))
        }
    }
}

/// Who is at the browser, as far as the consent page knows.
enum Opener {
    SignedIn(session::Visitor),
    /// Development mode: nobody checked.
    Anyone,
}

fn expired() -> Response {
    html::message(
        StatusCode::BAD_REQUEST,
        "Link expired",
        "This link has expired or was already used. Start again from your application.",
    )
}

/// The page an authorize URL opens: what is being asked, before anything happens.
pub async fn prompt(
    AxumState(state): AxumState<SharedState>,
    Path(attempt): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (prompt, opener) = match admitted(&state, &attempt, &headers, None).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let (csrf_field, form_cookie) = match &opener {
        Opener::SignedIn(visitor) => (visitor.csrf_field(), None),
        Opener::Anyone => {
            let cookie = crate::connections::random_token();
            (
                session::csrf_field(&session::csrf_token(&cookie)),
                Some(cookie),
            )
        }
    };
    let mut response = html::respond(StatusCode::OK, consent_page(&prompt, &opener, csrf_field));
    if let Some(cookie) = form_cookie {
        cookies::set(
            &mut response,
            cookies::CONSENT_FORM,
            &cookie,
            CONSENT_PATH,
            900,
            session::secure(&state),
        );
    }
    response
}

/// What is being asked, by whom and for whom, and the Continue button (its form
/// carrying `csrf_field`).
fn consent_page(prompt: &ConsentPrompt, opener: &Opener, csrf_field: Markup) -> Markup {
    let provider = prompt.provider_display_name.as_str();
    let title = format!("Connect your {provider} account");
    let body = maud::html! {
        h1 { (title) }
        @if let Opener::Anyone = opener {
            p class="notice warning" role="alert" {
                strong { "Development mode." }
                " This control plane has no browser sign-in, so it cannot check that you are that account: \
                 whoever opens this link connects their account to it. Never use this mode with other people."
            }
        }
        p { "You are about to connect your " strong { (provider) } " account." }
        @match opener {
            Opener::SignedIn(visitor) => {
                p class="owner" {
                    "The connection will belong to your ADP account "
                    strong { (visitor.session.display_name) } "."
                }
            }
            Opener::Anyone => {
                p class="owner" {
                    "The connection will belong to the ADP account " strong { (prompt.key.subject) }
                    " (issuer " (prompt.key.issuer) ")."
                }
            }
        }
        @if let Some(server) = &prompt.server_name {
            p { "The MCP server " strong { (server) } " needs it to act on your behalf." }
        }
        @if prompt.scopes.is_empty() {
            p { "No particular permissions are requested." }
        } @else {
            p { "It will ask you to grant:" }
            ul class="scopes" { @for scope in &prompt.scopes { li { code { (scope) } } } }
        }
        form method="post" class="actions" {
            (csrf_field)
            button type="submit" autofocus { "Continue to " (provider) }
        }
    };
    html::document(&title, maud::html! {}, body)
}

/// Continue: the same checks as the page, plus the form's CSRF token and origin.
pub async fn connect(
    AxumState(state): AxumState<SharedState>,
    Path(attempt): Path<String>,
    headers: HeaderMap,
    form: Bytes,
) -> Response {
    if let Err(response) = admitted(&state, &attempt, &headers, Some(&form)).await {
        return response;
    }
    send_to_provider(&state, &attempt).await
}

/// Binds consent attempt `attempt` to this browser (a fresh cookie) and redirects it
/// to the provider's authorization endpoint. Callers have checked who is asking.
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
    let visitor = match session::visitor(&state, &headers).await {
        Ok(visitor) => visitor,
        Err(response) => return response,
    };
    let identity = visitor.as_ref().map(session::Visitor::identity);
    let signed_in =
        (state.consent_binding == ConsentBinding::SignedIn).then_some(identity.as_ref());
    match state
        .connections
        .complete_callback(&params, cookie.as_deref(), signed_in)
        .await
    {
        CallbackOutcome::Connected {
            provider_display_name,
            key,
        } => {
            let text = format!("Your {provider_display_name} account is connected.");
            // signed in to the Connections page as the same person: back to the cards
            if let Some(identity) = identity
                && identity.issuer == key.issuer
                && identity.subject == key.subject
            {
                return session::redirect_with_notice(
                    &state,
                    &identity,
                    &text,
                    Some(&format!("card-{}", key.provider_name)),
                );
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

#[cfg(test)]
mod tests {
    use adp_core::connection::ConnectionKey;
    use adp_core::session::BrowserSession;

    use super::*;
    use crate::web::html::checks::assert_nothing_injected;

    const HOSTILE: &str = r#""><script>alert(1)</script>' onmouseover='x"#;

    fn prompt() -> ConsentPrompt {
        ConsentPrompt {
            provider_display_name: HOSTILE.into(),
            scopes: vec![HOSTILE.into(), "repo".into()],
            server_name: Some(HOSTILE.into()),
            key: ConnectionKey {
                issuer: HOSTILE.into(),
                subject: HOSTILE.into(),
                provider_name: "github".into(),
            },
        }
    }

    #[test]
    fn the_consent_page_keeps_hostile_names_scopes_and_subjects_as_text() {
        let now = chrono::Utc::now();
        let visitor = session::Visitor::for_tests(
            BrowserSession {
                id_hash: String::new(),
                issuer: HOSTILE.into(),
                subject: HOSTILE.into(),
                display_name: HOSTILE.into(),
                create_time: now,
                expire_time: now,
            },
            "cookie",
        );
        let csrf = visitor.csrf_field();
        let signed_in = consent_page(&prompt(), &Opener::SignedIn(visitor), csrf).into_string();
        let development = consent_page(
            &prompt(),
            &Opener::Anyone,
            session::csrf_field(&session::csrf_token("form-cookie")),
        )
        .into_string();
        for page in [&signed_in, &development] {
            assert_nothing_injected(page);
            assert!(page.contains("Continue to &quot;&gt;&lt;script&gt;alert(1)"));
            assert!(page.contains("<code>repo</code>"));
            assert!(page.contains("name=\"csrf\" value=\""));
            assert_eq!(page.matches("<form").count(), 1);
        }
        assert!(signed_in.contains("your ADP account <strong>&quot;&gt;&lt;script&gt;"));
        assert!(!signed_in.contains("Development mode"));
        assert!(development.contains("Development mode."));
        assert!(development.contains("(issuer &quot;&gt;&lt;script&gt;"));
    }
}
