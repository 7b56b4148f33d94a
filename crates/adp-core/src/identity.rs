// Who is calling: JWT verification (JWKS or an HS256 development secret) and the
// permissions a verified caller holds (DESIGN.md §4).
//
//     let verifier = Verifier::new(VerifierConfig::new(KeySource::jwks(url, None)))?;
//     let identity = verifier.verify(bearer_token(header_value)?).await?;
//     if !identity.has_permission("mcpserver_create") { /* deny */ }

mod config;
mod error;
mod jwks;
mod strength;
mod verifier;

use std::collections::BTreeSet;

pub use config::{
    DEFAULT_JWKS_CACHE_TTL, DEFAULT_JWKS_MIN_REFRESH_INTERVAL, DEFAULT_LEEWAY_SECS,
    DEFAULT_PERMISSIONS_CLAIM, KeySource, VerifierConfig, read_secret_file,
};
pub use error::{AuthError, IdentityError};
pub use strength::{WeakJwtSettings, check_jwt_settings};
pub use verifier::{Verifier, mint_hs256};

/// A verified caller.
///
/// The pair (`issuer`, `subject`) is the user's identity: connections and tokens are keyed
/// by it, so two issuers that happen to hand out the same `sub` never share anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub issuer: String,
    pub subject: String,
    permissions: Permissions,
}

impl Identity {
    /// Builds an identity directly, for callers that authenticated by other means (tests,
    /// in-process tools); production code gets one from [`Verifier::verify`].
    pub fn new(
        issuer: impl Into<String>,
        subject: impl Into<String>,
        permissions: Permissions,
    ) -> Self {
        Self {
            issuer: issuer.into(),
            subject: subject.into(),
            permissions,
        }
    }

    pub fn permissions(&self) -> &Permissions {
        &self.permissions
    }

    /// Whether the caller may perform the operation guarded by `name`; `*` grants everything.
    pub fn has_permission(&self, name: &str) -> bool {
        self.permissions.grants(name)
    }
}

/// The permission names carried by a token's permissions claim.
///
/// Kept private to [`Identity`] behind accessors so the `*` rule is applied in one place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions(BTreeSet<String>);

impl Permissions {
    /// The permission value that grants every permission.
    pub const ALL: &'static str = "*";

    /// Whether `name` is granted, either explicitly or through [`Permissions::ALL`].
    pub fn grants(&self, name: &str) -> bool {
        self.0.contains(Self::ALL) || self.0.contains(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<S: Into<String>> FromIterator<S> for Permissions {
    /// Empty names are dropped: they can only come from sloppy claim formatting.
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(Into::into)
                .filter(|name| !name.is_empty())
                .collect(),
        )
    }
}

/// Extracts the token from an `Authorization` header value (`Bearer <token>`, scheme
/// matched case-insensitively as RFC 7235 requires).
///
/// Any other scheme is reported as a missing token rather than a malformed one: the
/// caller simply did not present what we accept.
pub fn bearer_token(authorization_header_value: &str) -> Result<&str, AuthError> {
    let value = authorization_header_value.trim();
    let (scheme, rest) = value.split_once(char::is_whitespace).unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::MissingToken);
    }
    let token = rest.trim();
    if token.is_empty() {
        return Err(AuthError::MissingToken);
    }
    // tokens are ASCII (base64url and dots): a byte scan, not a char-by-char one, since
    // this runs on every proxied call
    if token
        .bytes()
        .any(|byte| byte.is_ascii_whitespace() || !byte.is_ascii())
    {
        return Err(AuthError::Malformed);
    }
    Ok(token)
}

#[cfg(test)]
mod tests;
