#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use url::Url;

use crate::identity::{AuthError, IdentityError, KeySource, Verifier, VerifierConfig, mint_hs256};

const ISSUER: &str = "https://idp.test";

/// A P-256 private key as PKCS#8 DER, built from a fixed scalar so tests need no key
/// generator; the public half is derived by jsonwebtoken.
fn es256_key(seed: u8) -> EncodingKey {
    let mut der = vec![
        0x30, 0x41, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
        0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x04, 0x27, 0x30, 0x25,
        0x02, 0x01, 0x01, 0x04, 0x20,
    ];
    der.extend([seed; 32]);
    EncodingKey::from_ec_der(&der)
}

/// An Ed25519 private key as PKCS#8 DER from a fixed seed.
fn ed25519_key(seed: u8) -> EncodingKey {
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend([seed; 32]);
    EncodingKey::from_ed_der(&der)
}

fn public_jwk(key: &EncodingKey, alg: Algorithm, kid: Option<&str>) -> Jwk {
    let mut jwk = Jwk::from_encoding_key(key, alg).unwrap();
    jwk.common.key_id = kid.map(str::to_owned);
    jwk
}

fn sign(key: &EncodingKey, alg: Algorithm, kid: Option<&str>) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    let claims = json!({
        "iss": ISSUER,
        "sub": "user-7",
        "exp": jsonwebtoken::get_current_timestamp() + 600,
        "permissions": ["mcpserver_list"],
    });
    jsonwebtoken::encode(&header, &claims, key).unwrap()
}

/// A JWKS endpoint on loopback that counts its requests and can be switched off.
struct FakeIdp {
    url: Url,
    state: Arc<Served>,
}

struct Served {
    document: Mutex<Value>,
    hits: AtomicUsize,
    up: AtomicBool,
}

async fn serve_jwks(State(served): State<Arc<Served>>) -> Response {
    served.hits.fetch_add(1, Ordering::SeqCst);
    if !served.up.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    Json(served.document.lock().unwrap().clone()).into_response()
}

impl FakeIdp {
    async fn start(keys: Vec<Jwk>) -> Self {
        let state = Arc::new(Served {
            document: Mutex::new(Value::Null),
            hits: AtomicUsize::new(0),
            up: AtomicBool::new(true),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/jwks", get(serve_jwks))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let idp = Self {
            url: format!("http://{address}/jwks").parse().unwrap(),
            state,
        };
        idp.publish(keys);
        idp
    }

    fn publish(&self, keys: Vec<Jwk>) {
        *self.state.document.lock().unwrap() = serde_json::to_value(JwkSet { keys }).unwrap();
    }

    fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }

    fn set_up(&self, up: bool) {
        self.state.up.store(up, Ordering::SeqCst);
    }

    fn verifier(&self, cache_ttl: Duration, min_refresh_interval: Duration) -> Verifier {
        verifier_for(self.url.clone(), cache_ttl, min_refresh_interval)
    }
}

fn verifier_for(url: Url, cache_ttl: Duration, min_refresh_interval: Duration) -> Verifier {
    let source = KeySource::Jwks {
        url,
        ca_file: None,
        cache_ttl,
        min_refresh_interval,
    };
    let mut config = VerifierConfig::new(source);
    config.issuer = Some(ISSUER.to_owned());
    Verifier::new(config).unwrap()
}

const TTL: Duration = Duration::from_secs(300);
const WINDOW: Duration = Duration::from_secs(10);

#[tokio::test]
async fn es256_token_verifies_against_served_jwks_and_is_cached() {
    let key = es256_key(1);
    let idp = FakeIdp::start(vec![public_jwk(&key, Algorithm::ES256, Some("k1"))]).await;
    let verifier = idp.verifier(TTL, WINDOW);
    for _ in 0..3 {
        let identity = verifier
            .verify(&sign(&key, Algorithm::ES256, Some("k1")))
            .await
            .unwrap();
        assert_eq!(
            (identity.issuer.as_str(), identity.subject.as_str()),
            (ISSUER, "user-7")
        );
        assert!(identity.has_permission("mcpserver_list"));
    }
    assert_eq!(idp.hits(), 1);
}

