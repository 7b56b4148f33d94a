//! The one page layout of the control plane's HTML (consent pages and the Connections
//! page) and the headers every page carries. Pages are `maud` templates: every string
//! spliced into one is escaped, so text from a provider, an identity provider or a
//! caller cannot become markup. Nothing here uses `PreEscaped` on text; `Markup` passed
//! between templates was itself built by `maud`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

/// Script and styles come only from our own assets; nothing may frame the pages.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'";

/// A whole page: `header` goes to the right of the brand, `body` into `<main>`.
pub fn document(title: &str, header: Markup, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — ADP" }
                link rel="stylesheet" href="/connections/assets/connections.css";
                script src="/connections/assets/connections.js" defer {}
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="bar" { span class="brand" { "ADP" } (header) }
                main id="main" tabindex="-1" { (body) }
            }
        }
    }
}

/// A page response with the headers every page carries.
pub fn respond(status: StatusCode, page: Markup) -> Response {
    let mut response = (status, Html(page.into_string())).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // never a Referer to other sites (consent URLs carry a state); not `no-referrer`,
    // under which Chromium sends `Origin: null` on our own forms
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    response
}

/// A page with a heading and one paragraph of plain text.
pub fn message(status: StatusCode, title: &str, text: &str) -> Response {
    respond(status, message_page(title, text, None))
}

/// A page with a heading, one paragraph and a link onwards to one of our own pages
/// (`href` is a path the code names, never one from a request).
pub fn message_with_link(
    status: StatusCode,
    title: &str,
    text: &str,
    link_text: &str,
    href: &'static str,
) -> Response {
    respond(status, message_page(title, text, Some((link_text, href))))
}

fn message_page(title: &str, text: &str, link: Option<(&str, &'static str)>) -> Markup {
    let body = html! {
        h1 { (title) }
        p { (text) }
        @if let Some((link_text, href)) = link {
            p { a class="button" href=(href) { (link_text) } }
        }
    };
    document(title, html! {}, body)
}

/// Checks for tests that hostile text stayed text: a small scanner of the tags in a
/// page `maud` rendered (attribute values are always double-quoted, with `"` escaped).
#[cfg(test)]
pub(crate) mod checks {
    /// The attributes our pages use; an injected one (`onmouseover`, `style`) is not.
    const ATTRIBUTES: &[&str] = &[
        "lang",
        "charset",
        "name",
        "content",
        "rel",
        "href",
        "src",
        "defer",
        "class",
        "id",
        "tabindex",
        "role",
        "aria-label",
        "aria-labelledby",
        "aria-hidden",
        "aria-live",
        "data-events",
        "data-status",
        "method",
        "action",
        "type",
        "value",
        "autofocus",
        "target",
        "datetime",
    ];

    /// Each tag's name and its attributes (name, value) in `page`.
    pub fn tags(page: &str) -> Vec<(String, Vec<(String, String)>)> {
        let mut found = Vec::new();
        let mut rest = page;
        while let Some(at) = rest.find('<') {
            rest = &rest[at + 1..];
            let name_end = rest
                .find(|c: char| c.is_whitespace() || c == '>')
                .unwrap_or(rest.len());
            let name = rest[..name_end].to_ascii_lowercase();
            rest = &rest[name_end..];
            if name.starts_with('!') {
                continue;
            }
            let mut attributes = Vec::new();
            loop {
                rest = rest.trim_start();
                if rest.is_empty() || rest.starts_with('>') {
                    break;
                }
                let key_end = rest
                    .find(|c: char| c.is_whitespace() || c == '=' || c == '>')
                    .unwrap_or(rest.len());
                let key = rest[..key_end].to_ascii_lowercase();
                rest = &rest[key_end..];
                let mut value = String::new();
                if let Some(after) = rest.strip_prefix("=\"") {
                    let end = after.find('"').expect("a closed attribute value");
                    value = after[..end].to_owned();
                    rest = &after[end + 1..];
                } else if rest.starts_with('=') {
                    panic!("unquoted attribute {key} in {page}");
                }
                attributes.push((key, value));
            }
            found.push((name, attributes));
        }
        found
    }

    /// Fails unless `page` has only our own script, only our attributes, and links only
    /// to our own paths or to http(s) URLs.
    pub fn assert_nothing_injected(page: &str) {
        for (name, attributes) in tags(page) {
            if name == "script" {
                assert_eq!(
                    attributes,
                    [
                        (
                            "src".to_owned(),
                            "/connections/assets/connections.js".to_owned()
                        ),
                        ("defer".to_owned(), String::new())
                    ],
                    "a script that is not ours in {page}"
                );
            }
            for (key, value) in &attributes {
                assert!(
                    ATTRIBUTES.contains(&key.as_str()),
                    "attribute {key} on <{name}> in {page}"
                );
                if key == "href" || key == "action" || key == "src" {
                    assert!(
                        value.starts_with('/')
                            || value.starts_with('#')
                            || value.starts_with("https://")
                            || value.starts_with("http://"),
                        "{key}={value} in {page}"
                    );
                }
            }
        }
        assert_eq!(page.matches("<script").count(), 1, "{page}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_pages_keep_hostile_text_as_text() {
        let hostile = r#""><script>alert(1)</script>' onmouseover='x"#;
        let page = message_page(hostile, hostile, Some((hostile, "/connections"))).into_string();
        checks::assert_nothing_injected(&page);
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("<title>&quot;&gt;&lt;script&gt;"));
        assert!(page.contains(r#"<a class="button" href="/connections">"#));
    }

    #[test]
    fn every_page_carries_the_security_headers() {
        let response = message(StatusCode::OK, "Signed out", "Bye.");
        let headers = response.headers();
        assert_eq!(
            headers[header::CONTENT_SECURITY_POLICY],
            CONTENT_SECURITY_POLICY
        );
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert_eq!(headers[header::REFERRER_POLICY], "same-origin");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(
            headers[header::CONTENT_TYPE]
                .to_str()
                .is_ok_and(|t| t.starts_with("text/html"))
        );
    }
}
