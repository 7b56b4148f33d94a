//! Attacks on the proxy, performed through the real programs (issue 12): stolen and
//! forged MCP session ids, ADP's own JWT sent to a token-passthrough server, replicas
//! and restarts sharing the state key, and settings that would make verification weak.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use adp_api::v1::mcp_gateway_service_client::McpGatewayServiceClient;
use adp_api::v1::mcp_server::{Auth, Source};
use adp_api::v1::mcp_server_service_client::McpServerServiceClient;
use adp_api::v1::{
    CallToolRequest, CreateMcpServerRequest, McpServer, RemoteMcp, TokenPassthroughAuth,
};
use adp_e2e::consent::{RichError, bounded};
use adp_e2e::proxy::{McpSession, ProxyProcess};
use adp_e2e::{ControlPlaneProcess, authed};
use prost_types::value::Kind;
use serde_json::{Value, json};

use super::support::*;
use super::{Setup, setup};

const LEGACY: &str = "2025-06-18";
const PASSTHROUGH: &str = "passthrough";
/// ADP's own audience for the proxies in the passthrough test.
const ADP_AUDIENCE: &str = "adp-e2e";

/// A JWT signed like `cp`'s users' tokens, with `aud` as given (none for `Value::Null`).
fn token_with_audience(cp: &ControlPlaneProcess, subject: &str, aud: Value) -> String {
    let secret = std::fs::read(&cp.jwt_secret_file).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut claims = json!({"iss": cp.jwt_issuer(), "sub": subject, "iat": now, "exp": now + 3600});
    if !aud.is_null() {
        claims["aud"] = aud;
    }
    adp_core::identity::mint_hs256(&secret, &claims).unwrap()
}

fn session_on(proxy: &ProxyProcess, s: &Setup, subject: &str, id: Option<&str>) -> McpSession {
    let mut session = McpSession::new(&proxy.mcp_url(SERVER), &s.world.user(subject), LEGACY);
    session.session_id = id.map(str::to_owned);
    session
}

/// `whoami` in an open session; the `authorization` the upstream saw.
async fn whoami_in(session: &mut McpSession) -> String {
    let reply = session.call("whoami", json!({})).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["result"]["structuredContent"]["headers"]["authorization"]
        .as_str()
        .unwrap_or_else(|| panic!("no authorization: {reply:?}"))
        .to_owned()
}

fn assert_unknown_session(reply: &adp_e2e::proxy::McpReply) {
    assert_eq!(reply.status, 404, "{reply:?}");
    assert_eq!(
        reply.body["error"]["data"]["reason"], "SESSION_NOT_FOUND",
        "{reply:?}"
    );
}

/// The session id the upstream issued behind `ours`: the one its later requests carry.
async fn upstream_session_id(s: &Setup, ours: &str) -> String {
    let requests = s
        .upstream
        .requests_for("notifications/initialized")
        .await
        .unwrap();
    let seen = requests
        .last()
        .and_then(|r| r.header("mcp-session-id"))
        .expect("the upstream saw the session's initialized notification")
        .to_owned();
    assert_ne!(seen, ours, "the client holds the upstream's own id");
    seen
}

