//! The `Mcp-Session-Id`s the proxy hands to clients in place of the upstream's.
//!
//! An upstream session id alone says nothing about whose session it is, so the proxy
//! never lets one through: the initialize response's id is rewritten into
//!
//! ```text
//! v1.<base64url(JSON {u: upstream id, v: protocol version, e: url elicitation})>.<base64url(tag)>
//! tag = HMAC-SHA256(session subkey, "adp-session-id/v1" ‖ len‖issuer ‖ len‖subject ‖ len‖server ‖ payload)
//! ```
//!
//! and on every later request the tag is checked against the caller and the server
//! before the upstream's own id is forwarded. The caller's identity is in the tag, not
//! the id, so an id is worth nothing to anyone else. Nothing is stored: there is no map
//! to flood, and every replica sharing the key (`ADP_PROXY_STATE_KEY_FILE`), or this
//! proxy after a restart, accepts the ids any of them issued.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac;
use serde::{Deserialize, Serialize};

use crate::consent::Caller;
use crate::keys::Subkey;
use crate::mcp::ClientView;

const VERSION_PREFIX: &str = "v1.";
const DOMAIN: &[u8] = b"adp-session-id/v1";
/// Longest protocol version kept; versions are dates, anything longer is not one.
const MAX_VERSION_BYTES: usize = 32;
/// Longest `Mcp-Session-Id` issued or accepted; longer ones are refused before any
/// work. Upstream ids up to about 1400 bytes fit (real ones are UUIDs or similar).
pub const MAX_SESSION_ID_BYTES: usize = 2048;
const TAG_BYTES: usize = 32;

/// What a verified id gives back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenedSession {
    pub upstream_id: String,
    pub view: ClientView,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    u: String,
    v: String,
    e: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SessionIdError {
    /// Not issued by a proxy sharing our key for this caller and server: as good as unknown.
    #[error("unknown session")]
    Unknown,
    #[error("the upstream's session id is too long to wrap in {MAX_SESSION_ID_BYTES} bytes")]
    UpstreamIdTooLong,
}

pub struct SessionIds {
    key: Subkey,
}

/// Never the key.
impl std::fmt::Debug for SessionIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionIds").finish_non_exhaustive()
    }
}

impl SessionIds {
    pub fn new(key: Subkey) -> SessionIds {
        SessionIds { key }
    }

    fn tag(&self, caller: Caller<'_>, payload: &str) -> hmac::Hmac<sha2::Sha256> {
        let mut mac = self.key.mac();
        mac.update(DOMAIN);
        // length-prefixed, so no two (issuer, subject, server) triples read the same
        for part in [caller.issuer, caller.subject, caller.server] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac.update(payload.as_bytes());
        mac
    }

