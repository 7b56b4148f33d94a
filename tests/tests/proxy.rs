//! adp-proxy end to end: the real control plane, the real proxy, a real MCP server from
//! the official TypeScript SDK behind TLS with a test CA, the real oidc-provider for
//! consent, and MCP clients (the official SDK's and a wire-level one).
//!
//! Build the binaries first: `cargo build --workspace --bins`.
#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
#[path = "consent/support.rs"]
mod support;

#[path = "proxy/adpctl_user.rs"]
mod adpctl_user;
#[path = "proxy/gateway.rs"]
mod gateway;
#[path = "proxy/outage.rs"]
mod outage;
#[path = "proxy/refresh.rs"]
mod refresh;
#[path = "proxy/security.rs"]
mod security;

use adp_api::v1::mcp_server::Auth;
use adp_api::v1::{McpServer, TokenInjection, UserOAuthAuth};
use adp_e2e::consent::bounded;
use adp_e2e::proxy::{McpSession, ProxyProcess};
use adp_e2e::tls::TestCa;
use adp_e2e::upstream::{McpUpstream, run_mcp_client};
use serde_json::{Value, json};
use support::*;

struct Setup {
    world: World,
    upstream: McpUpstream,
    proxy: ProxyProcess,
    ca: TestCa,
}

async fn setup(options: Options) -> Setup {
    let ca = TestCa::generate().unwrap();
    let upstream = McpUpstream::start(&ca).await.unwrap();
    let options = Options {
        server_url: upstream.url().to_owned(),
        ..options
    };
    let world = World::start(options).await;
    let proxy = ProxyProcess::start(&world.cps[0], Some(&ca.ca_pem)).await;
    Setup {
        world,
        upstream,
        proxy,
        ca,
    }
}

impl Setup {
    fn session(&self, subject: &str, version: &str) -> McpSession {
        McpSession::new(
            &self.proxy.mcp_url(SERVER),
            &self.world.user(subject),
            version,
        )
    }

    /// Consent for `subject` through the browser, starting from the URL a proxy error gave.
    async fn consent_via(&self, authorize_url: &str, subject: &str) {
        self.world
            .browser()
            .connect(authorize_url, subject)
            .await
            .unwrap_or_else(|e| panic!("consent as {subject}: {e:#}"));
    }

    /// `whoami` through the proxy as `subject` (legacy client), returning the
    /// credential headers the upstream saw.
    async fn whoami(&self, server: &str, subject: &str) -> Value {
        let mut session = McpSession::new(
            &self.proxy.mcp_url(server),
            &self.world.user(subject),
            "2025-06-18",
        );
        let init = session.initialize(false).await;
        assert_eq!(init.status, 200, "{init:?}");
        assert!(init.body.get("result").is_some(), "{init:?}");
        let reply = session.call("whoami", json!({})).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        reply.body["result"]["structuredContent"]["headers"].clone()
    }

    async fn add_server(&self, name: &str, injection: Option<TokenInjection>) {
        self.add_server_at(name, self.upstream.url(), 0, injection)
            .await;
    }

    async fn add_server_at(
        &self,
        name: &str,
        url: &str,
        transport: i32,
        injection: Option<TokenInjection>,
    ) {
        let server = McpServer {
            name: name.into(),
            enabled: true,
            source: Some(adp_api::v1::mcp_server::Source::Remote(
                adp_api::v1::RemoteMcp {
                    url: url.into(),
                    transport,
                },
            )),
            auth: Some(Auth::UserOauth(UserOAuthAuth {
                provider_name: PROVIDER.into(),
                required_scopes: vec!["repo".into()],
                token_injection: injection,
            })),
            ..Default::default()
        };
        let request = adp_api::v1::CreateMcpServerRequest {
            mcp_server: Some(server),
            validate_only: false,
        };
        adp_api::v1::mcp_server_service_client::McpServerServiceClient::new(self.world.channel(0))
            .create_mcp_server(adp_e2e::authed(request, &self.world.admin))
            .await
            .unwrap();
        let name = name.to_owned();
        // the proxy has the server once it stops answering "not configured"
        adp_e2e::assert_eventually!(
            std::time::Duration::from_secs(10),
            McpSession::new(&self.proxy.mcp_url(&name), "", "2025-06-18")
                .initialize(false)
                .await
                .status
                != 404,
            "{name} reaching the proxy"
        );
    }
}

