//! Who is at the browser: the session cookie looked up in the database, the CSRF
//! token every state-changing form carries, and the one-shot notices the next page
//! shows ("connected", "revoked").

use adp_core::identity::Identity;
use adp_core::session::BrowserSession;
use adp_vault::Binding;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use maud::{Markup, html};
use sha2::{Digest, Sha256};

use super::{cookies, html};
use crate::state::SharedState;

/// The vault binding's provider field for sealed notices.
const SEALED_FLASH: &str = "adp-flash";
/// A notice outlives its redirect by this much at most.
const FLASH_MAX_AGE_SECS: u64 = 60;

/// A signed-in person at the browser.
pub struct Visitor {
    pub session: BrowserSession,
    /// The session cookie: enough to act as this person, so never in `Debug`.
    cookie: String,
}

impl std::fmt::Debug for Visitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Visitor")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl Visitor {
    pub fn identity(&self) -> Identity {
        self.session.identity()
    }

    /// The token forms carry: derived from the session cookie, which another site can
    /// neither read nor guess, so a forged form cannot carry it.
    pub fn csrf_token(&self) -> String {
        csrf_token(&self.cookie)
    }

    /// The hidden form field with the CSRF token.
    pub fn csrf_field(&self) -> Markup {
        csrf_field(&self.csrf_token())
    }

    pub fn cookie(&self) -> &str {
        &self.cookie
    }

    #[cfg(test)]
    pub fn for_tests(session: BrowserSession, cookie: &str) -> Self {
        Visitor {
            session,
            cookie: cookie.to_owned(),
        }
    }
}

/// The hidden form field that carries `token` (see [`csrf_token`]).
pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

pub fn csrf_token(cookie: &str) -> String {
    let mut digest = Sha256::new();
    digest.update(b"adp-csrf\0");
    digest.update(cookie.as_bytes());
    hex::encode(digest.finalize())
}

/// The signed-in visitor, if the request carries a live session cookie. `Err` is the
/// page to answer with when the database cannot say.
pub async fn visitor(
    state: &SharedState,
    headers: &HeaderMap,
) -> Result<Option<Visitor>, Response> {
    let (Some(sign_in), Some(cookie)) = (
        &state.sign_in,
        cookies::read(headers, cookies::session_name(secure(state))),
    ) else {
        return Ok(None);
    };
    match sign_in.session(&cookie).await {
        Ok(Some(session)) => Ok(Some(Visitor { session, cookie })),
        Ok(None) => Ok(None),
        Err(error) => {
            tracing::warn!(error = %adp_core::error::error_chain(&error), "reading a browser session failed");
            Err(unavailable())
        }
    }
}

/// Admits a state-changing request: a live session, the matching CSRF token in the
/// form, and (when the browser says where the form came from) our own origin.
pub async fn admit_post(
    state: &SharedState,
    headers: &HeaderMap,
    form: &[u8],
) -> Result<Visitor, Response> {
    same_origin(state, headers)?;
    let Some(visitor) = visitor(state, headers).await? else {
        return Err(html::message_with_link(
            StatusCode::FORBIDDEN,
            "Signed out",
            "Your session has ended, so nothing was changed. Sign in and try again.",
            "Sign in",
            "/connections/sign-in",
        ));
    };
    if !csrf_matches(visitor.cookie(), form) {
        tracing::warn!(subject = %visitor.session.subject, "connections page: form without a valid csrf token refused");
        return Err(refused("it did not carry this page's CSRF token"));
    }
    Ok(visitor)
}

/// Refuses a form another site posted: browsers name the page a form came from in
/// `Origin`, and a page of ours is at our public origin.
pub fn same_origin(state: &SharedState, headers: &HeaderMap) -> Result<(), Response> {
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
        && origin != public_origin(state)
    {
        tracing::warn!(origin, "cross-origin form refused");
        return Err(refused("it came from another site"));
    }
    Ok(())
}

/// Whether `sent` (a form's `csrf` field) is the token derived from `cookie`.
pub fn csrf_matches(cookie: &str, form: &[u8]) -> bool {
    let sent = url::form_urlencoded::parse(form)
        .find(|(key, _)| key == "csrf")
        .map(|(_, value)| value.into_owned());
    let expected = csrf_token(cookie);
    sent.is_some_and(|sent| constant_time_eq(sent.as_bytes(), expected.as_bytes()))
}

pub fn refused(why: &str) -> Response {
    html::message_with_link(
        StatusCode::FORBIDDEN,
        "Request refused",
        &format!("This request was refused because {why}, so nothing was changed."),
        "Back to your connections",
        "/connections",
    )
}

/// Sends the browser to sign in, then back to `path_and_query` (a local path).
pub fn sign_in_then(path_and_query: &str) -> Response {
    let back: String = url::form_urlencoded::byte_serialize(path_and_query.as_bytes()).collect();
    Redirect::to(&format!("/connections/sign-in?return_to={back}")).into_response()
}

pub fn unavailable() -> Response {
    html::message(
        StatusCode::SERVICE_UNAVAILABLE,
        "Unavailable",
        "The service is unavailable right now; try again shortly.",
    )
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn public_origin(state: &SharedState) -> String {
    url::Url::parse(&state.public_url)
        .map(|url| url.origin().ascii_serialization())
        .unwrap_or_default()
}

pub fn secure(state: &SharedState) -> bool {
    state.public_url.starts_with("https://")
}

fn flash_binding(identity: &Identity) -> Binding<'_> {
    Binding::request_state(&identity.issuer, &identity.subject, SEALED_FLASH)
}

/// A redirect to the Connections page (at `anchor`, if any) that shows `notice` there.
pub fn redirect_with_notice(
    state: &SharedState,
    identity: &Identity,
    notice: &str,
    anchor: Option<&str>,
) -> Response {
    let target = match anchor {
        Some(anchor) => format!("/connections#{anchor}"),
        None => "/connections".to_owned(),
    };
    let mut response = Redirect::to(&target).into_response();
    match state.vault.seal_str(&flash_binding(identity), notice) {
        Ok(sealed) => cookies::set(
            &mut response,
            cookies::FLASH,
            &URL_SAFE_NO_PAD.encode(sealed),
            "/connections",
            FLASH_MAX_AGE_SECS,
            secure(state),
        ),
        Err(error) => tracing::warn!(%error, "cannot seal a page notice"),
    }
    response
}

/// The notice waiting for this visitor, if any (the caller clears the cookie).
pub fn take_notice(state: &SharedState, headers: &HeaderMap, visitor: &Visitor) -> Option<String> {
    let sealed = URL_SAFE_NO_PAD
        .decode(cookies::read(headers, cookies::FLASH)?)
        .ok()?;
    let identity = visitor.identity();
    state
        .vault
        .open_string(&flash_binding(&identity), &sealed)
        .ok()
        .map(|text| secrecy::ExposeSecret::expose_secret(&text).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_follow_the_session_cookie() {
        assert_eq!(csrf_token("a"), csrf_token("a"));
        assert_ne!(csrf_token("a"), csrf_token("b"));
        assert_eq!(csrf_token("a").len(), 64);
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
