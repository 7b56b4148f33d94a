//! What every worker thread and both front doors (MCP over HTTP, gRPC gateway) share:
//! the config, verified callers, cached credentials, and the first steps of every call.

use std::sync::Arc;

use adp_core::identity::{Identity, bearer_token};
use http::{HeaderName, HeaderValue};
use secrecy::SecretString;

use crate::bounded::BoundedMap;
use crate::callers::Callers;
use crate::consent::RequestStates;
use crate::control_plane::{ControlPlane, CredentialError};
use crate::credentials::{CacheKey, CredentialCache};
use crate::errors::ProxyError;
use crate::http::Session;
use crate::routes::Route;
use crate::subscriber::ConfigHandle;

#[derive(Debug)]
pub struct Shared {
    pub config: ConfigHandle,
    pub control_plane: ControlPlane,
    pub callers: Callers,
    pub credentials: CredentialCache,
    pub sessions: BoundedMap<String, Session>,
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
    pub async fn admit(
        &self,
        server: &str,
        authorization: Option<&str>,
    ) -> Result<Admitted, ProxyError> {
        if !self.config.status.borrow().has_config {
            return Err(ProxyError::NoConfig);
        }
        let route = self
            .config
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
        let identity = self
            .callers
            .verify(token)
            .await
            .map_err(|e| ProxyError::Unauthenticated(e.to_string()))?;
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
