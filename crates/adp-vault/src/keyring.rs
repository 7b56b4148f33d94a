use std::fmt;
use std::io;
use std::path::Path;

use aes_gcm::{Aes256Gcm, KeyInit};
use rand::{RngCore, TryRngCore};
use zeroize::Zeroizing;

use crate::VaultError;

mod file;

/// Length of an AES-256 key in bytes.
const KEY_LEN: usize = 32;
const MAX_KEY_ID_LEN: usize = 32;

/// The keys a [`Vault`](crate::Vault) seals and opens with: one primary key for new seals,
/// plus older keys that are kept so values sealed before a rotation still open.
///
/// # Key file
///
/// A JSON file, written with mode 0600 and replaced atomically:
///
/// ```json
/// {
///   "primary": "5d0c7e21",
///   "keys": [
///     { "id": "5d0c7e21", "key": "<base64 of 32 random bytes>", "created": 1767225600 },
///     { "id": "a4f09b3c", "key": "<base64 of 32 random bytes>", "created": 1735689600 }
///   ]
/// }
/// ```
///
/// - `id`: 1 to 32 ASCII letters, digits, `-`, `_` or `.`, unique in the file; it is written
///   into every sealed value, so an id must never be reused for different key bytes.
/// - `key`: standard base64 (with padding) of exactly 32 bytes, e.g. `openssl rand -base64 32`.
/// - `created`: optional, seconds since the Unix epoch; informational only.
/// - `primary`: the id of the key new values are sealed with.
///
/// Unknown fields are rejected. Errors name the file and the problem, never key bytes.
///
/// Each key is held only as an expanded AES-GCM cipher, which is zeroized on drop (the
/// `zeroize` feature of `aes-gcm`); decoded key bytes live in [`Zeroizing`] buffers.
pub struct KeyRing {
    primary_id: String,
    primary: Aes256Gcm,
    older: Vec<(String, Aes256Gcm)>,
}

impl KeyRing {
    /// Reads and validates a key file. Warns if the file is readable by group or others.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, VaultError> {
        let path = path.as_ref();
        file::warn_if_accessible_by_others(path);
        file::KeyFile::read(path)?.key_ring(path)
    }

    /// Loads the key file, or, if there is none, generates one with a single fresh key
    /// (creating the parent directory). Returns whether a key was generated; a warning is
    /// logged when it was, since losing that file makes every sealed value unreadable.
    ///
    /// Generation never overwrites: if another process creates the file at the same time,
    /// its keys are loaded instead.
    pub fn load_or_generate(path: impl AsRef<Path>) -> Result<(Self, bool), VaultError> {
        let path = path.as_ref();
        match std::fs::metadata(path) {
            Ok(_) => return Ok((Self::load(path)?, false)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(io_error(path, "inspect it", error)),
        }
        let key_file = file::KeyFile::with_fresh_key();
        let key_ring = key_file.key_ring(path)?;
        if !key_file.create(path)? {
            return Ok((Self::load(path)?, false));
        }
        tracing::warn!(
            path = %path.display(),
            key_id = %key_ring.primary_id,
            "generated a new vault key file; back it up, without it no sealed value can be opened"
        );
        Ok((key_ring, true))
    }

    /// Adds a freshly generated key to the key file and makes it the primary, keeping every
    /// existing key so older values still open. Returns the new key ring.
    ///
    /// This is an operator command: run it in one place, then restart or reload the
    /// processes that share the file. Concurrent rotations of the same file may lose one of
    /// the new keys (never an old one).
    pub fn rotate(path: impl AsRef<Path>) -> Result<Self, VaultError> {
        let path = path.as_ref();
        let mut key_file = file::KeyFile::read(path)?;
        // refuse to rewrite a file that does not validate
        key_file.key_ring(path)?;
        let key_id = key_file.add_fresh_primary();
        key_file.replace(path)?;
        tracing::info!(
            path = %path.display(),
            key_id = %key_id,
            "rotated the vault key; existing values open with older keys until re-wrapped"
        );
        key_file.key_ring(path)
    }

    /// A key ring with one fresh key that lives only in memory (tests, throwaway instances).
    pub fn generate() -> Self {
        let key = random_key();
        KeyRing {
            primary_id: new_key_id(|_| false),
            primary: cipher(&key),
            older: Vec::new(),
        }
    }

    /// The id of the key new values are sealed with.
    pub fn primary_id(&self) -> &str {
        &self.primary_id
    }

    /// Every key id, primary first.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.primary_id.as_str())
            .chain(self.older.iter().map(|(id, _)| id.as_str()))
    }

    pub fn contains(&self, key_id: &str) -> bool {
        self.cipher(key_id).is_some()
    }

    pub(crate) fn primary(&self) -> (&str, &Aes256Gcm) {
        (&self.primary_id, &self.primary)
    }

    pub(crate) fn cipher(&self, key_id: &str) -> Option<&Aes256Gcm> {
        if key_id == self.primary_id {
            return Some(&self.primary);
        }
        self.older
            .iter()
            .find(|(id, _)| id == key_id)
            .map(|(_, cipher)| cipher)
    }

    /// Builds a key ring from validated ids; `None` if `primary_id` is not among them.
    fn from_ciphers(primary_id: &str, ciphers: Vec<(String, Aes256Gcm)>) -> Option<Self> {
        let mut primary = None;
        let mut older = Vec::with_capacity(ciphers.len().saturating_sub(1));
        for (id, cipher) in ciphers {
            if id == primary_id {
                primary = Some(cipher);
            } else {
                older.push((id, cipher));
            }
        }
        Some(KeyRing {
            primary_id: primary_id.to_owned(),
            primary: primary?,
            older,
        })
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("primary", &self.primary_id)
            .field("key_ids", &self.key_ids().collect::<Vec<_>>())
            .finish()
    }
}

/// Whether `id` may name a key: 1 to 32 ASCII letters, digits, `-`, `_` or `.`.
pub(crate) fn is_valid_key_id(id: &str) -> bool {
    (1..=MAX_KEY_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn cipher(key: &[u8; KEY_LEN]) -> Aes256Gcm {
    Aes256Gcm::new(key.into())
}

/// 32 bytes from the operating system's random number generator.
///
/// # Panics
/// If the operating system cannot provide randomness, as `rand::rng()` would.
fn random_key() -> Zeroizing<[u8; KEY_LEN]> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    rand::rngs::OsRng.unwrap_err().fill_bytes(&mut *key);
    key
}

/// A random 8-hex-digit id that `taken` does not reject.
fn new_key_id(taken: impl Fn(&str) -> bool) -> String {
    loop {
        let id = format!("{:08x}", rand::random::<u32>());
        if !taken(&id) {
            return id;
        }
    }
}

fn io_error(path: &Path, action: &'static str, error: io::Error) -> VaultError {
    VaultError::KeyFileIo {
        path: path.to_owned(),
        action,
        error,
    }
}

#[cfg(test)]
mod tests;
