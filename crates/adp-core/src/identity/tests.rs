#![allow(clippy::unwrap_used)]

use std::io::Write;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::*;

const SECRET: &[u8] = b"correct horse battery staple";
const ISSUER: &str = "https://issuer.test";
const AUDIENCE: &str = "adp";

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn verifier_with(configure: impl FnOnce(&mut VerifierConfig)) -> Verifier {
    let mut config = VerifierConfig::new(KeySource::hs256(SECRET.to_vec()));
    config.issuer = Some(ISSUER.to_owned());
    config.audience = Some(AUDIENCE.to_owned());
    configure(&mut config);
    Verifier::new(config).unwrap()
}

fn verifier() -> Verifier {
    verifier_with(|_| {})
}

/// Valid claims for `verifier()`, with `extra` merged over them (`null` removes a claim).
fn claims(extra: Value) -> Value {
    let mut claims = json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "exp": now() + 3600,
        "iat": now(),
    });
    for (name, value) in extra.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    claims
}

fn mint(extra: Value) -> String {
    mint_hs256(SECRET, &claims(extra)).unwrap()
}

#[tokio::test]
async fn hs256_token_with_permissions_array() {
    let token = mint(json!({ "permissions": ["mcpserver_create", "secret_get"] }));
    let identity = verifier().verify(&token).await.unwrap();
    assert_eq!(identity.issuer, ISSUER);
    assert_eq!(identity.subject, "user-1");
    assert!(identity.has_permission("mcpserver_create"));
    assert!(identity.has_permission("secret_get"));
    assert!(!identity.has_permission("secret_delete"));
    assert_eq!(identity.permissions().len(), 2);
}

#[tokio::test]
async fn star_grants_every_permission() {
    let token = mint(json!({ "permissions": ["*"] }));
    let identity = verifier().verify(&token).await.unwrap();
    assert!(identity.has_permission("oauthprovider_attach"));
    assert!(identity.has_permission("proxy"));
}

#[tokio::test]
async fn space_separated_scope_string() {
    let token = mint(json!({ "scope": "openid  mcpserver_list proxy" }));
    let verifier = verifier_with(|config| config.permissions_claim = "scope".to_owned());
    let identity = verifier.verify(&token).await.unwrap();
    let names: Vec<&str> = identity.permissions().iter().collect();
    assert_eq!(names, ["mcpserver_list", "openid", "proxy"]);
}

#[tokio::test]
async fn nested_claim_by_dotted_path() {
    let token = mint(json!({ "realm_access": { "roles": ["secret_list"] } }));
    let verifier = verifier_with(|config| config.permissions_claim = "realm_access.roles".into());
    let identity = verifier.verify(&token).await.unwrap();
    assert!(identity.has_permission("secret_list"));
    assert!(!identity.has_permission("realm_access"));
}

#[tokio::test]
async fn dotted_top_level_claim_name_wins_over_path() {
    let name = "https://adp.test/permissions";
    let token = mint(json!({ (name): ["mcpserver_get"] }));
    let verifier = verifier_with(|config| config.permissions_claim = name.to_owned());
    assert!(
        verifier
            .verify(&token)
            .await
            .unwrap()
            .has_permission("mcpserver_get")
    );
}

#[tokio::test]
async fn missing_or_oddly_typed_permissions_grant_nothing() {
    for extra in [
        json!({}),
        json!({ "permissions": 42 }),
        json!({ "permissions": [1, ""] }),
    ] {
        let identity = verifier().verify(&mint(extra)).await.unwrap();
        assert!(identity.permissions().is_empty());
        assert!(!identity.has_permission("proxy"));
    }
}

#[tokio::test]
async fn expired_token_is_refused() {
    let token = mint(json!({ "exp": now() - 3600 }));
    assert_eq!(verifier().verify(&token).await, Err(AuthError::Expired));
}

#[tokio::test]
async fn expiry_within_leeway_is_accepted() {
    let token = mint(json!({ "exp": now() - 10 }));
    assert!(verifier().verify(&token).await.is_ok());
    let strict = verifier_with(|config| config.leeway_secs = 0);
    assert_eq!(strict.verify(&token).await, Err(AuthError::Expired));
}