#[tokio::test]
async fn eddsa_token_without_kid_uses_the_only_fitting_key() {
    let ed = ed25519_key(2);
    let ec = es256_key(3);
    let idp = FakeIdp::start(vec![
        public_jwk(&ed, Algorithm::EdDSA, None),
        public_jwk(&ec, Algorithm::ES256, Some("ec")),
    ])
    .await;
    let verifier = idp.verifier(TTL, WINDOW);
    assert!(
        verifier
            .verify(&sign(&ed, Algorithm::EdDSA, None))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn signature_from_another_key_is_refused() {
    let idp = FakeIdp::start(vec![public_jwk(
        &es256_key(1),
        Algorithm::ES256,
        Some("k1"),
    )])
    .await;
    let verifier = idp.verifier(TTL, WINDOW);
    let forged = sign(&es256_key(9), Algorithm::ES256, Some("k1"));
    assert_eq!(verifier.verify(&forged).await, Err(AuthError::BadSignature));
}

#[tokio::test]
async fn symmetric_and_mismatched_algorithms_are_refused() {
    // An `oct` key in the set must never make HS256 acceptable, even with a matching kid.
    let secret = b"published-by-mistake";
    let oct: Jwk = serde_json::from_value(
        json!({ "kty": "oct", "kid": "hs", "k": "cHVibGlzaGVkLWJ5LW1pc3Rha2U" }),
    )
    .unwrap();
    let ec = es256_key(1);
    let idp = FakeIdp::start(vec![oct, public_jwk(&ec, Algorithm::ES256, Some("ec"))]).await;
    let verifier = idp.verifier(TTL, WINDOW);

    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("hs".to_owned());
    let claims =
        json!({ "iss": ISSUER, "sub": "x", "exp": jsonwebtoken::get_current_timestamp() + 60 });
    let hs = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret)).unwrap();
    assert_eq!(
        verifier.verify(&hs).await,
        Err(AuthError::DisallowedAlgorithm)
    );
    let minted = mint_hs256(secret, &claims).unwrap();
    assert_eq!(
        verifier.verify(&minted).await,
        Err(AuthError::DisallowedAlgorithm)
    );
    assert_eq!(idp.hits(), 0, "refused before any key lookup");

    // A known kid used with an algorithm its key does not allow: no refetch either.
    let ed_with_ec_kid = sign(&ed25519_key(4), Algorithm::EdDSA, Some("ec"));
    assert_eq!(
        verifier.verify(&ed_with_ec_kid).await,
        Err(AuthError::DisallowedAlgorithm)
    );
    assert_eq!(idp.hits(), 1);
}

#[tokio::test]
async fn rotated_key_triggers_exactly_one_refetch() {
    let old = es256_key(1);
    let new = es256_key(2);
    let idp = FakeIdp::start(vec![public_jwk(&old, Algorithm::ES256, Some("old"))]).await;
    let verifier = idp.verifier(TTL, WINDOW);
    verifier
        .verify(&sign(&old, Algorithm::ES256, Some("old")))
        .await
        .unwrap();
    assert_eq!(idp.hits(), 1);

    idp.publish(vec![public_jwk(&new, Algorithm::ES256, Some("new"))]);
    let rotated = sign(&new, Algorithm::ES256, Some("new"));
    verifier.verify(&rotated).await.unwrap();
    assert_eq!(idp.hits(), 2);
    verifier.verify(&rotated).await.unwrap();
    assert_eq!(idp.hits(), 2);
    // The old key left the set, so its tokens now fail (without a second refetch).
    let stale = sign(&old, Algorithm::ES256, Some("old"));
    assert_eq!(verifier.verify(&stale).await, Err(AuthError::UnknownKey));
    assert_eq!(idp.hits(), 2);
}

#[tokio::test]
async fn concurrent_verifications_share_one_refetch() {
    let old = es256_key(1);
    let new = es256_key(2);
    let idp = FakeIdp::start(vec![public_jwk(&old, Algorithm::ES256, Some("old"))]).await;
    let verifier = idp.verifier(TTL, WINDOW);
    verifier
        .verify(&sign(&old, Algorithm::ES256, Some("old")))
        .await
        .unwrap();

    idp.publish(vec![public_jwk(&new, Algorithm::ES256, Some("new"))]);
    let rotated = sign(&new, Algorithm::ES256, Some("new"));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (verifier, token) = (verifier.clone(), rotated.clone());
            tokio::spawn(async move { verifier.verify(&token).await })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap().is_ok());
    }
    assert_eq!(idp.hits(), 2);
}