/// The headline flow, with the official TypeScript SDK as the client: the first call
/// gets -32042 with the authorize URL, consent runs through the real provider, and the
/// retry reaches the upstream carrying the user's own token and not their JWT.
#[tokio::test]
async fn sdk_client_gets_url_elicitation_then_succeeds_after_consent() {
    bounded(TEST_LIMIT, async {
        let s = setup(Options::default()).await;
        let alice = s.world.user("alice");
        let url = s.proxy.mcp_url(SERVER);

        let first = run_mcp_client(&url, &alice, "whoami", &json!({}))
            .await
            .unwrap();
        assert_eq!(first["ok"], false, "{first}");
        assert_eq!(first["code"], -32042, "{first}");
        let elicitation = &first["data"]["elicitations"][0];
        assert_eq!(elicitation["mode"], "url");
        assert!(
            elicitation["elicitationId"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
        );
        let authorize_url = elicitation["url"].as_str().unwrap().to_owned();
        assert!(
            authorize_url.starts_with(&format!("{}/oauth/v1/connect/", s.world.cps[0].http_url)),
            "{authorize_url}"
        );
        assert!(
            elicitation["message"]
                .as_str()
                .unwrap()
                .contains("GitHub (test)")
        );

        s.consent_via(&authorize_url, "alice").await;
        let second = run_mcp_client(&url, &alice, "whoami", &json!({}))
            .await
            .unwrap();
        assert_eq!(second["ok"], true, "{second}");
        let seen = &second["result"]["structuredContent"]["headers"];
        let expected = s.world.bearer("alice").await;
        assert_eq!(seen["authorization"], expected.as_str());

        // the caller's JWT never reached the upstream, in any header of any request
        let requests = s.upstream.requests().await.unwrap();
        assert!(requests.iter().any(|r| r.is_rpc("tools/call")));
        for request in &requests {
            for value in request.headers.values() {
                assert!(!value.contains(&alice), "the caller's JWT leaked upstream");
            }
        }
    })
    .await;
}

/// Clients of other generations get the consent condition in the form they understand.
#[tokio::test]
async fn consent_errors_follow_the_negotiated_protocol() {
    bounded(TEST_LIMIT, async {
        let s = setup(Options::default()).await;

        // 2025-06-18: no URL elicitation exists; a JSON-RPC error with the details in data
        let mut legacy = s.session("bob", "2025-06-18");
        let reply = legacy.initialize(true).await;
        assert_eq!(reply.status, 200);
        let error = &reply.body["error"];
        assert_eq!(error["code"], -31001, "{reply:?}");
        assert_eq!(error["data"]["reason"], "OAUTH_CONNECTION_REQUIRED");
        assert_eq!(error["data"]["providerName"], PROVIDER);
        assert_eq!(error["data"]["serverName"], SERVER);
        let authorize_url = error["data"]["authorizeUrl"].as_str().unwrap();
        assert!(error["message"].as_str().unwrap().contains(authorize_url));

        // 2025-11-25 without the url capability: the same generic form, never -32042
        let mut form_only = s.session("bob", "2025-11-25");
        let reply = form_only.initialize(false).await;
        assert_eq!(reply.body["error"]["code"], -31001, "{reply:?}");

        // 2026-07-28: input_required with a sealed requestState on tools/call
        let mut modern = s.session("bob", "2026-07-28");
        let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {"elicitation": {"url": {}}}});
        let call = json!({"jsonrpc":"2.0","id":5,"method":"tools/call",
            "params":{"name":"echo","arguments":{"text":"hi"},"_meta": meta}});
        let reply = modern.post(call.clone()).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let result = &reply.body["result"];
        assert_eq!(result["resultType"], "input_required", "{reply:?}");
        let url = result["inputRequests"][PROVIDER]["params"]["url"]
            .as_str()
            .unwrap();
        assert!(url.contains("/oauth/v1/connect/"), "{url}");
        let state = result["requestState"].as_str().unwrap().to_owned();

        // a forged state is refused; the real one is spent by a retry (still no token
        // here, so the answer is another input_required)
        let mut forged = call.clone();
        forged["params"]["requestState"] = json!(format!("{state}x"));
        let reply = modern.post(forged).await;
        assert_eq!(reply.status, 400, "{reply:?}");
        let mut retry = call.clone();
        retry["params"]["requestState"] = json!(state);
        retry["params"]["inputResponses"] = json!({PROVIDER: {"action": "accept"}});
        let reply = modern.post(retry.clone()).await;
        assert_eq!(
            reply.body["result"]["resultType"], "input_required",
            "{reply:?}"
        );
        let reused = modern.post(retry).await;
        assert_eq!(reused.status, 400, "a request state works once: {reused:?}");

        // 2026-07-28 without the capability: 400 and -32021
        let mut incapable = s.session("bob", "2026-07-28");
        let mut bare = call.clone();
        bare["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"] = json!({});
        let reply = incapable.post(bare).await;
        assert_eq!(reply.status, 400);
        assert_eq!(reply.body["error"]["code"], -32021);
    })
    .await;
}

