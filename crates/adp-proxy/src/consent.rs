//! Consent conditions in each MCP generation's own form (DESIGN.md §3 "Errors",
//! MCP-NOTES.md §2):
//!
//! | client | answer |
//! |---|---|
//! | 2025-11-25 that declared `elicitation.url` | JSON-RPC error `-32042` with `data.elicitations[{mode:"url", elicitationId, url, message}]` |
//! | 2026-07-28 with `elicitation.url`, on `tools/call`, `resources/read`, `prompts/get` | result `{resultType:"input_required", inputRequests, requestState}` |
//! | 2026-07-28 without `elicitation.url` | HTTP 400, `-32021` naming the missing capability |
//! | everything else | JSON-RPC error `-31001` whose `data` carries `reason`, `providerName`, `authorizeUrl`, `missingScopes` |
//!
//! All but the -32021 answer go out with HTTP 200: MCP SDKs surface a JSON-RPC error
//! only from a 2xx response.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use adp_core::Reason;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::bounded::BoundedSet;
use crate::control_plane_client::ConsentRequired;
use crate::errors::json_rpc_error;
use crate::keys::Subkey;
use crate::mcp::{ClientView, V2025_11_25};

use crate::errors::code::{
    CONSENT_REQUIRED as CONSENT_REQUIRED_CODE, MISSING_CAPABILITY as MISSING_CAPABILITY_CODE,
    URL_ELICITATION_REQUIRED as URL_ELICITATION_REQUIRED_CODE,
};
/// How long a sealed `requestState` may be replayed (once).
const REQUEST_STATE_TTL: Duration = Duration::from_secs(600);
/// Methods that may answer with `input_required` (MRTR).
const MRTR_METHODS: [&str; 3] = ["tools/call", "resources/read", "prompts/get"];

/// The reply to send instead of forwarding.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub http_status: u16,
    pub body: Value,
}

/// Seals and checks the `requestState` of 2026-07-28 retries with the key all replicas
/// share (see `keys`), so the retry may land on any of them: a state is good for one
/// retry, by the same user, of the same request, within ten minutes. "One" is per
/// process: spent states are remembered locally, not across replicas.
pub struct RequestStates {
    key: Subkey,
    used: BoundedSet<[u8; 16]>,
}

/// Never the key (nor the spent nonces).
impl std::fmt::Debug for RequestStates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestStates").finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct SealedState {
    iss: String,
    sub: String,
    server: String,
    method: String,
    digest: String,
    exp: u64,
    nonce: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("requestState is invalid, expired, already used, or for another request")]
pub struct BadRequestState;

/// Who is asking, for binding sealed states.
#[derive(Clone, Copy, Debug)]
pub struct Caller<'a> {
    pub issuer: &'a str,
    pub subject: &'a str,
    pub server: &'a str,
}

impl RequestStates {
    pub fn new(key: Subkey, capacity: usize) -> Self {
        RequestStates {
            key,
            used: BoundedSet::new(capacity),
        }
    }

    fn mac(&self) -> Hmac<Sha256> {
        self.key.mac()
    }

    fn seal(&self, caller: Caller<'_>, method: &str, params: Option<&Value>) -> String {
        let nonce: [u8; 16] = rand::random();
        let exp = (SystemTime::now() + REQUEST_STATE_TTL)
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let state = SealedState {
            iss: caller.issuer.to_owned(),
            sub: caller.subject.to_owned(),
            server: caller.server.to_owned(),
            method: method.to_owned(),
            digest: params_digest(params),
            exp,
            nonce: hex::encode(nonce),
        };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&state).unwrap_or_default());
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{payload}.{tag}")
    }

    /// Checks a retry's `requestState` and spends it.
    pub fn open(
        &self,
        sealed: &str,
        caller: Caller<'_>,
        method: &str,
        params: Option<&Value>,
    ) -> Result<(), BadRequestState> {
        let (payload, tag) = sealed.split_once('.').ok_or(BadRequestState)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| BadRequestState)?;
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        mac.verify_slice(&tag).map_err(|_| BadRequestState)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| BadRequestState)?;
        let state: SealedState = serde_json::from_slice(&bytes).map_err(|_| BadRequestState)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let matches = state.iss == caller.issuer
            && state.sub == caller.subject
            && state.server == caller.server
            && state.method == method
            && state.digest == params_digest(params)
            && state.exp >= now;
        if !matches {
            return Err(BadRequestState);
        }
        let mut nonce = [0u8; 16];
        let raw = hex::decode(&state.nonce).map_err(|_| BadRequestState)?;
        if raw.len() != nonce.len() {
            return Err(BadRequestState);
        }
        nonce.copy_from_slice(&raw);
        if self.used.insert_new(nonce) {
            Ok(())
        } else {
            Err(BadRequestState)
        }
    }
}

