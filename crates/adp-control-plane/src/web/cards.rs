//! The Connections page itself: one card per provider with its status and the one
//! action that fits it.

use adp_core::connection::ExpiredReason;
use adp_oauth::DeviceAuthorization;
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use url::Url;

use super::session::Visitor;
use crate::connections::{Card, CardStatus};

/// A card and the user code being polled for it, if a device flow is under way.
pub struct CardView<'a> {
    pub card: &'a Card,
    pub device: Option<DeviceAuthorization>,
}

/// The header's right side: who is signed in, and signing out.
pub fn account_nav(visitor: &Visitor) -> Markup {
    html! {
        nav aria-label="Account" {
            span class="who" { "Signed in as " strong { (visitor.session.display_name) } }
            form method="post" action="/connections/sign-out" {
                (visitor.csrf_field())
                button type="submit" class="link" { "Sign out" }
            }
        }
    }
}

/// The page body: heading, notice and cards.
pub fn page_body(visitor: &Visitor, cards: &[CardView<'_>], notice: Option<&str>) -> Markup {
    html! {
        h1 { "Your connections" }
        p class="lede" {
            "The third-party accounts AI agents use when they act for you. \
             Connect one once; revoke it here at any time."
        }
        div id="notice" role="status" aria-live="polite" {
            @if let Some(text) = notice { p class="notice" { (text) } }
        }
        ul class="cards" id="cards" data-events="/connections/events" {
            @if cards.is_empty() {
                p { "No third-party accounts are set up for you to connect yet." }
            }
            @for view in cards { (card(visitor, view)) }
        }
    }
}

fn card(visitor: &Visitor, view: &CardView<'_>) -> Markup {
    let card = view.card;
    let name = card.display_name();
    // provider names are `^[a-z][a-z0-9-]*$` (the admin API validates them), so they
    // fit in ids and paths as they are
    let provider = card.provider.name.as_str();
    let status = card.status();
    let (class, label) = match &status {
        CardStatus::NotConnected => ("not-connected", "Not connected"),
        CardStatus::Connected => ("connected", "Connected"),
        CardStatus::Expired { .. } => ("expired", "Expired"),
        CardStatus::ScopeUpgradeRequired { .. } => ("upgrade", "Needs more access"),
    };
    let connect_label = match &status {
        CardStatus::NotConnected => Some("Connect "),
        CardStatus::Connected => None,
        CardStatus::Expired { .. } => Some("Reconnect "),
        CardStatus::ScopeUpgradeRequired { .. } => Some("Grant more access to "),
    }
    .filter(|_| view.device.is_none());
    html! {
        li class="card" id={ "card-" (provider) } data-status=(class) aria-labelledby={ "title-" (provider) } {
            h2 id={ "title-" (provider) } tabindex="-1" { (name) }
            p class={ "status status-" (class) } { span aria-hidden="true" class="dot" {} (label) }
            @match &status {
                CardStatus::Expired { reason, detail } => {
                    p class="reason" { (expired_text(*reason, detail)) }
                }
                CardStatus::ScopeUpgradeRequired { missing } => {
                    p class="reason" {
                        "Servers now also need "
                        @for (i, scope) in missing.iter().enumerate() {
                            @if i > 0 { ", " }
                            code { (scope) }
                        }
                        ". Grant it to keep using them."
                    }
                }
                CardStatus::NotConnected | CardStatus::Connected => {}
            }
            @if let Some(device) = &view.device { (device_prompt(device)) }
            dl {
                @if let Some(connection) = &card.connection {
                    dt { "Connected" } dd { (time(connection.connect_time)) }
                    dt { "Granted access" } dd { (scopes(&connection.granted_scopes)) }
                }
                dt { "Asks for" } dd { (scopes(&card.requested_scopes)) }
            }
            div class="actions" {
                @if let Some(verb) = connect_label {
                    form method="post" action={ "/connections/" (provider) "/connect" } {
                        (visitor.csrf_field())
                        button type="submit" id={ "connect-" (provider) } { (verb) (name) }
                    }
                }
                @if card.connection.is_some() {
                    a class="button secondary" id={ "revoke-" (provider) } href={ "/connections/" (provider) "/revoke" } {
                        "Revoke" span class="visually-hidden" { " " (name) }
                    }
                }
            }
        }
    }
}

/// The page that asks before revoking `card`'s connection, headed `title`.
pub fn revoke_body(visitor: &Visitor, card: &Card, title: &str) -> Markup {
    let name = card.display_name();
    let provider = card.provider.name.as_str();
    html! {
        h1 { (title) }
        @if card.status() == CardStatus::NotConnected {
            p { "There is no connection to revoke." }
        } @else {
            p {
                "Agents will no longer reach " (name) " on your behalf until you connect again. \
                 ADP deletes its stored access and asks " (name) " to revoke it."
            }
        }
        form method="post" action={ "/connections/" (provider) "/revoke" } class="actions" {
            (visitor.csrf_field())
            button type="submit" class="danger" { "Revoke " (name) }
            a class="button secondary" href={ "/connections#card-" (provider) } autofocus { "Cancel" }
        }
    }
}

/// A URL the provider chose, if it is a web page to link to: never `javascript:`,
/// `data:` or anything else a browser would run rather than open.
fn web_page(uri: &str) -> Option<Url> {
    Url::parse(uri)
        .ok()
        .filter(|url| matches!(url.scheme(), "https" | "http"))
}

fn device_prompt(device: &DeviceAuthorization) -> Markup {
    let link = device
        .verification_uri_complete
        .as_deref()
        .and_then(web_page)
        .or_else(|| web_page(&device.verification_uri));
    html! {
        div class="device" {
            p {
                "Waiting for you to approve. Open "
                @if let Some(href) = &link {
                    a href=(href.as_str()) target="_blank" rel="noopener" {
                        (device.verification_uri)
                        span class="visually-hidden" { " (opens in a new tab)" }
                    }
                } @else {
                    code { (device.verification_uri) }
                }
                " and enter the code"
            }
            p class="user-code" { "Code: " code { (device.user_code) } }
            p class="hint" {
                "This card updates by itself once you approve; the code works until "
                (time(device.expires_at)) "."
            }
        }
    }
}

fn expired_text(reason: ExpiredReason, detail: &str) -> &str {
    if !detail.is_empty() {
        return detail;
    }
    match reason {
        ExpiredReason::Revoked => "Access was revoked at the provider.",
        ExpiredReason::RefreshRejected => "The provider no longer accepts the stored access.",
        ExpiredReason::NoRefreshToken => {
            "The access ran out and the provider gave no way to renew it."
        }
        ExpiredReason::UpstreamUnavailable => "The provider could not be reached to renew access.",
    }
}

fn scopes(scopes: &[String]) -> Markup {
    html! {
        @if scopes.is_empty() {
            "nothing in particular"
        } @else {
            ul class="scopes" { @for scope in scopes { li { code { (scope) } } } }
        }
    }
}

fn time(at: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)) {
            (at.format("%-d %b %Y, %H:%M UTC"))
        }
    }
}

