//! The Connections page end to end: the real control plane, the real oidc-provider as
//! both the organization's identity provider (sign-in) and an upstream provider, and
//! Debian's Chromium driven by playwright-core for what a person does in a browser.
//! Screenshots of each state land in `target/connections-page/`.
//!
//! Build the binaries first: `cargo build --workspace --bins`.
#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
#[path = "consent/support.rs"]
mod support;

use std::time::Duration;

use adp_api::v1::mcp_server::Auth;
use adp_api::v1::{ConnectionStatus, GrantType, ListConnectionsRequest, McpServer, UserOAuthAuth};
use adp_e2e::chromium::{PageScript, artifact_dir};
use adp_e2e::consent::{bounded, html_text};
use adp_e2e::{ControlPlaneProcess, authed};
use support::*;

async fn cards(world: &World, token: &str) -> Vec<adp_api::v1::Connection> {
    world
        .connections(0)
        .list_connections(authed(ListConnectionsRequest {}, token))
        .await
        .unwrap()
        .into_inner()
        .connections
}

#[tokio::test]
async fn a_person_signs_in_connects_and_revokes_in_chromium() {
    bounded(TEST_LIMIT, async {
        let world = World::start(Options::default().with_sign_in()).await;
        let screenshots = artifact_dir("connections-page");
        let mut run = PageScript::start(
            "connections-page.mjs",
            &[
                ("ADP_URL", &world.cps[0].http_url),
                ("AS_ISSUER", world.auth_server.issuer()),
                ("SCREENSHOT_DIR", screenshots.to_str().unwrap()),
            ],
        )
        .await
        .unwrap();
        let mut events = Vec::new();
        while let Some(event) = run.next_event().await.unwrap() {
            if event["checkpoint"] == "alice-connected" {
                // the browser's (issuer, subject) is the one an agent's JWT carries:
                // what alice connected on the page is what her calls use
                let same_person = cards(&world, &world.user("alice")).await;
                assert_eq!(same_person.len(), 1);
                assert_eq!(same_person[0].status(), ConnectionStatus::Connected);
                assert!(same_person[0].granted_scopes.contains(&"repo".to_owned()));
                let someone_else = cards(&world, &world.user("bob")).await;
                assert_eq!(someone_else[0].status(), ConnectionStatus::NotConnected);
                // an admin now asks for more: the open page must show it by itself
                let patch = McpServer {
                    name: SERVER.into(),
                    auth: Some(Auth::UserOauth(UserOAuthAuth {
                        provider_name: PROVIDER.into(),
                        required_scopes: vec!["repo".into(), "read:org".into()],
                        token_injection: None,
                    })),
                    ..Default::default()
                };
                world.update_server(patch, &["user_oauth"]).await.unwrap();
                run.resume().await.unwrap();
            }
            events.push(event);
        }
        let stderr = run.stderr_text();
        run.finish().await.unwrap_or_else(|error| {
            panic!("{error}\nevents: {events:?}\nscreenshots in {screenshots:?}")
        });
        assert!(
            events.iter().any(|e| e["done"] == true),
            "{events:?}\n{stderr}"
        );
        for name in [
            "01-signed-in-not-connected",
            "01-phone-width",
            "02-connected",
            "03-needs-more-access",
            "03-more-access-granted",
            "04-forged-post-refused",
            "05-second-user-not-connected",
            "06-confirm-revoke",
            "07-revoked",
            "08-signed-out",
        ] {
            let path = screenshots.join(format!("{name}.png"));
            assert!(
                std::fs::metadata(&path).is_ok_and(|m| m.len() > 1000),
                "{path:?}"
            );
        }
        let after = cards(&world, &world.user("alice")).await;
        assert_eq!(after[0].status(), ConnectionStatus::NotConnected);
    })
    .await;
}

/// The CSRF token of the first form on a page.
fn csrf(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    page[at..at + 64].to_owned()
}

