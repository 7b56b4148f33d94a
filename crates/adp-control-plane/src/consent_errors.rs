//! The rich FAILED_PRECONDITION errors of the consent contract (DESIGN.md §3):
//! ErrorInfo with a stable reason and camelCase metadata, a Help link to the
//! authorize URL, and the typed detail. Built here only.

use adp_api::v1 as pb;
use adp_core::connection::ExpiredReason;
use adp_core::{ApiError, Code, Reason};

pub struct ConsentContext<'a> {
    pub provider_name: &'a str,
    pub server_name: &'a str,
    pub authorize_url: &'a str,
}

fn base(context: &ConsentContext<'_>, reason: Reason, message: String) -> ApiError {
    ApiError::new(Code::FailedPrecondition, message)
        .with_reason(reason)
        .with_metadata("providerName", context.provider_name)
        .with_metadata("authorizeUrl", context.authorize_url)
        .with_metadata("mcpServer", context.server_name)
        .with_help(
            format!("Connect your {} account", context.provider_name),
            context.authorize_url,
        )
}

pub fn connection_required(context: &ConsentContext<'_>, required_scopes: &[String]) -> ApiError {
    let message = format!(
        "oauth_connection_required: connect your {} account to use {}: open {}",
        context.provider_name, context.server_name, context.authorize_url
    );
    base(context, Reason::OauthConnectionRequired, message).with_detail(
        "adp.v1.OAuthConnectionRequired",
        &pb::OAuthConnectionRequired {
            provider_name: context.provider_name.to_owned(),
            authorize_url: context.authorize_url.to_owned(),
            required_scopes: required_scopes.to_vec(),
            server_name: context.server_name.to_owned(),
        },
    )
}

pub fn scope_upgrade_required(
    context: &ConsentContext<'_>,
    granted: &[String],
    required: &[String],
    missing: &[String],
) -> ApiError {
    let message = format!(
        "scope_upgrade_required: {} needs {} from your {} account: open {}",
        context.server_name,
        missing.join(" "),
        context.provider_name,
        context.authorize_url
    );
    base(context, Reason::ScopeUpgradeRequired, message)
        .with_metadata("missingScopes", missing.join(" "))
        .with_detail(
            "adp.v1.ScopeUpgradeRequired",
            &pb::ScopeUpgradeRequired {
                provider_name: context.provider_name.to_owned(),
                authorize_url: context.authorize_url.to_owned(),
                granted_scopes: granted.to_vec(),
                required_scopes: required.to_vec(),
                missing_scopes: missing.to_vec(),
                server_name: context.server_name.to_owned(),
            },
        )
}

pub fn token_expired(context: &ConsentContext<'_>, reason: ExpiredReason) -> ApiError {
    let message = format!(
        "oauth_token_expired: your {} connection no longer works ({}); connect again: open {}",
        context.provider_name,
        reason.as_str(),
        context.authorize_url
    );
    base(context, Reason::OauthTokenExpired, message)
        .with_metadata("expiredReason", expired_reason_name(reason))
        .with_detail(
            "adp.v1.OAuthTokenExpired",
            &pb::OAuthTokenExpired {
                provider_name: context.provider_name.to_owned(),
                reason: to_proto_reason(reason) as i32,
                authorize_url: context.authorize_url.to_owned(),
                server_name: context.server_name.to_owned(),
            },
        )
}

pub fn to_proto_reason(reason: ExpiredReason) -> pb::TokenExpiredReason {
    match reason {
        ExpiredReason::Revoked => pb::TokenExpiredReason::Revoked,
        ExpiredReason::RefreshRejected => pb::TokenExpiredReason::RefreshRejected,
        ExpiredReason::NoRefreshToken => pb::TokenExpiredReason::NoRefreshToken,
        ExpiredReason::UpstreamUnavailable => pb::TokenExpiredReason::UpstreamUnavailable,
    }
}

fn expired_reason_name(reason: ExpiredReason) -> &'static str {
    match reason {
        ExpiredReason::Revoked => "REVOKED",
        ExpiredReason::RefreshRejected => "REFRESH_REJECTED",
        ExpiredReason::NoRefreshToken => "NO_REFRESH_TOKEN",
        ExpiredReason::UpstreamUnavailable => "UPSTREAM_UNAVAILABLE",
    }
}