/// Token injection as each server says, and every user with their own token.
#[tokio::test]
async fn injection_follows_the_server_and_users_keep_their_own_tokens() {
    bounded(TEST_LIMIT, async {
        let s = setup(Options::default()).await;
        for user in ["alice", "bob"] {
            s.world.consent(&s.world.browser(), user).await;
        }
        let alice = s.whoami(SERVER, "alice").await;
        let bob = s.whoami(SERVER, "bob").await;
        assert_eq!(
            alice["authorization"],
            s.world.bearer("alice").await.as_str()
        );
        assert_eq!(bob["authorization"], s.world.bearer("bob").await.as_str());
        assert_ne!(alice["authorization"], bob["authorization"]);

        s.add_server(
            "apikey",
            Some(TokenInjection {
                header_name: "X-Api-Key".into(),
                header_prefix: Some(String::new()),
            }),
        )
        .await;
        let seen = s.whoami("apikey", "alice").await;
        let token = s.world.bearer("alice").await;
        let bare = token.trim_start_matches("Bearer ");
        assert_eq!(seen["x-api-key"], bare, "{seen}");
        assert!(seen.get("authorization").is_none(), "{seen}");

        s.add_server(
            "custom-prefix",
            Some(TokenInjection {
                header_name: "X-Upstream-Token".into(),
                header_prefix: Some("Token ".into()),
            }),
        )
        .await;
        let seen = s.whoami("custom-prefix", "bob").await;
        let bob_token = s.world.bearer("bob").await;
        let expected = format!("Token {}", bob_token.trim_start_matches("Bearer "));
        assert_eq!(seen["x-upstream-token"], expected.as_str(), "{seen}");

        // a session belongs to whoever opened it
        let mut alices = s.session("alice", "2025-06-18");
        alices.initialize(false).await;
        let mut stolen = s.session("bob", "2025-06-18");
        stolen.session_id = alices.session_id.clone();
        let reply = stolen.call("whoami", json!({})).await;
        assert_eq!(reply.status, 404, "{reply:?}");
    })
    .await;
}

