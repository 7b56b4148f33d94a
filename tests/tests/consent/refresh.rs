//! Tokens that stay fresh: refresh ahead of expiry with rotation, one refresh for many
//! concurrent callers (on one replica and across two sharing PostgreSQL), a grant the
//! provider revoked, and a provider that fails or hangs during the refresh window.

use std::time::{Duration, Instant};

use adp_api::v1::token_service_client::TokenServiceClient;
use adp_api::v1::*;
use adp_e2e::consent::bounded;
use adp_e2e::oidc::{REFRESH_TOKEN_GRANT, TokenFault};
use tonic::Code;

use crate::support::*;

/// `n` concurrent `GetUpstreamCredential` calls for `subject`, spread round-robin over
/// `replicas`; the header values, in order.
async fn concurrent_credentials(
    world: &World,
    replicas: &[usize],
    subject: &str,
    n: usize,
) -> Vec<Result<String, tonic::Status>> {
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(n));
    let mut tasks = Vec::new();
    for i in 0..n {
        let channel = world.channel(replicas[i % replicas.len()]);
        let (user, proxy) = (world.user(subject), world.proxy.clone());
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            TokenServiceClient::new(channel)
                .get_upstream_credential(credential_request(SERVER, Some(&user), Some(&proxy)))
                .await
                .map(|response| response.into_inner().header_value)
        }));
    }
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.expect("credential task"));
    }
    out
}

fn assert_one_new_token(results: &[Result<String, tonic::Status>], old: &str) {
    let values: Vec<&String> = results
        .iter()
        .map(|r| {
            r.as_ref().unwrap_or_else(|s| {
                panic!("a concurrent call failed: {:?}: {}", s.code(), s.message())
            })
        })
        .collect();
    assert!(
        values.iter().all(|v| *v == values[0]),
        "every caller gets the same refreshed token"
    );
    assert_ne!(values[0], old, "the token was refreshed");
}

#[tokio::test]
async fn refresh_ahead_of_expiry_stores_the_rotated_refresh_token() {
    bounded(TEST_LIMIT, async {
        let mut world = World::start(Options::default().ttl(6).refresh_ahead(3)).await;
        world.consent(&world.browser(), "alice").await;
        let first = world.bearer("alice").await;
        assert_eq!(world.stats().await.count(REFRESH_TOKEN_GRANT), 0);

        world
            .sleep_until_expiry_within("alice", Duration::from_millis(2500))
            .await;
        let second = world.bearer("alice").await;
        assert_ne!(second, first, "refreshed inside the window");
        assert_eq!(world.stats().await.count(REFRESH_TOKEN_GRANT), 1);
        assert_eq!(
            world.bearer("alice").await,
            second,
            "fresh tokens are reused"
        );
        assert_eq!(world.stats().await.count(REFRESH_TOKEN_GRANT), 1);

        // the provider rotated the refresh token; reusing the old one would be answered
        // with invalid_grant and the whole grant revoked, so this proves the new one was kept
        world
            .sleep_until_expiry_within("alice", Duration::from_millis(2500))
            .await;
        let third = world.bearer("alice").await;
        assert_ne!(third, second);
        let stats = world.stats().await;
        assert_eq!(stats.count(REFRESH_TOKEN_GRANT), 2, "{stats:?}");
        let card = world.card("alice").await;
        assert_eq!(status(&card), ConnectionStatus::Connected, "{card:?}");
        world.assert_log_free_of(&[&first, &second, &third]);
    })
    .await;
}

#[tokio::test]
async fn concurrent_calls_at_expiry_share_one_refresh() {
    bounded(TEST_LIMIT, async {
        let world = World::start(Options::default().ttl(6).refresh_ahead(2)).await;
        world.consent(&world.browser(), "alice").await;
        let old = world.bearer("alice").await;

        world
            .sleep_until_expiry_within("alice", Duration::from_secs(1))
            .await;
        let results = concurrent_credentials(&world, &[0], "alice", 20).await;
        assert_one_new_token(&results, &old);
        let stats = world.stats().await;
        assert_eq!(stats.count(REFRESH_TOKEN_GRANT), 1, "{stats:?}");
    })
    .await;
}

