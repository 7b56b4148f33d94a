//! Every way a proxied MCP call can fail, and the one place each becomes an HTTP status
//! and a JSON-RPC error, or a gRPC status for the gateway. Consent conditions are not
//! here: they are answers in the protocol's own form (see `consent`).

use adp_core::Reason;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};
use serde_json::{Value, json};

use crate::consent::Reply;

/// Every JSON-RPC error code the proxy answers with or reads, in one place: the
/// official SDK's constants where it has them, then MCP's URL elicitation code, then
/// the proxy's own failures inside the implementation-defined server range.
pub mod code {
    use rmcp::model::ErrorCode;

    pub const PARSE_ERROR: i64 = ErrorCode::PARSE_ERROR.0 as i64;
    pub const METHOD_NOT_FOUND: i64 = ErrorCode::METHOD_NOT_FOUND.0 as i64;
    pub const INVALID_PARAMS: i64 = ErrorCode::INVALID_PARAMS.0 as i64;
    pub const MISSING_CAPABILITY: i64 = ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY.0 as i64;
    /// `URLElicitationRequiredError` (MCP 2025-11-25); not in the SDK yet.
    pub const URL_ELICITATION_REQUIRED: i64 = -32042;
    /// "Connect an upstream account first" where the protocol has no form of its own;
    /// outside the range JSON-RPC and MCP reserve.
    pub const CONSENT_REQUIRED: i64 = -31001;
    pub const UNAUTHENTICATED: i64 = -32001;
    pub const FORBIDDEN: i64 = -32003;
    pub const NOT_FOUND: i64 = -32004;
    pub const UPSTREAM: i64 = -32005;
    pub const UNAVAILABLE: i64 = -32006;
    pub const TIMEOUT: i64 = -32007;
}

/// A JSON-RPC error answer to request `id` (null when it could not be read); the error
/// object is the official SDK's `ErrorData`, so its shape is the SDK's.
pub(crate) fn json_rpc_error(id: Option<&Value>, code: i64, message: String, data: Value) -> Value {
    // every code above is an i32: JSON-RPC's own range and MCP's
    let code = rmcp::model::ErrorCode(i32::try_from(code).unwrap_or(i32::MIN));
    let error = rmcp::model::ErrorData::new(code, message, Some(data));
    json!({"jsonrpc": "2.0", "id": id.cloned().unwrap_or(Value::Null), "error": error})
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("authentication required: {0}")]
    Unauthenticated(String),
    /// Token passthrough refused the caller's token: it is ADP's own, or not issued
    /// for this upstream (see `shared::Shared::admit`).
    #[error(
        "token passthrough forwards only a token issued for this upstream: its `aud` must name {resource} and not ADP ({problem})"
    )]
    PassthroughAudience { resource: String, problem: String },
    #[error("origin {0:?} is not allowed")]
    OriginRefused(String),
    #[error("mcp server {0:?} is not configured on this proxy")]
    UnknownServer(String),
    #[error("mcp server {0:?} is disabled")]
    Disabled(String),
    #[error("mcp server {0:?} has no upstream endpoint in this deployment")]
    NoUpstream(String),
    #[error("the proxy has not received its config from the control plane yet")]
    NoConfig,
    #[error("request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the request body did not arrive within {0} s (ADP_REQUEST_BODY_TIMEOUT_SECS)")]
    BodyTimeout(u64),
    #[error("request body is not JSON: {0}")]
    Parse(String),
    #[error("unknown or expired MCP session")]
    UnknownSession,
    #[error("{0}")]
    BadRequestState(String),
    /// The control plane refused the credential for a reason other than consent.
    #[error("{message}")]
    Credential {
        code: adp_core::Code,
        reason: String,
        message: String,
    },
    #[error("upstream did not answer within {0} s")]
    UpstreamTimeout(u64),
    #[error("upstream request failed: {0}")]
    Upstream(String),
}

/// Every form one error takes: its class (the gRPC code), its `ErrorInfo` reason, its
/// HTTP status and its JSON-RPC code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Forms {
    pub(crate) code: adp_core::Code,
    pub(crate) reason: Reason,
    pub(crate) http: StatusCode,
    pub(crate) rpc: i64,
}

