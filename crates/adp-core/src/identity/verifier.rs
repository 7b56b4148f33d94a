use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret;
use serde_json::{Map, Value};

use super::jwks::{JWKS_ALGORITHMS, JwksCache};
use super::{AuthError, Identity, IdentityError, KeySource, Permissions, VerifierConfig};

/// Tokens are a few kilobytes at most; refusing huge ones early bounds the work an
/// unauthenticated caller can cause.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Verifies bearer tokens and turns them into an [`Identity`].
///
/// Cloning is cheap and clones share the JWKS cache, so one verifier serves a whole process.
#[derive(Debug, Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// `exp`, `nbf`, `iss`, `aud` and required-claim rules; only `algorithms` varies per token.
    validation: Validation,
    /// ADP's own audience (`ADP_JWT_AUDIENCE`), which a passthrough token must not name.
    audience: Option<String>,
    permissions_claim: String,
    keys: Keys,
}

#[derive(Debug)]
enum Keys {
    Hs256(DecodingKey),
    Jwks(JwksCache),
}

impl Verifier {
    /// Checks the configuration and prepares the key source; nothing is fetched until the
    /// first token arrives, so a verifier can be built before the identity provider is up.
    pub fn new(config: VerifierConfig) -> Result<Self, IdentityError> {
        if config.permissions_claim.is_empty() {
            return Err(IdentityError::EmptyPermissionsClaim);
        }
        let keys = match &config.key_source {
            KeySource::Hs256Secret(secret) => {
                if secret.expose_secret().is_empty() {
                    return Err(IdentityError::EmptySecret);
                }
                Keys::Hs256(DecodingKey::from_secret(secret.expose_secret()))
            }
            KeySource::Jwks {
                url,
                ca_file,
                cache_ttl,
                min_refresh_interval,
            } => Keys::Jwks(JwksCache::new(
                url.clone(),
                ca_file.as_deref(),
                *cache_ttl,
                *min_refresh_interval,
            )?),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                validation: validation(&config),
                audience: config.audience.clone(),
                permissions_claim: config.permissions_claim,
                keys,
            }),
        })
    }

    pub async fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let claims = self.verified_claims(token, &self.inner.validation).await?;
        identity_from_claims(&claims, &self.inner.permissions_claim)
    }

    /// Verifies a token its bearer wants forwarded to the upstream identified by
    /// `resource` (token passthrough; RFC 8707 calls that URL the resource): the same
    /// keys, issuer, `exp` and `nbf` rules as [`Verifier::verify`], but `aud` must be
    /// present and name `resource`, and must not name ADP's own audience. A token good
    /// for ADP thus never reaches an upstream, where it could be replayed against ADP;
    /// without a configured ADP audience, only the `resource` rule applies.
    pub async fn verify_for_resource(
        &self,
        token: &str,
        resource: &str,
    ) -> Result<Identity, AuthError> {
        let mut validation = self.inner.validation.clone();
        validation.validate_aud = true;
        validation.set_audience(&[resource]);
        validation.required_spec_claims.insert("aud".to_owned());
        let claims = self.verified_claims(token, &validation).await?;
        if let Some(ours) = &self.inner.audience
            && audiences(&claims).any(|aud| aud == ours)
        {
            return Err(AuthError::AdpAudience);
        }
        identity_from_claims(&claims, &self.inner.permissions_claim)
    }

    /// Like [`Verifier::verify`], also handing back every claim, for checks the caller
    /// makes itself (an OpenID Connect ID token's `nonce`, its `name` and `email`).
    pub async fn verify_with_claims(
        &self,
        token: &str,
    ) -> Result<(Identity, Map<String, Value>), AuthError> {
        let claims = self.verified_claims(token, &self.inner.validation).await?;
        let identity = identity_from_claims(&claims, &self.inner.permissions_claim)?;
        Ok((identity, claims))
    }

    async fn verified_claims(
        &self,
        token: &str,
        validation: &Validation,
    ) -> Result<Map<String, Value>, AuthError> {
        if token.is_empty() {
            return Err(AuthError::MissingToken);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Malformed);
        }
        // `alg: none` (and any other name jsonwebtoken does not know) fails here.
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        let alg = header.alg;
        let fetched;
        let key = match &self.inner.keys {
            Keys::Hs256(key) if alg == Algorithm::HS256 => key,
            Keys::Hs256(_) => return Err(AuthError::DisallowedAlgorithm),
            Keys::Jwks(cache) if JWKS_ALGORITHMS.contains(&alg) => {
                fetched = cache.key_for(header.kid.as_deref(), alg).await?;
                &fetched
            }
            Keys::Jwks(_) => return Err(AuthError::DisallowedAlgorithm),
        };
        let mut validation = validation.clone();
        validation.algorithms = vec![alg];
        Ok(
            jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation)
                .map_err(|error| auth_error(error.into_kind()))?
                .claims,
        )
    }
}