#[tokio::test]
async fn device_flow_cards_show_the_code_and_update_live() {
    bounded(TEST_LIMIT, async {
        let options = Options {
            device_poll_interval: Some(Duration::from_secs(1)),
            ..Options::default().with_sign_in()
        }
        .grants(&[GrantType::DeviceCode]);
        let world = World::start(options).await;
        let base = world.cps[0].http_url.clone();
        let browser = world.browser();
        let page = browser.sign_in(&base, "carol").await.unwrap();
        assert!(page.body.contains("data-status=\"not-connected\""));

        let connect = browser
            .post_form(
                &format!("{base}/connections/{PROVIDER}/connect"),
                &[("csrf", &csrf(&page.body))],
                &[],
            )
            .await
            .unwrap();
        assert_eq!(connect.status, 303, "{}", html_text(&connect.body));
        let page = browser.get(&format!("{base}/connections")).await.unwrap();
        let text = html_text(&page.body);
        assert!(text.contains("enter the code"), "{text}");
        let link_at = page.body.find("href=\"http").unwrap() + 6;
        let link_end = page.body[link_at..].find('"').unwrap() + link_at;
        let verification = page.body[link_at..link_end].replace("&amp;", "&");
        assert!(
            verification.starts_with(world.auth_server.issuer()),
            "{verification}"
        );
        assert!(
            !page.body.contains(&format!("id=\"connect-{PROVIDER}\"")),
            "no second Connect while a code is pending"
        );

        // the page's event stream says when the card changes
        let session = browser.cookie(&base, "adp_session").unwrap();
        let mut events = reqwest::Client::new()
            .get(format!("{base}/connections/events"))
            .header("cookie", format!("adp_session={session}"))
            .send()
            .await
            .unwrap();
        assert_eq!(events.status(), 200);
        world
            .auth_server
            .browser()
            .approve_device(&verification, "carol")
            .await
            .unwrap();
        let announced = tokio::time::timeout(Duration::from_secs(30), async {
            let mut seen = String::new();
            while let Some(chunk) = events.chunk().await.unwrap() {
                seen.push_str(&String::from_utf8_lossy(&chunk));
                if seen.contains("event: change") {
                    return seen;
                }
            }
            panic!("event stream ended: {seen}");
        })
        .await
        .expect("a change event within 30 s");
        assert!(announced.contains("data: cards"), "{announced}");
        let page = browser.get(&format!("{base}/connections")).await.unwrap();
        assert!(
            page.body.contains("data-status=\"connected\""),
            "{}",
            html_text(&page.body)
        );
        let carol = cards(&world, &world.user("carol")).await;
        assert_eq!(carol[0].status(), ConnectionStatus::Connected);
    })
    .await;
}

