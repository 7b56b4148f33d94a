use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::test_support::{FakeProvider, Reply, fast_client, oauth_error, token_json};
use crate::{AuthMethod, FlowError, OAuthClient, Pkce, RetryPolicy, TokenTypeHint};

const TIMEOUT: Duration = Duration::from_secs(5);

fn redirect() -> Url {
    Url::parse("https://adp.example.com/oauth/v1/callback").expect("url")
}

fn scopes(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn authorization_url_carries_pkce_state_scopes_and_redirect() {
    let fake = FakeProvider::start(|_, _| Reply::Text(404, "")).await;
    let client = fast_client(1, TIMEOUT);
    let pkce = Pkce::generate();
    let url = client
        .authorization_url(
            &fake.endpoints(AuthMethod::ClientSecretBasic),
            &redirect(),
            &scopes(&["repo", "read:org"]),
            "state-123",
            &pkce,
        )
        .expect("url");
    assert_eq!(url.path(), "/authorize");
    let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("response_type"), Some("code"));
    assert_eq!(get("client_id"), Some("client-id"));
    assert_eq!(get("state"), Some("state-123"));
    assert_eq!(get("scope"), Some("repo read:org"));
    assert_eq!(get("redirect_uri"), Some(redirect().as_str()));
    assert_eq!(get("code_challenge"), Some(pkce.challenge.as_str()));
    assert_eq!(get("code_challenge_method"), Some("S256"));
    assert!(!url.as_str().contains(pkce.verifier.expose_secret()));
    assert!(!url.as_str().contains("s3cr3t"));

    let mut no_authorize = fake.endpoints(AuthMethod::ClientSecretBasic);
    no_authorize.authorize_url = None;
    let error = client
        .authorization_url(&no_authorize, &redirect(), &[], "s", &pkce)
        .expect_err("no endpoint");
    assert!(matches!(error, FlowError::Misconfigured(_)));
    let forged = Pkce {
        challenge: "not-the-challenge".into(),
        ..pkce
    };
    let error = client
        .authorization_url(
            &fake.endpoints(AuthMethod::None),
            &redirect(),
            &[],
            "s",
            &forged,
        )
        .expect_err("bad pkce");
    assert!(matches!(error, FlowError::Misconfigured(_)));
}

async fn exchange_with(method: AuthMethod) -> crate::test_support::Recorded {
    let fake = FakeProvider::start(|_, _| {
        let mut body = token_json("at-1", Some("rt-1"));
        body["scope"] = "repo read:org".into();
        Reply::Json(200, body)
    })
    .await;
    let verifier = SecretString::from("v".repeat(43));
    let before = chrono::Utc::now();
    let tokens = fast_client(3, TIMEOUT)
        .exchange_code(&fake.endpoints(method), &redirect(), "the-code", &verifier)
        .await
        .expect("tokens");
    assert_eq!(tokens.access_token.expose_secret(), "at-1");
    assert_eq!(
        tokens.refresh_token.as_ref().map(|t| t.expose_secret()),
        Some("rt-1")
    );
    assert_eq!(tokens.token_type, "Bearer");
    assert_eq!(tokens.scopes, Some(scopes(&["repo", "read:org"])));
    let expires_at = tokens.expires_at.expect("expiry");
    assert!(expires_at >= before + chrono::Duration::seconds(3600));
    assert!(expires_at <= chrono::Utc::now() + chrono::Duration::seconds(3600));

    let calls = fake.calls();
    assert_eq!(calls.len(), 1);
    let call = calls.into_iter().next().expect("one call");
    assert_eq!(call.path, "/token");
    assert_eq!(call.param("grant_type"), Some("authorization_code"));
    assert_eq!(call.param("code"), Some("the-code"));
    assert_eq!(call.param("code_verifier"), Some("v".repeat(43).as_str()));
    assert_eq!(call.param("redirect_uri"), Some(redirect().as_str()));
    call
}

#[tokio::test]
async fn exchange_with_client_secret_basic_uses_the_authorization_header() {
    let call = exchange_with(AuthMethod::ClientSecretBasic).await;
    let expected = format!("Basic {}", STANDARD.encode("client-id:s3cr3t"));
    assert_eq!(call.authorization.as_deref(), Some(expected.as_str()));
    assert_eq!(call.param("client_secret"), None);
}

#[tokio::test]
async fn exchange_with_client_secret_post_puts_credentials_in_the_body() {
    let call = exchange_with(AuthMethod::ClientSecretPost).await;
    assert_eq!(call.authorization, None);
    assert_eq!(call.param("client_id"), Some("client-id"));
    assert_eq!(call.param("client_secret"), Some("s3cr3t"));
}

#[tokio::test]
async fn exchange_with_auth_none_never_sends_the_secret() {
    // the endpoints carry a secret, but a public client must not send it
    let call = exchange_with(AuthMethod::None).await;
    assert_eq!(call.authorization, None);
    assert_eq!(call.param("client_id"), Some("client-id"));
    assert_eq!(call.param("client_secret"), None);
}