#[cfg(test)]
mod tests {
    use adp_core::connection::{ConnectionKey, StoredConnection};
    use adp_core::provider::{OAuthProvider, TokenAuthMethod};
    use adp_core::session::BrowserSession;

    use super::*;

    fn visitor() -> Visitor {
        let now = Utc::now();
        Visitor::for_tests(
            BrowserSession {
                id_hash: String::new(),
                issuer: "https://login.example.com".into(),
                subject: "alice".into(),
                display_name: "Alice <script>".into(),
                create_time: now,
                expire_time: now,
            },
            "cookie",
        )
    }

    fn card(expired: Option<ExpiredReason>, granted: &[&str], status_reason: &str) -> Card {
        Card {
            provider: OAuthProvider {
                name: "github".into(),
                display_name: "GitHub & Co".into(),
                authorize_url: String::new(),
                token_url: String::new(),
                revocation_url: String::new(),
                device_authorization_url: String::new(),
                scopes: vec![],
                client_id: String::new(),
                client_secret_ref: String::new(),
                token_auth_method: TokenAuthMethod::None,
                grant_types: vec![],
                require_pkce: true,
                enabled: true,
                issuer: String::new(),
            },
            requested_scopes: vec!["repo".into(), "read:org".into()],
            connection: Some(StoredConnection {
                key: ConnectionKey {
                    issuer: "https://login.example.com".into(),
                    subject: "alice".into(),
                    provider_name: "github".into(),
                },
                sealed_tokens: vec![],
                granted_scopes: granted.iter().map(|s| (*s).to_owned()).collect(),
                expired,
                status_reason: status_reason.into(),
                connect_time: Utc::now(),
                update_time: Utc::now(),
                access_expire_time: None,
                version: 1,
                refresh_lease_until: None,
            }),
        }
    }

