//! Failed calls as people read them: the gRPC code, the message, every field violation
//! with its rule id, the authorize URL of a consent error; and an exit code per kind.

use tonic::Code;
use tonic_types::StatusExt;

/// Exit codes scripts can branch on.
pub mod exit {
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const AUTH: u8 = 3;
    pub const VALIDATION: u8 = 4;
    pub const CONSENT_REQUIRED: u8 = 5;
    pub const UNAVAILABLE: u8 = 6;
    pub const NOT_FOUND: u8 = 7;
    pub const CONFLICT: u8 = 8;
}

pub fn is_consent(status: &tonic::Status) -> bool {
    status.code() == Code::FailedPrecondition
        && status.get_details_error_info().is_some_and(|i| {
            adp_core::Reason::parse(&i.reason).is_some_and(adp_core::Reason::is_consent)
        })
}

pub fn authorize_url(status: &tonic::Status) -> Option<String> {
    status
        .get_details_error_info()
        .and_then(|i| i.metadata.get("authorizeUrl").cloned())
        .filter(|u| !u.is_empty())
}

/// What to print on stderr for `status`.
pub fn describe(status: &tonic::Status) -> String {
    let mut out = format!("error: {:?}: {}", status.code(), status.message());
    if let Some(info) = status.get_details_error_info() {
        out.push_str(&format!("\n  reason: {}", info.reason));
    }
    if let Some(bad) = status.get_details_bad_request() {
        for violation in bad.field_violations {
            out.push_str(&format!(
                "\n  field {}: {} [rule {}]",
                violation.field,
                violation
                    .description
                    .trim_end_matches(&format!(" [{}]", violation.reason)),
                violation.reason
            ));
        }
    }
    if let Some(url) = authorize_url(status) {
        out.push_str(&format!("\n  connect your account at: {url}"));
    }
    out
}

pub fn exit_code(status: &tonic::Status) -> u8 {
    match status.code() {
        Code::Unauthenticated | Code::PermissionDenied => exit::AUTH,
        Code::InvalidArgument => exit::VALIDATION,
        Code::FailedPrecondition if is_consent(status) => exit::CONSENT_REQUIRED,
        Code::FailedPrecondition => exit::VALIDATION,
        Code::Unavailable | Code::DeadlineExceeded => exit::UNAVAILABLE,
        Code::NotFound => exit::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => exit::CONFLICT,
        _ => exit::FAILURE,
    }
}
