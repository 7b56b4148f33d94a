//! Every `google.rpc.ErrorInfo.reason` ADP answers with, in one place: servers write
//! them, proxies and adpctl match on them, so a typo is a compile error, not a silent
//! mismatch. On the wire they stay UPPER_SNAKE strings (DESIGN.md §3).

macro_rules! reasons {
    ($($variant:ident => $text:literal,)+) => {
        /// A stable machine-readable reason for `ErrorInfo` (domain `adp.v1`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Reason {
            $($variant,)+
        }

        impl Reason {
            /// Every reason, for documentation and tests.
            pub const ALL: &'static [Reason] = &[$(Reason::$variant,)+];

            /// The wire form.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Reason::$variant => $text,)+
                }
            }

            /// The reason a peer sent, if it is one ADP knows.
            pub fn parse(text: &str) -> Option<Reason> {
                match text {
                    $($text => Some(Reason::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

reasons! {
    AlreadyExists => "ALREADY_EXISTS",
    BodyTooLarge => "BODY_TOO_LARGE",
    ConfigNotReady => "CONFIG_NOT_READY",
    ConsentAttemptsExhausted => "CONSENT_ATTEMPTS_EXHAUSTED",
    ConsentTimeout => "CONSENT_TIMEOUT",
    ControlPlaneUnavailable => "CONTROL_PLANE_UNAVAILABLE",
    CredentialUnavailable => "CREDENTIAL_UNAVAILABLE",
    EtagMismatch => "ETAG_MISMATCH",
    Internal => "INTERNAL",
    InvalidRequest => "INVALID_REQUEST",
    InvalidRequestState => "INVALID_REQUEST_STATE",
    KeysUnavailable => "KEYS_UNAVAILABLE",
    McpError => "MCP_ERROR",
    McpServerDisabled => "MCP_SERVER_DISABLED",
    McpServerNotFound => "MCP_SERVER_NOT_FOUND",
    NotFound => "NOT_FOUND",
    NoUpstream => "NO_UPSTREAM",
    OauthConnectionRequired => "OAUTH_CONNECTION_REQUIRED",
    OauthProviderChanged => "OAUTH_PROVIDER_CHANGED",
    OauthProviderDisabled => "OAUTH_PROVIDER_DISABLED",
    OauthProviderGrantNotAllowed => "OAUTH_PROVIDER_GRANT_NOT_ALLOWED",
    OauthProviderMisconfigured => "OAUTH_PROVIDER_MISCONFIGURED",
    OauthProviderNotFound => "OAUTH_PROVIDER_NOT_FOUND",
    OauthProviderRejected => "OAUTH_PROVIDER_REJECTED",
    OauthProviderUnavailable => "OAUTH_PROVIDER_UNAVAILABLE",
    OauthTokenExpired => "OAUTH_TOKEN_EXPIRED",
    OriginNotAllowed => "ORIGIN_NOT_ALLOWED",
    ParseError => "PARSE_ERROR",
    PassthroughTokenAudience => "PASSTHROUGH_TOKEN_AUDIENCE",
    PermissionMissing => "PERMISSION_MISSING",
    ReferenceNotFound => "REFERENCE_NOT_FOUND",
    RequestBodyTimeout => "REQUEST_BODY_TIMEOUT",
    ResourceInUse => "RESOURCE_IN_USE",
    ScopeUpgradeRequired => "SCOPE_UPGRADE_REQUIRED",
    SecretNotFound => "SECRET_NOT_FOUND",
    ServiceAccountTokenUnavailable => "SERVICE_ACCOUNT_TOKEN_UNAVAILABLE",
    SessionNotFound => "SESSION_NOT_FOUND",
    TokenExpired => "TOKEN_EXPIRED",
    TokenInvalid => "TOKEN_INVALID",
    TokenMissing => "TOKEN_MISSING",
    TokenNotYetValid => "TOKEN_NOT_YET_VALID",
    TokenUnknownKey => "TOKEN_UNKNOWN_KEY",
    TokenWrongAudience => "TOKEN_WRONG_AUDIENCE",
    TokenWrongIssuer => "TOKEN_WRONG_ISSUER",
    TooManyWatches => "TOO_MANY_WATCHES",
    Unauthenticated => "UNAUTHENTICATED",
    Unavailable => "UNAVAILABLE",
    UpstreamTimeout => "UPSTREAM_TIMEOUT",
    UpstreamUnavailable => "UPSTREAM_UNAVAILABLE",
}

impl Reason {
    /// The three FAILED_PRECONDITION conditions a user resolves by consenting.
    pub const fn is_consent(self) -> bool {
        matches!(
            self,
            Reason::OauthConnectionRequired
                | Reason::ScopeUpgradeRequired
                | Reason::OauthTokenExpired
        )
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_round_trips_and_is_upper_snake() {
        for reason in Reason::ALL {
            let text = reason.as_str();
            assert_eq!(Reason::parse(text), Some(*reason));
            assert!(
                text.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
                "{text}"
            );
        }
        assert_eq!(Reason::parse("oauth_connection_required"), None);
        assert_eq!(Reason::ALL.iter().filter(|r| r.is_consent()).count(), 3);
    }
}
