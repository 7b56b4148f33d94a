//! How a failed call to a provider is classified. The one rule that matters most:
//! only `invalid_grant` means the grant is dead; network trouble, timeouts, 5xx and
//! 429 are `Transient` and must never cause a caller to delete anything.

use std::fmt::Display;
use std::time::Duration;

use oauth2::{ErrorResponseType, RequestTokenError, StandardErrorResponse};

/// Why an OAuth flow did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// The authorization grant or refresh token is invalid, expired or revoked: the caller
    /// should expire the connection and ask the user to consent again.
    #[error("the provider rejected the grant (invalid_grant){}", suffix(.description))]
    InvalidGrant { description: Option<String> },
    /// The user declined the device authorization request.
    #[error("the user denied the authorization request")]
    AccessDenied,
    /// The device code expired before the user approved it.
    #[error("the device code expired before the user approved it")]
    ExpiredToken,
    /// A failure that may go away on its own (5xx, 429, timeout, connection error).
    #[error("temporary failure talking to the provider: {reason}")]
    Transient { reason: String },
    /// Any other OAuth error answer, or an answer that is not OAuth at all.
    #[error("the provider rejected the request ({error}){}", suffix(.description))]
    Rejected {
        error: String,
        description: Option<String>,
    },
    /// The provider configuration or local setup cannot work.
    #[error("oauth client misconfigured: {0}")]
    Misconfigured(String),
}

impl FlowError {
    /// Whether retrying later may succeed. Transient errors never end a connection.
    pub fn is_transient(&self) -> bool {
        matches!(self, FlowError::Transient { .. })
    }

    /// Whether the grant is dead and the connection should be expired.
    pub fn is_invalid_grant(&self) -> bool {
        matches!(self, FlowError::InvalidGrant { .. })
    }

    /// Maps an OAuth `error` code (RFC 6749 §5.2, RFC 8628 §3.5) to a flow error.
    pub(crate) fn from_oauth_error(error: &str, description: Option<String>) -> FlowError {
        match error {
            "invalid_grant" => FlowError::InvalidGrant { description },
            "access_denied" => FlowError::AccessDenied,
            "expired_token" => FlowError::ExpiredToken,
            // defined for the authorization endpoint, but some token endpoints use them too
            "temporarily_unavailable" | "server_error" => FlowError::Transient {
                reason: format!("provider answered {error}{}", suffix(&description)),
            },
            _ => FlowError::Rejected {
                error: error.to_owned(),
                description,
            },
        }
    }

    pub(crate) fn unexpected_response(status: Option<u16>, what: &str) -> FlowError {
        let status = status.map_or_else(|| "no status".to_owned(), |s| format!("HTTP {s}"));
        FlowError::Rejected {
            error: "invalid_response".to_owned(),
            description: Some(format!("{status}: {what}")),
        }
    }
}

/// Classifies a non-success answer we received ourselves (not through oauth2).
pub(crate) fn classify_error_body(status: u16, body: &[u8]) -> FlowError {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        error: String,
        #[serde(default)]
        error_description: Option<String>,
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(answer) => FlowError::from_oauth_error(&answer.error, answer.error_description),
        Err(_) if body.is_empty() => FlowError::unexpected_response(Some(status), "empty response"),
        Err(_) => FlowError::unexpected_response(Some(status), "response is not an OAuth error"),
    }
}

fn suffix(description: &Option<String>) -> String {
    description
        .as_deref()
        .map(|d| format!(": {d}"))
        .unwrap_or_default()
}

/// What went wrong below the OAuth layer: the transport, or a status that says "later".
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    #[error("provider answered HTTP {status}")]
    RetryableStatus {
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error("{0}")]
    Network(String),
    #[error("provider response is larger than {0} bytes")]
    TooLarge(usize),
    #[error("could not build the HTTP request")]
    Build,
}

impl HttpError {
    pub(crate) fn from_reqwest(error: &reqwest::Error) -> HttpError {
        let kind = if error.is_timeout() {
            "request timed out"
        } else if error.is_connect() {
            "could not connect"
        } else if error.is_body() || error.is_decode() {
            "could not read the response"
        } else {
            "request failed"
        };
        // the innermost cause names the real problem (DNS, TLS, reset) and holds no URL
        let mut root = None;
        let mut cause = std::error::Error::source(error);
        while let Some(source) = cause {
            root = Some(source);
            cause = source.source();
        }
        match root {
            Some(root) => HttpError::Network(format!("{kind}: {root}")),
            None => HttpError::Network(kind.to_owned()),
        }
    }
}

/// A classified failure plus the provider's `Retry-After`, which only the retry loop needs.
#[derive(Debug)]
pub(crate) struct Failure {
    pub error: FlowError,
    pub retry_after: Option<Duration>,
}

impl From<FlowError> for Failure {
    fn from(error: FlowError) -> Self {
        Failure {
            error,
            retry_after: None,
        }
    }
}

impl From<HttpError> for Failure {
    fn from(error: HttpError) -> Self {
        let retry_after = match error {
            HttpError::RetryableStatus { retry_after, .. } => retry_after,
            _ => None,
        };
        let error = match error {
            HttpError::Build => FlowError::Misconfigured(error.to_string()),
            other => FlowError::Transient {
                reason: other.to_string(),
            },
        };
        Failure { error, retry_after }
    }
}

/// Classifies an oauth2 error. `status` is the HTTP status the transport saw, if any:
/// oauth2 hides it behind `Parse`/`Other` for bodies that are not OAuth JSON.
pub(crate) fn classify<T>(
    error: RequestTokenError<HttpError, StandardErrorResponse<T>>,
    status: Option<u16>,
) -> Failure
where
    T: ErrorResponseType + Display + 'static,
{
    match error {
        RequestTokenError::Request(http) => http.into(),
        RequestTokenError::ServerResponse(response) => FlowError::from_oauth_error(
            &response.error().to_string(),
            response.error_description().cloned(),
        )
        .into(),
        // the parse error's message can quote response values (tokens): keep only the path
        RequestTokenError::Parse(parse, _body) => FlowError::unexpected_response(
            status,
            &format!(
                "response is not a valid OAuth answer (at `{}`)",
                parse.path()
            ),
        )
        .into(),
        RequestTokenError::Other(message) => {
            FlowError::unexpected_response(status, &message).into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_error_codes_map_to_the_right_class() {
        assert!(FlowError::from_oauth_error("invalid_grant", None).is_invalid_grant());
        assert!(matches!(
            FlowError::from_oauth_error("access_denied", None),
            FlowError::AccessDenied
        ));
        assert!(matches!(
            FlowError::from_oauth_error("expired_token", None),
            FlowError::ExpiredToken
        ));
        assert!(FlowError::from_oauth_error("temporarily_unavailable", None).is_transient());
        let rejected = FlowError::from_oauth_error("invalid_client", Some("bad id".into()));
        assert!(!rejected.is_transient() && !rejected.is_invalid_grant());
        assert_eq!(
            rejected.to_string(),
            "the provider rejected the request (invalid_client): bad id"
        );
    }

    #[test]
    fn transport_failures_are_transient_except_request_building() {
        let failure = Failure::from(HttpError::RetryableStatus {
            status: 503,
            retry_after: Some(Duration::from_secs(1)),
        });
        assert!(failure.error.is_transient());
        assert_eq!(failure.retry_after, Some(Duration::from_secs(1)));
        assert!(
            Failure::from(HttpError::Network("x".into()))
                .error
                .is_transient()
        );
        assert!(matches!(
            Failure::from(HttpError::Build).error,
            FlowError::Misconfigured(_)
        ));
    }
}
