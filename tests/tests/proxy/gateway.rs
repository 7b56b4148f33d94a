//! `adp.v1.MCPGatewayService` on the proxy: MCP tools over gRPC, as each user.

use std::time::Duration;

use adp_api::v1::call_tool_stream_response::Event;
use adp_api::v1::mcp_gateway_service_client::McpGatewayServiceClient;
use adp_api::v1::*;
use adp_e2e::authed;
use adp_e2e::consent::{RichError, bounded};
use prost_types::value::Kind;
use serde_json::json;
use tonic::transport::Channel;

use super::support::*;
use super::{Setup, setup};

async fn gateway(s: &Setup) -> McpGatewayServiceClient<Channel> {
    let channel = Channel::from_shared(s.proxy.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    McpGatewayServiceClient::new(channel)
}

fn args(value: serde_json::Value) -> Option<prost_types::Struct> {
    let serde_json::Value::Object(map) = value else {
        panic!("arguments are an object")
    };
    Some(prost_types::Struct {
        fields: map
            .into_iter()
            .map(|(k, v)| {
                let kind = match v {
                    serde_json::Value::String(s) => Kind::StringValue(s),
                    other => panic!("only strings in these tests: {other}"),
                };
                (k, prost_types::Value { kind: Some(kind) })
            })
            .collect(),
    })
}

fn text_of(block: &prost_types::Struct) -> &str {
    match block.fields.get("text").and_then(|v| v.kind.as_ref()) {
        Some(Kind::StringValue(s)) => s,
        other => panic!("no text: {other:?}"),
    }
}

fn call(tool: &str, arguments: serde_json::Value) -> CallToolRequest {
    CallToolRequest {
        server_name: SERVER.into(),
        tool_name: tool.into(),
        arguments: args(arguments),
    }
}

fn field<'a>(s: &'a prost_types::Struct, path: &[&str]) -> Option<&'a Kind> {
    let (last, parents) = path.split_last()?;
    let mut current = s;
    for key in parents {
        match current.fields.get(*key)?.kind.as_ref()? {
            Kind::StructValue(inner) => current = inner,
            _ => return None,
        }
    }
    current.fields.get(*last)?.kind.as_ref()
}

