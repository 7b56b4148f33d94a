//! The consent callback refuses everything but the one browser finishing its own
//! attempt, and a refusal stores nothing.

use adp_api::v1::*;
use adp_e2e::consent::{bounded, html_text, query_param, with_query_param};
use adp_e2e::oidc::AUTHORIZATION_CODE_GRANT;

use crate::support::*;

fn assert_refused(page: &adp_e2e::consent::Page, what: &str) {
    assert_eq!(page.status, 400, "{what}: {}", html_text(&page.body));
    assert!(
        !page.body.to_lowercase().contains("is connected"),
        "{what}: {}",
        html_text(&page.body)
    );
}

#[tokio::test]
async fn wrong_iss_missing_state_and_replayed_callbacks_are_refused() {
    bounded(TEST_LIMIT, async {
        let world = World::start(Options::default()).await;
        let browser = world.browser();

        // a callback whose iss names another issuer (RFC 9207 mix-up defence)
        let start = world.connect("alice").await;
        let authorize = browser.open_connect(&start.authorize_url).await.unwrap();
        let callback = browser
            .approve_at_provider(&authorize, "alice")
            .await
            .unwrap();
        let forged = with_query_param(&callback, "iss", Some("http://127.0.0.1:9"));
        assert_refused(&browser.get(forged.as_str()).await.unwrap(), "wrong iss");
        let card = world.card("alice").await;
        assert_eq!(status(&card), ConnectionStatus::NotConnected, "{card:?}");
        assert_eq!(world.stats().await.count(AUTHORIZATION_CODE_GRANT), 0);

        // a callback without state
        let start = world.connect("alice").await;
        let authorize = browser.open_connect(&start.authorize_url).await.unwrap();
        let callback = browser
            .approve_at_provider(&authorize, "alice")
            .await
            .unwrap();
        let stateless = with_query_param(&callback, "state", None);
        assert_refused(&browser.get(stateless.as_str()).await.unwrap(), "no state");
        let card = world.card("alice").await;
        assert_eq!(status(&card), ConnectionStatus::NotConnected, "{card:?}");

        // the genuine callback still works, once
        let page = browser.get(callback.as_str()).await.unwrap();
        assert_eq!(page.status, 200, "{}", html_text(&page.body));
        let connected = world.card("alice").await;
        assert_eq!(status(&connected), ConnectionStatus::Connected);
        let token = world.bearer("alice").await;

        assert_refused(&browser.get(callback.as_str()).await.unwrap(), "replay");
        assert_eq!(
            world.card("alice").await,
            connected,
            "unchanged by the replay"
        );
        assert_eq!(world.bearer("alice").await, token);
        assert_eq!(
            world.stats().await.count(AUTHORIZATION_CODE_GRANT),
            1,
            "a replay never reaches the provider"
        );
    })
    .await;
}

#[tokio::test]
async fn a_code_from_an_earlier_attempt_is_refused() {
    bounded(TEST_LIMIT, async {
        let world = World::start(Options::default()).await;
        let browser = world.browser();
        let first = world.connect("alice").await;
        let first_callback = browser
            .connect(&first.authorize_url, "alice")
            .await
            .unwrap();
        let connected = world.card("alice").await;
        assert_eq!(status(&connected), ConnectionStatus::Connected);
        let token = world.bearer("alice").await;

        // attempt 2 in the same browser, finished with attempt 1's code
        let second = world.connect("alice").await;
        let authorize = browser.open_connect(&second.authorize_url).await.unwrap();
        let second_state = query_param(&authorize, "state").expect("state");
        let spliced = with_query_param(&first_callback, "state", Some(&second_state));
        assert_refused(&browser.get(spliced.as_str()).await.unwrap(), "reused code");

        assert_eq!(world.card("alice").await, connected, "connection unchanged");
        assert_eq!(world.bearer("alice").await, token);
    })
    .await;
}

#[tokio::test]
async fn a_callback_from_another_browser_is_refused() {
    bounded(TEST_LIMIT, async {
        let world = World::start(Options::default()).await;
        let (alices, bobs) = (world.browser(), world.browser());

        let alice_start = world.connect("alice").await;
        let authorize = alices
            .open_connect(&alice_start.authorize_url)
            .await
            .unwrap();
        let alice_callback = alices
            .approve_at_provider(&authorize, "alice")
            .await
            .unwrap();

        // bob's browser, holding a consent cookie of its own, presents alice's code
        let bob_start = world.connect("bob").await;
        bobs.open_connect(&bob_start.authorize_url).await.unwrap();
        assert_ne!(
            bobs.consent_cookie(&bob_start.authorize_url),
            alices.consent_cookie(&alice_start.authorize_url)
        );
        let page = bobs.get(alice_callback.as_str()).await.unwrap();
        assert_refused(&page, "another user's browser");
        for user in ["alice", "bob"] {
            let card = world.card(user).await;
            assert_eq!(
                status(&card),
                ConnectionStatus::NotConnected,
                "{user}: {card:?}"
            );
        }
        assert_eq!(world.stats().await.count(AUTHORIZATION_CODE_GRANT), 0);

        // a client with no cookie at all
        let start = world.connect("alice").await;
        let authorize = alices.open_connect(&start.authorize_url).await.unwrap();
        let callback = alices
            .approve_at_provider(&authorize, "alice")
            .await
            .unwrap();
        let cookieless = world.browser();
        assert_refused(
            &cookieless.get(callback.as_str()).await.unwrap(),
            "no cookie",
        );
        let card = world.card("alice").await;
        assert_eq!(status(&card), ConnectionStatus::NotConnected, "{card:?}");
    })
    .await;
}

#[tokio::test]
async fn a_connect_link_opens_once() {
    bounded(TEST_LIMIT, async {
        let world = World::start(Options::default()).await;
        let (first, second) = (world.browser(), world.browser());
        let start = world.connect("alice").await;
        let authorize = first.open_connect(&start.authorize_url).await.unwrap();

        let page = second.get(&start.authorize_url).await.unwrap();
        assert_refused(&page, "a second browser");
        assert!(page.location.is_none(), "no redirect to the provider");
        assert!(second.consent_cookie(&start.authorize_url).is_none());
        let card = world.card("alice").await;
        assert_eq!(status(&card), ConnectionStatus::NotConnected, "{card:?}");

        // the browser that opened it first can still finish
        let callback = first
            .approve_at_provider(&authorize, "alice")
            .await
            .unwrap();
        let page = first.get(callback.as_str()).await.unwrap();
        assert_eq!(page.status, 200, "{}", html_text(&page.body));
        let card = world.card("alice").await;
        assert_eq!(status(&card), ConnectionStatus::Connected, "{card:?}");
    })
    .await;
}