    fn render(card: &Card) -> String {
        page_body(
            &visitor(),
            &[CardView { card, device: None }],
            Some("<b>notice</b>"),
        )
        .into_string()
    }

    #[test]
    fn expired_cards_say_why_and_offer_to_reconnect() {
        let html = render(&card(
            Some(ExpiredReason::Revoked),
            &["repo", "read:org"],
            "",
        ));
        assert!(html.contains("data-status=\"expired\""));
        assert!(html.contains("Access was revoked at the provider."));
        assert!(html.contains("Reconnect GitHub &amp; Co"));
        assert!(html.contains("id=\"revoke-github\""));
        let html = render(&card(
            Some(ExpiredReason::RefreshRejected),
            &["repo"],
            "server x changed its authentication mode; connect again",
        ));
        assert!(html.contains("server x changed its authentication mode"));
    }

    #[test]
    fn upgrades_name_the_missing_scopes_and_everything_is_escaped() {
        let html = render(&card(None, &["repo"], ""));
        assert!(html.contains("data-status=\"upgrade\""));
        assert!(html.contains("Servers now also need <code>read:org</code>"));
        assert!(html.contains("Grant more access to GitHub &amp; Co"));
        assert!(html.contains("&lt;b&gt;notice&lt;/b&gt;"));
        assert!(!html.contains("<b>notice"));
        assert!(
            account_nav(&visitor())
                .into_string()
                .contains("Alice &lt;script&gt;")
        );
        // every form carries the CSRF token
        assert_eq!(
            html.matches("<form").count(),
            html.matches("name=\"csrf\"").count()
        );
    }

    #[test]
    fn a_pending_device_code_replaces_the_connect_button() {
        let mut card = card(None, &[], "");
        card.connection = None;
        let device = DeviceAuthorization {
            device_code: "secret-device-code".into(),
            user_code: "WDJB-MJHT".into(),
            verification_uri: "https://idp.example.com/device".into(),
            verification_uri_complete: Some(
                "https://idp.example.com/device?user_code=WDJB-MJHT".into(),
            ),
            expires_at: Utc::now(),
            interval: std::time::Duration::from_secs(5),
        };
        let html = page_body(
            &visitor(),
            &[CardView {
                card: &card,
                device: Some(device),
            }],
            None,
        )
        .into_string();
        assert!(html.contains("WDJB-MJHT"));
        assert!(html.contains("href=\"https://idp.example.com/device?user_code=WDJB-MJHT\""));
        assert!(!html.contains("secret-device-code"));
        assert!(!html.contains("id=\"connect-github\""));
    }

    const HOSTILE: &str = r#""><script>alert(1)</script>' onmouseover='x"#;

