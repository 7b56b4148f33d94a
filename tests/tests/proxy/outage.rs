//! The database goes away for 10 s under load (issue 13): a relay in front of the
//! machine's PostgreSQL is cut, as a partition or a stopped server would. Calls whose
//! credentials the proxy cached keep working; the others get UNAVAILABLE quickly and
//! clearly; everything recovers without restarting anything.

use std::time::{Duration, Instant};

use adp_e2e::consent::bounded;
use adp_e2e::proxy::{McpSession, ProxyProcess};
use adp_e2e::tls::TestCa;
use adp_e2e::upstream::McpUpstream;
use serde_json::json;
use tonic::Code;

use super::support::*;

async fn whoami(proxy: &ProxyProcess, world: &World, subject: &str) -> adp_e2e::proxy::McpReply {
    let mut session = McpSession::new(&proxy.mcp_url(SERVER), &world.user(subject), "2025-06-18");
    let init = session.initialize(false).await;
    assert_eq!(init.status, 200, "{init:?}");
    session.call("whoami", json!({})).await
}

#[tokio::test]
#[cfg_attr(
    not(adp_postgres),
    ignore = "set ADP_TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn a_database_outage_spares_cached_calls_and_heals_without_a_restart() {
    bounded(TEST_LIMIT, async {
        let (relay, url) = adp_e2e::relay::relayed_fresh_database().await;
        let ca = TestCa::generate().unwrap();
        let upstream = McpUpstream::start(&ca).await.unwrap();
        let options = Options {
            server_url: upstream.url().to_owned(),
            ..Options::default()
        };
        let world = World::start_replicas(options, 1, &[("ADP_DATABASE_URL", &url)]).await;
        let proxy = ProxyProcess::start(&world.cps[0], Some(&ca.ca_pem)).await;
        world.consent(&world.browser(), "alice").await;
        let alices = whoami(&proxy, &world, "alice").await;
        assert_eq!(alices.status, 200, "{alices:?}");

        relay.cut();
        let outage = Instant::now();
        let (mut cached_ok, mut refused) = (0, 0);
        while outage.elapsed() < Duration::from_secs(10) {
            let reply = whoami(&proxy, &world, "alice").await;
            assert_eq!(
                reply.status, 200,
                "a cached call failed in the outage: {reply:?}"
            );
            assert!(reply.body.get("result").is_some(), "{reply:?}");
            cached_ok += 1;

            let asked = Instant::now();
            let status = world.credential("bob").await.unwrap_err();
            assert_eq!(status.code(), Code::Unavailable, "{status:?}");
            assert!(
                asked.elapsed() < Duration::from_secs(11),
                "the refusal took {:?}",
                asked.elapsed()
            );
            refused += 1;
        }
        println!("during the outage: {cached_ok} cached calls served, {refused} refused");
        assert!(cached_ok >= 2 && refused >= 1);

        relay.restore();
        let healed = Instant::now();
        loop {
            match world.credential("bob").await {
                Err(status) if status.code() == Code::FailedPrecondition => break,
                other => {
                    assert!(
                        healed.elapsed() < Duration::from_secs(30),
                        "not healed after 30 s: {other:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        println!("healed {:?} after the database came back", healed.elapsed());
        let reply = whoami(&proxy, &world, "bob").await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert!(
            reply.body.to_string().contains("OAUTH_CONNECTION_REQUIRED")
                || reply.body.to_string().contains("-32042"),
            "bob is asked to connect, as before the outage: {reply:?}"
        );
        assert_eq!(whoami(&proxy, &world, "alice").await.status, 200);
    })
    .await;
}