#[tokio::test]
async fn token_not_yet_valid_is_refused() {
    let token = mint(json!({ "nbf": now() + 3600 }));
    assert_eq!(verifier().verify(&token).await, Err(AuthError::NotYetValid));
}

#[tokio::test]
async fn wrong_issuer_is_refused() {
    let token = mint(json!({ "iss": "https://evil.test" }));
    assert_eq!(verifier().verify(&token).await, Err(AuthError::WrongIssuer));
}

#[tokio::test]
async fn wrong_audience_is_refused() {
    let token = mint(json!({ "aud": "someone-else" }));
    assert_eq!(
        verifier().verify(&token).await,
        Err(AuthError::WrongAudience)
    );
    let token = mint(json!({ "aud": ["someone-else", AUDIENCE] }));
    assert!(verifier().verify(&token).await.is_ok());
    let token = mint(json!({ "aud": null }));
    assert_eq!(
        verifier().verify(&token).await,
        Err(AuthError::MissingClaim("aud"))
    );
}

#[tokio::test]
async fn unconfigured_issuer_and_audience_come_from_the_token() {
    let verifier = verifier_with(|config| {
        config.issuer = None;
        config.audience = None;
    });
    let token = mint(json!({ "iss": "https://other.test", "aud": "anything" }));
    let identity = verifier.verify(&token).await.unwrap();
    assert_eq!(
        (identity.issuer.as_str(), identity.subject.as_str()),
        ("https://other.test", "user-1")
    );
    let token = mint(json!({ "iss": null }));
    assert_eq!(
        verifier.verify(&token).await,
        Err(AuthError::MissingClaim("iss"))
    );
}

#[tokio::test]
async fn required_claims_must_be_present_and_usable() {
    let verifier = verifier();
    for (extra, claim) in [
        (json!({ "sub": null }), "sub"),
        (json!({ "sub": "" }), "sub"),
        (json!({ "exp": null }), "exp"),
        (json!({ "exp": "tomorrow" }), "exp"),
    ] {
        assert_eq!(
            verifier.verify(&mint(extra)).await,
            Err(AuthError::MissingClaim(claim))
        );
    }
}

#[tokio::test]
async fn bad_signature_is_refused() {
    let token = mint_hs256(b"another secret", &claims(json!({}))).unwrap();
    assert_eq!(
        verifier().verify(&token).await,
        Err(AuthError::BadSignature)
    );

    // A valid signature over different claims: swap the payload of another token.
    let genuine = mint(json!({}));
    let forged = mint(json!({ "sub": "admin" }));
    let parts: Vec<&str> = genuine.split('.').collect();
    let forged_payload = forged.split('.').nth(1).unwrap();
    let spliced = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    assert_eq!(
        verifier().verify(&spliced).await,
        Err(AuthError::BadSignature)
    );
}

#[tokio::test]
async fn alg_none_is_refused() {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = b64.encode(claims(json!({ "permissions": ["*"] })).to_string());
    for token in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}"),
    ] {
        assert_eq!(verifier().verify(&token).await, Err(AuthError::Malformed));
    }
}

#[tokio::test]
async fn only_hs256_is_accepted_with_a_secret() {
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &claims(json!({})),
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    assert_eq!(
        verifier().verify(&token).await,
        Err(AuthError::DisallowedAlgorithm)
    );
}

#[tokio::test]
async fn garbage_is_malformed_and_empty_is_missing() {
    let verifier = verifier();
    assert_eq!(verifier.verify("").await, Err(AuthError::MissingToken));
    for garbage in ["abc", "a.b.c", "..", "x".repeat(20_000).as_str()] {
        assert_eq!(verifier.verify(garbage).await, Err(AuthError::Malformed));
    }
}