fn validation(config: &VerifierConfig) -> Validation {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = config.leeway_secs;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    // `iss` is always required: without it the (issuer, subject) identity is incomplete.
    let mut required = vec!["exp", "sub", "iss"];
    if let Some(issuer) = &config.issuer {
        validation.set_issuer(&[issuer]);
    }
    match &config.audience {
        Some(audience) => {
            validation.set_audience(&[audience]);
            required.push("aud");
        }
        None => validation.validate_aud = false,
    }
    validation.set_required_spec_claims(&required);
    validation
}

/// The `aud` claim's values: one string or an array of them.
fn audiences(claims: &Map<String, Value>) -> impl Iterator<Item = &str> {
    let values: &[Value] = match claims.get("aud") {
        Some(Value::Array(values)) => values,
        Some(single) => std::slice::from_ref(single),
        None => &[],
    };
    values.iter().filter_map(Value::as_str)
}

fn auth_error(kind: ErrorKind) -> AuthError {
    match kind {
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => AuthError::DisallowedAlgorithm,
        ErrorKind::MissingRequiredClaim(claim) => AuthError::MissingClaim(claim_name(&claim)),
        ErrorKind::InvalidClaimFormat(claim) => AuthError::MissingClaim(claim_name(&claim)),
        ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidKeyFormat => {
            // The token chose a key from our own set that turned out to be unusable: the
            // identity provider's fault, so log it for the operator.
            tracing::warn!("a jwks key cannot be used for verification");
            AuthError::UnknownKey
        }
        _ => AuthError::Malformed,
    }
}

/// Maps jsonwebtoken's claim names onto `'static` ones so errors never carry token text.
fn claim_name(claim: &str) -> &'static str {
    match claim {
        "exp" => "exp",
        "nbf" => "nbf",
        "sub" => "sub",
        "iss" => "iss",
        "aud" => "aud",
        _ => "registered",
    }
}

fn identity_from_claims(
    claims: &Map<String, Value>,
    permissions_claim: &str,
) -> Result<Identity, AuthError> {
    let non_empty_string = |name: &'static str| match claims.get(name) {
        Some(Value::String(value)) if !value.is_empty() => Ok(value.clone()),
        _ => Err(AuthError::MissingClaim(name)),
    };
    let issuer = non_empty_string("iss")?;
    let subject = non_empty_string("sub")?;
    let permissions = permissions(find_claim(claims, permissions_claim));
    Ok(Identity::new(issuer, subject, permissions))
}

/// A top-level claim of exactly this name wins (Auth0-style names such as
/// `https://example.com/permissions` contain dots); otherwise the name is a dotted path
/// into nested objects, as with Keycloak's `realm_access.roles`.
fn find_claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if let Some(value) = claims.get(name) {
        return Some(value);
    }
    let mut segments = name.split('.');
    let mut value = claims.get(segments.next()?)?;
    for segment in segments {
        value = value.as_object()?.get(segment)?;
    }
    Some(value)
}

/// Arrays of strings and space-separated strings (OAuth `scope` style) are both common.
/// Anything else grants nothing rather than failing: the caller is still authenticated,
/// just not authorised.
fn permissions(value: Option<&Value>) -> Permissions {
    match value {
        None | Some(Value::Null) => Permissions::default(),
        Some(Value::String(names)) => names.split_whitespace().collect(),
        Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).collect(),
        Some(_) => {
            tracing::debug!("permissions claim is neither a string nor an array; granting none");
            Permissions::default()
        }
    }
}

/// Signs `claims` with an HS256 secret, for `adpctl token mint` and tests.
///
/// The claims are taken as given (no `exp` is added), so a token without one will be
/// refused by the verifier; that is left to the caller to decide.
pub fn mint_hs256(secret: &[u8], claims: &Value) -> Result<String, IdentityError> {
    if secret.is_empty() {
        return Err(IdentityError::EmptySecret);
    }
    if !claims.is_object() {
        return Err(IdentityError::ClaimsNotObject);
    }
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(IdentityError::Mint)
}
