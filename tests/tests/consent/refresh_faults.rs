//! Refreshes that meet trouble half way (issue 13): the caller gives up while the
//! provider is answering, the provider's answer is lost after it rotated the refresh
//! token, and an operator re-wraps the vault while refreshes run. A rotated refresh
//! token the provider handed out must never be dropped: oidc-provider treats the reuse
//! of a spent one as theft and revokes the whole grant, which `invalid_grant` counts.

use std::time::{Duration, Instant};

use adp_api::v1::token_service_client::TokenServiceClient;
use adp_api::v1::*;
use adp_e2e::consent::bounded;
use adp_e2e::oidc::{REFRESH_TOKEN_GRANT, TokenFault};

use crate::support::*;

/// Refresh-ahead 3 s of 6 s tokens; callers come within 2.5 s of expiry, so they refresh.
fn short_tokens() -> Options {
    Options::default().ttl(6).refresh_ahead(3)
}

/// `GetUpstreamCredential` for `subject` that gives up after `deadline` (the gRPC
/// deadline travels to the server as `grpc-timeout`, which cancels its handler).
async fn credential_within(
    world: &World,
    subject: &str,
    deadline: Duration,
) -> Result<String, tonic::Status> {
    let mut request = credential_request(SERVER, Some(&world.user(subject)), Some(&world.proxy));
    request.set_timeout(deadline);
    TokenServiceClient::new(world.channel(0))
        .get_upstream_credential(request)
        .await
        .map(|response| response.into_inner().header_value)
}

/// A world where alice connected and her token is now within 2.5 s of expiry (inside
/// the 3 s refresh window), with the token she had.
async fn alice_near_expiry(options: Options) -> (World, String) {
    let world = World::start(options).await;
    world.consent(&world.browser(), "alice").await;
    let old = world.bearer("alice").await;
    world
        .sleep_until_expiry_within("alice", Duration::from_millis(2500))
        .await;
    (world, old)
}

/// `GetUpstreamCredential` for `subject` in its own task, with no deadline.
fn spawn_credential(
    world: &World,
    subject: &str,
) -> tokio::task::JoinHandle<Result<String, tonic::Status>> {
    let channel = world.channel(0);
    let request = credential_request(SERVER, Some(&world.user(subject)), Some(&world.proxy));
    tokio::spawn(async move {
        TokenServiceClient::new(channel)
            .get_upstream_credential(request)
            .await
            .map(|response| response.into_inner().header_value)
    })
}

/// Refreshes the provider actually served (faulted requests are counted too).
fn served_refreshes(world_stats: &adp_e2e::oidc::TokenStats) -> u64 {
    world_stats.count(REFRESH_TOKEN_GRANT)
}

#[tokio::test]
async fn a_caller_hanging_up_mid_refresh_keeps_the_rotated_token() {
    bounded(TEST_LIMIT, async {
        let (world, old) = alice_near_expiry(short_tokens()).await;

        // the provider rotates the refresh token at once and answers 3 s later; the
        // caller's deadline is 0.5 s
        world
            .auth_server
            .set_token_fault(TokenFault::late_answer(Duration::from_secs(3)).times(1))
            .await;
        let started = Instant::now();
        let gave_up = credential_within(&world, "alice", Duration::from_millis(500)).await;
        assert!(gave_up.is_err(), "{gave_up:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the caller left early"
        );

        // the refresh went on without its caller and stored what the provider sent
        tokio::time::sleep(Duration::from_secs(3)).await;
        let fresh = world.bearer("alice").await;
        assert_ne!(fresh, old);
        let stats = world.stats().await;
        assert_eq!(served_refreshes(&stats), 1, "no second refresh: {stats:?}");
        assert_eq!(stats.invalid_grant, 0, "{stats:?}");

        // and the stored refresh token is the rotated one: the next refresh works
        world
            .sleep_until_expiry_within("alice", Duration::from_millis(2500))
            .await;
        assert_ne!(world.bearer("alice").await, fresh);
        let stats = world.stats().await;
        assert_eq!(served_refreshes(&stats), 2, "{stats:?}");
        assert_eq!(stats.invalid_grant, 0, "refresh-token reuse: {stats:?}");
        let card = world.card("alice").await;
        assert_eq!(status(&card), ConnectionStatus::Connected, "{card:?}");
    })
    .await;
}

