//! What the proxy reads from an MCP request: the JSON-RPC method and id, the protocol
//! version in force, and whether the client can open URLs it is sent (URL elicitation),
//! which decides how a consent condition is reported (MCP-NOTES.md §1-2).

use serde_json::Value;

pub const V2025_11_25: &str = "2025-11-25";
pub const V2026_07_28: &str = "2026-07-28";
/// What a request without `MCP-Protocol-Version` speaks (Streamable HTTP's first version).
const DEFAULT_VERSION: &str = "2025-03-26";
const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";

/// What the client said about itself, kept per session for the legacy protocol where
/// capabilities arrive only with `initialize`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientView {
    pub version: String,
    pub url_elicitation: bool,
}

impl ClientView {
    /// 2026-07-28 and later: stateless requests carrying their own version and capabilities.
    pub fn is_modern(&self) -> bool {
        self.version.as_str() >= V2026_07_28
    }
}

/// One inspected POST body. Most messages need only their method and id, so the body is
/// scanned without building a tree; `params` is parsed only when something reads it
/// (`initialize`, 2026-07-28 `_meta`, a `requestState` retry).
#[derive(Clone, Debug, Default)]
pub struct Message {
    pub method: Option<String>,
    /// `None` for notifications and responses.
    pub id: Option<Value>,
    params: Option<Value>,
}

/// What the proxy needs of a JSON-RPC message, read without allocating for the rest.
#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    method: Option<std::borrow::Cow<'a, str>>,
    id: Option<Value>,
    #[allow(dead_code)]
    params: Option<serde::de::IgnoredAny>,
}

/// Markers of messages whose params the proxy must read.
const PARAMS_MARKERS: [&[u8]; 2] = [b"io.modelcontextprotocol/", b"requestState"];

impl Message {
    pub fn parse(body: &[u8]) -> Result<Message, serde_json::Error> {
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        if first != Some(&b'{') {
            // batches (2025-03-26) and anything else stay opaque; invalid JSON still fails
            serde_json::from_slice::<serde::de::IgnoredAny>(body)?;
            return Ok(Message::default());
        }
        let envelope: Envelope<'_> = serde_json::from_slice(body)?;
        let method = envelope.method.map(std::borrow::Cow::into_owned);
        let needs_params = method.as_deref() == Some("initialize")
            || PARAMS_MARKERS
                .iter()
                .any(|marker| body.windows(marker.len()).any(|w| w == *marker));
        let params = if needs_params {
            let mut full: Value = serde_json::from_slice(body)?;
            full.get_mut("params").map(Value::take)
        } else {
            None
        };
        Ok(Message {
            method,
            id: envelope.id.filter(|id| !id.is_null()),
            params,
        })
    }

    pub fn params(&self) -> Option<&Value> {
        self.params.as_ref()
    }

    /// The body to forward after removing `keys` from params (a spent `requestState`).
    pub fn body_without_params(&mut self, keys: &[&str]) -> Option<bytes::Bytes> {
        let params = self.params.as_mut()?.as_object_mut()?;
        for key in keys {
            params.remove(*key);
        }
        let mut message =
            serde_json::json!({"jsonrpc": "2.0", "method": self.method, "params": params});
        if let Some(id) = &self.id {
            message["id"] = id.clone();
        }
        Some(bytes::Bytes::from(message.to_string()))
    }

    pub fn is_initialize(&self) -> bool {
        self.method.as_deref() == Some("initialize")
    }

    /// The client's view when the request itself says it: `initialize` (legacy) or the
    /// per-request `_meta` of the modern protocol.
    pub fn self_described(&self) -> Option<ClientView> {
        let params = self.params()?;
        if self.is_initialize() {
            return Some(ClientView {
                version: params
                    .get("protocolVersion")
                    .and_then(Value::as_str)
                    .unwrap_or(DEFAULT_VERSION)
                    .to_owned(),
                url_elicitation: has_url_elicitation(params.get("capabilities")),
            });
        }
        let meta = params.get("_meta")?;
        let version = meta.get(META_VERSION)?.as_str()?;
        Some(ClientView {
            version: version.to_owned(),
            url_elicitation: has_url_elicitation(meta.get(META_CAPABILITIES)),
        })
    }
}

fn has_url_elicitation(capabilities: Option<&Value>) -> bool {
    capabilities
        .and_then(|c| c.get("elicitation"))
        .and_then(|e| e.get("url"))
        .is_some_and(Value::is_object)
}

/// The version a request speaks when it does not describe itself: its header, else
/// the legacy default.
pub fn header_version(headers: &http::HeaderMap) -> String {
    headers
        .get("mcp-protocol-version")
        .and_then(|v| v.to_str().ok())
        .unwrap_or(DEFAULT_VERSION)
        .to_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn message(value: Value) -> Message {
        Message::parse(value.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn initialize_declares_version_and_url_elicitation() {
        let m = message(
            json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
            "protocolVersion":"2025-11-25","capabilities":{"elicitation":{"url":{}}}}}),
        );
        let view = m.self_described().unwrap();
        assert_eq!(view.version, V2025_11_25);
        assert!(view.url_elicitation);
        assert!(!view.is_modern());

        let form_only = message(
            json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
            "protocolVersion":"2025-11-25","capabilities":{"elicitation":{}}}}),
        );
        assert!(!form_only.self_described().unwrap().url_elicitation);
    }

    #[test]
    fn modern_requests_carry_their_view_in_meta() {
        let m = message(
            json!({"jsonrpc":"2.0","id":"a","method":"tools/call","params":{
            "name":"x","_meta":{META_VERSION:"2026-07-28",META_CAPABILITIES:{"elicitation":{"url":{}}}}}}),
        );
        let view = m.self_described().unwrap();
        assert!(view.is_modern());
        assert!(view.url_elicitation);
        assert_eq!(m.id, Some(json!("a")));
    }

    #[test]
    fn notifications_and_batches() {
        let n = message(json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
        assert_eq!(n.id, None);
        assert!(n.self_described().is_none());
        let batch = message(json!([{"jsonrpc":"2.0","id":1,"method":"ping"}]));
        assert!(batch.method.is_none());
        assert!(Message::parse(b"{not json").is_err());
        assert!(Message::parse(b"[1,").is_err());
        // params of everyday calls are skipped, not parsed
        let call =
            message(json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"x"}}));
        assert!(call.params().is_none());
        assert_eq!(call.method.as_deref(), Some("tools/call"));
    }
}