#[tokio::test]
async fn a_grant_revoked_upstream_expires_the_connection_until_consent() {
    bounded(TEST_LIMIT, async {
        let world = World::start(Options::default().ttl(6).refresh_ahead(3)).await;
        let browser = world.browser();
        world.consent(&browser, "alice").await;
        let before = world.bearer("alice").await;
        assert_eq!(world.auth_server.revoke_grants("alice").await, 1);

        world
            .sleep_until_expiry_within("alice", Duration::from_millis(2500))
            .await;
        let error = world.credential_error("alice").await;
        assert_eq!(error.code, Code::FailedPrecondition, "{error:?}");
        assert_eq!(error.reason, "OAUTH_TOKEN_EXPIRED");
        assert_eq!(error.meta("expiredReason"), "REFRESH_REJECTED");
        let typed: OAuthTokenExpired = error
            .detail("OAuthTokenExpired")
            .expect("typed OAuthTokenExpired detail");
        assert_eq!(typed.reason, TokenExpiredReason::RefreshRejected as i32);
        assert_eq!(typed.provider_name, PROVIDER);
        assert!(
            typed
                .authorize_url
                .starts_with(&format!("{}/oauth/v1/connect/", world.cps[0].http_url)),
            "{typed:?}"
        );
        let help: Vec<&str> = error.help_links.iter().map(|(_, u)| u.as_str()).collect();
        assert_eq!(help, [typed.authorize_url.as_str()]);
        let card = world.card("alice").await;
        assert_eq!(status(&card), ConnectionStatus::Expired, "{card:?}");
        assert!(!card.status_reason.is_empty());
        // the answer stays the same; no further refresh is attempted
        assert_eq!(
            world.credential_error("alice").await.reason,
            "OAUTH_TOKEN_EXPIRED"
        );
        assert_eq!(world.stats().await.count(REFRESH_TOKEN_GRANT), 1);

        browser
            .connect(&typed.authorize_url, "alice")
            .await
            .expect("consent again");
        let card = world.card("alice").await;
        assert_eq!(status(&card), ConnectionStatus::Connected, "{card:?}");
        assert_ne!(world.bearer("alice").await, before);
    })
    .await;
}

#[tokio::test]
async fn an_unavailable_provider_keeps_the_still_valid_token() {
    bounded(TEST_LIMIT, async {
        // refresh-ahead is at most half the token's life: 30 s of a 60 s token
        let options = Options::default()
            .ttl(60)
            .refresh_ahead(50)
            .env("ADP_OAUTH_TIMEOUT_SECS", 1);
        let world = World::start(options).await;
        world.consent(&world.browser(), "alice").await;
        let old = world.bearer("alice").await;
        world
            .sleep_until_expiry_within("alice", Duration::from_secs(29))
            .await;

        // 503 on every token request: the refresh fails, the old token is still good
        world
            .auth_server
            .set_token_fault(TokenFault::status(503))
            .await;
        assert_eq!(world.bearer("alice").await, old);
        let stats = world.stats().await;
        assert!(stats.faults_injected >= 1, "{stats:?}");
        let card = world.card("alice").await;
        assert_eq!(status(&card), ConnectionStatus::Connected, "{card:?}");

        // a token endpoint that hangs past ADP_OAUTH_TIMEOUT_SECS (and would then fail:
        // a hang that ends in success would rotate the refresh token behind our back)
        let faults_before = stats.faults_injected;
        let hang = TokenFault {
            status: Some(503),
            ..TokenFault::hang(Duration::from_secs(3))
        };
        world.auth_server.set_token_fault(hang).await;
        let started = Instant::now();
        assert_eq!(world.bearer("alice").await, old);
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "the call waited for the timeout"
        );
        let stats = world.stats().await;
        assert!(stats.faults_injected > faults_before, "{stats:?}");
        let card = world.card("alice").await;
        assert_eq!(status(&card), ConnectionStatus::Connected, "{card:?}");

        world.auth_server.clear_token_fault().await;
        let refreshes_before = world.stats().await.count(REFRESH_TOKEN_GRANT);
        let fresh = world.bearer("alice").await;
        assert_ne!(fresh, old, "the next call after recovery refreshes");
        assert_eq!(
            world.stats().await.count(REFRESH_TOKEN_GRANT),
            refreshes_before + 1
        );
        let card = world.card("alice").await;
        assert_eq!(status(&card), ConnectionStatus::Connected, "{card:?}");
    })
    .await;
}