#[tokio::test]
async fn a_lost_refresh_answer_is_survived_where_the_provider_allows_it() {
    bounded(TEST_LIMIT, async {
        // without rotation the refresh token the provider answered for stays valid
        let options = Options {
            rotate_refresh_tokens: false,
            ..short_tokens()
        };
        let world = World::start(options).await;
        world.consent(&world.browser(), "alice").await;
        let old = world.bearer("alice").await;
        world
            .sleep_until_expiry_within("alice", Duration::from_millis(2500))
            .await;

        world
            .auth_server
            .set_token_fault(TokenFault::lost_answer().times(1))
            .await;
        let fresh = world.bearer("alice").await;
        assert_ne!(fresh, old, "the retry got new tokens");
        let stats = world.stats().await;
        assert_eq!(stats.faults_injected, 1, "{stats:?}");
        assert_eq!(
            served_refreshes(&stats),
            2,
            "the lost one and its retry: {stats:?}"
        );
        assert_eq!(stats.invalid_grant, 0, "{stats:?}");
        let card = world.card("alice").await;
        assert_eq!(status(&card), ConnectionStatus::Connected, "{card:?}");
    })
    .await;
}

#[tokio::test]
async fn a_lost_refresh_answer_ends_the_connection_clearly_where_the_provider_detects_reuse() {
    bounded(TEST_LIMIT, async {
        let world = World::start(short_tokens()).await;
        let browser = world.browser();
        world.consent(&browser, "alice").await;
        world
            .sleep_until_expiry_within("alice", Duration::from_millis(2500))
            .await;

        // the rotated refresh token is lost with the answer; the retry presents the
        // spent one, and the provider revokes the grant
        world
            .auth_server
            .set_token_fault(TokenFault::lost_answer().times(1))
            .await;
        let error = world.credential_error("alice").await;
        assert_eq!(error.reason, "OAUTH_TOKEN_EXPIRED", "{error:?}");
        assert_eq!(error.meta("expiredReason"), "REFRESH_REJECTED");
        let stats = world.stats().await;
        assert_eq!(stats.invalid_grant, 1, "{stats:?}");
        let card = world.card("alice").await;
        assert_eq!(status(&card), ConnectionStatus::Expired, "{card:?}");
        assert!(
            card.status_reason.contains("invalid_grant") && card.status_reason.contains("lost"),
            "the reason names both causes: {card:?}"
        );

        // the user's way back is the link in the error
        let typed: OAuthTokenExpired = error.detail("OAuthTokenExpired").unwrap();
        browser
            .connect(&typed.authorize_url, "alice")
            .await
            .expect("consent again");
        let card = world.card("alice").await;
        assert_eq!(status(&card), ConnectionStatus::Connected, "{card:?}");
    })
    .await;
}

#[tokio::test]
async fn a_vault_rewrap_during_a_refresh_loses_nothing() {
    bounded(TEST_LIMIT, async {
        let (mut world, old) = alice_near_expiry(short_tokens()).await;

        // a refresh in flight (the answer takes 3 s) while the operator rotates the
        // vault key and re-wraps every row
        world
            .auth_server
            .set_token_fault(TokenFault::late_answer(Duration::from_secs(3)).times(1))
            .await;
        let refresh = spawn_credential(&world, "alice");
        tokio::time::sleep(Duration::from_millis(700)).await;
        let rotate = world.cps[0].run_cli(&["vault", "rotate"]).await;
        assert!(rotate.status.success(), "{rotate:?}");
        let started = Instant::now();
        let rewrap = world.cps[0].run_cli(&["vault", "rewrap"]).await;
        assert!(rewrap.status.success(), "{rewrap:?}");
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "the rewrap waited for the refresh's lease"
        );
        let fresh = refresh.await.unwrap().expect("the refresh succeeded");
        assert_ne!(fresh, old);

        // the server reads the new key ring when it starts: the row holds the rotated
        // tokens, re-sealed under the new key
        world.cps[0].kill().await;
        world.cps[0].restart().await;
        assert_eq!(world.bearer("alice").await, fresh);
        world
            .sleep_until_expiry_within("alice", Duration::from_millis(2500))
            .await;
        assert_ne!(world.bearer("alice").await, fresh);
        let stats = world.stats().await;
        assert_eq!(served_refreshes(&stats), 2, "{stats:?}");
        assert_eq!(stats.invalid_grant, 0, "refresh-token reuse: {stats:?}");
    })
    .await;
}

