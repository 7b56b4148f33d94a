//! Proves the MCP upstream harness without ADP: the SDK client talks straight to the SDK
//! server over HTTPS (trusting the test CA) and the server's request log shows what
//! arrived.
#![allow(clippy::unwrap_used)]

use adp_e2e::tls::TestCa;
use adp_e2e::upstream::{McpUpstream, run_mcp_client, run_mcp_client_trusting};
use serde_json::{Value, json};

#[tokio::test]
async fn whoami_reports_the_bearer_token_and_the_log_records_it() {
    let ca = TestCa::generate().unwrap();
    let upstream = McpUpstream::start(&ca).await.unwrap();
    assert!(upstream.url().starts_with("https://127.0.0.1:"));

    let report = run_mcp_client_trusting(&ca, upstream.url(), "t-123", "whoami", &json!({}))
        .await
        .unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["protocolVersion"], "2025-11-25", "{report}");
    let text = report["result"]["content"][0]["text"].as_str().unwrap();
    let headers: Value = serde_json::from_str(text).unwrap();
    assert_eq!(headers["authorization"], "Bearer t-123");

    let requests = upstream.requests().await.unwrap();
    let initialize = requests.iter().find(|r| r.is_rpc("initialize")).unwrap();
    assert_eq!(initialize.method, "POST");
    assert_eq!(initialize.path, "/mcp");
    assert_eq!(initialize.header("Authorization"), Some("Bearer t-123"));
    let offered = &initialize.body.as_ref().unwrap()["params"];
    assert_eq!(offered["protocolVersion"], "2025-11-25");
    assert_eq!(offered["capabilities"]["elicitation"]["url"], json!({}));

    let calls = upstream.requests_for("tools/call").await.unwrap();
    assert_eq!(calls.len(), 1, "{requests:#?}");
    assert_eq!(calls[0].header("authorization"), Some("Bearer t-123"));
    assert_eq!(calls[0].header("mcp-protocol-version"), Some("2025-11-25"));
    let session = report["sessionId"].as_str().unwrap();
    assert_eq!(calls[0].header("mcp-session-id"), Some(session));
    assert_eq!(upstream.initialize_count().await.unwrap(), 1);
}

#[tokio::test]
async fn echo_returns_structured_content_and_reset_clears_the_log() {
    let ca = TestCa::generate().unwrap();
    let upstream = McpUpstream::start(&ca).await.unwrap();

    let args = json!({ "text": "hello upstream" });
    let report = run_mcp_client_trusting(&ca, upstream.url(), "t-456", "echo", &args)
        .await
        .unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(
        report["result"]["structuredContent"],
        json!({ "text": "hello upstream" })
    );
    assert_eq!(report["result"]["content"][0]["text"], "hello upstream");

    let second = run_mcp_client_trusting(&ca, upstream.url(), "t-456", "echo", &args)
        .await
        .unwrap();
    assert_eq!(second["ok"], true, "{second}");
    assert_eq!(upstream.initialize_count().await.unwrap(), 2);

    upstream.reset().await.unwrap();
    assert!(upstream.requests().await.unwrap().is_empty());
    assert_eq!(upstream.initialize_count().await.unwrap(), 0);
}

#[tokio::test]
async fn whoami_reports_x_headers_and_omits_others() {
    let ca = TestCa::generate().unwrap();
    let upstream = McpUpstream::start(&ca).await.unwrap();
    let report = run_mcp_client_trusting(&ca, upstream.url(), "", "whoami", &json!({}))
        .await
        .unwrap();
    assert_eq!(report["ok"], true, "{report}");
    let headers = &report["result"]["structuredContent"]["headers"];
    assert_eq!(headers, &json!({}), "no Authorization was sent: {report}");
    let calls = upstream.requests_for("tools/call").await.unwrap();
    assert_eq!(calls[0].header("authorization"), None);
}

#[tokio::test]
async fn a_client_without_the_test_ca_fails_to_connect() {
    let ca = TestCa::generate().unwrap();
    let upstream = McpUpstream::start(&ca).await.unwrap();
    let report = run_mcp_client(upstream.url(), "t-123", "whoami", &json!({}))
        .await
        .unwrap();
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["phase"], "connect", "{report}");
    let cause = report["cause"].as_str().unwrap_or_default();
    assert!(cause.contains("certificate"), "{report}");
    assert!(upstream.requests().await.unwrap().is_empty());
}