#[tokio::test]
async fn garbage_kids_refetch_at_most_once_per_window() {
    let key = es256_key(1);
    let idp = FakeIdp::start(vec![public_jwk(&key, Algorithm::ES256, Some("k1"))]).await;
    let verifier = idp.verifier(TTL, WINDOW);
    verifier
        .verify(&sign(&key, Algorithm::ES256, Some("k1")))
        .await
        .unwrap();
    for n in 0..20 {
        let garbage = sign(
            &es256_key(7),
            Algorithm::ES256,
            Some(&format!("garbage-{n}")),
        );
        assert_eq!(verifier.verify(&garbage).await, Err(AuthError::UnknownKey));
    }
    assert_eq!(idp.hits(), 2);
    // Known keys keep working meanwhile.
    assert!(
        verifier
            .verify(&sign(&key, Algorithm::ES256, Some("k1")))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn unknown_kid_refetches_again_after_the_window() {
    let key = es256_key(1);
    let idp = FakeIdp::start(vec![public_jwk(&key, Algorithm::ES256, Some("k1"))]).await;
    let verifier = idp.verifier(TTL, Duration::from_millis(50));
    let garbage = sign(&key, Algorithm::ES256, Some("nope"));
    assert_eq!(verifier.verify(&garbage).await, Err(AuthError::UnknownKey));
    assert_eq!(idp.hits(), 2, "initial fetch plus one refetch");
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(verifier.verify(&garbage).await, Err(AuthError::UnknownKey));
    assert_eq!(idp.hits(), 3);
}

#[tokio::test]
async fn cached_keys_survive_an_endpoint_outage() {
    let key = es256_key(1);
    let idp = FakeIdp::start(vec![public_jwk(&key, Algorithm::ES256, Some("k1"))]).await;
    // A zero TTL makes every verification want a refresh, so the outage is exercised.
    let verifier = idp.verifier(Duration::ZERO, WINDOW);
    let token = sign(&key, Algorithm::ES256, Some("k1"));
    verifier.verify(&token).await.unwrap();
    idp.set_up(false);
    for _ in 0..5 {
        verifier.verify(&token).await.unwrap();
    }
    // One failed attempt, then the failure back-off keeps us from hammering the endpoint.
    assert_eq!(idp.hits(), 2);
    let unknown = sign(&key, Algorithm::ES256, Some("k2"));
    assert_eq!(verifier.verify(&unknown).await, Err(AuthError::UnknownKey));
    assert_eq!(idp.hits(), 2);
}

#[tokio::test]
async fn unreachable_endpoint_without_cache_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url: Url = format!("http://{}/jwks", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    drop(listener);
    let verifier = verifier_for(url, TTL, WINDOW);
    let token = sign(&es256_key(1), Algorithm::ES256, Some("k1"));
    let error = verifier.verify(&token).await.unwrap_err();
    assert_eq!(error, AuthError::KeysUnavailable);
    assert!(error.is_transient());
    // Within the back-off window the answer comes from memory, not another connection.
    assert_eq!(
        verifier.verify(&token).await,
        Err(AuthError::KeysUnavailable)
    );
}

#[tokio::test]
async fn endpoint_errors_and_non_jwks_bodies_are_unavailable() {
    let idp = FakeIdp::start(Vec::new()).await;
    *idp.state.document.lock().unwrap() = json!({ "not": "a jwks" });
    let verifier = idp.verifier(TTL, WINDOW);
    let token = sign(&es256_key(1), Algorithm::ES256, Some("k1"));
    assert_eq!(
        verifier.verify(&token).await,
        Err(AuthError::KeysUnavailable)
    );
}

#[test]
fn configuration_errors() {
    let url: Url = "ftp://127.0.0.1/jwks".parse().unwrap();
    let config = VerifierConfig::new(KeySource::jwks(url, None));
    assert!(matches!(
        Verifier::new(config),
        Err(IdentityError::UnsupportedJwksScheme { .. })
    ));

    let url: Url = "https://127.0.0.1/jwks".parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("ca.pem");
    let config = VerifierConfig::new(KeySource::jwks(url.clone(), Some(missing.clone())));
    assert!(matches!(
        Verifier::new(config),
        Err(IdentityError::ReadCaFile { .. })
    ));

    std::fs::write(&missing, "not a certificate\n").unwrap();
    let config = VerifierConfig::new(KeySource::jwks(url, Some(missing)));
    assert!(matches!(
        Verifier::new(config),
        Err(IdentityError::EmptyCaFile { .. } | IdentityError::InvalidCaFile { .. })
    ));
}