#[tokio::test]
async fn forms_and_sign_in_refuse_what_this_browser_did_not_start() {
    bounded(TEST_LIMIT, async {
        let world = World::start(Options::default().with_sign_in()).await;
        let base = world.cps[0].http_url.clone();
        let browser = world.browser();
        let page = browser.sign_in(&base, "dave").await.unwrap();
        let token = csrf(&page.body);
        let connect = format!("{base}/connections/{PROVIDER}/connect");

        // a valid token from another site's page is still refused
        let cross_site = browser
            .post_form(
                &connect,
                &[("csrf", &token)],
                &[("origin", "http://127.0.0.1:9")],
            )
            .await
            .unwrap();
        assert_eq!(cross_site.status, 403, "{}", html_text(&cross_site.body));
        // and so is another person's token
        let eve = world.browser();
        let eve_page = eve.sign_in(&base, "eve").await.unwrap();
        let swapped = browser
            .post_form(&connect, &[("csrf", &csrf(&eve_page.body))], &[])
            .await
            .unwrap();
        assert_eq!(swapped.status, 403);
        assert!(html_text(&swapped.body).contains("CSRF"));

        // connecting from the page comes back to the page, card updated
        let to_provider = browser
            .post_form(&connect, &[("csrf", &token)], &[])
            .await
            .unwrap();
        assert_eq!(to_provider.status, 303);
        let authorize = to_provider.location.unwrap();
        assert!(authorize.as_str().starts_with(world.auth_server.issuer()));
        let callback = browser
            .approve_at_provider(&authorize, "dave")
            .await
            .unwrap();
        let back = browser.get(callback.as_str()).await.unwrap();
        assert_eq!(back.status, 303);
        assert_eq!(
            back.location.unwrap().as_str(),
            format!("{base}/connections#card-{PROVIDER}")
        );
        let page = browser.get(&format!("{base}/connections")).await.unwrap();
        assert!(html_text(&page.body).contains("account is connected"));
        assert!(page.body.contains("data-status=\"connected\""));
        // the notice shows once
        let again = browser.get(&format!("{base}/connections")).await.unwrap();
        assert!(!html_text(&again.body).contains("account is connected"));

        // a sign-in callback this browser did not start signs nobody in
        let forged = world
            .browser()
            .get(&format!(
                "{base}/connections/sign-in/callback?state=abc&code=xyz"
            ))
            .await
            .unwrap();
        assert_eq!(forged.status, 400);
        assert!(html_text(&forged.body).contains("another browser"));
        // nor signs this browser out when another site links it to one
        let linked = browser
            .get(&format!(
                "{base}/connections/sign-in/callback?state=abc&code=xyz"
            ))
            .await
            .unwrap();
        assert_eq!(linked.status, 400);
        let still = browser.get(&format!("{base}/connections")).await.unwrap();
        assert_eq!(still.status, 200, "a forged callback signed the person out");

        // signed out, the page asks to sign in again and the event stream is closed
        let sign_out = browser
            .post_form(
                &format!("{base}/connections/sign-out"),
                &[("csrf", &token)],
                &[],
            )
            .await
            .unwrap();
        assert_eq!(sign_out.status, 303);
        let after = browser.get(&format!("{base}/connections")).await.unwrap();
        assert_eq!(after.status, 303);
        // a deep link comes back to where it pointed once signed in
        let deep = browser
            .get(&format!("{base}/connections/{PROVIDER}/revoke"))
            .await
            .unwrap();
        assert_eq!(deep.status, 303);
        assert_eq!(
            deep.location.unwrap().as_str(),
            format!("{base}/connections/sign-in?return_to=%2Fconnections%2F{PROVIDER}%2Frevoke")
        );
        let events = browser
            .get(&format!("{base}/connections/events"))
            .await
            .unwrap();
        assert_eq!(events.status, 401);
        // dave's connection outlives his browser session
        let dave = cards(&world, &world.user("dave")).await;
        assert_eq!(dave[0].status(), ConnectionStatus::Connected);
    })
    .await;
}

#[tokio::test]
async fn without_sign_in_configured_the_page_says_what_to_set() {
    bounded(TEST_LIMIT, async {
        let cp = ControlPlaneProcess::start().await;
        let page = reqwest::get(format!("{}/connections", cp.http_url))
            .await
            .unwrap();
        assert_eq!(page.status(), 503);
        let text = page.text().await.unwrap();
        assert!(text.contains("ADP_OIDC_ISSUER"), "{text}");
    })
    .await;
}