    fn device(verification_uri: &str, complete: Option<&str>) -> DeviceAuthorization {
        DeviceAuthorization {
            device_code: "secret-device-code".into(),
            user_code: HOSTILE.into(),
            verification_uri: verification_uri.into(),
            verification_uri_complete: complete.map(str::to_owned),
            expires_at: Utc::now(),
            interval: std::time::Duration::from_secs(5),
        }
    }

    #[test]
    fn hostile_names_scopes_details_and_device_urls_stay_text() {
        let mut visitor = visitor();
        visitor.session.display_name = HOSTILE.into();
        let hostile_card = |expired: Option<ExpiredReason>, granted: &[&str]| {
            let mut card = card(expired, granted, HOSTILE);
            card.provider.display_name = HOSTILE.into();
            card.provider.name = HOSTILE.into();
            card.requested_scopes = vec![HOSTILE.into(), "repo".into()];
            card
        };
        let expired = hostile_card(Some(ExpiredReason::RefreshRejected), &[HOSTILE]);
        let upgrade = hostile_card(None, &["repo"]);
        let mut pending = hostile_card(None, &[]);
        pending.connection = None;
        let views = [
            CardView {
                card: &expired,
                device: None,
            },
            CardView {
                card: &upgrade,
                device: None,
            },
            CardView {
                card: &pending,
                device: Some(device(
                    &format!("https://idp.example.com/device{HOSTILE}"),
                    Some(HOSTILE),
                )),
            },
        ];
        let page = super::super::html::document(
            HOSTILE,
            account_nav(&visitor),
            page_body(&visitor, &views, Some(HOSTILE)),
        )
        .into_string();
        crate::web::html::checks::assert_nothing_injected(&page);
        assert!(page.contains("data-status=\"expired\""));
        assert!(page.contains("data-status=\"upgrade\""));
        assert!(page.contains("&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;' onmouseover='x"));
        // the one link to the provider is the https URL, percent-encoded by parsing
        assert!(page.contains(
            "href=\"https://idp.example.com/device%22%3E%3Cscript%3Ealert(1)%3C/script%3E'%20onmouseover='x\""
        ));
        let revoke = super::super::html::document(
            HOSTILE,
            account_nav(&visitor),
            revoke_body(&visitor, &expired, HOSTILE),
        )
        .into_string();
        crate::web::html::checks::assert_nothing_injected(&revoke);
        assert!(revoke.contains("Revoke &quot;&gt;&lt;script&gt;"));
    }

    #[test]
    fn a_verification_uri_that_is_not_a_web_page_is_shown_not_linked() {
        let mut card = card(None, &[], "");
        card.connection = None;
        for (uri, complete) in [
            ("javascript:alert(document.cookie)", None),
            (
                "JavaScript:alert(1)",
                Some("data:text/html,<script>alert(1)</script>"),
            ),
            ("not a url at all", Some("vbscript:msgbox(1)")),
        ] {
            let html = page_body(
                &visitor(),
                &[CardView {
                    card: &card,
                    device: Some(device(uri, complete)),
                }],
                None,
            )
            .into_string();
            crate::web::html::checks::assert_nothing_injected(&format!(
                "<script src=\"/connections/assets/connections.js\" defer></script>{html}"
            ));
            assert!(!html.contains("<a "), "{html}");
            let shown = uri.replace('<', "&lt;").replace('>', "&gt;");
            assert!(
                html.contains(&format!("Open <code>{shown}</code>")),
                "{html}"
            );
        }
        // a script as the complete URI falls back to the plain https one
        let html = page_body(
            &visitor(),
            &[CardView {
                card: &card,
                device: Some(device(
                    "https://idp.example.com/device",
                    Some("javascript:alert(1)"),
                )),
            }],
            None,
        )
        .into_string();
        assert!(
            html.contains("href=\"https://idp.example.com/device\""),
            "{html}"
        );
        assert!(!html.to_ascii_lowercase().contains("javascript"), "{html}");
    }
}