/// Bob presents alice's session id (and forgeries of it) on POST, GET and DELETE: each
/// is refused as unknown and none of it reaches the upstream.
#[tokio::test]
async fn a_session_id_is_worthless_to_anyone_but_its_owner() {
    bounded(TEST_LIMIT, async {
        let s = setup(Options::default()).await;
        for user in ["alice", "bob"] {
            s.world.consent(&s.world.browser(), user).await;
        }
        let mut alice = session_on(&s.proxy, &s, "alice", None);
        assert_eq!(alice.initialize(false).await.status, 200);
        let alices_id = alice.session_id.clone().expect("a session id");
        assert!(alices_id.starts_with("v1."), "{alices_id}");
        let upstreams_id = upstream_session_id(&s, &alices_id).await;
        let mut bob = session_on(&s.proxy, &s, "bob", None);
        assert_eq!(bob.initialize(false).await.status, 200);
        let bobs_id = bob.session_id.clone().unwrap();
        s.upstream.reset().await.unwrap();

        let (alice_payload, _) = alices_id.rsplit_once('.').unwrap();
        let (_, bob_tag) = bobs_id.rsplit_once('.').unwrap();
        let stolen = [
            alices_id.clone(),
            // what the upstream (or its logs) would show
            upstreams_id.clone(),
            // alice's session under the tag of bob's own
            format!("{alice_payload}.{bob_tag}"),
        ];
        for id in &stolen {
            let mut thief = session_on(&s.proxy, &s, "bob", Some(id));
            assert_unknown_session(&thief.call("whoami", json!({})).await);
            assert_unknown_session(&thief.get().await);
            assert_unknown_session(&thief.delete().await);
        }
        assert!(
            s.upstream.requests().await.unwrap().is_empty(),
            "a refused request reached the upstream"
        );

        // alice's session is untouched, and bob's own still works
        assert_eq!(whoami_in(&mut alice).await, s.world.bearer("alice").await);
        assert_eq!(whoami_in(&mut bob).await, s.world.bearer("bob").await);
        // the upstream saw its own id for alice, never the one the client holds
        let calls = s.upstream.requests_for("tools/call").await.unwrap();
        assert!(
            calls
                .iter()
                .any(|r| r.header("mcp-session-id") == Some(upstreams_id.as_str()))
        );
        assert!(
            calls
                .iter()
                .all(|r| r.header("mcp-session-id") != Some(alices_id.as_str()))
        );
        // GET and DELETE pass the same check for the owner
        assert_eq!(alice.get().await.status, 200);
        assert_eq!(alice.delete().await.status, 200);
    })
    .await;
}

/// The proxy keeps nothing per session: after a restart, and on another replica with
/// the same settings, alice's id still works for her and is still refused to bob.
#[tokio::test]
async fn a_session_outlives_a_proxy_restart_and_spans_replicas_but_stays_its_owners() {
    bounded(TEST_LIMIT, async {
        let mut s = setup(Options::default()).await;
        for user in ["alice", "bob"] {
            s.world.consent(&s.world.browser(), user).await;
        }
        let alice_token = s.world.bearer("alice").await;
        let mut alice = session_on(&s.proxy, &s, "alice", None);
        assert_eq!(alice.initialize(false).await.status, 200);
        let id = alice.session_id.clone().unwrap();
        assert_eq!(whoami_in(&mut alice).await, alice_token);

        s.proxy.restart().await;
        let replica = ProxyProcess::start(&s.world.cps[0], Some(&s.ca.ca_pem)).await;
        for proxy in [&s.proxy, &replica] {
            let mut resumed = session_on(proxy, &s, "alice", Some(&id));
            assert_eq!(whoami_in(&mut resumed).await, alice_token);
            let mut thief = session_on(proxy, &s, "bob", Some(&id));
            assert_unknown_session(&thief.call("whoami", json!({})).await);
            assert_unknown_session(&thief.delete().await);
        }
        // still one upstream session: nothing was re-initialized behind her back
        assert_eq!(s.upstream.initialize_count().await.unwrap(), 1);
    })
    .await;
}