/// `ADP_BACKGROUND_REFRESH` keeps a connection nobody calls alive past the provider's
/// idle lifetime; without it (every other world) nothing refreshes until a call.
#[tokio::test]
async fn idle_connections_are_refreshed_in_the_background_when_asked() {
    bounded(TEST_LIMIT, async {
        let options = Options::default()
            .ttl(600)
            .env("ADP_BACKGROUND_REFRESH", "true")
            .env("ADP_BACKGROUND_REFRESH_IDLE_SECS", 3);
        let world = World::start(options).await;
        world.consent(&world.browser(), "alice").await;
        let old = world.bearer("alice").await;
        tokio::time::sleep(Duration::from_secs(8)).await;
        let stats = world.stats().await;
        let refreshes = served_refreshes(&stats);
        // one per 3 s of idleness, give or take a sweep
        assert!((1..=3).contains(&refreshes), "{stats:?}");
        assert_eq!(stats.invalid_grant, 0, "{stats:?}");
        assert_ne!(world.bearer("alice").await, old);
        let card = world.card("alice").await;
        assert_eq!(status(&card), ConnectionStatus::Connected, "{card:?}");
    })
    .await;
}

/// SIGTERM (a rolling deploy) while a refresh whose caller already left is waiting on
/// the provider: the process waits for the refresh to store before it exits.
#[tokio::test]
async fn a_shutdown_mid_refresh_waits_for_the_rotated_token_to_be_stored() {
    bounded(TEST_LIMIT, async {
        let (mut world, old) = alice_near_expiry(short_tokens()).await;
        world
            .auth_server
            .set_token_fault(TokenFault::late_answer(Duration::from_secs(3)).times(1))
            .await;
        let gave_up = credential_within(&world, "alice", Duration::from_millis(300)).await;
        assert!(gave_up.is_err(), "{gave_up:?}");

        // no call is in flight any more; only the detached refresh is
        let stopping = Instant::now();
        let exit = world.cps[0].terminate().await;
        assert!(exit.success(), "{exit:?}");
        assert!(
            stopping.elapsed() >= Duration::from_millis(1500),
            "the process exited before the refresh stored ({:?})",
            stopping.elapsed()
        );

        world.cps[0].restart().await;
        let fresh = world.bearer("alice").await;
        assert_ne!(fresh, old);
        world
            .sleep_until_expiry_within("alice", Duration::from_millis(2500))
            .await;
        assert_ne!(world.bearer("alice").await, fresh);
        let stats = world.stats().await;
        assert_eq!(served_refreshes(&stats), 2, "{stats:?}");
        assert_eq!(stats.invalid_grant, 0, "refresh-token reuse: {stats:?}");
    })
    .await;
}

/// The database goes away between the provider rotating the refresh token and the
/// store, for longer than the lease: the answer is served from memory meanwhile and
/// stored as soon as the database is back, so the grant survives.
#[tokio::test]
#[cfg_attr(
    not(adp_postgres),
    ignore = "set ADP_TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn a_refresh_answer_outlives_a_database_outage_longer_than_its_lease() {
    bounded(TEST_LIMIT, async {
        let (relay, url) = adp_e2e::relay::relayed_fresh_database().await;
        // a 1 s OAuth timeout makes the lease 3 × 1 + 2 × 2 + 5 = 12 s
        let options = short_tokens().env("ADP_OAUTH_TIMEOUT_SECS", 1);
        let world = World::start_replicas(options, 1, &[("ADP_DATABASE_URL", &url)]).await;
        world.consent(&world.browser(), "alice").await;
        let old = world.bearer("alice").await;
        world
            .sleep_until_expiry_within("alice", Duration::from_millis(2500))
            .await;
        world
            .auth_server
            .set_token_fault(TokenFault::late_answer(Duration::from_millis(900)).times(1))
            .await;
        let refresh = spawn_credential(&world, "alice");
        // the lease is taken; the provider answers once the database is gone
        tokio::time::sleep(Duration::from_millis(400)).await;
        relay.cut();
        let fresh = refresh
            .await
            .unwrap()
            .expect("the refreshed token is served");
        assert_ne!(fresh, old);
        tokio::time::sleep(Duration::from_secs(4)).await;
        relay.restore();

        // the kept answer is stored before anything refreshes again
        let healed = Instant::now();
        let again = loop {
            match world.credential("alice").await {
                Ok(credential) => break credential.header_value,
                Err(status) => {
                    assert!(healed.elapsed() < Duration::from_secs(30), "{status:?}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        let stats = world.stats().await;
        assert_eq!(stats.invalid_grant, 0, "refresh-token reuse: {stats:?}");
        let card = world.card("alice").await;
        assert_eq!(status(&card), ConnectionStatus::Connected, "{card:?}");
        // and it holds the rotated refresh token: one more refresh works
        world
            .sleep_until_expiry_within("alice", Duration::from_millis(2500))
            .await;
        assert_ne!(world.bearer("alice").await, again);
        let stats = world.stats().await;
        assert_eq!(stats.invalid_grant, 0, "refresh-token reuse: {stats:?}");
    })
    .await;
}
