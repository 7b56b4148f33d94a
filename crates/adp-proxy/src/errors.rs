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

impl ProxyError {
    fn parts(&self) -> (StatusCode, i64, Reason) {
        use code::*;
        match self {
            ProxyError::Unauthenticated(_) => (
                StatusCode::UNAUTHORIZED,
                UNAUTHENTICATED,
                Reason::Unauthenticated,
            ),
            ProxyError::PassthroughAudience { .. } => (
                StatusCode::UNAUTHORIZED,
                UNAUTHENTICATED,
                Reason::PassthroughTokenAudience,
            ),
            ProxyError::OriginRefused(_) => {
                (StatusCode::FORBIDDEN, FORBIDDEN, Reason::OriginNotAllowed)
            }
            ProxyError::UnknownServer(_) => {
                (StatusCode::NOT_FOUND, NOT_FOUND, Reason::McpServerNotFound)
            }
            ProxyError::Disabled(_) => {
                (StatusCode::FORBIDDEN, FORBIDDEN, Reason::McpServerDisabled)
            }
            ProxyError::NoUpstream(_) => (StatusCode::BAD_GATEWAY, UPSTREAM, Reason::NoUpstream),
            ProxyError::NoConfig => (
                StatusCode::SERVICE_UNAVAILABLE,
                UNAVAILABLE,
                Reason::ConfigNotReady,
            ),
            ProxyError::TooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                INVALID_PARAMS,
                Reason::BodyTooLarge,
            ),
            ProxyError::BodyTimeout(_) => (
                StatusCode::REQUEST_TIMEOUT,
                TIMEOUT,
                Reason::RequestBodyTimeout,
            ),
            ProxyError::Parse(_) => (StatusCode::BAD_REQUEST, PARSE_ERROR, Reason::ParseError),
            ProxyError::UnknownSession => {
                (StatusCode::NOT_FOUND, NOT_FOUND, Reason::SessionNotFound)
            }
            ProxyError::BadRequestState(_) => (
                StatusCode::BAD_REQUEST,
                INVALID_PARAMS,
                Reason::InvalidRequestState,
            ),
            ProxyError::Credential { code, .. } => (
                StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::BAD_GATEWAY),
                UNAVAILABLE,
                Reason::CredentialUnavailable,
            ),
            ProxyError::UpstreamTimeout(_) => (
                StatusCode::GATEWAY_TIMEOUT,
                TIMEOUT,
                Reason::UpstreamTimeout,
            ),
            ProxyError::Upstream(_) => (
                StatusCode::BAD_GATEWAY,
                UPSTREAM,
                Reason::UpstreamUnavailable,
            ),
        }
    }

    /// The error's class, the same whichever protocol answers it (the gRPC gateway
    /// uses it as is; the HTTP status above follows it except where MCP clients
    /// expect otherwise: 403 for a disabled server, 502 for one with no upstream, 413).
    pub fn code(&self) -> adp_core::Code {
        use adp_core::Code;
        match self {
            ProxyError::Unauthenticated(_) | ProxyError::PassthroughAudience { .. } => {
                Code::Unauthenticated
            }
            ProxyError::OriginRefused(_) => Code::PermissionDenied,
            ProxyError::UnknownServer(_) | ProxyError::UnknownSession => Code::NotFound,
            ProxyError::Disabled(_) | ProxyError::NoUpstream(_) => Code::FailedPrecondition,
            ProxyError::NoConfig | ProxyError::Upstream(_) => Code::Unavailable,
            ProxyError::TooLarge(_) => Code::ResourceExhausted,
            ProxyError::BodyTimeout(_) | ProxyError::UpstreamTimeout(_) => Code::DeadlineExceeded,
            ProxyError::Parse(_) | ProxyError::BadRequestState(_) => Code::InvalidArgument,
            ProxyError::Credential { code, .. } => *code,
        }
    }

    /// The error's `ErrorInfo` reason.
    pub fn reason(&self) -> Reason {
        self.parts().2
    }

    /// The gRPC gateway's answer: the error's class, with ErrorInfo.
    pub fn into_status(self) -> tonic::Status {
        adp_core::ApiError::new(self.code(), self.to_string())
            .with_reason(self.reason())
            .into()
    }

    /// The response for a request whose JSON-RPC id was `id`.
    pub fn into_response_for(self, id: Option<&Value>) -> Response {
        let (status, rpc_code, default_reason) = self.parts();
        let reason = match &self {
            ProxyError::Credential { reason, .. } if !reason.is_empty() => reason.clone(),
            _ => default_reason.as_str().to_owned(),
        };
        let body = json!({"jsonrpc": "2.0", "id": id.cloned().unwrap_or(Value::Null), "error": {
            "code": rpc_code,
            "message": self.to_string(),
            "data": {"reason": reason},
        }});
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