#[tokio::test]
#[cfg_attr(
    not(adp_postgres),
    ignore = "set ADP_TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn postgres_replicas_share_one_refresh() {
    bounded(TEST_LIMIT, async {
        let url = adp_e2e::pg::fresh_database().await;
        let options = Options::default().ttl(8).refresh_ahead(2);
        let world = World::start_replicas(options, 2, &[("ADP_DATABASE_URL", &url)]).await;
        world.consent(&world.browser(), "alice").await;
        let old = world.bearer("alice").await;
        let via_b = world.credential_via(1, "alice").await.expect("replica b");
        assert_eq!(
            via_b.header_value, old,
            "replica b opens what replica a sealed"
        );

        // within a second of expiry, so no replica may fall back to the old token
        world
            .sleep_until_expiry_within("alice", Duration::from_secs(1))
            .await;
        let results = concurrent_credentials(&world, &[0, 1], "alice", 20).await;
        assert_one_new_token(&results, &old);
        let stats = world.stats().await;
        assert_eq!(stats.count(REFRESH_TOKEN_GRANT), 1, "{stats:?}");
    })
    .await;
}

/// A provider slower than the old fixed 30 s lease: the lease now outlives the slowest
/// refresh the client can make, so the second replica waits instead of refreshing with
/// the refresh token the first one already spent.
#[tokio::test]
#[cfg_attr(
    not(adp_postgres),
    ignore = "set ADP_TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn postgres_replicas_share_one_refresh_slower_than_the_old_lease() {
    bounded(TEST_LIMIT, async {
        let url = adp_e2e::pg::fresh_database().await;
        let options = Options::default()
            .ttl(8)
            .refresh_ahead(2)
            .env("ADP_OAUTH_TIMEOUT_SECS", 45);
        let world = World::start_replicas(options, 2, &[("ADP_DATABASE_URL", &url)]).await;
        world.consent(&world.browser(), "alice").await;
        let old = world.bearer("alice").await;
        world
            .sleep_until_expiry_within("alice", Duration::from_secs(1))
            .await;
        world
            .auth_server
            .set_token_fault(TokenFault::late_answer(Duration::from_secs(35)).times(1))
            .await;
        let started = Instant::now();
        let results = concurrent_credentials(&world, &[0, 1], "alice", 20).await;
        assert!(
            started.elapsed() >= Duration::from_secs(35),
            "everyone waited"
        );
        assert_one_new_token(&results, &old);
        let stats = world.stats().await;
        assert_eq!(stats.count(REFRESH_TOKEN_GRANT), 1, "{stats:?}");
        assert_eq!(stats.invalid_grant, 0, "{stats:?}");
    })
    .await;
}

/// Both replicas sweep for idle connections; each is refreshed by one of them.
#[tokio::test]
#[cfg_attr(
    not(adp_postgres),
    ignore = "set ADP_TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn postgres_replicas_refresh_idle_connections_once_between_them() {
    bounded(TEST_LIMIT, async {
        let url = adp_e2e::pg::fresh_database().await;
        let options = Options::default()
            .ttl(600)
            .env("ADP_BACKGROUND_REFRESH", "true")
            .env("ADP_BACKGROUND_REFRESH_IDLE_SECS", 3);
        let world = World::start_replicas(options, 2, &[("ADP_DATABASE_URL", &url)]).await;
        for subject in ["alice", "bob", "carol"] {
            world.consent(&world.browser(), subject).await;
        }
        let before = world.stats().await.count(REFRESH_TOKEN_GRANT);
        tokio::time::sleep(Duration::from_secs(10)).await;
        let stats = world.stats().await;
        let refreshes = stats.count(REFRESH_TOKEN_GRANT) - before;
        // 10 s at one refresh per 3 s idle is at most 3 each, 9 in all; two replicas
        // both refreshing a row would make about twice that (and reuse, counted below)
        assert!((3..=10).contains(&refreshes), "{stats:?}");
        assert_eq!(stats.invalid_grant, 0, "refresh-token reuse: {stats:?}");
        for subject in ["alice", "bob", "carol"] {
            let card = world.card(subject).await;
            assert_eq!(status(&card), ConnectionStatus::Connected, "{card:?}");
        }
    })
    .await;
}
