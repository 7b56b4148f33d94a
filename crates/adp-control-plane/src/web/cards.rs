//! The Connections page itself: one card per provider with its status and the one
//! action that fits it.

use adp_core::connection::ExpiredReason;
use adp_oauth::DeviceAuthorization;
use chrono::{DateTime, Utc};

use super::html::escape;
use super::session::Visitor;
use crate::connections::{Card, CardStatus};

/// A card and the user code being polled for it, if a device flow is under way.
pub struct CardView<'a> {
    pub card: &'a Card,
    pub device: Option<DeviceAuthorization>,
}

/// The header's right side: who is signed in, and signing out.
pub fn account_nav(visitor: &Visitor) -> String {
    format!(
        "<nav aria-label=\"Account\"><span class=\"who\">Signed in as <strong>{}</strong></span>\
         <form method=\"post\" action=\"/connections/sign-out\">{}\
         <button type=\"submit\" class=\"link\">Sign out</button></form></nav>",
        escape(&visitor.session.display_name),
        visitor.csrf_field()
    )
}

/// The page body: heading, notice and cards.
pub fn page_body(visitor: &Visitor, cards: &[CardView<'_>], notice: Option<&str>) -> String {
    let notice = match notice {
        Some(text) => format!("<p class=\"notice\">{}</p>", escape(text)),
        None => String::new(),
    };
    let list = if cards.is_empty() {
        "<p>No third-party accounts are set up for you to connect yet.</p>".to_owned()
    } else {
        cards
            .iter()
            .map(|view| card(visitor, view))
            .collect::<String>()
    };
    format!(
        "<h1>Your connections</h1>\
         <p class=\"lede\">The third-party accounts AI agents use when they act for you. \
         Connect one once; revoke it here at any time.</p>\
         <div id=\"notice\" role=\"status\" aria-live=\"polite\">{notice}</div>\
         <ul class=\"cards\" id=\"cards\" data-events=\"/connections/events\">{list}</ul>"
    )
}

fn card(visitor: &Visitor, view: &CardView<'_>) -> String {
    let card = view.card;
    let name = escape(card.display_name());
    let provider = escape(&card.provider.name);
    let status = card.status();
    let (class, label) = match &status {
        CardStatus::NotConnected => ("not-connected", "Not connected"),
        CardStatus::Connected => ("connected", "Connected"),
        CardStatus::Expired { .. } => ("expired", "Expired"),
        CardStatus::ScopeUpgradeRequired { .. } => ("upgrade", "Needs more access"),
    };
    let mut details = String::new();
    if let Some(connection) = &card.connection {
        details.push_str(&format!(
            "<dt>Connected</dt><dd>{}</dd><dt>Granted access</dt><dd>{}</dd>",
            time(connection.connect_time),
            scopes(&connection.granted_scopes)
        ));
    }
    details.push_str(&format!(
        "<dt>Asks for</dt><dd>{}</dd>",
        scopes(&card.requested_scopes)
    ));
    let explanation = match &status {
        CardStatus::NotConnected | CardStatus::Connected => String::new(),
        CardStatus::Expired { reason, detail } => format!(
            "<p class=\"reason\">{}</p>",
            escape(&expired_text(*reason, detail))
        ),
        CardStatus::ScopeUpgradeRequired { missing } => format!(
            "<p class=\"reason\">Servers now also need {}. Grant it to keep using them.</p>",
            missing
                .iter()
                .map(|s| format!("<code>{}</code>", escape(s)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let pending = view.device.as_ref().map(device_prompt).unwrap_or_default();
    let connect_label = match &status {
        CardStatus::NotConnected => Some(format!("Connect {name}")),
        CardStatus::Connected => None,
        CardStatus::Expired { .. } => Some(format!("Reconnect {name}")),
        CardStatus::ScopeUpgradeRequired { .. } => Some(format!("Grant more access to {name}")),
    };
    let mut actions = String::new();
    if let Some(label) = connect_label.filter(|_| view.device.is_none()) {
        actions.push_str(&format!(
            "<form method=\"post\" action=\"/connections/{provider}/connect\">{}\
             <button type=\"submit\" id=\"connect-{provider}\">{label}</button></form>",
            visitor.csrf_field()
        ));
    }
    if card.connection.is_some() {
        actions.push_str(&format!(
            "<a class=\"button secondary\" id=\"revoke-{provider}\" \
             href=\"/connections/{provider}/revoke\">Revoke<span class=\"visually-hidden\"> {name}</span></a>"
        ));
    }
    format!(
        "<li class=\"card\" id=\"card-{provider}\" data-status=\"{class}\" aria-labelledby=\"title-{provider}\">\
         <h2 id=\"title-{provider}\" tabindex=\"-1\">{name}</h2>\
         <p class=\"status status-{class}\"><span aria-hidden=\"true\" class=\"dot\"></span>{label}</p>\
         {explanation}{pending}<dl>{details}</dl><div class=\"actions\">{actions}</div></li>"
    )
}

fn device_prompt(device: &DeviceAuthorization) -> String {
    // the provider chose these URLs: link only to web pages, never to a script
    let web = |uri: &str| uri.starts_with("https://") || uri.starts_with("http://");
    let link = device
        .verification_uri_complete
        .as_deref()
        .filter(|uri| web(uri))
        .or(Some(device.verification_uri.as_str()).filter(|uri| web(uri)));
    let open = match link {
        Some(href) => format!(
            "<a href=\"{}\" target=\"_blank\" rel=\"noopener\">{}<span class=\"visually-hidden\"> (opens in a new tab)</span></a>",
            escape(href),
            escape(&device.verification_uri)
        ),
        None => format!("<code>{}</code>", escape(&device.verification_uri)),
    };
    format!(
        "<div class=\"device\"><p>Waiting for you to approve. Open {open} and enter the code</p>\
         <p class=\"user-code\">Code: <code>{code}</code></p>\
         <p class=\"hint\">This card updates by itself once you approve; the code works until {until}.</p></div>",
        code = escape(&device.user_code),
        until = time(device.expires_at),
    )
}

fn expired_text(reason: ExpiredReason, detail: &str) -> String {
    if !detail.is_empty() {
        return detail.to_owned();
    }
    match reason {
        ExpiredReason::Revoked => "Access was revoked at the provider.",
        ExpiredReason::RefreshRejected => "The provider no longer accepts the stored access.",
        ExpiredReason::NoRefreshToken => {
            "The access ran out and the provider gave no way to renew it."
        }
        ExpiredReason::UpstreamUnavailable => "The provider could not be reached to renew access.",
    }
    .to_owned()
}

fn scopes(scopes: &[String]) -> String {
    if scopes.is_empty() {
        return "nothing in particular".to_owned();
    }
    format!(
        "<ul class=\"scopes\">{}</ul>",
        scopes
            .iter()
            .map(|s| format!("<li><code>{}</code></li>", escape(s)))
            .collect::<String>()
    )
}

fn time(at: DateTime<Utc>) -> String {
    format!(
        "<time datetime=\"{}\">{}</time>",
        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        at.format("%-d %b %Y, %H:%M UTC")
    )
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
        assert!(account_nav(&visitor()).contains("Alice &lt;script&gt;"));
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
        );
        assert!(html.contains("WDJB-MJHT"));
        assert!(html.contains("href=\"https://idp.example.com/device?user_code=WDJB-MJHT\""));
        assert!(!html.contains("secret-device-code"));
        assert!(!html.contains("id=\"connect-github\""));
    }
}