impl ProxyError {
    /// The one classification of proxy errors. The HTTP status is the class's own
    /// (`Code::http_status`) except where HTTP has a more exact word that MCP clients
    /// act on: 403 for a disabled server (412 would read as a failed conditional
    /// request), 502 when the upstream is missing or failed, 413 and 408 for the body.
    pub(crate) fn forms(&self) -> Forms {
        use adp_core::Code;
        use code::*;
        let (code, reason, rpc, http) = match self {
            ProxyError::Unauthenticated(_) => (
                Code::Unauthenticated,
                Reason::Unauthenticated,
                UNAUTHENTICATED,
                None,
            ),
            ProxyError::PassthroughAudience { .. } => (
                Code::Unauthenticated,
                Reason::PassthroughTokenAudience,
                UNAUTHENTICATED,
                None,
            ),
            ProxyError::OriginRefused(_) => (
                Code::PermissionDenied,
                Reason::OriginNotAllowed,
                FORBIDDEN,
                None,
            ),
            ProxyError::UnknownServer(_) => {
                (Code::NotFound, Reason::McpServerNotFound, NOT_FOUND, None)
            }
            ProxyError::Disabled(_) => (
                Code::FailedPrecondition,
                Reason::McpServerDisabled,
                FORBIDDEN,
                Some(StatusCode::FORBIDDEN),
            ),
            ProxyError::NoUpstream(_) => (
                Code::FailedPrecondition,
                Reason::NoUpstream,
                UPSTREAM,
                Some(StatusCode::BAD_GATEWAY),
            ),
            ProxyError::NoConfig => (Code::Unavailable, Reason::ConfigNotReady, UNAVAILABLE, None),
            ProxyError::TooLarge(_) => (
                Code::ResourceExhausted,
                Reason::BodyTooLarge,
                INVALID_PARAMS,
                Some(StatusCode::PAYLOAD_TOO_LARGE),
            ),
            ProxyError::BodyTimeout(_) => (
                Code::DeadlineExceeded,
                Reason::RequestBodyTimeout,
                TIMEOUT,
                Some(StatusCode::REQUEST_TIMEOUT),
            ),
            ProxyError::Parse(_) => (Code::InvalidArgument, Reason::ParseError, PARSE_ERROR, None),
            ProxyError::UnknownSession => {
                (Code::NotFound, Reason::SessionNotFound, NOT_FOUND, None)
            }
            ProxyError::BadRequestState(_) => (
                Code::InvalidArgument,
                Reason::InvalidRequestState,
                INVALID_PARAMS,
                None,
            ),
            ProxyError::Credential { code, .. } => {
                (*code, Reason::CredentialUnavailable, UNAVAILABLE, None)
            }
            ProxyError::UpstreamTimeout(_) => (
                Code::DeadlineExceeded,
                Reason::UpstreamTimeout,
                TIMEOUT,
                None,
            ),
            ProxyError::Upstream(_) => (
                Code::Unavailable,
                Reason::UpstreamUnavailable,
                UPSTREAM,
                Some(StatusCode::BAD_GATEWAY),
            ),
        };
        let http = http.unwrap_or_else(|| {
            StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::BAD_GATEWAY)
        });
        Forms {
            code,
            reason,
            http,
            rpc,
        }
    }

    /// The error's class, the same whichever protocol answers it.
    pub fn code(&self) -> adp_core::Code {
        self.forms().code
    }

    /// The error's `ErrorInfo` reason.
    pub fn reason(&self) -> Reason {
        self.forms().reason
    }

    /// The gRPC gateway's answer: the error's class, with ErrorInfo.
    pub fn into_status(self) -> tonic::Status {
        adp_core::ApiError::new(self.code(), self.to_string())
            .with_reason(self.reason())
            .into()
    }

    /// The response for a request whose JSON-RPC id was `id`.
    pub fn into_response_for(self, id: Option<&Value>) -> Response {
        let Forms {
            http: status,
            rpc: rpc_code,
            reason: default_reason,
            ..
        } = self.forms();
        let reason = match &self {
            ProxyError::Credential { reason, .. } if !reason.is_empty() => reason.clone(),
            _ => default_reason.as_str().to_owned(),
        };
        let body = json_rpc_error(id, rpc_code, self.to_string(), json!({"reason": reason}));
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        if status == StatusCode::REQUEST_TIMEOUT {
            // the rest of the body may still be on its way: the connection cannot be reused
            response
                .headers_mut()
                .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }

    /// A control-plane answer other than a consent condition, with its status mapped.
    pub fn from_status(status: &tonic::Status) -> ProxyError {
        use tonic::Code;
        use tonic_types::StatusExt;
        let reason = status
            .get_details_error_info()
            .map(|info| info.reason)
            .unwrap_or_default();
        let message = match status.code() {
            Code::Unavailable | Code::DeadlineExceeded | Code::Unknown => {
                format!("the control plane is unavailable: {}", status.message())
            }
            _ => status.message().to_owned(),
        };
        ProxyError::Credential {
            code: adp_core::Code::from_grpc(status.code()),
            reason,
            message,
        }
    }
}

