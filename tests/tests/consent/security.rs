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

/// With production JWT verification (an explicit secret and issuer here) and no
/// browser sign-in, a consent link cannot be bound to the person who asked for it, so
/// it is refused with a page that says what is missing, and nothing is bound.
#[tokio::test]
async fn without_sign_in_production_consent_links_say_what_is_missing() {
    bounded(TEST_LIMIT, async {
        let mut world = World::start(Options {
            development: false,
            ..Options::default()
        })
        .await;
        let start = world.connect("alice").await;
        let browser = world.browser();
        let page = browser.get(&start.authorize_url).await.unwrap();
        assert_eq!(page.status, 503, "{}", html_text(&page.body));
        assert!(html_text(&page.body).contains("ADP_OIDC_ISSUER"));
        let pressed = browser.post(&start.authorize_url).await.unwrap();
        assert_eq!(pressed.status, 503, "{}", html_text(&pressed.body));
        assert!(pressed.location.is_none(), "never sent to the provider");
        assert!(browser.consent_cookie(&start.authorize_url).is_none());
        let said = world.cps[0].drain_log();
        assert!(
            said.iter()
                .any(|line| line.contains("browser consent is off")
                    && line.contains("ADP_OIDC_ISSUER")),
            "the control plane said at start what is missing"
        );
        let card = world.card("alice").await;
        assert_eq!(status(&card), ConnectionStatus::NotConnected, "{card:?}");
    })
    .await;
}

/// In development mode the page warns that whoever opens it connects, names the
/// account it connects, and its Continue needs the page's CSRF token from our origin.
#[tokio::test]
async fn development_consent_page_warns_and_needs_its_own_form() {
    bounded(TEST_LIMIT, async {
        let world = World::start(Options::default()).await;
        let start = world.connect("alice").await;
        let browser = world.browser();
        let page = browser.get(&start.authorize_url).await.unwrap();
        assert_eq!(page.status, 200);
        let text = html_text(&page.body);
        assert!(text.contains("Development mode"), "{text}");
        assert!(text.contains("belong to the ADP account alice"), "{text}");
        let token = adp_e2e::consent::form_csrf(&page.body).unwrap().to_owned();

        // an auto-submitted form from elsewhere carries no token, or a foreign origin
        let forged = browser
            .post_form(&start.authorize_url, &[], &[])
            .await
            .unwrap();
        assert_eq!(forged.status, 403, "{}", html_text(&forged.body));
        let cross_site = browser
            .post_form(
                &start.authorize_url,
                &[("csrf", &token)],
                &[("origin", "http://127.0.0.1:9")],
            )
            .await
            .unwrap();
        assert_eq!(cross_site.status, 403, "{}", html_text(&cross_site.body));
        // another browser's token does not fit this browser's cookie
        let other = world.browser();
        other.get(&start.authorize_url).await.unwrap();
        let swapped = other
            .post_form(&start.authorize_url, &[("csrf", &token)], &[])
            .await
            .unwrap();
        assert_eq!(swapped.status, 403, "{}", html_text(&swapped.body));
        assert!(browser.consent_cookie(&start.authorize_url).is_none());
        assert!(other.consent_cookie(&start.authorize_url).is_none());

        // the real form still goes on to the provider
        browser
            .connect(&start.authorize_url, "alice")
            .await
            .unwrap();
        assert_eq!(
            status(&world.card("alice").await),
            ConnectionStatus::Connected
        );
    })
    .await;
}

/// Moving a provider's token endpoint (or client, or issuer) ends every connection
/// and discards its tokens: they belong to the old client and authorization server,
/// and must never be sent to the new endpoints, not even to revoke them.
#[tokio::test]
async fn moving_a_providers_token_endpoint_ends_its_connections() {
    bounded(TEST_LIMIT, async {
        let world = World::start(Options::default()).await;
        world.consent(&world.browser(), "alice").await;
        world.bearer("alice").await;
        let moved_to = format!("{}?moved=1", world.auth_server.endpoints().token_endpoint);
        let request = UpdateOAuthProviderRequest {
            oauth_provider: Some(OAuthProvider {
                name: PROVIDER.into(),
                token_url: moved_to.clone(),
                ..Default::default()
            }),
            update_mask: Some(mask(&["token_url"])),
            validate_only: false,
        };
        let response =
            adp_api::v1::o_auth_provider_service_client::OAuthProviderServiceClient::new(
                world.channel(0),
            )
            .update_o_auth_provider(adp_e2e::authed(request, &world.admin))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(response.connections_requiring_consent, 1);
        assert_eq!(response.oauth_provider.unwrap().token_url, moved_to);

        let card = world.card("alice").await;
        assert_eq!(status(&card), ConnectionStatus::Expired, "{card:?}");
        assert!(card.status_reason.contains("token_url"), "{card:?}");
        let error = world.credential_error("alice").await;
        assert_eq!(error.reason, "OAUTH_TOKEN_EXPIRED", "{error:?}");
        let revoked = world
            .connections(0)
            .revoke_connection(adp_e2e::authed(
                RevokeConnectionRequest {
                    provider_name: PROVIDER.into(),
                },
                &world.user("alice"),
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(!revoked.upstream_revoked);
        assert!(
            revoked.upstream_revocation_error.contains("discarded"),
            "{revoked:?}"
        );
    })
    .await;
}
