use std::fmt;

use aes_gcm::AeadInOut;
use rand::RngCore;
use secrecy::SecretString;
use zeroize::{Zeroize, Zeroizing};

use crate::frame::{self, Frame, NONCE_LEN};
use crate::{Binding, KeyRing, VaultError};

/// Seals and opens values with AES-256-GCM under a [`KeyRing`].
///
/// Every seal uses the primary key and a fresh random 96-bit nonce, and authenticates the
/// [`Binding`] (record kind, issuer, subject, provider) and the key id as associated data:
/// a sealed value copied to another user, provider or kind of record does not open.
///
/// # Sealed frame format
///
/// ```text
/// offset          size  field
/// 0               1     format version, 1
/// 1               1     key id length n (1..=32)
/// 2               n     key id, ASCII (letters, digits, '-', '_', '.')
/// 2+n             12    nonce, random per seal
/// 14+n            m     ciphertext, as long as the plaintext
/// 14+n+m          16    GCM tag
/// ```
///
/// The associated data (not stored) is described on `Binding::associated_data`: a version
/// byte, the kind byte, issuer, subject and provider each with a u64 big-endian length, and
/// the key id with a u8 length.
pub struct Vault {
    keys: KeyRing,
}

impl Vault {
    pub fn new(keys: KeyRing) -> Self {
        Vault { keys }
    }

    pub fn key_ring(&self) -> &KeyRing {
        &self.keys
    }

    /// Encrypts `plaintext` for the record `binding` under the primary key.
    pub fn seal(&self, binding: &Binding<'_>, plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
        let (key_id, cipher) = self.keys.primary();
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let mut sealed = frame::header(key_id, &nonce, plaintext.len());
        let body_start = sealed.len();
        sealed.extend_from_slice(plaintext);
        // the capacity reserved by `header` means no reallocation leaves a plaintext copy behind
        let sealing = cipher.encrypt_inout_detached(
            (&nonce).into(),
            &binding.associated_data(key_id),
            (&mut sealed[body_start..]).into(),
        );
        match sealing {
            Ok(tag) => {
                sealed.extend_from_slice(&tag);
                Ok(sealed)
            }
            Err(_) => {
                sealed.zeroize();
                Err(VaultError::TooLarge)
            }
        }
    }

    /// Decrypts a value sealed for the record `binding`, with whichever key sealed it.
    pub fn open(
        &self,
        binding: &Binding<'_>,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let frame = Frame::parse(sealed)?;
        let cipher = self
            .keys
            .cipher(frame.key_id)
            .ok_or_else(|| VaultError::UnknownKey {
                key_id: frame.key_id.to_owned(),
            })?;
        let mut plaintext = Zeroizing::new(frame.ciphertext.to_vec());
        cipher
            .decrypt_inout_detached(
                (&frame.nonce).into(),
                &binding.associated_data(frame.key_id),
                plaintext.as_mut_slice().into(),
                (&frame.tag).into(),
            )
            .map_err(|_| VaultError::OpenFailed)?;
        Ok(plaintext)
    }

    pub fn seal_str(&self, binding: &Binding<'_>, plaintext: &str) -> Result<Vec<u8>, VaultError> {
        self.seal(binding, plaintext.as_bytes())
    }

    /// [`open`](Self::open) for values sealed from text.
    pub fn open_string(
        &self,
        binding: &Binding<'_>,
        sealed: &[u8],
    ) -> Result<SecretString, VaultError> {
        let plaintext = self.open(binding, sealed)?;
        let text = std::str::from_utf8(&plaintext).map_err(|_| VaultError::NotUtf8)?;
        Ok(SecretString::from(text))
    }

    /// The id of the key `sealed` was sealed under, read from its header.
    pub fn key_id_of(sealed: &[u8]) -> Result<&str, VaultError> {
        Frame::key_id(sealed)
    }

    /// Whether `sealed` was sealed under a key other than the primary. A malformed value is
    /// not reported here; [`open`](Self::open) and [`rewrap`](Self::rewrap) say what is wrong.
    pub fn needs_rewrap(&self, sealed: &[u8]) -> bool {
        Self::key_id_of(sealed).is_ok_and(|key_id| key_id != self.keys.primary_id())
    }

    /// Opens `sealed` and seals the plaintext again under the primary key with a new nonce.
    pub fn rewrap(&self, binding: &Binding<'_>, sealed: &[u8]) -> Result<Vec<u8>, VaultError> {
        let plaintext = self.open(binding, sealed)?;
        self.seal(binding, &plaintext)
    }
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault").field("keys", &self.keys).finish()
    }
}

#[cfg(test)]
mod tests;
