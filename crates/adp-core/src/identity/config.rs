use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::zeroize::Zeroize;
use secrecy::{ExposeSecret, SecretSlice};
use url::Url;

use super::IdentityError;

/// `ADP_PERMISSIONS_CLAIM` default.
pub const DEFAULT_PERMISSIONS_CLAIM: &str = "permissions";
/// Clock skew tolerated on `exp` and `nbf`; a minute covers ordinary NTP drift.
pub const DEFAULT_LEEWAY_SECS: u64 = 60;
/// How long a fetched JWKS is trusted before it is fetched again.
pub const DEFAULT_JWKS_CACHE_TTL: Duration = Duration::from_secs(5 * 60);
/// Minimum spacing of refetches caused by unknown `kid`s (and of retries after a failed
/// fetch), so a stream of garbage tokens cannot turn us into a load generator against the
/// identity provider.
pub const DEFAULT_JWKS_MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(10);

/// How tokens are checked: the `ADP_JWT_*`, `ADP_JWKS_URL` and `ADP_PERMISSIONS_CLAIM`
/// settings, assembled by the binaries.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// Expected `iss`; when `None`, any issuer is accepted and becomes part of the identity.
    pub issuer: Option<String>,
    /// Expected `aud`; when `None`, the `aud` claim is not checked.
    pub audience: Option<String>,
    pub key_source: KeySource,
    /// Claim holding permission names; a dotted path such as `realm_access.roles` reaches
    /// into nested objects when no top-level claim has that exact name.
    pub permissions_claim: String,
    pub leeway_secs: u64,
}

impl VerifierConfig {
    pub fn new(key_source: KeySource) -> Self {
        Self {
            issuer: None,
            audience: None,
            key_source,
            permissions_claim: DEFAULT_PERMISSIONS_CLAIM.to_owned(),
            leeway_secs: DEFAULT_LEEWAY_SECS,
        }
    }
}

/// Where verification keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// The identity provider's published key set, fetched over HTTP(S) and cached.
    Jwks {
        url: Url,
        /// Extra PEM root certificates (`ADP_UPSTREAM_CA_FILE`) for a provider behind a
        /// private CA.
        ca_file: Option<PathBuf>,
        cache_ttl: Duration,
        min_refresh_interval: Duration,
    },
    /// A shared HS256 secret; for development and tests only, since anyone who can verify
    /// can also mint.
    Hs256Secret(SecretSlice<u8>),
}

impl KeySource {
    /// A JWKS source with the default cache lifetime and refresh spacing.
    pub fn jwks(url: Url, ca_file: Option<PathBuf>) -> Self {
        Self::Jwks {
            url,
            ca_file,
            cache_ttl: DEFAULT_JWKS_CACHE_TTL,
            min_refresh_interval: DEFAULT_JWKS_MIN_REFRESH_INTERVAL,
        }
    }

    pub fn hs256(secret: Vec<u8>) -> Self {
        Self::Hs256Secret(secret.into())
    }

    /// Reads an HS256 secret file (`ADP_JWT_HS256_SECRET_FILE`).
    ///
    /// Trailing line breaks are dropped because editors and `echo` add them; errors name the
    /// file but never quote it.
    pub fn hs256_from_file(path: impl AsRef<Path>) -> Result<Self, IdentityError> {
        let path = path.as_ref();
        let secret = read_secret_file(path).map_err(|source| IdentityError::ReadSecretFile {
            path: path.to_owned(),
            source,
        })?;
        if secret.expose_secret().is_empty() {
            return Err(IdentityError::EmptySecretFile {
                path: path.to_owned(),
            });
        }
        Ok(Self::Hs256Secret(secret))
    }
}

/// Reads a file holding a secret (an HS256 secret, a proxy state key) with trailing
/// line breaks dropped, because editors and `echo` add them; the read buffer is wiped.
pub fn read_secret_file(path: &Path) -> std::io::Result<SecretSlice<u8>> {
    let mut contents = std::fs::read(path)?;
    let len = contents
        .iter()
        .rposition(|byte| *byte != b'\n' && *byte != b'\r')
        .map_or(0, |last| last + 1);
    // Copy into an exact-size box and wipe the read buffer, rather than shrinking it in
    // place, which may leave an unwiped copy behind in the allocator.
    let secret: Box<[u8]> = contents[..len].into();
    contents.zeroize();
    Ok(secret.into())
}