#[tokio::test]
async fn errors_never_echo_the_token() {
    let verifier = verifier();
    let tokens = [
        mint(json!({ "exp": now() - 3600, "sub": "needle-subject" })),
        mint(json!({ "iss": "needle-issuer" })),
        mint(json!({ "aud": "needle-audience" })),
        "needle.needle.needle".to_owned(),
    ];
    for token in tokens {
        let error = verifier.verify(&token).await.unwrap_err();
        let shown = format!("{error} {error:?}");
        assert!(
            !shown.contains("needle") && !shown.contains(&token),
            "{shown}"
        );
    }
}

#[test]
fn reasons_are_stable_upper_snake_case() {
    assert_eq!(AuthError::MissingToken.reason().as_str(), "TOKEN_MISSING");
    assert_eq!(AuthError::Expired.reason().as_str(), "TOKEN_EXPIRED");
    assert_eq!(AuthError::BadSignature.reason().as_str(), "TOKEN_INVALID");
    assert_eq!(
        AuthError::MissingClaim("sub").reason().as_str(),
        "TOKEN_INVALID"
    );
    assert_eq!(
        AuthError::KeysUnavailable.reason().as_str(),
        "KEYS_UNAVAILABLE"
    );
    assert!(AuthError::KeysUnavailable.is_transient());
    assert!(!AuthError::UnknownKey.is_transient());
    assert_eq!(AuthError::Expired.to_string(), "token has expired");
}

#[test]
fn bearer_token_parsing() {
    assert_eq!(bearer_token("Bearer abc.def.ghi"), Ok("abc.def.ghi"));
    assert_eq!(bearer_token("bearer abc"), Ok("abc"));
    assert_eq!(bearer_token("  BEARER \t abc  "), Ok("abc"));
    assert_eq!(bearer_token(""), Err(AuthError::MissingToken));
    assert_eq!(bearer_token("Bearer"), Err(AuthError::MissingToken));
    assert_eq!(bearer_token("Bearer   "), Err(AuthError::MissingToken));
    assert_eq!(
        bearer_token("Basic dXNlcjpwYXNz"),
        Err(AuthError::MissingToken)
    );
    assert_eq!(bearer_token("Bearerabc"), Err(AuthError::MissingToken));
    assert_eq!(bearer_token("Bearer a b"), Err(AuthError::Malformed));
}

#[test]
fn mint_refuses_empty_secret_and_non_object_claims() {
    assert!(matches!(
        mint_hs256(b"", &json!({})),
        Err(IdentityError::EmptySecret)
    ));
    assert!(matches!(
        mint_hs256(SECRET, &json!("sub")),
        Err(IdentityError::ClaimsNotObject)
    ));
}

#[tokio::test]
async fn secret_file_is_trimmed_and_verifies() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(SECRET).unwrap();
    file.write_all(b"\r\n").unwrap();
    let mut config = VerifierConfig::new(KeySource::hs256_from_file(file.path()).unwrap());
    config.issuer = Some(ISSUER.to_owned());
    config.audience = Some(AUDIENCE.to_owned());
    let identity = Verifier::new(config)
        .unwrap()
        .verify(&mint(json!({})))
        .await
        .unwrap();
    assert_eq!(identity.subject, "user-1");
}

#[test]
fn secret_file_errors_do_not_reveal_content() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(b"\n\n").unwrap();
    let error = KeySource::hs256_from_file(file.path()).unwrap_err();
    assert!(matches!(error, IdentityError::EmptySecretFile { .. }));
    assert!(
        error
            .to_string()
            .contains(&file.path().display().to_string())
    );

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent");
    let error = KeySource::hs256_from_file(&missing).unwrap_err();
    assert!(matches!(error, IdentityError::ReadSecretFile { .. }));
}

#[test]
fn empty_secret_and_claim_name_are_configuration_errors() {
    let config = VerifierConfig::new(KeySource::hs256(Vec::new()));
    assert!(matches!(
        Verifier::new(config),
        Err(IdentityError::EmptySecret)
    ));
    let mut config = VerifierConfig::new(KeySource::hs256(SECRET.to_vec()));
    config.permissions_claim.clear();
    assert!(matches!(
        Verifier::new(config),
        Err(IdentityError::EmptyPermissionsClaim)
    ));
}

