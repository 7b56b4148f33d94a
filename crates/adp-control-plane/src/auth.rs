//! Who is calling and what they may do. Every RPC starts here.

use adp_core::ApiError;
use adp_core::identity::{AuthError, Identity, Verifier, bearer_token};
use adp_core::metadata::PROXY_AUTHORIZATION;

#[derive(Clone, Debug)]
pub struct Authenticator {
    verifier: Verifier,
}

impl Authenticator {
    pub fn new(verifier: Verifier) -> Self {
        Self { verifier }
    }

    /// Verifies the caller's `authorization: Bearer <jwt>`.
    pub async fn authenticate<T>(&self, request: &tonic::Request<T>) -> Result<Identity, ApiError> {
        self.authenticate_header(request, "authorization").await
    }

    /// Verifies a bearer JWT carried in another metadata key, such as the proxy's own
    /// credential in `x-adp-proxy-authorization`.
    pub async fn authenticate_header<T>(
        &self,
        request: &tonic::Request<T>,
        key: &str,
    ) -> Result<Identity, ApiError> {
        let header = request.metadata().get(key).ok_or(AuthError::MissingToken)?;
        let value = header.to_str().map_err(|_| AuthError::Malformed)?;
        Ok(self.verifier.verify(bearer_token(value)?).await?)
    }

    /// Verifies the proxy's own JWT (`x-adp-proxy-authorization`, permission `proxy`).
    pub async fn authenticate_proxy<T>(
        &self,
        request: &tonic::Request<T>,
    ) -> Result<Identity, ApiError> {
        let proxy = self
            .authenticate_header(request, PROXY_AUTHORIZATION)
            .await?;
        require(&proxy, "proxy")?;
        Ok(proxy)
    }

    /// Verifies the caller and checks one permission.
    pub async fn authorize<T>(
        &self,
        request: &tonic::Request<T>,
        permission: &str,
    ) -> Result<Identity, ApiError> {
        let identity = self.authenticate(request).await?;
        require(&identity, permission)?;
        Ok(identity)
    }
}

pub fn require(identity: &Identity, permission: &str) -> Result<(), ApiError> {
    if identity.has_permission(permission) {
        Ok(())
    } else {
        tracing::info!(subject = %identity.subject, permission, "permission denied");
        Err(ApiError::permission_denied(permission))
    }
}