#[tokio::test]
async fn code_exchange_is_never_retried() {
    let fake = FakeProvider::start(|_, _| Reply::Text(503, "busy")).await;
    let error = fast_client(3, TIMEOUT)
        .exchange_code(
            &fake.endpoints(AuthMethod::ClientSecretBasic),
            &redirect(),
            "code",
            &SecretString::from("v".repeat(43)),
        )
        .await
        .expect_err("503");
    assert!(error.is_transient(), "{error}");
    assert_eq!(fake.calls().len(), 1);
}

#[tokio::test]
async fn refresh_parses_a_rotated_refresh_token_or_its_absence() {
    let fake = FakeProvider::start(|_, n| {
        Reply::Json(200, token_json("at-2", (n == 0).then_some("rt-rotated")))
    })
    .await;
    let client = fast_client(3, TIMEOUT);
    let endpoints = fake.endpoints(AuthMethod::ClientSecretPost);
    let old = SecretString::from("rt-old");
    let rotated = client.refresh(&endpoints, &old).await.expect("tokens");
    assert_eq!(rotated.access_token.expose_secret(), "at-2");
    assert_eq!(
        rotated.refresh_token.as_ref().map(|t| t.expose_secret()),
        Some("rt-rotated")
    );
    assert_eq!(rotated.scopes, None);
    let kept = client.refresh(&endpoints, &old).await.expect("tokens");
    assert!(kept.refresh_token.is_none());

    let call = &fake.calls()[0];
    assert_eq!(call.param("grant_type"), Some("refresh_token"));
    assert_eq!(call.param("refresh_token"), Some("rt-old"));
}

#[tokio::test]
async fn invalid_grant_is_terminal_and_not_retried() {
    let fake = FakeProvider::start(|_, _| {
        Reply::Json(400, oauth_error("invalid_grant", Some("token revoked")))
    })
    .await;
    let error = fast_client(3, TIMEOUT)
        .refresh(&fake.endpoints(AuthMethod::ClientSecretBasic), &"rt".into())
        .await
        .expect_err("invalid_grant");
    match &error {
        FlowError::InvalidGrant { description } => {
            assert_eq!(description.as_deref(), Some("token revoked"));
        }
        other => panic!("expected InvalidGrant, got {other:?}"),
    }
    assert!(!error.to_string().contains("rt"));
    assert_eq!(fake.calls().len(), 1);
}

#[tokio::test]
async fn refresh_retries_5xx_then_succeeds() {
    let fake = FakeProvider::start(|_, n| match n {
        0 | 1 => Reply::Text(503, "down for maintenance"),
        _ => Reply::Json(200, token_json("at-3", None)),
    })
    .await;
    let tokens = fast_client(3, TIMEOUT)
        .refresh(&fake.endpoints(AuthMethod::ClientSecretBasic), &"rt".into())
        .await
        .expect("third attempt succeeds");
    assert_eq!(tokens.access_token.expose_secret(), "at-3");
    assert_eq!(fake.calls().len(), 3);
}

#[tokio::test]
async fn refresh_gives_up_as_transient_after_all_attempts() {
    let fake = FakeProvider::start(|_, n| {
        if n % 2 == 0 {
            Reply::Text(503, "")
        } else {
            Reply::Json(429, oauth_error("rate_limited", None))
        }
    })
    .await;
    let error = fast_client(4, TIMEOUT)
        .refresh(&fake.endpoints(AuthMethod::ClientSecretBasic), &"rt".into())
        .await
        .expect_err("always failing");
    assert!(error.is_transient(), "{error}");
    assert_eq!(fake.calls().len(), 4);
}

#[tokio::test]
async fn retry_after_beyond_the_policy_stops_retrying() {
    let fake = FakeProvider::start(|_, _| Reply::RetryAfter(503, 120)).await;
    let error = fast_client(3, TIMEOUT)
        .refresh(&fake.endpoints(AuthMethod::ClientSecretBasic), &"rt".into())
        .await
        .expect_err("503");
    assert!(error.is_transient());
    assert_eq!(fake.calls().len(), 1);
}

