//! Runs the protovalidate rules written in the protos and turns their violations
//! into field violations a person can act on.
//!
//! Message-level CEL rules lose their `message` on the way through and carry no
//! field path, so this module is the one place that gives each ADP rule id its
//! human message and the field it is about.

use prost_protovalidate::{Error as ValidateError, Validator};
use prost_reflect::ReflectMessage;

use crate::error::{ApiError, FieldViolation};

/// (rule id, field relative to the message that declares the rule, message).
const RULES: &[(&str, &str, &str)] = &[
    (
        "remote_mcp.user_oauth_requires_https",
        "remote.url",
        "HTTPS required",
    ),
    (
        "managed_mcp.user_oauth_unsupported",
        "managed.type",
        "this managed type does not support user-delegated OAuth",
    ),
    (
        "remote_mcp.url_scheme",
        "",
        "url must use http:// or https://",
    ),
    (
        "oauth_provider.authorize_url_required",
        "authorize_url",
        "authorize_url is required for browser consent",
    ),
    (
        "oauth_provider.device_authorization_url_required",
        "device_authorization_url",
        "device_authorization_url is required for the device code grant",
    ),
    (
        "oauth_provider.client_secret_required",
        "client_secret_ref",
        "client_secret_ref is required unless token_auth_method is NONE",
    ),
];

/// Compiles each message's rules once and reuses them; cheap to share behind an `Arc`.
#[derive(Default)]
pub struct RequestValidator {
    validator: Validator,
}

impl std::fmt::Debug for RequestValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestValidator").finish_non_exhaustive()
    }
}

impl RequestValidator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Validates a whole request message; field paths start at the request root.
    pub fn validate<M: ReflectMessage>(&self, message: &M) -> Result<(), ApiError> {
        self.validate_as("", message)
    }

    /// Validates a message that sits at `prefix` within the request (e.g. the merged
    /// `mcp_server` of an update), so field paths read as the caller sent them.
    pub fn validate_as<M: ReflectMessage>(
        &self,
        prefix: &str,
        message: &M,
    ) -> Result<(), ApiError> {
        match self.validator.validate(message) {
            Ok(()) => Ok(()),
            Err(ValidateError::Validation(error)) => {
                let violations = error
                    .violations()
                    .iter()
                    .map(|v| to_field_violation(prefix, &v.field_path(), v.rule_id(), v.message()))
                    .collect();
                Err(ApiError::invalid(violations))
            }
            Err(other) => {
                tracing::error!(error = %other, message = message.descriptor().full_name(), "validation rules failed to run");
                Err(ApiError::internal("validation rules failed to run"))
            }
        }
    }
}

fn to_field_violation(
    prefix: &str,
    field_path: &str,
    rule_id: &str,
    message: &str,
) -> FieldViolation {
    let known = RULES.iter().find(|(id, _, _)| *id == rule_id);
    let mut field = join_path(prefix, field_path);
    if let Some((_, relative, _)) = known {
        field = join_path(&field, relative);
    }
    let message = match (message.is_empty(), known) {
        (_, Some((_, _, human))) => (*human).to_owned(),
        (false, None) => message.to_owned(),
        (true, None) => "value is invalid".to_owned(),
    };
    FieldViolation::new(field, rule_id, message)
}

fn join_path(prefix: &str, rest: &str) -> String {
    match (prefix.is_empty(), rest.is_empty()) {
        (true, _) => rest.to_owned(),
        (false, true) => prefix.to_owned(),
        (false, false) => format!("{prefix}.{rest}"),
    }
}

#[cfg(test)]
mod tests;
