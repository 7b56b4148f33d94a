//! The secret every proxy replica shares, for what a proxy hands a client and later
//! takes back: MCP session ids and 2026-07-28 `requestState`. Any replica, or this one
//! after a restart, must accept what another issued, so the key comes from
//! configuration (`ADP_PROXY_STATE_KEY_FILE`), never from the process.
//!
//! Each use gets its own subkey, HMAC-SHA256(key, purpose), so a value minted for one
//! purpose can never pass as the other.

use std::path::Path;

use adp_core::identity::KeySource;
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use secrecy::zeroize::Zeroize;
use sha2::Sha256;

/// Fewer bytes than this cannot be a key worth the name.
pub const MIN_KEY_BYTES: usize = 32;
const REQUEST_STATE: &[u8] = b"adp-request-state";
const SESSION_ID: &[u8] = b"adp-session-id";
/// Labels the development key derived from the HS256 secret, so it is not that secret.
const FROM_DEV_SECRET: &[u8] = b"adp-proxy-state-key-from-hs256-secret";

/// One purpose's HMAC key. Never printed; wiped when dropped.
pub struct Subkey([u8; 32]);

impl Subkey {
    pub fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes keys of any length; 32 bytes cannot fail
        <Hmac<Sha256> as Mac>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!())
    }

    /// For unit tests elsewhere in the crate.
    #[cfg(test)]
    pub fn for_tests(seed: u8) -> Subkey {
        Subkey([seed; 32])
    }
}

impl std::fmt::Debug for Subkey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Subkey(redacted)")
    }
}

impl Drop for Subkey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// The subkeys the proxy uses.
pub struct StateKeys {
    pub request_state: Subkey,
    pub session_id: Subkey,
}

/// Never the keys.
impl std::fmt::Debug for StateKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateKeys(redacted)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read ADP_PROXY_STATE_KEY_FILE {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "ADP_PROXY_STATE_KEY_FILE {path} holds {len} bytes; it needs at least {MIN_KEY_BYTES} bytes of secret (for example `head -c 32 /dev/urandom | base64 > {path}`)"
    )]
    TooShort { path: String, len: usize },
    #[error(
        "set ADP_PROXY_STATE_KEY_FILE to a file of at least {MIN_KEY_BYTES} secret bytes shared by every proxy replica: with ADP_JWKS_URL there is no development secret to derive the session and requestState key from"
    )]
    Missing,
}

impl StateKeys {
    fn from_secret(secret: &[u8]) -> StateKeys {
        let derive = |purpose: &[u8]| {
            let mut mac =
                <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
            mac.update(purpose);
            Subkey(mac.finalize().into_bytes().into())
        };
        StateKeys {
            request_state: derive(REQUEST_STATE),
            session_id: derive(SESSION_ID),
        }
    }

    /// From `ADP_PROXY_STATE_KEY_FILE` when set; else, when callers are verified with an
    /// HS256 secret (development), from that secret, so proxies sharing it agree; else
    /// (JWKS) an error naming the setting.
    pub fn load(file: Option<&Path>, callers: &KeySource) -> Result<StateKeys, KeyError> {
        if let Some(path) = file {
            return Self::from_file(path);
        }
        match callers {
            KeySource::Hs256Secret(secret) => {
                let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose_secret())
                    .unwrap_or_else(|_| unreachable!());
                mac.update(FROM_DEV_SECRET);
                let mut key: [u8; 32] = mac.finalize().into_bytes().into();
                let keys = Self::from_secret(&key);
                key.zeroize();
                Ok(keys)
            }
            KeySource::Jwks { .. } => Err(KeyError::Missing),
        }
    }

    /// The file's bytes with trailing line breaks dropped (editors and `echo` add them).
    fn from_file(path: &Path) -> Result<StateKeys, KeyError> {
        let shown = path.display().to_string();
        let secret =
            adp_core::identity::read_secret_file(path).map_err(|source| KeyError::Read {
                path: shown.clone(),
                source,
            })?;
        let len = secret.expose_secret().len();
        if len < MIN_KEY_BYTES {
            return Err(KeyError::TooShort { path: shown, len });
        }
        Ok(Self::from_secret(secret.expose_secret()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tag(key: &Subkey) -> Vec<u8> {
        let mut mac = key.mac();
        mac.update(b"x");
        mac.finalize().into_bytes().to_vec()
    }

    #[test]
    fn a_key_file_is_trimmed_and_yields_distinct_subkeys() {
        let dir = std::env::temp_dir().join(format!("adp-keys-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("key");
        let secret = "0123456789abcdef0123456789abcdef";
        std::fs::write(&file, format!("{secret}\n")).unwrap();
        let dev = KeySource::hs256(b"dev".to_vec());
        let keys = StateKeys::load(Some(&file), &dev).unwrap();
        std::fs::write(&file, secret).unwrap();
        let again = StateKeys::load(Some(&file), &dev).unwrap();
        assert_eq!(tag(&keys.session_id), tag(&again.session_id));
        assert_eq!(tag(&keys.request_state), tag(&again.request_state));
        assert_ne!(tag(&keys.session_id), tag(&keys.request_state));

        std::fs::write(&file, format!("{}\r\n", &secret[..31])).unwrap();
        let error = StateKeys::load(Some(&file), &dev).unwrap_err().to_string();
        assert!(error.contains("ADP_PROXY_STATE_KEY_FILE"), "{error}");
        assert!(error.contains("31 bytes"), "{error}");
        assert!(!error.contains(&secret[..31]), "{error}");
        let missing = StateKeys::load(Some(&dir.join("absent")), &dev).unwrap_err();
        assert!(matches!(missing, KeyError::Read { .. }));
    }

    #[test]
    fn without_a_file_dev_secrets_agree_and_jwks_is_refused() {
        let a = StateKeys::load(None, &KeySource::hs256(b"shared".to_vec())).unwrap();
        let b = StateKeys::load(None, &KeySource::hs256(b"shared".to_vec())).unwrap();
        let c = StateKeys::load(None, &KeySource::hs256(b"other".to_vec())).unwrap();
        assert_eq!(tag(&a.session_id), tag(&b.session_id));
        assert_ne!(tag(&a.session_id), tag(&c.session_id));
        let jwks = KeySource::jwks("https://idp.example.com/jwks".parse().unwrap(), None);
        let error = StateKeys::load(None, &jwks).unwrap_err().to_string();
        assert!(error.contains("ADP_PROXY_STATE_KEY_FILE"), "{error}");
    }

    #[test]
    fn debug_never_shows_key_bytes() {
        let keys = StateKeys::from_secret(&[7u8; 32]);
        let shown = format!("{keys:?}");
        assert!(shown.contains("redacted"), "{shown}");
        assert!(!shown.contains('['), "{shown}");
    }
}
