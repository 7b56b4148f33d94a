//! The cookies of the control plane's pages, one place for their attributes.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;

/// The signed-in browser (its value is a random token; the database keeps its hash).
/// Over https it carries the `__Host-` prefix, so no sibling subdomain can plant one.
pub const SESSION: &str = "adp_session";
const SESSION_OVER_HTTPS: &str = "__Host-adp_session";

/// The session cookie's name for pages served over https (`secure`) or not.
pub fn session_name(secure: bool) -> &'static str {
    if secure { SESSION_OVER_HTTPS } else { SESSION }
}
/// A sign-in on its way to the identity provider (sealed, bound to the `state`).
pub const SIGN_IN: &str = "adp_signin";
/// A one-shot notice for the next Connections page (sealed, bound to the person).
pub const FLASH: &str = "adp_flash";
/// Binds a consent attempt to the browser that opened its link.
pub const CONSENT: &str = "adp_consent";
/// The consent page's CSRF secret when there is no sign-in session to derive it from
/// (development mode): the form carries a token derived from it.
pub const CONSENT_FORM: &str = "adp_consent_form";

/// Reads one cookie from a request.
pub fn read(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// Sets (or, with `max_age_secs` 0, clears) an HttpOnly, SameSite=Lax cookie; Secure
/// when the pages are served over https.
pub fn set(
    response: &mut Response,
    name: &str,
    value: &str,
    path: &str,
    max_age_secs: u64,
    secure: bool,
) {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!(
        "{name}={value}; Path={path}; Max-Age={max_age_secs}; HttpOnly; SameSite=Lax{secure}"
    );
    if let Ok(value) = HeaderValue::from_str(&text) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_cookie_among_several() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; adp_session=xyz"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(read(&headers, SESSION).as_deref(), Some("xyz"));
        assert_eq!(read(&headers, "b").as_deref(), Some("2"));
        assert_eq!(read(&headers, FLASH), None);
    }

    #[test]
    fn over_https_the_session_cookie_is_host_only() {
        assert_eq!(session_name(true), "__Host-adp_session");
        assert_eq!(session_name(false), "adp_session");
    }
}
