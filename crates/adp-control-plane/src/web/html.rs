//! The one page layout of the control plane's HTML (consent pages and the Connections
//! page), HTML escaping, and the headers every page carries.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// Script and styles come only from our own assets; nothing may frame the pages.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Escapes text for element content and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// A whole page. `header` and `body` are trusted HTML: everything user-supplied in
/// them must already be escaped.
pub fn document(title: &str, header: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} — ADP</title>\
         <link rel=\"stylesheet\" href=\"/connections/assets/connections.css\">\
         <script src=\"/connections/assets/connections.js\" defer></script></head>\
         <body><a class=\"skip\" href=\"#main\">Skip to content</a>\
         <header class=\"bar\"><span class=\"brand\">ADP</span>{header}</header>\
         <main id=\"main\" tabindex=\"-1\">{body}</main></body></html>",
        title = escape(title),
    )
}

/// A page response with the headers every page carries.
pub fn respond(status: StatusCode, html: String) -> Response {
    let mut response = (status, Html(html)).into_response();
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
    respond(
        status,
        document(
            title,
            "",
            &format!("<h1>{}</h1><p>{}</p>", escape(title), escape(text)),
        ),
    )
}

/// A page with a heading, one paragraph and a link onwards.
pub fn message_with_link(
    status: StatusCode,
    title: &str,
    text: &str,
    link_text: &str,
    href: &str,
) -> Response {
    respond(
        status,
        document(
            title,
            "",
            &format!(
                "<h1>{}</h1><p>{}</p><p><a class=\"button\" href=\"{}\">{}</a></p>",
                escape(title),
                escape(text),
                escape(href),
                escape(link_text)
            ),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x" onclick='y'>&</a>"#),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
    }
}
