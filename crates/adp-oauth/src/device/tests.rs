use std::time::Duration;

use chrono::Utc;
use secrecy::ExposeSecret;

use crate::test_support::{FakeProvider, Reply, fast_client, oauth_error, token_json};
use crate::{AuthMethod, DeviceAuthorization, FlowError};

const TIMEOUT: Duration = Duration::from_secs(5);

fn device(expires_in: Duration) -> DeviceAuthorization {
    DeviceAuthorization {
        device_code: "dc-secret".into(),
        user_code: "ABCD-EFGH".into(),
        verification_uri: "https://idp.example.com/device".into(),
        verification_uri_complete: None,
        expires_at: Utc::now() + chrono::Duration::from_std(expires_in).expect("duration"),
        interval: Duration::ZERO,
    }
}

#[tokio::test]
async fn start_parses_the_device_authorization_response() {
    let fake = FakeProvider::start(|_, _| {
        Reply::Json(
            200,
            serde_json::json!({
                "device_code": "dc-1",
                "user_code": "WDJB-MJHT",
                "verification_uri": "https://idp.example.com/device",
                "verification_uri_complete": "https://idp.example.com/device?user_code=WDJB-MJHT",
                "expires_in": 1800,
                "interval": 7,
            }),
        )
    })
    .await;
    let before = Utc::now();
    let device = fast_client(3, TIMEOUT)
        .start_device_authorization(&fake.endpoints(AuthMethod::None), &["repo".to_string()])
        .await
        .expect("device authorization");
    assert_eq!(device.device_code.expose_secret(), "dc-1");
    assert_eq!(device.user_code, "WDJB-MJHT");
    assert_eq!(device.verification_uri, "https://idp.example.com/device");
    assert_eq!(
        device.verification_uri_complete.as_deref(),
        Some("https://idp.example.com/device?user_code=WDJB-MJHT")
    );
    assert_eq!(device.interval, Duration::from_secs(7));
    assert!(device.expires_at >= before + chrono::Duration::seconds(1800));
    assert!(!format!("{device:?}").contains("dc-1"));

    let call = &fake.calls()[0];
    assert_eq!(call.path, "/device");
    assert_eq!(call.param("client_id"), Some("client-id"));
    assert_eq!(call.param("client_secret"), None);
    assert_eq!(call.param("scope"), Some("repo"));
}

/// Starts a device flow against a provider answering with `interval` and `expires_in`
/// (absent when `None`).
async fn started_with(interval: Option<u64>, expires_in: u64) -> DeviceAuthorization {
    let fake = FakeProvider::start(move |_, _| {
        let mut body = serde_json::json!({
            "device_code": "dc-1",
            "user_code": "WDJB-MJHT",
            "verification_uri": "https://idp.example.com/device",
            "expires_in": expires_in,
        });
        if let Some(interval) = interval {
            body["interval"] = interval.into();
        }
        Reply::Json(200, body)
    })
    .await;
    fast_client(3, TIMEOUT)
        .start_device_authorization(&fake.endpoints(AuthMethod::None), &[])
        .await
        .expect("device authorization")
}

#[tokio::test]
async fn a_zero_interval_is_raised_to_one_second() {
    let device = started_with(Some(0), 600).await;
    assert_eq!(device.interval, Duration::from_secs(1));
    assert_eq!(crate::device::MIN_POLL_INTERVAL, Duration::from_secs(1));
    // no interval at all: RFC 8628's 5 s
    assert_eq!(
        started_with(None, 600).await.interval,
        Duration::from_secs(5)
    );
}

#[tokio::test]
async fn a_device_code_lives_thirty_minutes_at_most() {
    for expires_in in [
        10 * 24 * 3600,
        u64::from(u32::MAX),
        i64::MAX as u64,
        u64::MAX,
    ] {
        let before = Utc::now();
        let device = started_with(Some(5), expires_in).await;
        let after = Utc::now();
        assert!(
            device.expires_at >= before + chrono::Duration::minutes(30)
                && device.expires_at <= after + chrono::Duration::minutes(30),
            "expires_in {expires_in}: {}",
            device.expires_at
        );
    }
    // a shorter lifetime is kept as it is
    let before = Utc::now();
    let device = started_with(Some(5), 90).await;
    assert!(device.expires_at <= Utc::now() + chrono::Duration::seconds(90));
    assert!(device.expires_at >= before + chrono::Duration::seconds(90));
}

