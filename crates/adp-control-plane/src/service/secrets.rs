use adp_api::v1 as pb;
use adp_api::v1::secret_service_server::SecretService;
use adp_core::ApiError;
use adp_core::listing::ListQuery;
use adp_core::resource::{Stored, check_etag, parse_etag, timestamp};
use adp_vault::Binding;
use tonic::{Request, Response};

use super::{RpcResult, require_name, required};
use crate::errors::store_error;
use crate::state::SharedState;

const ORDER_FIELDS: &[&str] = &["name", "create_time", "update_time"];

#[derive(Debug)]
pub struct SecretStoreService {
    pub state: SharedState,
}

fn to_proto(stored: &Stored<String>) -> pb::Secret {
    pb::Secret {
        name: stored.spec.clone(),
        create_time: Some(timestamp(stored.meta.create_time)),
        update_time: Some(timestamp(stored.meta.update_time)),
        etag: stored.meta.etag(),
    }
}

impl SecretStoreService {
    fn seal(&self, name: &str, value: &str) -> Result<Vec<u8>, ApiError> {
        self.state
            .vault
            .seal_str(&Binding::secret(name), value)
            .map_err(|error| {
                tracing::error!(secret = %name, %error, "sealing a secret failed");
                ApiError::internal("could not seal the secret")
            })
    }
}

#[tonic::async_trait]
impl SecretService for SecretStoreService {
    async fn create_secret(
        &self,
        request: Request<pb::CreateSecretRequest>,
    ) -> RpcResult<pb::CreateSecretResponse> {
        self.state.auth.authorize(&request, "secret_create").await?;
        let request = request.into_inner();
        self.state.validator.validate(&request)?;
        let secret = required(request.secret, "secret")?;
        if request.validate_only {
            return Ok(Response::new(pb::CreateSecretResponse {
                secret: Some(pb::Secret {
                    name: secret.name,
                    ..Default::default()
                }),
            }));
        }
        let sealed = self.seal(&secret.name, &request.value)?;
        let stored = self
            .state
            .store
            .secrets()
            .create(&secret.name, sealed)
            .await
            .map_err(store_error)?;
        tracing::info!(secret = %secret.name, "secret created");
        Ok(Response::new(pb::CreateSecretResponse {
            secret: Some(to_proto(&stored)),
        }))
    }

    async fn get_secret(
        &self,
        request: Request<pb::GetSecretRequest>,
    ) -> RpcResult<pb::GetSecretResponse> {
        self.state.auth.authorize(&request, "secret_get").await?;
        let request = request.into_inner();
        self.state.validator.validate(&request)?;
        let stored = self
            .state
            .store
            .secrets()
            .get(&request.name)
            .await
            .map_err(store_error)?;
        Ok(Response::new(pb::GetSecretResponse {
            secret: Some(to_proto(&stored)),
        }))
    }

    async fn list_secrets(
        &self,
        request: Request<pb::ListSecretsRequest>,
    ) -> RpcResult<pb::ListSecretsResponse> {
        self.state.auth.authorize(&request, "secret_list").await?;
        let request = request.into_inner();
        self.state.validator.validate(&request)?;
        let query = ListQuery::parse(
            request.page_size,
            &request.page_token,
            &request.name_contains,
            &request.order_by,
            ORDER_FIELDS,
        )?;
        let page = self
            .state
            .store
            .secrets()
            .list(&query)
            .await
            .map_err(store_error)?;
        Ok(Response::new(pb::ListSecretsResponse {
            next_page_token: query.next_page_token(page.items.len(), page.total),
            secrets: page.items.iter().map(to_proto).collect(),
            total_size: i32::try_from(page.total).unwrap_or(i32::MAX),
        }))
    }

    async fn update_secret(
        &self,
        request: Request<pb::UpdateSecretRequest>,
    ) -> RpcResult<pb::UpdateSecretResponse> {
        self.state.auth.authorize(&request, "secret_update").await?;
        let request = request.into_inner();
        let secret = required(request.secret.clone(), "secret")?;
        require_name(&secret.name, "secret.name")?;
        self.state.validator.validate(&request)?;
        let expected = parse_etag(&secret.etag)?;
        let stored = self
            .state
            .store
            .secrets()
            .get(&secret.name)
            .await
            .map_err(store_error)?;
        check_etag("secret", &secret.name, expected, &stored.meta)?;
        if request.validate_only {
            return Ok(Response::new(pb::UpdateSecretResponse {
                secret: Some(to_proto(&stored)),
            }));
        }
        let sealed = self.seal(&secret.name, &request.value)?;
        let updated = self
            .state
            .store
            .secrets()
            .update(&secret.name, sealed, &stored.meta)
            .await
            .map_err(store_error)?;
        tracing::info!(secret = %secret.name, version = updated.meta.version, "secret updated");
        Ok(Response::new(pb::UpdateSecretResponse {
            secret: Some(to_proto(&updated)),
        }))
    }

    async fn delete_secret(
        &self,
        request: Request<pb::DeleteSecretRequest>,
    ) -> RpcResult<pb::DeleteSecretResponse> {
        self.state.auth.authorize(&request, "secret_delete").await?;
        let request = request.into_inner();
        self.state.validator.validate(&request)?;
        let expected = parse_etag(&request.etag)?;
        self.state
            .store
            .secrets()
            .delete(&request.name, expected)
            .await
            .map_err(store_error)?;
        tracing::info!(secret = %request.name, "secret deleted");
        Ok(Response::new(pb::DeleteSecretResponse {}))
    }
}
