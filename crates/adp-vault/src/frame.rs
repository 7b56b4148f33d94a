//! Layout of a sealed value; see [`Vault`](crate::Vault#sealed-frame-format).

use crate::VaultError;
use crate::keyring::is_valid_key_id;

/// Leading byte of every frame; bump it if the layout ever changes.
pub(crate) const FORMAT_VERSION: u8 = 1;
pub(crate) const NONCE_LEN: usize = 12;
pub(crate) const TAG_LEN: usize = 16;

/// A parsed frame, borrowing from the sealed bytes.
#[derive(Debug)]
pub(crate) struct Frame<'a> {
    pub key_id: &'a str,
    pub nonce: [u8; NONCE_LEN],
    pub ciphertext: &'a [u8],
    pub tag: [u8; TAG_LEN],
}

impl<'a> Frame<'a> {
    pub fn parse(sealed: &'a [u8]) -> Result<Self, VaultError> {
        let (key_id, rest) = split_header(sealed)?;
        let (nonce, rest) = rest
            .split_first_chunk::<NONCE_LEN>()
            .ok_or(malformed("frame is truncated"))?;
        let (ciphertext, tag) = rest
            .split_last_chunk::<TAG_LEN>()
            .ok_or(malformed("frame is truncated"))?;
        Ok(Frame {
            key_id,
            nonce: *nonce,
            ciphertext,
            tag: *tag,
        })
    }

    /// The key id alone, without looking past the header.
    pub fn key_id(sealed: &'a [u8]) -> Result<&'a str, VaultError> {
        split_header(sealed).map(|(key_id, _)| key_id)
    }
}

/// Starts a frame: version, key id and nonce, with room for `plaintext_len` bytes and the tag.
pub(crate) fn header(key_id: &str, nonce: &[u8; NONCE_LEN], plaintext_len: usize) -> Vec<u8> {
    let mut frame = Vec::with_capacity(2 + key_id.len() + NONCE_LEN + plaintext_len + TAG_LEN);
    frame.push(FORMAT_VERSION);
    // key ids are validated to at most 32 bytes when the key ring is built
    frame.push(key_id.len().min(u8::MAX as usize) as u8);
    frame.extend_from_slice(key_id.as_bytes());
    frame.extend_from_slice(nonce);
    frame
}

fn split_header(sealed: &[u8]) -> Result<(&str, &[u8]), VaultError> {
    let (&version, rest) = sealed.split_first().ok_or(malformed("frame is empty"))?;
    if version != FORMAT_VERSION {
        return Err(malformed("unsupported format version"));
    }
    let (&key_id_len, rest) = rest.split_first().ok_or(malformed("frame is truncated"))?;
    let key_id_len = usize::from(key_id_len);
    if rest.len() < key_id_len {
        return Err(malformed("frame is truncated"));
    }
    let (key_id, rest) = rest.split_at(key_id_len);
    let key_id = std::str::from_utf8(key_id)
        .ok()
        .filter(|id| is_valid_key_id(id))
        .ok_or(malformed("key id is not valid"))?;
    Ok((key_id, rest))
}

fn malformed(reason: &'static str) -> VaultError {
    VaultError::Malformed { reason }
}

#[cfg(test)]
mod tests;