/// The params that identify a request, without what a retry adds or a client may vary.
fn params_digest(params: Option<&Value>) -> String {
    let mut salient = params.cloned().unwrap_or(Value::Null);
    if let Some(object) = salient.as_object_mut() {
        object.remove("requestState");
        object.remove("inputResponses");
        object.remove("_meta");
    }
    hex::encode(Sha256::digest(salient.to_string().as_bytes()))
}

/// What the user reads: which account, why, and where to go.
fn user_message(consent: &ConsentRequired, provider_display: &str) -> String {
    let why = match Reason::parse(&consent.reason) {
        Some(Reason::ScopeUpgradeRequired) => format!(
            "needs more access to your {provider_display} account ({})",
            consent.missing_scopes.join(", ")
        ),
        Some(Reason::OauthTokenExpired) => {
            format!("lost access to your {provider_display} account")
        }
        _ => format!("needs access to your {provider_display} account"),
    };
    format!(
        "The {} MCP server {why}. Open {} to connect it, then retry.",
        consent.server_name, consent.authorize_url
    )
}

/// The JSON-RPC request being answered.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub method: &'a str,
    pub id: Option<&'a Value>,
    pub params: Option<&'a Value>,
}

/// The reply for `consent` to a client seen as `view`.
pub fn reply(
    consent: &ConsentRequired,
    provider_display: &str,
    view: &ClientView,
    request: Request<'_>,
    states: &RequestStates,
    caller: Caller<'_>,
) -> Reply {
    let Request { method, id, params } = request;
    let message = user_message(consent, provider_display);
    let id = id.cloned().unwrap_or(Value::Null);
    if view.is_modern() {
        if !view.url_elicitation {
            return Reply {
                http_status: 400,
                body: json_rpc_error(
                    Some(&id),
                    MISSING_CAPABILITY_CODE,
                    format!("this request needs the client capability elicitation.url: {message}"),
                    json!({"requiredCapabilities": {"elicitation": {"url": {}}}}),
                ),
            };
        }
        if MRTR_METHODS.contains(&method) {
            return Reply {
                http_status: 200,
                body: json!({"jsonrpc":"2.0","id":id,"result":{
                    "resultType": "input_required",
                    "inputRequests": {
                        consent.provider_name.clone(): {
                            "method": "elicitation/create",
                            "params": {"mode": "url", "url": consent.authorize_url, "message": message},
                        }
                    },
                    "requestState": states.seal(caller, method, params),
                }}),
            };
        }
    } else if view.version == V2025_11_25 && view.url_elicitation {
        return Reply {
            http_status: 200,
            body: json_rpc_error(
                Some(&id),
                URL_ELICITATION_REQUIRED_CODE,
                message.clone(),
                json!({"elicitations": [{
                    "mode": "url",
                    "elicitationId": uuid::Uuid::new_v4().to_string(),
                    "url": consent.authorize_url,
                    "message": message,
                }]}),
            ),
        };
    }
    Reply {
        http_status: 200,
        body: json_rpc_error(
            Some(&id),
            CONSENT_REQUIRED_CODE,
            message,
            json!({
                "reason": consent.reason,
                "providerName": consent.provider_name,
                "authorizeUrl": consent.authorize_url,
                "missingScopes": consent.missing_scopes,
                "serverName": consent.server_name,
                "expiredReason": consent.expired_reason,
            }),
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn consent() -> ConsentRequired {
        ConsentRequired {
            reason: "OAUTH_CONNECTION_REQUIRED".into(),
            provider_name: "github".into(),
            authorize_url: "http://127.0.0.1:7401/oauth/v1/connect/abc".into(),
            server_name: "tools".into(),
            missing_scopes: vec![],
            expired_reason: String::new(),
            message: "connect".into(),
            status: None,
        }
    }

    fn view(version: &str, url: bool) -> ClientView {
        ClientView {
            version: version.into(),
            url_elicitation: url,
        }
    }

    const CALLER: Caller<'static> = Caller {
        issuer: "iss",
        subject: "alice",
        server: "tools",
    };

    #[test]
    fn each_generation_gets_its_own_form() {
        let states = RequestStates::new(Subkey::for_tests(3), 16);
        let id = json!(7);
        let params = json!({"name": "search", "arguments": {"q": 1}});
        let answer = |v: ClientView| {
            let request = Request {
                method: "tools/call",
                id: Some(&id),
                params: Some(&params),
            };
            reply(&consent(), "GitHub", &v, request, &states, CALLER)
        };

        let elicit = answer(view("2025-11-25", true));
        assert_eq!(elicit.http_status, 200);
        assert_eq!(elicit.body["error"]["code"], -32042);
        let entry = &elicit.body["error"]["data"]["elicitations"][0];
        assert_eq!(entry["mode"], "url");
        assert_eq!(entry["url"], consent().authorize_url);
        assert!(
            entry["elicitationId"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
        );

        for older in [
            view("2025-11-25", false),
            view("2025-06-18", true),
            view("2025-03-26", false),
        ] {
            let generic = answer(older);
            assert_eq!(generic.body["error"]["code"], CONSENT_REQUIRED_CODE);
            assert_eq!(generic.body["error"]["data"]["providerName"], "github");
            assert_eq!(
                generic.body["error"]["data"]["authorizeUrl"],
                consent().authorize_url
            );
            assert_eq!(generic.body["id"], 7);
        }

        let mrtr = answer(view("2026-07-28", true));
        assert_eq!(mrtr.body["result"]["resultType"], "input_required");
        let request = &mrtr.body["result"]["inputRequests"]["github"];
        assert_eq!(request["params"]["url"], consent().authorize_url);

        let missing = answer(view("2026-07-28", false));
        assert_eq!(missing.http_status, 400);
        assert_eq!(missing.body["error"]["code"], -32021);
    }

    #[test]
    fn request_state_is_single_use_and_bound_to_user_and_request() {
        let states = RequestStates::new(Subkey::for_tests(3), 16);
        let params = json!({"name": "search", "arguments": {"q": 1}});
        let sealed = states.seal(CALLER, "tools/call", Some(&params));
        let mut retry = params.clone();
        retry["requestState"] = json!(sealed);
        retry["inputResponses"] = json!({"github": {"action": "accept"}});

        let bob = Caller {
            subject: "bob",
            ..CALLER
        };
        assert_eq!(
            states.open(&sealed, bob, "tools/call", Some(&retry)),
            Err(BadRequestState)
        );
        let other_args = json!({"name": "search", "arguments": {"q": 2}});
        assert!(
            states
                .open(&sealed, CALLER, "tools/call", Some(&other_args))
                .is_err()
        );
        let forged = format!("{}x", sealed);
        assert!(
            states
                .open(&forged, CALLER, "tools/call", Some(&retry))
                .is_err()
        );

        assert_eq!(
            states.open(&sealed, CALLER, "tools/call", Some(&retry)),
            Ok(())
        );
        assert_eq!(
            states.open(&sealed, CALLER, "tools/call", Some(&retry)),
            Err(BadRequestState)
        );
    }

    #[test]
    fn a_state_opens_wherever_the_key_is_shared() {
        let here = RequestStates::new(Subkey::for_tests(3), 16);
        let replica = RequestStates::new(Subkey::for_tests(3), 16);
        let stranger = RequestStates::new(Subkey::for_tests(4), 16);
        let params = json!({"name": "search"});
        let sealed = here.seal(CALLER, "tools/call", Some(&params));
        assert_eq!(
            stranger.open(&sealed, CALLER, "tools/call", Some(&params)),
            Err(BadRequestState)
        );
        assert_eq!(
            replica.open(&sealed, CALLER, "tools/call", Some(&params)),
            Ok(())
        );
    }
}
