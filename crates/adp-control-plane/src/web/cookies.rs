//! The cookies of the control plane's pages, one place for their attributes.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use cookie::time::Duration;
use cookie::{Cookie, SameSite};

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

/// Reads one cookie from a request. Pieces of the `Cookie` header that do not parse
/// are skipped; of two cookies with the same name the first counts, as browsers send
/// the one with the longer path first (RFC 6265 §5.4).
pub fn read(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == name)
        .map(|cookie| cookie.value().to_owned())
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
    if let Ok(value) = HeaderValue::from_str(&build(name, value, path, max_age_secs, secure)) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// The `Set-Cookie` value [`set`] sends.
fn build(name: &str, value: &str, path: &str, max_age_secs: u64, secure: bool) -> String {
    // a `__Host-` cookie is refused by browsers unless Secure, at `/`, without Domain
    debug_assert!(!name.starts_with("__Host-") || (secure && path == "/"));
    let max_age = Duration::seconds(i64::try_from(max_age_secs).unwrap_or(i64::MAX));
    Cookie::build((name, value))
        .path(path)
        .max_age(max_age)
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .build()
        .to_string()
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
    fn malformed_pieces_are_skipped_and_the_first_of_two_names_counts() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static(
                "garbage; =no-name;; adp_flash=first; adp_session=one; adp_session=two",
            ),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("adp_flash=second"));
        headers.append(
            header::COOKIE,
            HeaderValue::from_bytes(b"b=\xff").expect("obs-text is allowed in a header"),
        );
        assert_eq!(read(&headers, SESSION).as_deref(), Some("one"));
        assert_eq!(read(&headers, FLASH).as_deref(), Some("first"));
        assert_eq!(read(&headers, "garbage"), None);
        assert_eq!(read(&headers, ""), None);
        assert_eq!(read(&headers, "b"), None);
    }

    #[test]
    fn over_https_the_session_cookie_is_host_only() {
        assert_eq!(session_name(true), "__Host-adp_session");
        assert_eq!(session_name(false), "adp_session");
        assert_eq!(
            build(session_name(true), "xyz", "/", 3600, true),
            "__Host-adp_session=xyz; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=3600"
        );
    }

    #[test]
    fn cookies_are_http_only_lax_and_secure_only_over_https() {
        assert_eq!(
            build(SIGN_IN, "sealed", "/connections/sign-in", 600, false),
            "adp_signin=sealed; HttpOnly; SameSite=Lax; Path=/connections/sign-in; Max-Age=600"
        );
        // clearing: the same cookie with no value and Max-Age=0
        assert_eq!(
            build(FLASH, "", "/connections", 0, true),
            "adp_flash=; HttpOnly; SameSite=Lax; Secure; Path=/connections; Max-Age=0"
        );
    }
}
