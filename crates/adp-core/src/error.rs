//! The error model: a small set of codes, each mapped once to a gRPC code and an
//! HTTP status, plus the rich details clients rely on (ErrorInfo, BadRequest, Help).

use std::collections::BTreeMap;

use prost::Message;

use crate::Reason;
use tonic_types::pb;

/// Domain of every `google.rpc.ErrorInfo` ADP emits.
pub const ERROR_DOMAIN: &str = "adp.v1";

/// The classification of every error ADP returns to a caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    InvalidArgument,
    NotFound,
    AlreadyExists,
    FailedPrecondition,
    Aborted,
    Unauthenticated,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
    DeadlineExceeded,
    Internal,
    /// Another system answered with an error that fits no other code (an upstream MCP
    /// server's JSON-RPC error, say).
    Unknown,
}

impl Code {
    pub fn grpc(self) -> tonic::Code {
        match self {
            Code::InvalidArgument => tonic::Code::InvalidArgument,
            Code::NotFound => tonic::Code::NotFound,
            Code::AlreadyExists => tonic::Code::AlreadyExists,
            Code::FailedPrecondition => tonic::Code::FailedPrecondition,
            Code::Aborted => tonic::Code::Aborted,
            Code::Unauthenticated => tonic::Code::Unauthenticated,
            Code::PermissionDenied => tonic::Code::PermissionDenied,
            Code::ResourceExhausted => tonic::Code::ResourceExhausted,
            Code::Unavailable => tonic::Code::Unavailable,
            Code::DeadlineExceeded => tonic::Code::DeadlineExceeded,
            Code::Internal => tonic::Code::Internal,
            Code::Unknown => tonic::Code::Unknown,
        }
    }

    /// What a peer's gRPC code means here, so an answer relayed from the control plane
    /// keeps its class (and its HTTP status) instead of becoming a generic 502.
    pub fn from_grpc(code: tonic::Code) -> Code {
        use tonic::Code as G;
        match code {
            G::InvalidArgument | G::OutOfRange => Code::InvalidArgument,
            G::NotFound => Code::NotFound,
            G::AlreadyExists => Code::AlreadyExists,
            G::FailedPrecondition => Code::FailedPrecondition,
            G::Aborted => Code::Aborted,
            G::Unauthenticated => Code::Unauthenticated,
            G::PermissionDenied => Code::PermissionDenied,
            G::ResourceExhausted => Code::ResourceExhausted,
            G::Unavailable | G::Cancelled => Code::Unavailable,
            G::DeadlineExceeded => Code::DeadlineExceeded,
            G::Internal | G::DataLoss | G::Unimplemented => Code::Internal,
            G::Ok | G::Unknown => Code::Unknown,
        }
    }

    pub fn http_status(self) -> u16 {
        match self {
            Code::InvalidArgument => 400,
            Code::NotFound => 404,
            Code::AlreadyExists | Code::Aborted => 409,
            Code::FailedPrecondition => 412,
            Code::Unauthenticated => 401,
            Code::PermissionDenied => 403,
            Code::ResourceExhausted => 429,
            Code::Unavailable => 503,
            Code::DeadlineExceeded => 504,
            Code::Internal => 500,
            Code::Unknown => 502,
        }
    }
}

/// One problem with one field of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldViolation {
    /// Dotted path from the request root, e.g. `mcp_server.remote.url`.
    pub field: String,
    /// Human message; the rule id is appended when the description is rendered.
    pub message: String,
    /// The protovalidate rule id (or an ADP rule id for checks made in code).
    pub rule_id: String,
}

impl FieldViolation {
    pub fn new(
        field: impl Into<String>,
        rule_id: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
            rule_id: rule_id.into(),
        }
    }

    /// What `google.rpc.BadRequest.FieldViolation.description` carries: the message
    /// followed by the rule id, so humans and scripts both find what they need.
    pub fn description(&self) -> String {
        if self.rule_id.is_empty() {
            self.message.clone()
        } else {
            format!("{} [{}]", self.message, self.rule_id)
        }
    }
}

