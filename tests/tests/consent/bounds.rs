//! What one caller can make the control plane hold (issue 13): consent links, watch
//! streams, and client-credentials fetches. Each bound answers RESOURCE_EXHAUSTED with
//! ErrorInfo naming the limit, and other people are unaffected.

use std::time::{Duration, Instant};

use adp_api::v1::mcp_server::{Auth, Source};
use adp_api::v1::mcp_server_service_client::McpServerServiceClient;
use adp_api::v1::token_service_client::TokenServiceClient;
use adp_api::v1::*;
use adp_e2e::authed;
use adp_e2e::consent::{RichError, bounded};
use adp_e2e::oidc::{CLIENT_CREDENTIALS_GRANT, TokenFault};
use tonic::Code;

use crate::support::*;

/// Connect for `subject` asking for `extra` scopes on top of the servers' ones.
async fn connect_with(world: &World, subject: &str, extra: &[&str]) -> Result<String, RichError> {
    let request = ConnectRequest {
        provider_name: PROVIDER.into(),
        scopes: strings(extra),
    };
    world
        .connections(0)
        .connect(authed(request, &world.user(subject)))
        .await
        .map(|response| response.into_inner().authorize_url)
        .map_err(|status| RichError::from_status(&status))
}

#[tokio::test]
async fn a_retrying_agent_gets_one_consent_link_and_a_person_holds_a_bounded_number() {
    bounded(TEST_LIMIT, async {
        let options = Options::default().env("ADP_MAX_CONSENT_ATTEMPTS_PER_USER", 3);
        let world = World::start(options).await;

        // an agent retrying the refused call 30 times: one link, not 30 rows and seals
        let mut links = std::collections::BTreeSet::new();
        for _ in 0..30 {
            let error = world.credential_error("alice").await;
            assert_eq!(error.reason, "OAUTH_CONNECTION_REQUIRED", "{error:?}");
            links.insert(error.meta("authorizeUrl").to_owned());
        }
        assert_eq!(links.len(), 1, "{links:?}");

        // different scopes are different links, up to the limit
        connect_with(&world, "alice", &["gist"]).await.unwrap();
        connect_with(&world, "alice", &["workflow"]).await.unwrap();
        let refused = connect_with(&world, "alice", &["admin:org"])
            .await
            .unwrap_err();
        assert_eq!(refused.code, Code::ResourceExhausted, "{refused:?}");
        assert_eq!(refused.reason, "CONSENT_ATTEMPTS_EXHAUSTED");
        assert_eq!(refused.meta("limit"), "3");
        assert!(refused.message.contains("limit is 3"), "{refused:?}");

        // the agent's own link still comes back, and bob is unaffected
        let again = world.credential_error("alice").await;
        assert!(links.contains(again.meta("authorizeUrl")), "{again:?}");
        let bob = world.credential_error("bob").await;
        assert_eq!(bob.reason, "OAUTH_CONNECTION_REQUIRED", "{bob:?}");
        assert!(!links.contains(bob.meta("authorizeUrl")));

        // the link still works: alice connects through it
        world
            .browser()
            .connect(links.first().unwrap(), "alice")
            .await
            .expect("consent through the reused link");
        let card = world.card("alice").await;
        assert_eq!(status(&card), ConnectionStatus::Connected, "{card:?}");
    })
    .await;
}

#[tokio::test]
async fn watch_streams_are_bounded_per_person() {
    bounded(TEST_LIMIT, async {
        let options = Options::default().env("ADP_MAX_WATCHES_PER_USER", 2);
        let world = World::start(options).await;
        let watch = |subject: &'static str| {
            let mut client = world.connections(0);
            let token = world.user(subject);
            async move {
                let request = WatchConnectionRequest {
                    provider_name: PROVIDER.into(),
                };
                client
                    .watch_connection(authed(request, &token))
                    .await
                    .map(tonic::Response::into_inner)
            }
        };
        let first = watch("alice").await.expect("first watch");
        let _second = watch("alice").await.expect("second watch");
        let refused = RichError::from_status(&watch("alice").await.unwrap_err());
        assert_eq!(refused.code, Code::ResourceExhausted, "{refused:?}");
        assert_eq!(refused.reason, "TOO_MANY_WATCHES");
        assert_eq!(refused.meta("limit"), "2");
        let _bobs = watch("bob").await.expect("bob is unaffected");

        // closing a stream frees its place
        drop(first);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match watch("alice").await {
                Ok(_) => break,
                Err(status) => {
                    assert_eq!(status.code(), Code::ResourceExhausted);
                    assert!(Instant::now() < deadline, "the place was never freed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    })
    .await;
}

#[tokio::test]
async fn one_client_credentials_fetch_per_server_and_none_waits_on_another() {
    bounded(TEST_LIMIT, async {
        let options = Options::default()
            .ttl(600)
            .grants(&[GrantType::BrowserConsent, GrantType::ClientCredentials]);
        let world = World::start(options).await;
        let service_account = || {
            Some(Auth::ServiceAccountOauth(ServiceAccountOAuthAuth {
                provider_name: PROVIDER.into(),
                scopes: strings(&["repo"]),
                token_injection: None,
            }))
        };
        let patch = McpServer {
            name: SERVER.into(),
            auth: service_account(),
            ..Default::default()
        };
        world
            .update_server(patch, &["service_account_oauth"])
            .await
            .unwrap();
        let other = McpServer {
            name: "other-mcp".into(),
            enabled: true,
            source: Some(Source::Remote(RemoteMcp {
                url: SERVER_URL.into(),
                transport: 0,
            })),
            auth: service_account(),
            ..Default::default()
        };
        let request = CreateMcpServerRequest {
            mcp_server: Some(other),
            validate_only: false,
        };
        McpServerServiceClient::new(world.channel(0))
            .create_mcp_server(authed(request, &world.admin))
            .await
            .unwrap();

        // the first fetch hangs 2 s at the provider; 10 callers of that server wait for
        // it, while a caller of the other server is served at once
        world
            .auth_server
            .set_token_fault(TokenFault::hang(Duration::from_secs(2)).times(1))
            .await;
        let call = |server: &'static str, subject: String| {
            let channel = world.channel(0);
            let (user, proxy) = (world.user(&subject), world.proxy.clone());
            tokio::spawn(async move {
                TokenServiceClient::new(channel)
                    .get_upstream_credential(credential_request(server, Some(&user), Some(&proxy)))
                    .await
                    .map(|response| response.into_inner().header_value)
            })
        };
        let slow: Vec<_> = (0..10).map(|i| call(SERVER, format!("user{i}"))).collect();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = Instant::now();
        call("other-mcp", "zoe".into())
            .await
            .unwrap()
            .expect("other server");
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "the other server waited {:?} on a fetch that was not its own",
            started.elapsed()
        );
        let mut values = Vec::new();
        for task in slow {
            values.push(task.await.unwrap().expect("slow server"));
        }
        assert!(values.iter().all(|v| *v == values[0]), "one shared token");
        let stats = world.stats().await;
        assert_eq!(
            stats.count(CLIENT_CREDENTIALS_GRANT),
            2,
            "one per server: {stats:?}"
        );
    })
    .await;
}