/// An admin adds a required scope: the change reaches the proxy over the config stream
/// and the next call, though a credential was cached, asks for the upgrade.
#[tokio::test]
async fn a_new_required_scope_reaches_the_proxy_and_asks_for_an_upgrade() {
    bounded(TEST_LIMIT, async {
        let s = setup(Options::default()).await;
        s.world.consent(&s.world.browser(), "alice").await;
        s.whoami(SERVER, "alice").await;
        let before = s.proxy.health().await["config"]["revision"]
            .as_i64()
            .unwrap();

        let patch = McpServer {
            name: SERVER.into(),
            auth: Some(Auth::UserOauth(UserOAuthAuth {
                provider_name: PROVIDER.into(),
                required_scopes: vec!["repo".into(), "read:org".into()],
                token_injection: None,
            })),
            ..Default::default()
        };
        s.world.update_server(patch, &["user_oauth"]).await.unwrap();
        s.proxy
            .wait_for(|h| h["config"]["revision"].as_i64().unwrap() > before)
            .await;

        let mut session = s.session("alice", "2025-06-18");
        let reply = session.initialize(false).await;
        let error = &reply.body["error"];
        assert_eq!(
            error["data"]["reason"], "SCOPE_UPGRADE_REQUIRED",
            "{reply:?}"
        );
        assert_eq!(error["data"]["missingScopes"], json!(["read:org"]));
    })
    .await;
}

/// The control plane goes away: the proxy keeps routing with its last config (and the
/// credentials it holds), says so in its health, and converges once it is back.
#[tokio::test]
async fn the_proxy_rides_out_a_control_plane_outage() {
    bounded(TEST_LIMIT, async {
        let mut s = setup(Options::default()).await;
        s.world.consent(&s.world.browser(), "alice").await;
        s.whoami(SERVER, "alice").await;

        s.world.cps[0].kill().await;
        let health = s
            .proxy
            .wait_for(|h| h["config"]["connected"] == false)
            .await;
        assert_eq!(health["status"], "serving");
        // cached config and credential: alice keeps working
        let seen = s.whoami(SERVER, "alice").await;
        assert!(
            seen["authorization"]
                .as_str()
                .unwrap()
                .starts_with("Bearer ")
        );
        // bob has nothing cached: a clear "unavailable", not a hang or a consent prompt
        let mut bob = s.session("bob", "2025-06-18");
        let reply = bob.initialize(false).await;
        assert_eq!(reply.status, 503, "{reply:?}");
        assert!(
            reply.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("control plane"),
            "{reply:?}"
        );

        s.world.cps[0].restart().await;
        s.proxy.wait_for(|h| h["config"]["connected"] == true).await;
        s.add_server("after-restart", None).await;
        let seen = s.whoami("after-restart", "alice").await;
        assert!(
            seen["authorization"]
                .as_str()
                .unwrap()
                .starts_with("Bearer ")
        );
    })
    .await;
}

/// What a caller gets for mistakes: each a clear status and JSON-RPC error.
#[tokio::test]
async fn unknown_disabled_and_unauthenticated_calls_are_refused_clearly() {
    bounded(TEST_LIMIT, async {
        let s = setup(Options::default()).await;
        let mut nobody = McpSession::new(&s.proxy.mcp_url(SERVER), "", "2025-06-18");
        let reply = nobody.initialize(false).await;
        assert_eq!(reply.status, 401, "{reply:?}");
        assert_eq!(reply.body["error"]["data"]["reason"], "UNAUTHENTICATED");

        let mut forged = McpSession::new(&s.proxy.mcp_url(SERVER), "not-a-jwt", "2025-06-18");
        assert_eq!(forged.initialize(false).await.status, 401);

        let mut lost = McpSession::new(&s.proxy.mcp_url("nope"), &s.world.user("a"), "2025-06-18");
        let reply = lost.initialize(false).await;
        assert_eq!(reply.status, 404);
        assert_eq!(
            reply.body["error"]["data"]["reason"],
            "MCP_SERVER_NOT_FOUND"
        );

        let patch = McpServer {
            name: SERVER.into(),
            enabled: false,
            ..Default::default()
        };
        s.world.update_server(patch, &["enabled"]).await.unwrap();
        let reply = adp_e2e::eventually::eventually(
            "the disabled server refused",
            std::time::Duration::from_secs(10),
            || async {
                let reply = s.session("a", "2025-06-18").initialize(false).await;
                if reply.status == 403 {
                    Ok(reply)
                } else {
                    Err(reply)
                }
            },
        )
        .await;
        assert_eq!(reply.body["error"]["data"]["reason"], "MCP_SERVER_DISABLED");
    })
    .await;
}