#[tokio::test]
async fn list_and_call_tools_as_the_user() {
    bounded(TEST_LIMIT, async {
        let s = setup(Options::default()).await;
        s.world.consent(&s.world.browser(), "alice").await;
        let alice = s.world.user("alice");
        let mut gw = gateway(&s).await;

        let listed = gw
            .list_tools(authed(
                ListToolsRequest {
                    server_name: SERVER.into(),
                },
                &alice,
            ))
            .await
            .unwrap()
            .into_inner();
        let names: Vec<_> = listed.tools.iter().map(|t| t.name.as_str()).collect();
        assert!(
            names.contains(&"echo") && names.contains(&"whoami"),
            "{names:?}"
        );
        let echo = listed.tools.iter().find(|t| t.name == "echo").unwrap();
        assert!(echo.input_schema.is_some());

        let result = gw
            .call_tool(authed(
                call("echo", json!({"text": "hello gateway"})),
                &alice,
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(!result.is_error);
        assert_eq!(text_of(&result.content[0]), "hello gateway");
        let structured = result.structured_content.unwrap();
        assert_eq!(
            field(&structured, &["text"]),
            Some(&Kind::StringValue("hello gateway".into()))
        );

        // the upstream saw alice's own token, not her JWT
        let whoami = gw
            .call_tool(authed(call("whoami", json!({})), &alice))
            .await
            .unwrap()
            .into_inner();
        let expected = s.world.bearer("alice").await;
        assert_eq!(
            field(
                whoami.structured_content.as_ref().unwrap(),
                &["headers", "authorization"]
            ),
            Some(&Kind::StringValue(expected))
        );

        // an unknown tool is the upstream's JSON-RPC error, mapped and labelled
        let missing = gw.call_tool(authed(call("nope", json!({})), &alice)).await;
        match missing {
            Err(status) => {
                let rich = RichError::from_status(&status);
                assert_eq!(rich.reason, "MCP_ERROR", "{status:?}");
            }
            // the TypeScript SDK reports unknown tools as a tool error instead
            Ok(result) => assert!(result.into_inner().is_error),
        }
    })
    .await;
}

#[tokio::test]
async fn consent_conditions_carry_the_control_planes_details() {
    bounded(TEST_LIMIT, async {
        let s = setup(Options::default()).await;
        let bob = s.world.user("bob");
        let status = gateway(&s)
            .await
            .call_tool(authed(call("echo", json!({"text": "x"})), &bob))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        let rich = RichError::from_status(&status);
        assert_eq!(rich.reason, "OAUTH_CONNECTION_REQUIRED");
        let detail: OAuthConnectionRequired = rich
            .detail("OAuthConnectionRequired")
            .expect("typed detail");
        assert!(
            detail.authorize_url.contains("/oauth/v1/connect/"),
            "{detail:?}"
        );
        assert_eq!(detail.server_name, SERVER);

        let unknown = gateway(&s)
            .await
            .call_tool(authed(
                CallToolRequest {
                    server_name: "nope".into(),
                    tool_name: "x".into(),
                    arguments: None,
                },
                &bob,
            ))
            .await
            .unwrap_err();
        assert_eq!(unknown.code(), tonic::Code::NotFound);
    })
    .await;
}

/// "The original tool call retries automatically": the stream says where to consent,
/// the test consents the way a browser would, and the result arrives without a new call.
#[tokio::test]
async fn call_tool_stream_waits_for_consent_and_retries() {
    bounded(TEST_LIMIT, async {
        let s = setup(Options::default()).await;
        let carol = s.world.user("carol");
        let request = CallToolStreamRequest {
            server_name: SERVER.into(),
            tool_name: "whoami".into(),
            arguments: None,
        };
        let mut request = authed(request, &carol);
        request.set_timeout(Duration::from_secs(120));
        let mut stream = gateway(&s)
            .await
            .call_tool_stream(request)
            .await
            .unwrap()
            .into_inner();
        let first = stream.message().await.unwrap().unwrap();
        let Some(Event::ConsentRequired(consent)) = first.event else {
            panic!("consent first: {first:?}");
        };
        assert_eq!(consent.reason, "OAUTH_CONNECTION_REQUIRED");
        assert_eq!(consent.provider_name, PROVIDER);

        s.consent_via(&consent.authorize_url, "carol").await;

        let mut result = None;
        let mut saw_connected = false;
        while let Some(message) = stream.message().await.unwrap() {
            match message.event {
                Some(Event::Connected(card)) => {
                    saw_connected = true;
                    assert_eq!(card.status, ConnectionStatus::Connected as i32);
                }
                Some(Event::Result(r)) => result = Some(r),
                other => panic!("unexpected event {other:?}"),
            }
        }
        assert!(saw_connected);
        let result = result.expect("the retried call's result");
        let expected = s.world.bearer("carol").await;
        assert_eq!(
            field(
                result.structured_content.as_ref().unwrap(),
                &["headers", "authorization"]
            ),
            Some(&Kind::StringValue(expected))
        );
    })
    .await;
}

/// One upstream session per (user, server): initialized once, reused, never shared.
#[tokio::test]
async fn sessions_are_reused_per_user_and_never_shared() {
    bounded(TEST_LIMIT, async {
        let s = setup(Options::default()).await;
        for user in ["alice", "bob"] {
            s.world.consent(&s.world.browser(), user).await;
        }
        s.upstream.reset().await.unwrap();
        let mut gw = gateway(&s).await;
        for _ in 0..5 {
            for user in ["alice", "bob"] {
                gw.call_tool(authed(
                    call("echo", json!({"text": user})),
                    &s.world.user(user),
                ))
                .await
                .unwrap();
            }
        }
        assert_eq!(s.upstream.initialize_count().await.unwrap(), 2);
        let calls = s.upstream.requests_for("tools/call").await.unwrap();
        assert_eq!(calls.len(), 10);
        let alice_token = s.world.bearer("alice").await;
        let mut sessions = std::collections::BTreeMap::<String, String>::new();
        for call in &calls {
            let session = call.header("mcp-session-id").unwrap().to_owned();
            let token = call.header("authorization").unwrap().to_owned();
            // a session id always travels with the same user's token
            let owner = sessions.entry(session).or_insert(token.clone());
            assert_eq!(*owner, token);
        }
        assert_eq!(sessions.len(), 2);
        assert!(sessions.values().any(|t| *t == alice_token));
    })
    .await;
}

/// Servers registered with the deprecated HTTP+SSE transport work through the gateway
/// too, with the user's credential on the event stream and on every message POST.
#[tokio::test]
async fn legacy_sse_upstreams_work_through_the_gateway() {
    bounded(TEST_LIMIT, async {
        let s = setup(Options::default()).await;
        s.world.consent(&s.world.browser(), "alice").await;
        let sse_url = s.upstream.url().replace("/mcp", "/sse");
        s.add_server_at("legacy", &sse_url, Transport::Sse as i32, None)
            .await;
        s.upstream.reset().await.unwrap();
        let alice = s.world.user("alice");
        let result = gateway(&s)
            .await
            .call_tool(authed(
                CallToolRequest {
                    server_name: "legacy".into(),
                    tool_name: "echo".into(),
                    arguments: args(json!({"text": "over sse"})),
                },
                &alice,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(text_of(&result.content[0]), "over sse");
        let token = s.world.bearer("alice").await;
        let requests = s.upstream.requests().await.unwrap();
        assert!(
            requests
                .iter()
                .any(|r| r.method == "GET" && r.path.starts_with("/sse"))
        );
        let posts: Vec<_> = requests
            .iter()
            .filter(|r| r.path.starts_with("/messages"))
            .collect();
        assert!(posts.iter().any(|r| r.is_rpc("tools/call")), "{requests:?}");
        for request in requests
            .iter()
            .filter(|r| r.path.starts_with("/sse") || r.path.starts_with("/messages"))
        {
            assert_eq!(request.header("authorization"), Some(token.as_str()));
        }
    })
    .await;
}