    /// The id to give the client for the upstream's `upstream_id`.
    pub fn issue(
        &self,
        caller: Caller<'_>,
        upstream_id: &str,
        view: &ClientView,
    ) -> Result<String, SessionIdError> {
        if upstream_id.len() > MAX_SESSION_ID_BYTES {
            return Err(SessionIdError::UpstreamIdTooLong);
        }
        let version = if view.version.len() <= MAX_VERSION_BYTES {
            view.version.clone()
        } else {
            String::new()
        };
        let payload = Payload {
            u: upstream_id.to_owned(),
            v: version,
            e: view.url_elicitation,
        };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap_or_default());
        let tag = URL_SAFE_NO_PAD.encode(self.tag(caller, &payload).finalize().into_bytes());
        let id = format!("{VERSION_PREFIX}{payload}.{tag}");
        if id.len() > MAX_SESSION_ID_BYTES {
            return Err(SessionIdError::UpstreamIdTooLong);
        }
        Ok(id)
    }

    /// The upstream session behind `presented`, if this proxy (or one sharing its key)
    /// issued it to this caller for this server.
    pub fn open(
        &self,
        presented: &str,
        caller: Caller<'_>,
    ) -> Result<OpenedSession, SessionIdError> {
        use SessionIdError::Unknown;
        if presented.len() > MAX_SESSION_ID_BYTES {
            return Err(Unknown);
        }
        let rest = presented.strip_prefix(VERSION_PREFIX).ok_or(Unknown)?;
        let (payload, tag) = rest.split_once('.').ok_or(Unknown)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| Unknown)?;
        if tag.len() != TAG_BYTES {
            return Err(Unknown);
        }
        // constant time: how much of a forged tag matched must not show in the timing
        self.tag(caller, payload)
            .verify_slice(&tag)
            .map_err(|_| Unknown)?;
        let bytes = URL_SAFE_NO_PAD.decode(payload).map_err(|_| Unknown)?;
        let payload: Payload = serde_json::from_slice(&bytes).map_err(|_| Unknown)?;
        Ok(OpenedSession {
            upstream_id: payload.u,
            view: ClientView {
                version: payload.v,
                url_elicitation: payload.e,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const ALICE: Caller<'static> = Caller {
        issuer: "https://issuer.test",
        subject: "alice",
        server: "tools",
    };

    fn view() -> ClientView {
        ClientView {
            version: "2025-11-25".into(),
            url_elicitation: true,
        }
    }

    #[test]
    fn an_id_opens_for_its_caller_and_server_only() {
        let ids = SessionIds::new(Subkey::for_tests(1));
        let id = ids.issue(ALICE, "upstream-1", &view()).unwrap();
        assert!(!id.contains("upstream-1"), "{id}");
        assert!(http::HeaderValue::from_str(&id).is_ok());
        let opened = ids.open(&id, ALICE).unwrap();
        assert_eq!(opened.upstream_id, "upstream-1");
        assert_eq!(opened.view, view());

        for other in [
            Caller {
                subject: "bob",
                ..ALICE
            },
            Caller {
                issuer: "https://other.test",
                ..ALICE
            },
            Caller {
                server: "other",
                ..ALICE
            },
            // the same bytes split differently between the fields
            Caller {
                issuer: "https://issuer.testa",
                subject: "lice",
                ..ALICE
            },
        ] {
            assert_eq!(ids.open(&id, other), Err(SessionIdError::Unknown));
        }
        let other_key = SessionIds::new(Subkey::for_tests(2));
        assert_eq!(other_key.open(&id, ALICE), Err(SessionIdError::Unknown));
    }

    #[test]
    fn forgeries_and_garbage_are_unknown() {
        let ids = SessionIds::new(Subkey::for_tests(1));
        let alices = ids.issue(ALICE, "upstream-a", &view()).unwrap();
        let bob = Caller {
            subject: "bob",
            ..ALICE
        };
        let bobs = ids.issue(bob, "upstream-b", &view()).unwrap();
        // alice's payload under bob's tag
        let (alice_payload, _) = alices.rsplit_once('.').unwrap();
        let (_, bob_tag) = bobs.rsplit_once('.').unwrap();
        let spliced = format!("{alice_payload}.{bob_tag}");
        assert_eq!(ids.open(&spliced, bob), Err(SessionIdError::Unknown));
        let long = "v1.".to_owned() + &"A".repeat(MAX_SESSION_ID_BYTES);
        for garbage in [
            "",
            "upstream-a",
            "v1.",
            "v1..",
            "v1.e30.",
            "v2.e30.AAAA",
            long.as_str(),
            &alices[..alices.len() - 1],
            &format!("{alices}A"),
        ] {
            assert_eq!(
                ids.open(garbage, ALICE),
                Err(SessionIdError::Unknown),
                "{garbage}"
            );
        }
    }

    #[test]
    fn oversized_parts_are_bounded() {
        let ids = SessionIds::new(Subkey::for_tests(1));
        for too_long in [1_500, MAX_SESSION_ID_BYTES + 1] {
            assert_eq!(
                ids.issue(ALICE, &"x".repeat(too_long), &view()),
                Err(SessionIdError::UpstreamIdTooLong)
            );
        }
        let longest = "\"".repeat(600);
        let odd = ClientView {
            version: "9".repeat(10_000),
            url_elicitation: false,
        };
        let id = ids.issue(ALICE, &longest, &odd).unwrap();
        assert!(id.len() <= MAX_SESSION_ID_BYTES, "{}", id.len());
        assert_eq!(ids.open(&id, ALICE).unwrap().view.version, "");
    }
}
