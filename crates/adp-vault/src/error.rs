use std::io;
use std::path::PathBuf;

/// Everything that can go wrong sealing, opening or loading keys.
///
/// Messages never contain plaintext or key material; key ids and file paths are not secret.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The frame names a key that is not in the key ring (deleted, or a key file from
    /// another deployment).
    #[error("sealed value uses key {key_id:?}, which is not in the key ring")]
    UnknownKey { key_id: String },

    /// The bytes are not a sealed frame this version understands.
    #[error("sealed value is malformed: {reason}")]
    Malformed { reason: &'static str },

    /// Authentication failed. Deliberately one error for every cause.
    #[error("could not open: wrong key, wrong binding or tampered data")]
    OpenFailed,

    /// The opened value was expected to be text.
    #[error("opened value is not valid UTF-8")]
    NotUtf8,

    /// The plaintext is beyond what AES-GCM can seal under one nonce (64 GiB).
    #[error("could not seal: value is too large")]
    TooLarge,

    /// The key file exists but its content is wrong.
    #[error("key file {}: {problem}", path.display())]
    KeyFile { path: PathBuf, problem: String },

    /// The key file could not be read or written.
    #[error("key file {}: could not {action}: {error}", path.display())]
    KeyFileIo {
        path: PathBuf,
        action: &'static str,
        error: io::Error,
    },
}
