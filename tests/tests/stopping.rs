//! Stopping is immediate: revoking a connection or disabling its provider stops the
//! real proxy from injecting a credential it had cached, within the config
//! propagation time, on one control plane (SQLite) and across two replicas sharing
//! PostgreSQL (the admin writes to one, the proxy follows the other).
//!
//! Build the binaries first: `cargo build --workspace --bins`.
#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
#[path = "consent/support.rs"]
mod support;

use std::time::{Duration, Instant};

use adp_api::v1::{OAuthProvider, RevokeConnectionRequest};
use adp_e2e::authed;
use adp_e2e::consent::bounded;
use adp_e2e::proxy::{McpSession, ProxyProcess};
use adp_e2e::tls::TestCa;
use adp_e2e::upstream::McpUpstream;
use serde_json::{Value, json};
use support::*;

/// How long a stop may take to reach a proxy.
const STOP_WITHIN: Duration = Duration::from_secs(2);

/// `whoami` through the proxy as `subject`: the Authorization the upstream saw, or the
/// proxy's refusal (`Err` with the reply).
async fn whoami(proxy: &ProxyProcess, world: &World, subject: &str) -> Result<String, Value> {
    let mut session = McpSession::new(&proxy.mcp_url(SERVER), &world.user(subject), "2025-06-18");
    let init = session.initialize(false).await;
    if init.body.get("result").is_none() {
        return Err(json!({"status": init.status, "body": init.body}));
    }
    let reply = session.call("whoami", json!({})).await;
    match reply.body["result"]["structuredContent"]["headers"]["authorization"].as_str() {
        Some(seen) => Ok(seen.to_owned()),
        None => Err(json!({"status": reply.status, "body": reply.body})),
    }
}

/// Calls until the proxy refuses `subject`, returning how long that took and the refusal.
async fn refused_within(
    proxy: &ProxyProcess,
    world: &World,
    subject: &str,
    since: Instant,
) -> (Duration, Value) {
    let refusal = adp_e2e::eventually::eventually(
        "the cached credential dropped",
        Duration::from_secs(20),
        || async {
            match whoami(proxy, world, subject).await {
                Err(refusal) => Ok(refusal),
                Ok(injected) => Err(format!(
                    "{subject}'s credential still injected: {injected:?}"
                )),
            }
        },
    )
    .await;
    (since.elapsed(), refusal)
}

async fn stops_reach_the_proxy(replicas: usize, shared_env: &[(&str, &str)]) {
    let ca = TestCa::generate().unwrap();
    let upstream = McpUpstream::start(&ca).await.unwrap();
    let options = Options {
        server_url: upstream.url().to_owned(),
        ..Options::default()
    };
    let world = World::start_replicas(options, replicas, shared_env).await;
    // the proxy follows the last replica; every admin or user write goes to the first
    let proxy =
        ProxyProcess::start_in_process(&world.cps[replicas - 1], Some(&ca.ca_pem), &[]).await;
    for user in ["alice", "bob", "carol"] {
        world.consent(&world.browser(), user).await;
    }
    let alice_token = whoami(&proxy, &world, "alice").await.unwrap();
    assert_eq!(alice_token, world.bearer("alice").await);
    let bob_token = whoami(&proxy, &world, "bob").await.unwrap();
    whoami(&proxy, &world, "carol").await.unwrap();

    // alice revokes: her cached token stops at once, bob's keeps working
    let revoked_at = Instant::now();
    world
        .connections(0)
        .revoke_connection(authed(
            RevokeConnectionRequest {
                provider_name: PROVIDER.into(),
            },
            &world.user("alice"),
        ))
        .await
        .unwrap();
    let (took, refusal) = refused_within(&proxy, &world, "alice", revoked_at).await;
    assert!(
        took < STOP_WITHIN,
        "revocation took {took:?} to reach the proxy"
    );
    assert_eq!(
        refusal["body"]["error"]["data"]["reason"], "OAUTH_CONNECTION_REQUIRED",
        "{refusal}"
    );
    assert_eq!(whoami(&proxy, &world, "bob").await.unwrap(), bob_token);
    eprintln!("revocation stopped injection after {took:?}");

    // the admin disables the provider: every cached credential for it stops
    upstream.reset().await.unwrap();
    let disabled_at = Instant::now();
    world
        .update_provider(
            OAuthProvider {
                name: PROVIDER.into(),
                enabled: false,
                ..Default::default()
            },
            &["enabled"],
        )
        .await
        .unwrap();
    let (took, refusal) = refused_within(&proxy, &world, "bob", disabled_at).await;
    assert!(
        took < STOP_WITHIN,
        "disabling took {took:?} to reach the proxy"
    );
    assert_eq!(
        refusal["body"]["error"]["data"]["reason"], "OAUTH_PROVIDER_DISABLED",
        "{refusal}"
    );
    // carol never called after the change: her first call is refused, not served from cache
    let carol = whoami(&proxy, &world, "carol").await.unwrap_err();
    assert_eq!(
        carol["body"]["error"]["data"]["reason"], "OAUTH_PROVIDER_DISABLED",
        "{carol}"
    );
    // and the control plane itself issues nothing for a disabled provider
    let status = world.credential("carol").await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    eprintln!("disabling stopped injection after {took:?}");

    // once refused, alice's old token never reaches the upstream again
    for _ in 0..3 {
        whoami(&proxy, &world, "alice").await.unwrap_err();
    }
    for request in upstream.requests().await.unwrap() {
        assert_ne!(request.header("authorization"), Some(alice_token.as_str()));
    }
}

#[tokio::test]
async fn revoking_or_disabling_stops_cached_credentials_at_the_proxy() {
    bounded(TEST_LIMIT, stops_reach_the_proxy(1, &[])).await;
}

#[tokio::test]
#[cfg_attr(
    not(adp_postgres),
    ignore = "set ADP_TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn stops_cross_postgres_replicas_to_the_proxy() {
    bounded(TEST_LIMIT, async {
        let url = adp_e2e::pg::fresh_database().await;
        stops_reach_the_proxy(2, &[("ADP_DATABASE_URL", &url)]).await;
    })
    .await;
}