/// An error as the caller sees it. Build one where the problem is understood,
/// convert it to a `tonic::Status` (or an HTTP status) only at the edge.
#[derive(Clone, Debug)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
    /// Stable UPPER_SNAKE reason for `google.rpc.ErrorInfo`.
    pub reason: Option<Reason>,
    pub metadata: BTreeMap<String, String>,
    pub violations: Vec<FieldViolation>,
    pub help: Option<(String, String)>,
    /// Typed details (e.g. `adp.v1.OAuthConnectionRequired`) already packed.
    pub extra_details: Vec<prost_types::Any>,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            reason: None,
            metadata: BTreeMap::new(),
            violations: Vec::new(),
            help: None,
            extra_details: Vec::new(),
        }
    }

    pub fn with_reason(mut self, reason: Reason) -> Self {
        self.reason = Some(reason);
        self
    }

    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    pub fn with_help(mut self, description: impl Into<String>, url: impl Into<String>) -> Self {
        self.help = Some((description.into(), url.into()));
        self
    }

    pub fn with_detail<M: Message>(mut self, type_name: &str, detail: &M) -> Self {
        self.extra_details.push(pack_any(type_name, detail));
        self
    }

    /// INVALID_ARGUMENT with one BadRequest field violation per problem.
    pub fn invalid(violations: Vec<FieldViolation>) -> Self {
        let message = violations
            .iter()
            .map(|v| format!("{}: {}", v.field, v.description()))
            .collect::<Vec<_>>()
            .join("; ");
        let rules = violations
            .iter()
            .map(|v| v.rule_id.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let mut error = Self::new(Code::InvalidArgument, format!("invalid request: {message}"))
            .with_reason(Reason::InvalidRequest)
            .with_metadata("rules", rules);
        error.violations = violations;
        error
    }

    pub fn invalid_field(field: &str, rule_id: &str, message: impl Into<String>) -> Self {
        Self::invalid(vec![FieldViolation::new(field, rule_id, message)])
    }

    pub fn not_found(kind: &str, name: &str) -> Self {
        Self::new(Code::NotFound, format!("{kind} {name:?} not found"))
            .with_reason(Reason::NotFound)
            .with_metadata("resource", kind)
            .with_metadata("name", name)
    }

    pub fn already_exists(kind: &str, name: &str) -> Self {
        Self::new(
            Code::AlreadyExists,
            format!("{kind} {name:?} already exists"),
        )
        .with_reason(Reason::AlreadyExists)
        .with_metadata("resource", kind)
        .with_metadata("name", name)
    }

    /// The stored resource changed since the caller read it.
    pub fn etag_mismatch(kind: &str, name: &str) -> Self {
        Self::new(
            Code::Aborted,
            format!("{kind} {name:?} was changed by someone else; get it again and retry with the new etag"),
        )
        .with_reason(Reason::EtagMismatch)
        .with_metadata("resource", kind)
        .with_metadata("name", name)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Code::Internal, message).with_reason(Reason::Internal)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(Code::Unavailable, message).with_reason(Reason::Unavailable)
    }

    pub fn http_status(&self) -> u16 {
        self.code.http_status()
    }

    /// The `google.rpc.Status` this error is sent as.
    pub fn to_rpc_status(&self) -> pb::Status {
        let mut details = Vec::new();
        if let Some(reason) = self.reason {
            let info = pb::ErrorInfo {
                reason: reason.as_str().to_owned(),
                domain: ERROR_DOMAIN.to_owned(),
                metadata: self.metadata.clone().into_iter().collect(),
            };
            details.push(pack_any("google.rpc.ErrorInfo", &info));
        }
        if !self.violations.is_empty() {
            let bad_request = pb::BadRequest {
                field_violations: self
                    .violations
                    .iter()
                    .map(|v| pb::bad_request::FieldViolation {
                        field: v.field.clone(),
                        description: v.description(),
                        reason: v.rule_id.clone(),
                        localized_message: None,
                    })
                    .collect(),
            };
            details.push(pack_any("google.rpc.BadRequest", &bad_request));
        }
        if let Some((description, url)) = &self.help {
            let help = pb::Help {
                links: vec![pb::help::Link {
                    description: description.clone(),
                    url: url.clone(),
                }],
            };
            details.push(pack_any("google.rpc.Help", &help));
        }
        details.extend(self.extra_details.iter().cloned());
        pb::Status {
            code: self.code.grpc() as i32,
            message: self.message.clone(),
            details,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<ApiError> for tonic::Status {
    fn from(error: ApiError) -> Self {
        let status = error.to_rpc_status();
        tonic::Status::with_details(
            error.code.grpc(),
            error.message,
            status.encode_to_vec().into(),
        )
    }
}

fn pack_any<M: Message>(type_name: &str, message: &M) -> prost_types::Any {
    prost_types::Any {
        type_url: format!("type.googleapis.com/{type_name}"),
        value: message.encode_to_vec(),
    }
}

impl From<crate::identity::AuthError> for ApiError {
    /// Callers get UNAUTHENTICATED with a stable reason; a key set we could not
    /// fetch is our problem, not theirs, so it is UNAVAILABLE.
    fn from(error: crate::identity::AuthError) -> Self {
        let code = if error.is_transient() {
            Code::Unavailable
        } else {
            Code::Unauthenticated
        };
        ApiError::new(code, error.to_string()).with_reason(error.reason())
    }
}

impl ApiError {
    /// PERMISSION_DENIED naming the permission the caller lacks.
    pub fn permission_denied(permission: &str) -> Self {
        ApiError::new(
            Code::PermissionDenied,
            format!("the caller lacks the {permission:?} permission"),
        )
        .with_reason(Reason::PermissionMissing)
        .with_metadata("permission", permission)
    }
}

/// An error with its whole source chain: HTTP clients keep the useful part (refused,
/// timed out, bad certificate) in the causes, not in the top-level message.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::StatusExt;

    const EVERY_CODE: [Code; 12] = [
        Code::InvalidArgument,
        Code::NotFound,
        Code::AlreadyExists,
        Code::FailedPrecondition,
        Code::Aborted,
        Code::Unauthenticated,
        Code::PermissionDenied,
        Code::ResourceExhausted,
        Code::Unavailable,
        Code::DeadlineExceeded,
        Code::Internal,
        Code::Unknown,
    ];

    #[test]
    fn a_relayed_grpc_code_keeps_its_class() {
        for code in EVERY_CODE {
            assert_eq!(Code::from_grpc(code.grpc()), code);
        }
        assert_eq!(Code::from_grpc(tonic::Code::Internal).http_status(), 500);
        assert_eq!(
            Code::from_grpc(tonic::Code::ResourceExhausted).http_status(),
            429
        );
        assert_eq!(Code::from_grpc(tonic::Code::Aborted).http_status(), 409);
        assert_eq!(
            Code::from_grpc(tonic::Code::OutOfRange),
            Code::InvalidArgument
        );
    }

    #[test]
    fn invalid_argument_carries_bad_request_with_rule_ids() {
        let error = ApiError::invalid_field(
            "mcp_server.remote.url",
            "remote_mcp.user_oauth_requires_https",
            "HTTPS required",
        );
        let status: tonic::Status = error.into();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        let details = status.get_error_details();
        let bad_request = details.bad_request().expect("bad request detail");
        assert_eq!(
            bad_request.field_violations[0].field,
            "mcp_server.remote.url"
        );
        assert_eq!(
            bad_request.field_violations[0].description,
            "HTTPS required [remote_mcp.user_oauth_requires_https]"
        );
        assert_eq!(
            details.error_info().expect("error info").domain,
            ERROR_DOMAIN
        );
    }

    #[test]
    fn every_code_maps_to_an_http_status_in_the_error_range() {
        for code in EVERY_CODE {
            assert!((400..600).contains(&code.http_status()), "{code:?}");
        }
    }
}
