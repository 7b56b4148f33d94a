use std::io;
use std::path::PathBuf;

/// Why a presented token was refused.
///
/// Messages are written for the caller and never include the token; the mapping to a
/// gRPC or HTTP status happens at the edge, using [`AuthError::reason`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    MissingToken,
    #[error("token is not a well-formed jwt")]
    Malformed,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token is signed with an algorithm this server does not accept")]
    DisallowedAlgorithm,
    #[error("token lacks a valid `{0}` claim")]
    MissingClaim(&'static str),
    #[error("token was issued by an unexpected issuer")]
    WrongIssuer,
    #[error("token is intended for another audience")]
    WrongAudience,
    /// A token meant for ADP itself, presented where it would be forwarded upstream.
    #[error("token is intended for adp itself and is never forwarded to an upstream")]
    AdpAudience,
    #[error("token is signed with an unknown key")]
    UnknownKey,
    #[error("token signing keys are unavailable, try again later")]
    KeysUnavailable,
}

impl AuthError {
    /// A stable machine-readable reason (for `ErrorInfo.reason` and logs); unlike the
    /// message it never changes wording.
    pub fn reason(&self) -> crate::Reason {
        match self {
            Self::MissingToken => crate::Reason::TokenMissing,
            Self::Malformed
            | Self::BadSignature
            | Self::DisallowedAlgorithm
            | Self::MissingClaim(_) => crate::Reason::TokenInvalid,
            Self::Expired => crate::Reason::TokenExpired,
            Self::NotYetValid => crate::Reason::TokenNotYetValid,
            Self::WrongIssuer => crate::Reason::TokenWrongIssuer,
            Self::WrongAudience | Self::AdpAudience => crate::Reason::TokenWrongAudience,
            Self::UnknownKey => crate::Reason::TokenUnknownKey,
            Self::KeysUnavailable => crate::Reason::KeysUnavailable,
        }
    }

    /// Whether the failure is ours rather than the token's, so the caller may retry the
    /// same token later (maps to `UNAVAILABLE` rather than `UNAUTHENTICATED`).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::KeysUnavailable)
    }
}

/// Why a verifier (or a development token) could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot read the hs256 secret file {}", path.display())]
    ReadSecretFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the hs256 secret file {} is empty", path.display())]
    EmptySecretFile { path: PathBuf },
    #[error("the hs256 secret is empty")]
    EmptySecret,
    #[error("cannot read the ca file {}", path.display())]
    ReadCaFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the ca file {} is not a valid pem bundle", path.display())]
    InvalidCaFile {
        path: PathBuf,
        #[source]
        source: reqwest::Error,
    },
    #[error("the ca file {} holds no certificate", path.display())]
    EmptyCaFile { path: PathBuf },
    #[error("the jwks url must use http or https, not `{scheme}`")]
    UnsupportedJwksScheme { scheme: String },
    #[error("the permissions claim name is empty")]
    EmptyPermissionsClaim,
    #[error("cannot build the http client for the jwks endpoint")]
    HttpClient(#[source] reqwest::Error),
    #[error("token claims must be a json object")]
    ClaimsNotObject,
    #[error("cannot sign the token")]
    Mint(#[source] jsonwebtoken::errors::Error),
}