/// Garbage session ids (in bulk, concurrently) and many sessions opened by an attacker
/// cost the proxy nothing it keeps, so alice's session is neither evicted nor reachable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_session_ids_neither_evicts_nor_reaches_anyone() {
    const GARBAGE: usize = 100_000;
    const ATTACKER_SESSIONS: usize = 300;
    const CONCURRENCY: usize = 32;
    bounded(TEST_LIMIT, async {
        let s = setup(Options::default()).await;
        for user in ["alice", "bob"] {
            s.world.consent(&s.world.browser(), user).await;
        }
        let mut alice = session_on(&s.proxy, &s, "alice", None);
        assert_eq!(alice.initialize(false).await.status, 200);
        let alices_id = alice.session_id.clone().unwrap();

        // bob opens sessions of his own, as many as he likes
        let mut opened = tokio::task::JoinSet::new();
        for worker in 0..CONCURRENCY {
            let url = s.proxy.mcp_url(SERVER);
            let bob = s.world.user("bob");
            opened.spawn(async move {
                for _ in (worker..ATTACKER_SESSIONS).step_by(CONCURRENCY) {
                    let mut session = McpSession::new(&url, &bob, LEGACY);
                    let reply = session.initialize(false).await;
                    assert_eq!(reply.status, 200, "{reply:?}");
                }
            });
        }
        opened.join_all().await;
        s.upstream.reset().await.unwrap();

        // and floods the proxy with ids it never issued, alice's among them, altered
        let started = std::time::Instant::now();
        let http = reqwest::Client::new();
        let body = json!({"jsonrpc":"2.0","id":1,"method":"tools/call",
            "params":{"name":"whoami","arguments":{}}})
        .to_string();
        let mut flood = tokio::task::JoinSet::new();
        for worker in 0..CONCURRENCY {
            let (http, body, url) = (http.clone(), body.clone(), s.proxy.mcp_url(SERVER));
            let bob = s.world.user("bob");
            let alices_id = alices_id.clone();
            flood.spawn(async move {
                for n in (worker..GARBAGE).step_by(CONCURRENCY) {
                    let id = match n % 3 {
                        0 => uuid::Uuid::new_v4().to_string(),
                        1 => format!("v1.{}.{}", uuid::Uuid::new_v4().simple(), "A".repeat(43)),
                        _ => {
                            // alice's id with one character of its tag changed
                            let mut altered = alices_id.clone().into_bytes();
                            let at = altered.len() - 1 - n % 40;
                            altered[at] = if altered[at] == b'A' { b'B' } else { b'A' };
                            String::from_utf8(altered).unwrap()
                        }
                    };
                    let status = http
                        .post(&url)
                        .bearer_auth(&bob)
                        .header("content-type", "application/json")
                        .header("accept", "application/json, text/event-stream")
                        .header("mcp-protocol-version", LEGACY)
                        .header("mcp-session-id", id)
                        .body(body.clone())
                        .send()
                        .await
                        .unwrap()
                        .status();
                    assert_eq!(status, 404);
                }
            });
        }
        flood.join_all().await;
        eprintln!(
            "{GARBAGE} forged session ids refused in {:?}",
            started.elapsed()
        );
        assert!(
            s.upstream.requests().await.unwrap().is_empty(),
            "a forged session id reached the upstream"
        );

        assert_eq!(whoami_in(&mut alice).await, s.world.bearer("alice").await);
        let mut thief = session_on(&s.proxy, &s, "bob", Some(&alices_id));
        assert_unknown_session(&thief.call("whoami", json!({})).await);
    })
    .await;
}

