use std::fmt;

/// Version of the associated-data encoding; bump it if the layout below ever changes.
const AD_VERSION: u8 = 1;

/// What a sealed value is, so a row cannot be replayed as a different kind of record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// A named secret in the admin secret store (e.g. an OAuth client secret).
    Secret,
    /// A user's OAuth token set for one provider.
    TokenSet,
    /// Short-lived state of an in-flight authorization (PKCE verifier, device code).
    RequestState,
}

impl RecordKind {
    /// Stable byte written into the associated data; never reuse or renumber.
    fn tag(self) -> u8 {
        match self {
            RecordKind::Secret => 1,
            RecordKind::TokenSet => 2,
            RecordKind::RequestState => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Secret => "secret",
            RecordKind::TokenSet => "token_set",
            RecordKind::RequestState => "request_state",
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The record a ciphertext belongs to. It is authenticated (not stored) with every seal, so
/// opening with any other binding fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Binding<'a> {
    pub kind: RecordKind,
    pub issuer: &'a str,
    pub subject: &'a str,
    pub provider: &'a str,
}

impl<'a> Binding<'a> {
    /// A named secret of the admin secret store: issuer and subject are empty.
    pub fn secret(name: &'a str) -> Self {
        Binding {
            kind: RecordKind::Secret,
            issuer: "",
            subject: "",
            provider: name,
        }
    }

    /// The OAuth tokens of user (`issuer`, `subject`) for `provider`.
    pub fn token_set(issuer: &'a str, subject: &'a str, provider: &'a str) -> Self {
        Binding {
            kind: RecordKind::TokenSet,
            issuer,
            subject,
            provider,
        }
    }

    /// The pending authorization of user (`issuer`, `subject`) with `provider`.
    pub fn request_state(issuer: &'a str, subject: &'a str, provider: &'a str) -> Self {
        Binding {
            kind: RecordKind::RequestState,
            issuer,
            subject,
            provider,
        }
    }

    /// The associated data for sealing this record under `key_id`.
    ///
    /// ```text
    /// version   u8        = 1
    /// kind      u8        1 secret, 2 token set, 3 request state
    /// issuer    u64 BE length, then UTF-8 bytes
    /// subject   u64 BE length, then UTF-8 bytes
    /// provider  u64 BE length, then UTF-8 bytes
    /// key id    u8 length, then ASCII bytes (the one named in the frame)
    /// ```
    ///
    /// Every field is length-prefixed, so no two distinct bindings encode alike.
    pub(crate) fn associated_data(&self, key_id: &str) -> Vec<u8> {
        let mut ad = Vec::with_capacity(
            2 + 3 * 8
                + self.issuer.len()
                + self.subject.len()
                + self.provider.len()
                + 1
                + key_id.len(),
        );
        ad.push(AD_VERSION);
        ad.push(self.kind.tag());
        for field in [self.issuer, self.subject, self.provider] {
            ad.extend_from_slice(&(field.len() as u64).to_be_bytes());
            ad.extend_from_slice(field.as_bytes());
        }
        // key ids are validated to at most 32 bytes before they reach here
        ad.push(key_id.len().min(u8::MAX as usize) as u8);
        ad.extend_from_slice(key_id.as_bytes());
        ad
    }
}

#[cfg(test)]
mod tests;