#[tokio::test]
async fn start_without_a_device_endpoint_is_misconfigured() {
    let fake = FakeProvider::start(|_, _| Reply::Text(404, "")).await;
    let mut endpoints = fake.endpoints(AuthMethod::None);
    endpoints.device_authorization_url = None;
    let error = fast_client(3, TIMEOUT)
        .start_device_authorization(&endpoints, &[])
        .await
        .expect_err("no endpoint");
    assert!(matches!(error, FlowError::Misconfigured(_)));
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn polling_honours_pending_and_slow_down_then_succeeds() {
    let fake = FakeProvider::start(|_, n| match n {
        0 => Reply::Json(400, oauth_error("authorization_pending", None)),
        1 => Reply::Json(400, oauth_error("slow_down", None)),
        2 => Reply::Json(400, oauth_error("authorization_pending", None)),
        _ => Reply::Json(200, token_json("at-device", Some("rt-device"))),
    })
    .await;
    let increment = Duration::from_millis(150);
    let client = fast_client(3, TIMEOUT).with_slow_down_increment(increment);
    let tokens = client
        .poll_device_token(
            &fake.endpoints(AuthMethod::ClientSecretBasic),
            &device(Duration::from_secs(30)),
        )
        .await
        .expect("tokens");
    assert_eq!(tokens.access_token.expose_secret(), "at-device");

    let calls = fake.calls();
    assert_eq!(calls.len(), 4);
    for call in &calls {
        assert_eq!(call.path, "/token");
        assert_eq!(
            call.param("grant_type"),
            Some("urn:ietf:params:oauth:grant-type:device_code")
        );
        assert_eq!(call.param("device_code"), Some("dc-secret"));
        assert!(
            call.authorization
                .as_deref()
                .is_some_and(|a| a.starts_with("Basic "))
        );
        assert_eq!(call.param("client_secret"), None);
    }
    // before slow_down the interval is 0; after it every wait is at least the increment
    let gap = |i: usize| calls[i].at.duration_since(calls[i - 1].at);
    assert!(gap(1) < increment, "{:?}", gap(1));
    assert!(gap(2) >= increment, "{:?}", gap(2));
    assert!(gap(3) >= increment, "{:?}", gap(3));
}

#[tokio::test]
async fn denial_and_expiry_end_the_flow() {
    for (error, expected) in [("access_denied", "denied"), ("expired_token", "expired")] {
        let fake = FakeProvider::start(move |_, n| match n {
            0 => Reply::Json(400, oauth_error("authorization_pending", None)),
            _ => Reply::Json(400, oauth_error(error, None)),
        })
        .await;
        let outcome = fast_client(3, TIMEOUT)
            .poll_device_token(
                &fake.endpoints(AuthMethod::None),
                &device(Duration::from_secs(30)),
            )
            .await
            .expect_err("terminal");
        match (expected, &outcome) {
            ("denied", FlowError::AccessDenied) | ("expired", FlowError::ExpiredToken) => {}
            _ => panic!("{error} mapped to {outcome:?}"),
        }
        assert_eq!(fake.calls().len(), 2);
    }
}

#[tokio::test]
async fn polling_stops_when_the_device_code_expires() {
    let fake =
        FakeProvider::start(|_, _| Reply::Json(400, oauth_error("authorization_pending", None)))
            .await;
    let mut device = device(Duration::from_millis(300));
    device.interval = Duration::from_millis(50);
    let started = std::time::Instant::now();
    let error = fast_client(3, TIMEOUT)
        .poll_device_token(&fake.endpoints(AuthMethod::None), &device)
        .await
        .expect_err("expired");
    assert!(matches!(error, FlowError::ExpiredToken), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(!fake.calls().is_empty());
}

#[tokio::test]
async fn transient_poll_failures_back_off_and_continue() {
    let fake = FakeProvider::start(|_, n| match n {
        0 => Reply::Text(503, "busy"),
        1 => Reply::Json(429, oauth_error("too_many_requests", None)),
        _ => Reply::Json(200, token_json("at-after-outage", None)),
    })
    .await;
    let tokens = fast_client(1, TIMEOUT)
        .poll_device_token(
            &fake.endpoints(AuthMethod::None),
            &device(Duration::from_secs(30)),
        )
        .await
        .expect("tokens after the outage");
    assert_eq!(tokens.access_token.expose_secret(), "at-after-outage");
    assert_eq!(fake.calls().len(), 3);
}

#[tokio::test]
async fn invalid_grant_while_polling_is_terminal() {
    let fake =
        FakeProvider::start(|_, _| Reply::Json(400, oauth_error("invalid_grant", None))).await;
    let error = fast_client(3, TIMEOUT)
        .poll_device_token(
            &fake.endpoints(AuthMethod::None),
            &device(Duration::from_secs(30)),
        )
        .await
        .expect_err("dead code");
    assert!(error.is_invalid_grant());
    assert_eq!(fake.calls().len(), 1);
}

#[test]
fn polling_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let client = fast_client(1, TIMEOUT);
    let endpoints = crate::ProviderEndpoints {
        authorize_url: None,
        token_url: url::Url::parse("https://idp.example.com/token").expect("url"),
        revocation_url: None,
        device_authorization_url: None,
        client_id: "c".into(),
        client_secret: None,
        auth_method: AuthMethod::None,
    };
    assert_send(&client.poll_device_token(&endpoints, &device(Duration::from_secs(1))));
}
