//! Proves the oidc-provider harness with plain reqwest (no ADP code): authorization code
//! with PKCE, refresh rotation, client credentials, device flow, revocation, faults.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use adp_e2e::oidc::{
    AUTHORIZATION_CODE_GRANT, AuthorizationServer, Browser, CLIENT_CREDENTIALS_GRANT, ClientConfig,
    DEVICE_CODE_GRANT, REFRESH_TOKEN_GRANT, ServerConfig, TokenEndpointAuthMethod, TokenFault,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Never fetched: the browser stops at the first URL outside the server.
const REDIRECT_URI: &str = "http://127.0.0.1:9/oauth/v1/callback";
const SCOPE: &str = "openid repo read:org";

fn confidential() -> ClientConfig {
    ClientConfig::confidential("adp-confidential", "s3cret", REDIRECT_URI)
}

fn public() -> ClientConfig {
    ClientConfig::public("adp-public", REDIRECT_URI)
}

async fn start(clients: &[ClientConfig]) -> AuthorizationServer {
    let config = ServerConfig {
        access_token_ttl: Duration::from_secs(10),
        ..ServerConfig::default()
    };
    let config = clients
        .iter()
        .cloned()
        .fold(config, ServerConfig::with_client);
    AuthorizationServer::start(config).await
}