/// The attack a consent link invites: alice's agent gets a link, and someone else
/// opens it. In Chromium: bob (signed in) is refused and nothing is bound; alice with
/// no session signs in first and then connects her own account; a cross-site
/// auto-submitting form to one of her links is refused.
#[tokio::test]
async fn consent_links_connect_only_the_person_who_asked() {
    bounded(TEST_LIMIT, async {
        let world = World::start(Options::default().with_sign_in()).await;
        let screenshots = artifact_dir("consent-link");
        let link = world.connect("alice").await.authorize_url;
        let forged_link = world.connect("alice").await.authorize_url;
        let mut run = PageScript::start(
            "consent-link.mjs",
            &[
                ("ADP_URL", &world.cps[0].http_url),
                ("AS_ISSUER", world.auth_server.issuer()),
                ("LINK", &link),
                ("FORGED_LINK", &forged_link),
                ("SCREENSHOT_DIR", screenshots.to_str().unwrap()),
            ],
        )
        .await
        .unwrap();
        let mut events = Vec::new();
        while let Some(event) = run.next_event().await.unwrap() {
            match event["checkpoint"].as_str() {
                Some("bob-refused") => {
                    for user in ["alice", "bob"] {
                        let card = &cards(&world, &world.user(user)).await[0];
                        assert_eq!(card.status(), ConnectionStatus::NotConnected, "{user}");
                    }
                    assert_eq!(
                        world
                            .stats()
                            .await
                            .count(adp_e2e::oidc::AUTHORIZATION_CODE_GRANT),
                        1,
                        "only bob's own sign-in reached the token endpoint"
                    );
                    run.resume().await.unwrap();
                }
                Some("alice-connected") => {
                    let alice = &cards(&world, &world.user("alice")).await[0];
                    assert_eq!(alice.status(), ConnectionStatus::Connected);
                    let bob = &cards(&world, &world.user("bob")).await[0];
                    assert_eq!(bob.status(), ConnectionStatus::NotConnected);
                    run.resume().await.unwrap();
                }
                _ => {}
            }
            events.push(event);
        }
        let stderr = run.stderr_text();
        run.finish().await.unwrap_or_else(|error| {
            panic!("{error}\nevents: {events:?}\n{stderr}\nscreenshots in {screenshots:?}")
        });
        assert!(
            events.iter().any(|e| e["done"] == true),
            "{events:?}\n{stderr}"
        );
        // the forged form bound nothing: the link still opens for alice
        let browser = world.browser();
        let page = browser.get(&forged_link).await.unwrap();
        assert_eq!(
            page.status, 303,
            "signed out: sent to sign in, the link still live"
        );
        for name in [
            "01-other-account-refused",
            "02-signed-in-then-consent-page",
            "03-connected",
            "04-cross-site-form-refused",
        ] {
            let path = screenshots.join(format!("{name}.png"));
            assert!(
                std::fs::metadata(&path).is_ok_and(|m| m.len() > 1000),
                "{path:?}"
            );
        }
    })
    .await;
}

/// Cookie planting: bob starts consent for his own account, plants his attempt's
/// consent cookie in alice's browser (a sibling subdomain could) and gets her to
/// approve at the provider. The callback in alice's signed-in browser is refused:
/// the attempt is for bob, so alice's upstream account is not stored under him.
#[tokio::test]
async fn a_planted_consent_cookie_cannot_finish_someone_elses_attempt() {
    bounded(TEST_LIMIT, async {
        let world = World::start(Options::default().with_sign_in()).await;
        let base = world.cps[0].http_url.clone();
        let bob = world.browser();
        bob.sign_in(&base, "bob").await.unwrap();
        let link = world.connect("bob").await.authorize_url;
        let authorize = bob.open_connect(&link).await.unwrap();
        let planted = bob.consent_cookie(&link).unwrap();

        let alice = world.browser();
        alice.sign_in(&base, "alice").await.unwrap();
        let callback = alice
            .approve_at_provider(&authorize, "alice")
            .await
            .unwrap();
        let session = alice.cookie(&base, "adp_session").unwrap();
        let page = alice
            .get_with_cookie(
                callback.as_str(),
                Some(&format!("adp_session={session}; adp_consent={planted}")),
            )
            .await
            .unwrap();
        assert_eq!(page.status, 403, "{}", html_text(&page.body));
        assert!(html_text(&page.body).contains("another ADP account"));
        for user in ["alice", "bob"] {
            let card = &cards(&world, &world.user(user)).await[0];
            assert_eq!(card.status(), ConnectionStatus::NotConnected, "{user}");
        }
    })
    .await;
}