/// A server using token passthrough, at the test upstream.
async fn add_passthrough_server(s: &Setup, proxies: &[&ProxyProcess]) {
    let server = McpServer {
        name: PASSTHROUGH.into(),
        enabled: true,
        source: Some(Source::Remote(RemoteMcp {
            url: s.upstream.url().into(),
            transport: 0,
        })),
        auth: Some(Auth::TokenPassthrough(TokenPassthroughAuth {})),
        ..Default::default()
    };
    let request = CreateMcpServerRequest {
        mcp_server: Some(server),
        validate_only: false,
    };
    McpServerServiceClient::new(s.world.channel(0))
        .create_mcp_server(authed(request, &s.world.admin))
        .await
        .unwrap();
    for proxy in proxies {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        // the proxy has the server once it stops answering "not configured"
        while McpSession::new(&proxy.mcp_url(PASSTHROUGH), "", LEGACY)
            .initialize(false)
            .await
            .status
            == 404
        {
            assert!(tokio::time::Instant::now() < deadline, "never configured");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn passthrough_whoami(proxy: &ProxyProcess, token: &str) -> Result<String, Value> {
    let mut session = McpSession::new(&proxy.mcp_url(PASSTHROUGH), token, LEGACY);
    let init = session.initialize(false).await;
    if init.status != 200 {
        assert_eq!(init.status, 401, "{init:?}");
        return Err(init.body);
    }
    Ok(whoami_in(&mut session).await)
}

async fn gateway_whoami(
    proxy: &ProxyProcess,
    server: &str,
    token: &str,
) -> Result<String, RichError> {
    let channel = tonic::transport::Channel::from_shared(proxy.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let request = CallToolRequest {
        server_name: server.into(),
        tool_name: "whoami".into(),
        arguments: None,
    };
    let result = McpGatewayServiceClient::new(channel)
        .call_tool(authed(request, token))
        .await
        .map_err(|status| RichError::from_status(&status))?
        .into_inner();
    let structured = result.structured_content.expect("structured content");
    let Some(Kind::StructValue(headers)) = structured.fields["headers"].kind.clone() else {
        panic!("no headers: {structured:?}")
    };
    match headers
        .fields
        .get("authorization")
        .and_then(|v| v.kind.clone())
    {
        Some(Kind::StringValue(value)) => Ok(value),
        other => panic!("no authorization: {other:?}"),
    }
}

/// Token passthrough forwards only a token issued for the upstream itself: ADP's own
/// JWT (alone or naming the upstream too), a token without `aud`, or one for another
/// upstream is refused before anything is sent, on MCP and on the gRPC gateway.
#[tokio::test]
async fn token_passthrough_never_forwards_adps_own_jwt() {
    bounded(TEST_LIMIT, async {
        let s = setup(Options::default()).await;
        let cp = &s.world.cps[0];
        let strict = ProxyProcess::start_with(
            cp,
            Some(&s.ca.ca_pem),
            &[("ADP_JWT_AUDIENCE", ADP_AUDIENCE)],
        )
        .await;
        add_passthrough_server(&s, &[&s.proxy, &strict]).await;
        let upstream = s.upstream.url();
        let adps = token_with_audience(cp, "alice", json!(ADP_AUDIENCE));
        let for_upstream = token_with_audience(cp, "alice", json!(upstream));

        // ADP's JWT, verified and cached as a caller of the user_oauth server first
        let mut ordinary = McpSession::new(&strict.mcp_url(SERVER), &adps, LEGACY);
        let reply = ordinary.initialize(false).await;
        assert_eq!(
            reply.body["error"]["data"]["reason"],
            "OAUTH_CONNECTION_REQUIRED"
        );
        s.upstream.reset().await.unwrap();

        let refused = [
            (&strict, adps.clone()),
            (
                &strict,
                token_with_audience(cp, "alice", json!([ADP_AUDIENCE, upstream])),
            ),
            (&strict, token_with_audience(cp, "alice", Value::Null)),
            (
                &strict,
                token_with_audience(cp, "alice", json!("https://elsewhere.test/mcp")),
            ),
            // without ADP_JWT_AUDIENCE the upstream must still be named
            (&s.proxy, s.world.user("alice")),
            (
                &s.proxy,
                token_with_audience(cp, "alice", json!(ADP_AUDIENCE)),
            ),
        ];
        for (proxy, token) in &refused {
            let body = passthrough_whoami(proxy, token).await.unwrap_err();
            assert_eq!(
                body["error"]["data"]["reason"], "PASSTHROUGH_TOKEN_AUDIENCE",
                "{body}"
            );
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains(upstream), "{message}");
            let status = gateway_whoami(proxy, PASSTHROUGH, token).await.unwrap_err();
            assert_eq!(status.code, tonic::Code::Unauthenticated, "{status:?}");
            assert_eq!(status.reason, "PASSTHROUGH_TOKEN_AUDIENCE");
        }
        // nothing was forwarded, least of all ADP's JWT
        assert!(
            s.upstream.requests().await.unwrap().is_empty(),
            "a refused passthrough token reached the upstream"
        );

        // a token for the upstream itself goes through byte for byte, on both paths
        for proxy in [&strict, &s.proxy] {
            let seen = passthrough_whoami(proxy, &for_upstream).await.unwrap();
            assert_eq!(seen, format!("Bearer {for_upstream}"));
            let seen = gateway_whoami(proxy, PASSTHROUGH, &for_upstream)
                .await
                .unwrap();
            assert_eq!(seen, format!("Bearer {for_upstream}"));
        }
        let expected = format!("Bearer {for_upstream}");
        let requests = s.upstream.requests().await.unwrap();
        assert!(requests.iter().filter(|r| r.is_rpc("tools/call")).count() >= 4);
        for request in requests {
            if let Some(seen) = request.header("authorization") {
                assert_eq!(seen, expected, "{request:?}");
            }
        }
        // and, verified and cached for the upstream, it is not ADP's
        let mut misused = McpSession::new(&strict.mcp_url(SERVER), &for_upstream, LEGACY);
        let reply = misused.initialize(false).await;
        assert_eq!(reply.status, 401, "{reply:?}");
        assert_eq!(reply.body["error"]["data"]["reason"], "UNAUTHENTICATED");
    })
    .await;
}

/// Replicas given the same `ADP_PROXY_STATE_KEY_FILE` accept each other's session ids
/// and 2026-07-28 request states (and so does a restarted one); a proxy with another
/// key accepts neither. The key never shows in a log.
#[tokio::test]
async fn replicas_sharing_the_state_key_accept_each_others_ids_and_request_states() {
    bounded(TEST_LIMIT, async {
        let s = setup(Options::default()).await;
        s.world.consent(&s.world.browser(), "alice").await;
        let cp = &s.world.cps[0];
        let dir = tempfile::tempdir().unwrap();
        let shared_secret = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let shared_key = dir.path().join("shared");
        std::fs::write(&shared_key, format!("{shared_secret}\n")).unwrap();
        let other_key = dir.path().join("other");
        std::fs::write(&other_key, uuid::Uuid::new_v4().simple().to_string()).unwrap();
        let ca = Some(s.ca.ca_pem.as_path());
        let start = |key: std::path::PathBuf| async move {
            let key = key.to_str().unwrap().to_owned();
            ProxyProcess::start_with(cp, ca, &[("ADP_PROXY_STATE_KEY_FILE", key.as_str())]).await
        };
        let mut first = start(shared_key.clone()).await;
        let second = start(shared_key).await;
        let stranger = start(other_key).await;

        let alice_token = s.world.bearer("alice").await;
        let mut alice = session_on(&first, &s, "alice", None);
        assert_eq!(alice.initialize(false).await.status, 200);
        let id = alice.session_id.clone().unwrap();
        let mut elsewhere = session_on(&second, &s, "alice", Some(&id));
        assert_eq!(whoami_in(&mut elsewhere).await, alice_token);
        let mut estranged = session_on(&stranger, &s, "alice", Some(&id));
        assert_unknown_session(&estranged.call("whoami", json!({})).await);

        // bob has no connection: a 2026-07-28 call gets input_required with a state
        let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {"elicitation": {"url": {}}}});
        let call = json!({"jsonrpc":"2.0","id":5,"method":"tools/call",
            "params":{"name":"echo","arguments":{"text":"hi"},"_meta": meta}});
        let modern = |proxy: &ProxyProcess| {
            McpSession::new(&proxy.mcp_url(SERVER), &s.world.user("bob"), "2026-07-28")
        };
        let sealed = |reply: adp_e2e::proxy::McpReply| {
            assert_eq!(
                reply.body["result"]["resultType"], "input_required",
                "{reply:?}"
            );
            reply.body["result"]["requestState"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let retry = |state: &str| {
            let mut retry = call.clone();
            retry["params"]["requestState"] = json!(state);
            retry["params"]["inputResponses"] = json!({PROVIDER: {"action": "accept"}});
            retry
        };
        let state = sealed(modern(&first).post(call.clone()).await);
        // another key: refused (and so not spent)
        let reply = modern(&stranger).post(retry(&state)).await;
        assert_eq!(reply.status, 400, "{reply:?}");
        assert_eq!(
            reply.body["error"]["data"]["reason"],
            "INVALID_REQUEST_STATE"
        );
        // the same key: accepted, so answered as a retry (still no token: input_required)
        sealed(modern(&second).post(retry(&state)).await);

        // a restarted proxy accepts what it issued before
        let state = sealed(modern(&first).post(call.clone()).await);
        first.restart().await;
        sealed(modern(&first).post(retry(&state)).await);
        let mut resumed = session_on(&first, &s, "alice", Some(&id));
        assert_eq!(whoami_in(&mut resumed).await, alice_token);

        for mut proxy in [first, second, stranger] {
            for line in proxy.drain_log() {
                assert!(
                    !line.contains(&shared_secret),
                    "a proxy logged its state key"
                );
            }
        }
    })
    .await;
}

/// One setting: an environment variable and its value.
type Setting<'a> = (&'a str, &'a str);

/// Settings that would leave verification weak stop the proxy at start, with an error
/// naming the setting; a state key file must hold a real secret.
#[tokio::test]
async fn weak_jwt_settings_and_a_missing_state_key_stop_the_proxy() {
    bounded(TEST_LIMIT, async {
        let cp = ControlPlaneProcess::start().await;
        let dir = tempfile::tempdir().unwrap();
        let short_key = dir.path().join("short");
        std::fs::write(&short_key, "short-but-secret\n").unwrap();
        let good_key = dir.path().join("good");
        std::fs::write(&good_key, "0123456789abcdef0123456789abcdef").unwrap();
        let (short_key, good_key) = (short_key.to_str().unwrap(), good_key.to_str().unwrap());
        let https = ("ADP_JWKS_URL", "https://127.0.0.1:9/jwks");
        let http = ("ADP_JWKS_URL", "http://127.0.0.1:9/jwks");
        let audience = ("ADP_JWT_AUDIENCE", "adp");
        let key = ("ADP_PROXY_STATE_KEY_FILE", good_key);
        // (settings on top of the harness's HS256 ones, what the error must name)
        let cases: [(&[Setting], &[&str]); 5] = [
            (
                &[https, ("ADP_JWT_ISSUER", ""), audience, key],
                &["ADP_JWT_ISSUER"],
            ),
            (&[https, key], &["ADP_JWT_AUDIENCE"]),
            (
                &[http, audience, key],
                &["ADP_JWKS_URL", "ADP_INSECURE_DEVELOPMENT"],
            ),
            (
                &[http, audience, ("ADP_INSECURE_DEVELOPMENT", "true")],
                &["ADP_PROXY_STATE_KEY_FILE"],
            ),
            (
                &[("ADP_PROXY_STATE_KEY_FILE", short_key)],
                &["ADP_PROXY_STATE_KEY_FILE", "32"],
            ),
        ];
        for (settings, named) in cases {
            let stderr = ProxyProcess::refusal(&cp, settings).await;
            for name in named {
                assert!(stderr.contains(name), "{settings:?}: {stderr}");
            }
            assert!(!stderr.contains("short-but-secret"), "{stderr}");
        }
        // the same with the rules met: it serves
        let dev = ProxyProcess::start_with(
            &cp,
            None,
            &[http, audience, ("ADP_INSECURE_DEVELOPMENT", "true"), key],
        )
        .await;
        assert_eq!(dev.health().await["status"], "serving");
    })
    .await;
}