/// (verifier, S256 challenge)
fn pkce() -> (String, String) {
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// POSTs `form` to `url` authenticated as `client` the way its auth method says.
async fn post_as(client: &ClientConfig, url: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut form: Vec<(&str, &str)> = form.to_vec();
    let mut request = reqwest::Client::new().post(url);
    match client.token_endpoint_auth_method {
        TokenEndpointAuthMethod::ClientSecretBasic => {
            request = request.basic_auth(&client.client_id, client.client_secret.as_deref());
        }
        TokenEndpointAuthMethod::ClientSecretPost => {
            form.push(("client_id", &client.client_id));
            form.push(("client_secret", client.client_secret.as_deref().unwrap()));
        }
        TokenEndpointAuthMethod::None => form.push(("client_id", &client.client_id)),
    }
    let response = request.form(&form).send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn token(
    server: &AuthorizationServer,
    client: &ClientConfig,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    post_as(client, &server.endpoints().token_endpoint, form).await
}

/// Browser consent as `login`, then the code exchange; returns the token response.
async fn authorize(
    server: &AuthorizationServer,
    browser: &Browser,
    client: &ClientConfig,
    login: &str,
) -> Value {
    let (verifier, challenge) = pkce();
    let state = uuid::Uuid::new_v4().to_string();
    let url = server.authorization_url(&[
        ("response_type", "code"),
        ("client_id", &client.client_id),
        ("redirect_uri", REDIRECT_URI),
        ("scope", SCOPE),
        ("state", &state),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let callback = browser.consent(url.as_str(), login).await.unwrap();
    assert!(callback.as_str().starts_with(REDIRECT_URI), "{callback}");
    let query = |name: &str| {
        callback
            .query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    };
    assert_eq!(query("state").as_deref(), Some(state.as_str()));
    assert_eq!(
        query("iss").as_deref(),
        Some(server.issuer()),
        "RFC 9207 iss"
    );
    let code = query("code").expect("code in callback");
    let (status, body) = token(
        server,
        client,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn scopes(body: &Value) -> Vec<&str> {
    body["scope"]
        .as_str()
        .unwrap_or_default()
        .split(' ')
        .collect()
}

async fn round_trip(client: ClientConfig) {
    let server = start(std::slice::from_ref(&client)).await;
    let body = authorize(&server, &server.browser(), &client, "alice").await;
    assert!(
        body["access_token"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    assert!(
        body["refresh_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 10);
    let granted = scopes(&body);
    assert!(
        granted.contains(&"repo") && granted.contains(&"read:org"),
        "{body}"
    );
    assert_eq!(server.stats().await.count(AUTHORIZATION_CODE_GRANT), 1);
}

#[tokio::test]
async fn authorization_code_with_pkce_for_a_basic_confidential_client() {
    round_trip(confidential()).await;
}

#[tokio::test]
async fn authorization_code_with_pkce_for_a_post_confidential_client() {
    round_trip(confidential().with_auth_method(TokenEndpointAuthMethod::ClientSecretPost)).await;
}

#[tokio::test]
async fn authorization_code_with_pkce_for_a_public_client() {
    round_trip(public()).await;
}

#[tokio::test]
async fn the_same_browser_skips_login_and_consent_the_second_time() {
    let client = confidential();
    let server = start(std::slice::from_ref(&client)).await;
    let browser = server.browser();
    authorize(&server, &browser, &client, "alice").await;
    let again = authorize(&server, &browser, &client, "ignored").await;
    assert!(scopes(&again).contains(&"repo"), "{again}");
}

#[tokio::test]
async fn denying_consent_redirects_with_access_denied() {
    let client = confidential();
    let server = start(std::slice::from_ref(&client)).await;
    let url = server.authorization_url(&[
        ("response_type", "code"),
        ("client_id", &client.client_id),
        ("redirect_uri", REDIRECT_URI),
        ("scope", SCOPE),
        ("state", "s"),
    ]);
    let callback = server.browser().deny(url.as_str(), "alice").await.unwrap();
    assert!(
        callback
            .query_pairs()
            .any(|(k, v)| k == "error" && v == "access_denied"),
        "{callback}"
    );
}

#[tokio::test]
async fn refresh_rotates_and_reusing_the_old_token_fails() {
    for client in [confidential(), public()] {
        let server = start(std::slice::from_ref(&client)).await;
        let first = authorize(&server, &server.browser(), &client, "alice").await;
        let old = first["refresh_token"].as_str().unwrap();

        let (status, second) = token(
            &server,
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", old)],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{second}");
        let new = second["refresh_token"]
            .as_str()
            .expect("rotated refresh token");
        assert_ne!(new, old);
        assert_ne!(second["access_token"], first["access_token"]);
        assert!(scopes(&second).contains(&"repo"), "{second}");

        let (status, reuse) = token(
            &server,
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", old)],
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(reuse["error"], "invalid_grant");
        // oidc-provider treats reuse as theft and revokes the whole grant
        let (_, after) = token(
            &server,
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", new)],
        )
        .await;
        assert_eq!(after["error"], "invalid_grant");
        assert_eq!(server.stats().await.count(REFRESH_TOKEN_GRANT), 3);
    }
}

#[tokio::test]
async fn client_credentials_issue_a_scoped_token() {
    let client = confidential();
    let server = start(std::slice::from_ref(&client)).await;
    let (status, body) = token(
        &server,
        &client,
        &[("grant_type", "client_credentials"), ("scope", "repo")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "repo");
    assert!(body.get("refresh_token").is_none());
    assert_eq!(server.stats().await.count(CLIENT_CREDENTIALS_GRANT), 1);
}

#[tokio::test]
async fn device_flow_with_pending_slow_down_and_success() {
    let client = public();
    let config = ServerConfig {
        device_poll_interval: Some(Duration::from_secs(1)),
        slow_down_increment: Duration::from_secs(1),
        ..ServerConfig::default()
    }
    .with_client(client.clone());
    let server = AuthorizationServer::start(config).await;
    let device_endpoint = &server.endpoints().device_authorization_endpoint;
    let (status, device) = post_as(&client, device_endpoint, &[("scope", "repo read:org")]).await;
    assert_eq!(status, StatusCode::OK, "{device}");
    assert_eq!(device["interval"], 1);
    let device_code = device["device_code"].as_str().unwrap();
    let poll = [
        ("grant_type", DEVICE_CODE_GRANT),
        ("device_code", device_code),
    ];

    let (_, pending) = token(&server, &client, &poll).await;
    assert_eq!(pending["error"], "authorization_pending");
    let (_, too_fast) = token(&server, &client, &poll).await;
    assert_eq!(too_fast["error"], "slow_down");

    let verification = device["verification_uri_complete"].as_str().unwrap();
    server
        .browser()
        .approve_device(verification, "bob")
        .await
        .unwrap();

    tokio::time::sleep(Duration::from_millis(2100)).await; // interval is now 1 + 1 s
    let (status, body) = token(&server, &client, &poll).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["refresh_token"].is_string(), "{body}");
    assert!(scopes(&body).contains(&"read:org"), "{body}");
    let stats = server.stats().await;
    assert_eq!((stats.count(DEVICE_CODE_GRANT), stats.slow_down), (3, 1));
}

#[tokio::test]
async fn denied_device_authorization_polls_access_denied() {
    let client = public();
    let server = start(std::slice::from_ref(&client)).await;
    let device_endpoint = &server.endpoints().device_authorization_endpoint;
    let (_, device) = post_as(&client, device_endpoint, &[("scope", "repo")]).await;
    let verification = device["verification_uri_complete"].as_str().unwrap();
    server.browser().deny_device(verification).await.unwrap();
    let poll = [
        ("grant_type", DEVICE_CODE_GRANT),
        ("device_code", device["device_code"].as_str().unwrap()),
    ];
    let (_, body) = token(&server, &client, &poll).await;
    assert_eq!(body["error"], "access_denied");
}

#[tokio::test]
async fn revocation_and_revoked_grants_end_refresh() {
    let client = confidential();
    let server = start(std::slice::from_ref(&client)).await;

    let body = authorize(&server, &server.browser(), &client, "alice").await;
    let refresh_token = body["refresh_token"].as_str().unwrap();
    let revocation = &server.endpoints().revocation_endpoint;
    let (status, _) = post_as(&client, revocation, &[("token", refresh_token)]).await;
    assert_eq!(status, StatusCode::OK);
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    let (_, after) = token(&server, &client, &refresh).await;
    assert_eq!(after["error"], "invalid_grant");

    let body = authorize(&server, &server.browser(), &client, "carol").await;
    assert_eq!(server.revoke_grants("carol").await, 1);
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", body["refresh_token"].as_str().unwrap()),
    ];
    let (_, after) = token(&server, &client, &refresh).await;
    assert_eq!(after["error"], "invalid_grant");
}

#[tokio::test]
async fn token_faults_are_injected_counted_and_cleared() {
    let client = confidential();
    let server = start(std::slice::from_ref(&client)).await;
    let cc = [("grant_type", "client_credentials")];

    server.set_token_fault(TokenFault::status(503)).await;
    let (status, body) = token(&server, &client, &cc).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    server.clear_token_fault().await;
    assert_eq!(token(&server, &client, &cc).await.0, StatusCode::OK);

    server
        .set_token_fault(TokenFault::status(502).times(1))
        .await;
    assert_eq!(
        token(&server, &client, &cc).await.0,
        StatusCode::BAD_GATEWAY
    );
    assert_eq!(token(&server, &client, &cc).await.0, StatusCode::OK);

    server
        .set_token_fault(TokenFault::hang(Duration::from_secs(3)).times(1))
        .await;
    let hung = reqwest::Client::new()
        .post(&server.endpoints().token_endpoint)
        .basic_auth(&client.client_id, client.client_secret.as_deref())
        .form(&cc)
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(hung.is_err_and(|error| error.is_timeout()));

    let stats = server.stats().await;
    assert_eq!((stats.total, stats.faults_injected), (5, 3));
    assert_eq!(stats.count(CLIENT_CREDENTIALS_GRANT), 5);
    server.reset_stats().await;
    assert_eq!(server.stats().await.total, 0);
}
