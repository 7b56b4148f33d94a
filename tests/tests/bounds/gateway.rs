//! Bounds on what a call through the proxy's gRPC gateway can hold: a reaped legacy SSE
//! session hangs up its upstream stream at once, and `CallToolStream`'s consent wait is
//! clamped.

use std::time::{Duration, Instant};

use adp_api::v1::call_tool_stream_response::Event;
use adp_api::v1::mcp_gateway_service_client::McpGatewayServiceClient;
use adp_api::v1::mcp_server::{Auth, Source};
use adp_api::v1::mcp_server_service_client::McpServerServiceClient;
use adp_api::v1::o_auth_provider_service_client::OAuthProviderServiceClient;
use adp_api::v1::*;
use adp_e2e::consent::bounded;
use adp_e2e::proxy::ProxyProcess;
use adp_e2e::tls::TestCa;
use adp_e2e::upstream::McpUpstream;
use adp_e2e::{ControlPlaneProcess, authed};
use tonic::transport::Channel;

use super::TEST_LIMIT;

async fn create_server(cp: &ControlPlaneProcess, server: McpServer) {
    let request = CreateMcpServerRequest {
        mcp_server: Some(server),
        validate_only: false,
    };
    McpServerServiceClient::new(cp.channel().await)
        .create_mcp_server(authed(request, &cp.admin_token()))
        .await
        .unwrap();
}

fn remote(url: &str, transport: Transport) -> Option<Source> {
    Some(Source::Remote(RemoteMcp {
        url: url.into(),
        transport: transport as i32,
    }))
}

async fn gateway(proxy: &ProxyProcess) -> McpGatewayServiceClient<Channel> {
    let channel = Channel::from_shared(proxy.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    McpGatewayServiceClient::new(channel)
}

/// ListTools as `subject`, retried while the proxy has not got the server yet.
async fn list_tools(gateway: &mut McpGatewayServiceClient<Channel>, jwt: &str, server: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let request = ListToolsRequest {
            server_name: server.into(),
        };
        match gateway.list_tools(authed(request, jwt)).await {
            Ok(reply) => {
                assert!(!reply.into_inner().tools.is_empty());
                return;
            }
            Err(status) if status.code() == tonic::Code::NotFound && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => panic!("ListTools on {server}: {status:?}"),
        }
    }
}

/// With room for one upstream session, bob's call evicts alice's legacy SSE session,
/// and the proxy hangs up alice's event stream (its GET) at once, rather than when the
/// upstream next sends an event (which an idle one never does).
#[tokio::test]
async fn a_reaped_legacy_session_closes_its_upstream_stream_at_once() {
    bounded(TEST_LIMIT, async {
        let ca = TestCa::generate().unwrap();
        let upstream = McpUpstream::start(&ca).await.unwrap();
        let cp = ControlPlaneProcess::start().await;
        let proxy = ProxyProcess::start_with(
            &cp,
            Some(&ca.ca_pem),
            &[("ADP_PROXY_CREDENTIAL_CACHE_SIZE", "1")],
        )
        .await;
        create_server(
            &cp,
            McpServer {
                name: "legacy".into(),
                enabled: true,
                source: remote(&upstream.url().replace("/mcp", "/sse"), Transport::Sse),
                auth: Some(Auth::None(NoAuth {})),
                ..Default::default()
            },
        )
        .await;
        let mut gateway = gateway(&proxy).await;
        list_tools(&mut gateway, &cp.token("alice", &[]), "legacy").await;
        let streams = upstream.sse_streams().await.unwrap();
        assert_eq!((streams.open, streams.closed), (1, 0), "{streams:?}");

        let evicted_at = Instant::now();
        list_tools(&mut gateway, &cp.token("bob", &[]), "legacy").await;
        loop {
            let streams = upstream.sse_streams().await.unwrap();
            if streams.closed == 1 {
                assert_eq!(streams.open, 1, "bob's stream stays: {streams:?}");
                break;
            }
            assert!(
                evicted_at.elapsed() < Duration::from_secs(3),
                "alice's event stream is still open after her session was evicted: {streams:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        println!(
            "legacy SSE: the evicted session's GET closed {:?} after the evicting call began",
            evicted_at.elapsed()
        );
    })
    .await;
}

/// A caller who allows a `CallToolStream` a minute still gets CONSENT_TIMEOUT after
/// ADP_MAX_CONSENT_WAIT_SECS (2 s here): nobody parks a task for longer.
#[tokio::test]
async fn the_consent_wait_is_clamped_to_its_maximum() {
    bounded(TEST_LIMIT, async {
        let cp = ControlPlaneProcess::start_with(&[
            ("ADP_INSECURE_LOOPBACK_HTTP", "true"),
            ("ADP_INSECURE_DEVELOPMENT", "true"),
        ])
        .await;
        let proxy =
            ProxyProcess::start_with(&cp, None, &[("ADP_MAX_CONSENT_WAIT_SECS", "2")]).await;
        // nobody ever completes this provider's consent: its endpoints are never called
        let provider = OAuthProvider {
            name: "github".into(),
            display_name: "GitHub (never connected)".into(),
            authorize_url: "http://127.0.0.1:9/authorize".into(),
            token_url: "http://127.0.0.1:9/token".into(),
            scopes: vec!["repo".into()],
            client_id: "client".into(),
            token_auth_method: TokenAuthMethod::None as i32,
            grant_types: vec![GrantType::BrowserConsent as i32],
            require_pkce: true,
            enabled: true,
            ..Default::default()
        };
        OAuthProviderServiceClient::new(cp.channel().await)
            .create_o_auth_provider(authed(
                CreateOAuthProviderRequest {
                    oauth_provider: Some(provider),
                    validate_only: false,
                },
                &cp.admin_token(),
            ))
            .await
            .unwrap();
        create_server(
            &cp,
            McpServer {
                name: "tools".into(),
                enabled: true,
                source: remote("https://127.0.0.1:9/mcp", Transport::StreamableHttp),
                auth: Some(Auth::UserOauth(UserOAuthAuth {
                    provider_name: "github".into(),
                    required_scopes: vec!["repo".into()],
                    token_injection: None,
                })),
                ..Default::default()
            },
        )
        .await;
        let mut gateway = gateway(&proxy).await;
        let jwt = cp.token("alice", &[]);
        let deadline = Instant::now() + Duration::from_secs(10);
        let (mut stream, started) = loop {
            let mut request = authed(
                CallToolStreamRequest {
                    server_name: "tools".into(),
                    tool_name: "echo".into(),
                    arguments: None,
                },
                &jwt,
            );
            request.set_timeout(Duration::from_secs(60));
            let started = Instant::now();
            match gateway.call_tool_stream(request).await {
                Ok(stream) => break (stream.into_inner(), started),
                Err(status)
                    if status.code() == tonic::Code::NotFound && Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(status) => panic!("CallToolStream: {status:?}"),
            }
        };
        let first = stream.message().await.unwrap().unwrap();
        assert!(
            matches!(first.event, Some(Event::ConsentRequired(_))),
            "{first:?}"
        );
        let status = stream.message().await.unwrap_err();
        let waited = started.elapsed();
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
        assert!(status.message().contains("within 2 s"), "{status:?}");
        assert!(
            waited >= Duration::from_millis(1800) && waited < Duration::from_secs(10),
            "waited {waited:?}"
        );
        println!(
            "CallToolStream with a 60 s deadline ended after {waited:?}: {}",
            status.message()
        );
    })
    .await;
}
