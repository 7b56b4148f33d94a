//! What every worker thread and both front doors (MCP over HTTP, gRPC gateway) share:
//! the config feed, verified callers, cached credentials, and the first steps of every call.

use std::sync::Arc;

use adp_core::identity::{AuthError, Identity, bearer_token};
use adp_core::server::Auth;
use http::{HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use crate::callers::{Audience, Callers};
use crate::consent::RequestStates;
use crate::control_plane_client::{ControlPlaneClient, CredentialError};
use crate::credential_cache::{CacheKey, CredentialCache};
use crate::errors::ProxyError;
use crate::feed::Feed;
use crate::routes::Route;
use crate::session_ids::SessionIds;

#[derive(Debug)]
pub struct Shared {
    pub feed: Feed,
    pub control_plane: ControlPlaneClient,
    pub callers: Callers,
    pub credentials: CredentialCache,
    pub session_ids: SessionIds,
    pub request_states: RequestStates,
    pub allowed_origins: Vec<String>,
    pub max_request_bytes: usize,
}

/// A call that may proceed: its route and its verified caller.
#[derive(Debug)]
pub struct Admitted {
    pub route: Arc<Route>,
    pub identity: Arc<Identity>,
    pub jwt: SecretString,
}

impl Shared {
    /// Finds the server and verifies the caller's `Authorization: Bearer <JWT>`.
    ///
    /// Token passthrough: for a `token_passthrough` server the caller's token is the one
    /// forwarded upstream, so it must be a JWT from the same issuer and keys as any
    /// caller's, but issued for that upstream: its `aud` must name the server's upstream
    /// URL (the RFC 8707 resource) and must not name ADP's own audience
    /// (`ADP_JWT_AUDIENCE`). A token without `aud`, or for any other audience, is refused
    /// with `PASSTHROUGH_TOKEN_AUDIENCE`; ADP's own JWT never leaves the proxy, where an
    /// upstream could replay it against ADP.
    pub async fn admit(
        &self,
        server: &str,
        authorization: Option<&str>,
    ) -> Result<Admitted, ProxyError> {
        if !self.feed.status.borrow().has_config {
            return Err(ProxyError::NoConfig);
        }
        let route = self
            .feed
            .table
            .borrow()
            .servers
            .get(server)
            .cloned()
            .ok_or_else(|| ProxyError::UnknownServer(server.to_owned()))?;
        if !route.server.enabled {
            return Err(ProxyError::Disabled(server.to_owned()));
        }
        if route.upstream.is_none() {
            return Err(ProxyError::NoUpstream(server.to_owned()));
        }
        let header = authorization.ok_or_else(|| {
            ProxyError::Unauthenticated("send Authorization: Bearer <JWT>".into())
        })?;
        let token = bearer_token(header).map_err(|e| ProxyError::Unauthenticated(e.to_string()))?;
        let identity = match route.server.auth {
            Auth::TokenPassthrough => self
                .callers
                .verify(token, Audience::Resource(&route.upstream_url))
                .await
                .map_err(|e| passthrough_refusal(e, &route.upstream_url))?,
            _ => self
                .callers
                .verify(token, Audience::Adp)
                .await
                .map_err(|e| ProxyError::Unauthenticated(e.to_string()))?,
        };
        Ok(Admitted {
            route,
            identity,
            jwt: SecretString::from(token.to_owned()),
        })
    }

    /// The header to inject for this caller and server (`None`: send none).
    pub async fn credential(
        &self,
        admitted: &Admitted,
    ) -> Result<Option<(HeaderName, HeaderValue)>, CredentialError> {
        if matches!(admitted.route.server.auth, Auth::TokenPassthrough) {
            // `admit` verified that this token is meant for this upstream
            return Ok(passthrough_header(&admitted.jwt));
        }
        if !admitted.route.needs_credential() {
            return Ok(None);
        }
        let key = CacheKey {
            identity: admitted.identity.clone(),
            route: admitted.route.clone(),
        };
        Ok(self
            .credentials
            .credential(key, &admitted.route, &admitted.jwt)
            .await?
            .header)
    }
}

/// An audience failure is the passthrough rule speaking; anything else (a bad
/// signature, an expired token) is plain authentication.
fn passthrough_refusal(error: AuthError, resource: &str) -> ProxyError {
    match error {
        AuthError::WrongAudience | AuthError::AdpAudience | AuthError::MissingClaim("aud") => {
            ProxyError::PassthroughAudience {
                resource: resource.to_owned(),
                problem: error.to_string(),
            }
        }
        other => ProxyError::Unauthenticated(other.to_string()),
    }
}

/// The caller's own token, byte for byte, as the upstream's bearer token.
fn passthrough_header(token: &SecretString) -> Option<(HeaderName, HeaderValue)> {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret())).ok()?;
    value.set_sensitive(true);
    Some((http::header::AUTHORIZATION, value))
}