impl From<Reply> for Response {
    fn from(reply: Reply) -> Response {
        let status = StatusCode::from_u16(reply.http_status).unwrap_or(StatusCode::OK);
        (status, axum::Json(reply.body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use adp_core::Code;
    use http_body_util::BodyExt;

    use super::*;

    /// One of each error; the match makes a new variant a compile error until it is
    /// added here.
    fn every_error() -> Vec<ProxyError> {
        let all = vec![
            ProxyError::Unauthenticated("no token".into()),
            ProxyError::PassthroughAudience {
                resource: "https://mcp.example.com".into(),
                problem: "aud is ADP's".into(),
            },
            ProxyError::OriginRefused("https://evil.example".into()),
            ProxyError::UnknownServer("nope".into()),
            ProxyError::Disabled("off".into()),
            ProxyError::NoUpstream("managed".into()),
            ProxyError::NoConfig,
            ProxyError::TooLarge(10),
            ProxyError::BodyTimeout(30),
            ProxyError::Parse("eof".into()),
            ProxyError::UnknownSession,
            ProxyError::BadRequestState("tampered".into()),
            ProxyError::Credential {
                code: Code::ResourceExhausted,
                reason: String::new(),
                message: "slow down".into(),
            },
            ProxyError::Credential {
                code: Code::Unavailable,
                reason: "CREDENTIAL_UNAVAILABLE".into(),
                message: "the control plane is unavailable".into(),
            },
            ProxyError::UpstreamTimeout(3),
            ProxyError::Upstream("connection refused".into()),
        ];
        for error in &all {
            match error {
                ProxyError::Unauthenticated(_)
                | ProxyError::PassthroughAudience { .. }
                | ProxyError::OriginRefused(_)
                | ProxyError::UnknownServer(_)
                | ProxyError::Disabled(_)
                | ProxyError::NoUpstream(_)
                | ProxyError::NoConfig
                | ProxyError::TooLarge(_)
                | ProxyError::BodyTimeout(_)
                | ProxyError::Parse(_)
                | ProxyError::UnknownSession
                | ProxyError::BadRequestState(_)
                | ProxyError::Credential { .. }
                | ProxyError::UpstreamTimeout(_)
                | ProxyError::Upstream(_) => {}
            }
        }
        all
    }

    /// The JSON-RPC codes each class may answer with.
    fn rpc_codes_of(class: Code, error: &ProxyError) -> &'static [i64] {
        use code::*;
        if matches!(error, ProxyError::Credential { .. }) {
            // whatever the control plane's class, the call failed for want of a credential
            return &[UNAVAILABLE];
        }
        match class {
            Code::Unauthenticated => &[UNAUTHENTICATED],
            Code::PermissionDenied => &[FORBIDDEN],
            Code::NotFound => &[NOT_FOUND],
            Code::FailedPrecondition => &[FORBIDDEN, UPSTREAM],
            Code::Unavailable => &[UNAVAILABLE, UPSTREAM],
            Code::ResourceExhausted => &[INVALID_PARAMS],
            Code::DeadlineExceeded => &[TIMEOUT],
            Code::InvalidArgument => &[PARSE_ERROR, INVALID_PARAMS],
            Code::AlreadyExists | Code::Aborted | Code::Internal | Code::Unknown => &[],
        }
    }

    #[tokio::test]
    async fn every_error_answers_alike_in_http_json_rpc_and_grpc() {
        for index in 0..every_error().len() {
            // into_status and into_response_for consume the error: one copy each
            let error = every_error().swap_remove(index);
            let name = format!("{error:?}");
            let forms = error.forms();
            let message = error.to_string();
            let class_rpc_codes = rpc_codes_of(forms.code, &error);

            let status = every_error().swap_remove(index).into_status();
            assert_eq!(status.code(), forms.code.grpc(), "{name}");
            assert_eq!(status.message(), message, "{name}");
            let info = tonic_types::StatusExt::get_details_error_info(&status).unwrap();
            assert_eq!(info.reason, forms.reason.as_str(), "{name}");

            let response = error.into_response_for(Some(&json!(7)));
            assert_eq!(response.status(), forms.http, "{name}");
            let exact_http_word = matches!(
                forms.reason,
                Reason::McpServerDisabled
                    | Reason::NoUpstream
                    | Reason::UpstreamUnavailable
                    | Reason::BodyTooLarge
                    | Reason::RequestBodyTimeout
            );
            if !exact_http_word {
                assert_eq!(forms.http.as_u16(), forms.code.http_status(), "{name}");
            }
            if forms.http == StatusCode::UNAUTHORIZED {
                assert!(
                    response
                        .headers()
                        .contains_key(http::header::WWW_AUTHENTICATE)
                );
            }
            let body = response.into_body().collect().await.unwrap().to_bytes();
            let body: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(body["id"], 7, "{name}");
            assert_eq!(body["error"]["code"], forms.rpc, "{name}");
            assert!(
                class_rpc_codes.contains(&forms.rpc),
                "{name}: JSON-RPC {} for class {:?}",
                forms.rpc,
                forms.code
            );
            assert_eq!(body["error"]["message"], message, "{name}");
            assert!(body["error"]["data"]["reason"].is_string(), "{name}");
            if !name.starts_with("Credential") {
                assert_eq!(
                    body["error"]["data"]["reason"],
                    forms.reason.as_str(),
                    "{name}"
                );
            }
        }
    }
}