#[tokio::test]
async fn hanging_endpoint_times_out_as_transient() {
    let fake = FakeProvider::start(|_, _| Reply::Hang).await;
    let started = std::time::Instant::now();
    let error = fast_client(2, Duration::from_millis(200))
        .refresh(&fake.endpoints(AuthMethod::ClientSecretBasic), &"rt".into())
        .await
        .expect_err("timeout");
    assert!(error.is_transient(), "{error}");
    assert!(error.to_string().contains("timed out"), "{error}");
    assert_eq!(fake.calls().len(), 2);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn unreachable_provider_is_transient() {
    let fake = FakeProvider::start(|_, _| Reply::Text(404, "")).await;
    let endpoints = fake.endpoints(AuthMethod::ClientSecretBasic);
    drop(fake);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let error = fast_client(2, TIMEOUT)
        .refresh(&endpoints, &"rt".into())
        .await
        .expect_err("nothing listens");
    assert!(error.is_transient(), "{error}");
}

#[tokio::test]
async fn other_errors_are_rejected_without_retry() {
    let fake = FakeProvider::start(|call, _| match call.param("refresh_token") {
        Some("client") => Reply::Json(401, oauth_error("invalid_client", Some("unknown client"))),
        Some("html") => Reply::Text(403, "<html>forbidden</html>"),
        Some("redirect") => Reply::Text(302, ""),
        _ => Reply::Json(200, oauth_error("bad_verification_code", None)),
    })
    .await;
    let client = fast_client(3, TIMEOUT);
    let endpoints = fake.endpoints(AuthMethod::ClientSecretBasic);
    let tokens: Vec<SecretString> = ["client", "html", "redirect", "github"]
        .into_iter()
        .map(SecretString::from)
        .collect();
    let refresh = |i: usize| client.refresh(&endpoints, &tokens[i]);

    let error = refresh(0).await.expect_err("invalid_client");
    assert!(
        matches!(&error, FlowError::Rejected { error, description }
            if error == "invalid_client" && description.as_deref() == Some("unknown client")),
        "{error:?}"
    );
    for i in [1, 2] {
        let error = refresh(i).await.expect_err("not OAuth");
        assert!(
            matches!(&error, FlowError::Rejected { error, .. } if error == "invalid_response"),
            "{error:?}"
        );
    }
    // GitHub style: an error object with status 200
    let error = refresh(3).await.expect_err("error object");
    assert!(
        matches!(&error, FlowError::Rejected { error, .. } if error == "bad_verification_code"),
        "{error:?}"
    );
    assert_eq!(fake.calls().len(), 4);
}

#[tokio::test]
async fn client_credentials_sends_grant_and_scopes_and_retries() {
    let fake = FakeProvider::start(|_, n| match n {
        0 => Reply::Text(500, "oops"),
        _ => Reply::Json(200, token_json("at-cc", None)),
    })
    .await;
    let tokens = fast_client(3, TIMEOUT)
        .client_credentials(
            &fake.endpoints(AuthMethod::ClientSecretPost),
            &scopes(&["a", "b"]),
        )
        .await
        .expect("tokens");
    assert_eq!(tokens.access_token.expose_secret(), "at-cc");
    let calls = fake.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].param("grant_type"), Some("client_credentials"));
    assert_eq!(calls[1].param("scope"), Some("a b"));
    assert_eq!(calls[1].param("client_secret"), Some("s3cr3t"));
}

#[tokio::test]
async fn revoke_sends_token_and_hint() {
    let fake = FakeProvider::start(|_, n| match n {
        0 => Reply::Text(200, ""),
        _ => Reply::Text(204, ""),
    })
    .await;
    let client = fast_client(3, TIMEOUT);
    let endpoints = fake.endpoints(AuthMethod::ClientSecretBasic);
    client
        .revoke(&endpoints, &"rt-x".into(), TokenTypeHint::RefreshToken)
        .await
        .expect("revoked");
    client
        .revoke(&endpoints, &"at-x".into(), TokenTypeHint::AccessToken)
        .await
        .expect("204 counts as revoked");
    let calls = fake.calls();
    assert_eq!(calls[0].path, "/revoke");
    assert_eq!(calls[0].param("token"), Some("rt-x"));
    assert_eq!(calls[0].param("token_type_hint"), Some("refresh_token"));
    assert!(calls[0].authorization.is_some());
    assert_eq!(calls[1].param("token"), Some("at-x"));
    assert_eq!(calls[1].param("token_type_hint"), Some("access_token"));

    let mut no_revocation = endpoints;
    no_revocation.revocation_url = None;
    let error = client
        .revoke(&no_revocation, &"t".into(), TokenTypeHint::AccessToken)
        .await
        .expect_err("no endpoint");
    assert!(matches!(error, FlowError::Misconfigured(_)));
}

#[test]
fn bad_ca_files_are_misconfiguration() {
    let missing = std::path::Path::new("/nonexistent/adp-oauth-ca.pem");
    let error =
        OAuthClient::new(Some(missing), TIMEOUT, RetryPolicy::default()).expect_err("missing");
    assert!(matches!(error, FlowError::Misconfigured(_)));

    let dir = std::env::temp_dir().join(format!("adp-oauth-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").expect("write");
    let error =
        OAuthClient::new(Some(&garbage), TIMEOUT, RetryPolicy::default()).expect_err("garbage");
    assert!(matches!(error, FlowError::Misconfigured(_)));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn flows_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let client = fast_client(1, TIMEOUT);
    let endpoints = crate::ProviderEndpoints {
        authorize_url: None,
        token_url: Url::parse("https://idp.example.com/token").expect("url"),
        revocation_url: None,
        device_authorization_url: None,
        client_id: "c".into(),
        client_secret: None,
        auth_method: AuthMethod::None,
    };
    let token = SecretString::from("t");
    assert_send(&client.refresh(&endpoints, &token));
    assert_send(&client.exchange_code(&endpoints, &redirect(), "c", &token));
    assert_send(&client.client_credentials(&endpoints, &[]));
    assert_send(&client.revoke(&endpoints, &token, TokenTypeHint::AccessToken));
    assert_send(&client.start_device_authorization(&endpoints, &[]));
}