#[test]
fn debug_output_redacts_the_secret() {
    let secret = "super-secret-value-0123456789";
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "{secret}").unwrap();
    let source = KeySource::hs256_from_file(file.path()).unwrap();
    let config = VerifierConfig::new(source);
    let verifier = Verifier::new(config.clone()).unwrap();
    let bytes_debug = format!("{:?}", secret.as_bytes());
    let inner = bytes_debug.trim_start_matches('[').trim_end_matches(']');
    for shown in [
        format!("{:?}", config.key_source),
        format!("{config:?}"),
        format!("{config:#?}"),
        format!("{verifier:?}"),
        format!("{verifier:#?}"),
    ] {
        assert!(!shown.contains(secret), "{shown}");
        assert!(!shown.contains(inner), "{shown}");
        assert!(!shown.contains("115, 117, 112"), "{shown}"); // b"sup"
    }
}

#[test]
fn identity_built_directly() {
    let identity = Identity::new(ISSUER, "svc", ["proxy", ""].into_iter().collect());
    assert!(identity.has_permission("proxy"));
    assert_eq!(identity.permissions().len(), 1);
}

const RESOURCE: &str = "https://mcp.example.com/mcp";

#[tokio::test]
async fn a_passthrough_token_names_the_resource_and_not_adp() {
    let verifier = verifier();
    let for_upstream = mint(json!({ "aud": RESOURCE }));
    let identity = verifier
        .verify_for_resource(&for_upstream, RESOURCE)
        .await
        .unwrap();
    assert_eq!(identity.subject, "user-1");
    let among_others = mint(json!({ "aud": ["other", RESOURCE] }));
    assert!(
        verifier
            .verify_for_resource(&among_others, RESOURCE)
            .await
            .is_ok()
    );

    // ADP's own token, alone or naming the upstream as well, never qualifies
    let ours = mint(json!({}));
    assert_eq!(
        verifier.verify_for_resource(&ours, RESOURCE).await,
        Err(AuthError::WrongAudience)
    );
    let both = mint(json!({ "aud": [AUDIENCE, RESOURCE] }));
    assert_eq!(
        verifier.verify_for_resource(&both, RESOURCE).await,
        Err(AuthError::AdpAudience)
    );
    let elsewhere = mint(json!({ "aud": "https://other.example.com/mcp" }));
    assert_eq!(
        verifier.verify_for_resource(&elsewhere, RESOURCE).await,
        Err(AuthError::WrongAudience)
    );
    // and a token for the upstream is not one for ADP
    assert_eq!(
        verifier.verify(&for_upstream).await,
        Err(AuthError::WrongAudience)
    );
    // the other checks still apply
    let expired = mint(json!({ "aud": RESOURCE, "exp": now() - 3600 }));
    assert_eq!(
        verifier.verify_for_resource(&expired, RESOURCE).await,
        Err(AuthError::Expired)
    );
    let forged = mint_hs256(b"another secret", &claims(json!({ "aud": RESOURCE }))).unwrap();
    assert_eq!(
        verifier.verify_for_resource(&forged, RESOURCE).await,
        Err(AuthError::BadSignature)
    );
}

#[tokio::test]
async fn without_an_adp_audience_a_passthrough_token_still_needs_the_resource() {
    let verifier = verifier_with(|config| config.audience = None);
    let no_aud = mint(json!({ "aud": null }));
    assert_eq!(
        verifier.verify_for_resource(&no_aud, RESOURCE).await,
        Err(AuthError::MissingClaim("aud"))
    );
    let elsewhere = mint(json!({ "aud": "adp" }));
    assert_eq!(
        verifier.verify_for_resource(&elsewhere, RESOURCE).await,
        Err(AuthError::WrongAudience)
    );
    let for_upstream = mint(json!({ "aud": RESOURCE }));
    assert!(
        verifier
            .verify_for_resource(&for_upstream, RESOURCE)
            .await
            .is_ok()
    );
}
