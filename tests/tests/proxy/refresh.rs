//! Short-lived upstream tokens through the real proxy (issue 13): oidc-provider issues
//! 30-second access tokens and rotates refresh tokens with reuse detection; the
//! proxy's cache and the control plane's refresh-ahead must scale with that lifetime.

use std::time::{Duration, Instant};

use adp_api::v1::ConnectionStatus;
use adp_e2e::consent::bounded;
use adp_e2e::oidc::{REFRESH_TOKEN_GRANT, TokenFault};
use adp_e2e::proxy::McpSession;
use serde_json::json;

use super::support::*;
use super::{Setup, setup};

/// The `authorization` header the upstream saw on one `whoami` through the proxy.
async fn upstream_token(s: &Setup, subject: &str) -> String {
    let mut session = McpSession::new(
        &s.proxy.mcp_url(SERVER),
        &s.world.user(subject),
        "2025-06-18",
    );
    assert_eq!(session.initialize(false).await.status, 200);
    let reply = session.call("whoami", json!({})).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let seen = &reply.body["result"]["structuredContent"]["headers"]["authorization"];
    seen.as_str()
        .unwrap_or_else(|| panic!("no token reached the upstream: {reply:?}"))
        .to_owned()
}

/// The default refresh-ahead (60 s) is longer than the token's whole life; before the
/// fix every call refreshed (48 grants for 8 calls), now one refresh serves them all.
#[tokio::test]
async fn thirty_second_tokens_are_refreshed_once_for_many_calls_and_never_reused() {
    bounded(TEST_LIMIT + Duration::from_secs(60), async {
        let s = setup(Options::default().ttl(30)).await;
        s.world.consent(&s.world.browser(), "alice").await;
        let first = upstream_token(&s, "alice").await;
        s.world
            .sleep_until_expiry_within("alice", Duration::ZERO)
            .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let before = s.world.stats().await;

        // 20 concurrent calls after expiry: one refresh, everyone gets its token
        let calls = (0..20).map(|_| upstream_token(&s, "alice"));
        let seen = futures::future::join_all(calls).await;
        assert!(seen.iter().all(|t| *t == seen[0]), "{seen:?}");
        assert_ne!(seen[0], first, "the expired token was replaced");
        let after = s.world.stats().await;
        assert_eq!(
            after.count(REFRESH_TOKEN_GRANT) - before.count(REFRESH_TOKEN_GRANT),
            1,
            "{after:?}"
        );

        // 60 s of steady calls: the proxy keeps each token until a quarter of its life
        // is left (7.5 s), and the control plane, asked then, refreshes: one refresh per
        // 22.5 s of use, never one per call
        let steady_from = after.count(REFRESH_TOKEN_GRANT);
        let started = Instant::now();
        let mut calls = 0;
        let mut tokens = std::collections::BTreeSet::new();
        while started.elapsed() < Duration::from_secs(60) {
            tokens.insert(upstream_token(&s, "alice").await);
            calls += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let stats = s.world.stats().await;
        let steady = stats.count(REFRESH_TOKEN_GRANT) - steady_from;
        println!("{calls} calls in 60 s caused {steady} refreshes");
        assert!(calls > 200, "the loop made {calls} calls");
        assert!((2..=5).contains(&steady), "{steady} refreshes: {stats:?}");
        assert_eq!(tokens.len() as u64, steady + 1, "each refresh was used");
        assert_eq!(stats.invalid_grant, 0, "refresh-token reuse: {stats:?}");
        let card = s.world.card("alice").await;
        assert_eq!(status(&card), ConnectionStatus::Connected, "{card:?}");
    })
    .await;
}

/// The proxy gives up on the control plane (its own deadline) while the provider is
/// answering a refresh: the agent gets an error, but the refresh finishes without it and
/// the next call carries the rotated token, with no second refresh and no reuse.
#[tokio::test]
async fn the_proxys_deadline_firing_mid_refresh_loses_no_grant() {
    bounded(TEST_LIMIT, async {
        let s = setup(Options::default().ttl(6).refresh_ahead(3)).await;
        let proxy = adp_e2e::proxy::ProxyProcess::start_with(
            &s.world.cps[0],
            Some(&s.ca.ca_pem),
            &[("ADP_UPSTREAM_TIMEOUT_SECS", "1")],
        )
        .await;
        s.world.consent(&s.world.browser(), "alice").await;
        let old = s.world.bearer("alice").await;
        s.world
            .sleep_until_expiry_within("alice", Duration::from_millis(2500))
            .await;
        s.world
            .auth_server
            .set_token_fault(TokenFault::late_answer(Duration::from_secs(3)).times(1))
            .await;

        // the first request of the session needs the credential already
        let mut session =
            McpSession::new(&proxy.mcp_url(SERVER), &s.world.user("alice"), "2025-06-18");
        let started = Instant::now();
        let refused = session.initialize(false).await;
        assert_ne!(refused.status, 200, "{refused:?}");
        assert!(
            started.elapsed() < Duration::from_millis(2500),
            "the proxy gave up at its deadline: {:?}",
            started.elapsed()
        );

        tokio::time::sleep(Duration::from_secs(3)).await;
        let mut session =
            McpSession::new(&proxy.mcp_url(SERVER), &s.world.user("alice"), "2025-06-18");
        assert_eq!(session.initialize(false).await.status, 200);
        let reply = session.call("whoami", json!({})).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let seen = reply.body["result"]["structuredContent"]["headers"]["authorization"]
            .as_str()
            .unwrap_or_else(|| panic!("{reply:?}"))
            .to_owned();
        assert_ne!(seen, old);
        let stats = s.world.stats().await;
        assert_eq!(stats.count(REFRESH_TOKEN_GRANT), 1, "{stats:?}");
        assert_eq!(stats.invalid_grant, 0, "{stats:?}");
        let card = s.world.card("alice").await;
        assert_eq!(status(&card), ConnectionStatus::Connected, "{card:?}");
    })
    .await;
}
