use adp_api::v1 as pb;
use adp_api::v1::o_auth_provider_service_server::OAuthProviderService;
use adp_core::error::FieldViolation;
use adp_core::fieldmask::apply_update_mask;
use adp_core::identity::Identity;
use adp_core::listing::ListQuery;
use adp_core::provider::OAuthProvider;
use adp_core::resource::{check_etag, parse_etag};
use adp_core::{ApiError, Code};
use adp_store::StoreError;
use tonic::{Request, Response};

use super::{RpcResult, require_name, required};
use crate::auth::require;
use crate::errors::store_error;
use crate::state::SharedState;

const ORDER_FIELDS: &[&str] = &["name", "display_name", "create_time", "update_time"];

#[derive(Debug)]
pub struct ProviderService {
    pub state: SharedState,
}

impl ProviderService {
    /// Who may point a provider at a secret, or move where its secret goes: binding
    /// or changing `client_secret_ref` needs `secret_attach`, and so does changing the
    /// token destination of a provider that has a client secret (else an admin with
    /// `oauthprovider_update` alone could send it, and users' refresh tokens, to a
    /// host of their own).
    fn check_secret_rights(
        caller: &Identity,
        provider: &OAuthProvider,
        before: Option<&OAuthProvider>,
    ) -> Result<(), ApiError> {
        let rebinding = !provider.client_secret_ref.is_empty()
            && before.is_none_or(|b| b.client_secret_ref != provider.client_secret_ref);
        let moving_secret = before.is_some_and(|b| {
            !b.client_secret_ref.is_empty() && !b.token_destination_changes(provider).is_empty()
        });
        if rebinding || moving_secret {
            require(caller, "secret_attach")?;
        }
        Ok(())
    }

    /// Checks that need configuration or other rows: endpoint schemes and the secret.
    async fn check(&self, provider: &OAuthProvider) -> Result<(), ApiError> {
        let mut violations = Vec::new();
        for (field, url) in provider.endpoints() {
            if url.is_empty() {
                continue;
            }
            if let Err(problem) = self.state.endpoint_policy.check(url) {
                violations.push(FieldViolation::new(
                    format!("oauth_provider.{field}"),
                    "oauth_provider.endpoint_requires_https",
                    problem.to_string(),
                ));
            }
        }
        if !violations.is_empty() {
            return Err(ApiError::invalid(violations));
        }
        if !provider.client_secret_ref.is_empty() {
            secret_must_exist(&self.state, &provider.client_secret_ref).await?;
        }
        Ok(())
    }
}

pub(crate) async fn secret_must_exist(state: &SharedState, name: &str) -> Result<(), ApiError> {
    match state.secrets_get(name).await {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound { .. }) => Err(ApiError::new(
            Code::FailedPrecondition,
            format!("secret {name:?} not found; create it with SecretService.CreateSecret first"),
        )
        .with_reason(adp_core::Reason::SecretNotFound)
        .with_metadata("secretName", name)),
        Err(other) => Err(store_error(other)),
    }
}

#[tonic::async_trait]
impl OAuthProviderService for ProviderService {
    async fn create_o_auth_provider(
        &self,
        request: Request<pb::CreateOAuthProviderRequest>,
    ) -> RpcResult<pb::CreateOAuthProviderResponse> {
        let caller = self
            .state
            .auth
            .authorize(&request, "oauthprovider_create")
            .await?;
        let request = request.into_inner();
        self.state.validator.validate(&request)?;
        let provider = OAuthProvider::from(required(request.oauth_provider, "oauth_provider")?);
        Self::check_secret_rights(&caller, &provider, None)?;
        self.check(&provider).await?;
        if request.validate_only {
            return Ok(Response::new(pb::CreateOAuthProviderResponse {
                oauth_provider: Some((&provider).into()),
            }));
        }
        let stored = self
            .state
            .store
            .providers()
            .create(&provider)
            .await
            .map_err(store_error)?;
        tracing::info!(provider = %provider.name, "oauth provider created");
        Ok(Response::new(pb::CreateOAuthProviderResponse {
            oauth_provider: Some((&stored).into()),
        }))
    }

    async fn get_o_auth_provider(
        &self,
        request: Request<pb::GetOAuthProviderRequest>,
    ) -> RpcResult<pb::GetOAuthProviderResponse> {
        self.state
            .auth
            .authorize(&request, "oauthprovider_get")
            .await?;
        let request = request.into_inner();
        self.state.validator.validate(&request)?;
        let stored = self
            .state
            .store
            .providers()
            .get(&request.name)
            .await
            .map_err(store_error)?;
        Ok(Response::new(pb::GetOAuthProviderResponse {
            oauth_provider: Some((&stored).into()),
        }))
    }

    async fn list_o_auth_providers(
        &self,
        request: Request<pb::ListOAuthProvidersRequest>,
    ) -> RpcResult<pb::ListOAuthProvidersResponse> {
        self.state
            .auth
            .authorize(&request, "oauthprovider_list")
            .await?;
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
            .providers()
            .list(&query)
            .await
            .map_err(store_error)?;
        Ok(Response::new(pb::ListOAuthProvidersResponse {
            next_page_token: query.next_page_token(page.items.len(), page.total),
            oauth_providers: page.items.iter().map(Into::into).collect(),
            total_size: i32::try_from(page.total).unwrap_or(i32::MAX),
            callback_url: self.state.callback_url.clone(),
        }))
    }

    async fn update_o_auth_provider(
        &self,
        request: Request<pb::UpdateOAuthProviderRequest>,
    ) -> RpcResult<pb::UpdateOAuthProviderResponse> {
        let caller = self
            .state
            .auth
            .authorize(&request, "oauthprovider_update")
            .await?;
        let request = request.into_inner();
        let patch = required(request.oauth_provider, "oauth_provider")?;
        require_name(&patch.name, "oauth_provider.name")?;
        let expected = parse_etag(&patch.etag)?;
        let stored = self
            .state
            .store
            .providers()
            .get(&patch.name)
            .await
            .map_err(store_error)?;
        check_etag("oauth provider", &patch.name, expected, &stored.meta)?;
        let paths = request.update_mask.map(|m| m.paths).unwrap_or_default();
        let merged = apply_update_mask(
            &pb::OAuthProvider::from(&stored.spec),
            &patch,
            &paths,
            "update_mask",
        )?;
        self.state
            .validator
            .validate_as("oauth_provider", &merged)?;
        let provider = OAuthProvider::from(merged);
        Self::check_secret_rights(&caller, &provider, Some(&stored.spec))?;
        self.check(&provider).await?;
        let moved = stored.spec.token_destination_changes(&provider);
        if request.validate_only {
            let preview = adp_core::resource::Stored {
                spec: provider,
                meta: stored.meta,
            };
            return Ok(Response::new(pb::UpdateOAuthProviderResponse {
                oauth_provider: Some((&preview).into()),
                connections_requiring_consent: 0,
            }));
        }
        // tokens are discarded before the new endpoints can be used: a refresh that
        // ran in between would send an old refresh token to the new token_url
        let connections_requiring_consent = if moved.is_empty() {
            0
        } else {
            self.state
                .connections
                .provider_endpoints_changed(&provider.name, &moved)
                .await?
        };
        let updated = self
            .state
            .store
            .providers()
            .update(&provider, &stored.meta)
            .await
            .map_err(store_error)?;
        tracing::info!(provider = %provider.name, version = updated.meta.version, "oauth provider updated");
        self.state
            .credentials
            .provider_changed(&provider.name)
            .await;
        // and again: a consent that finished between the first wipe and the update
        // holds tokens of the old endpoints too
        let connections_requiring_consent = if moved.is_empty() {
            connections_requiring_consent
        } else {
            connections_requiring_consent
                + self
                    .state
                    .connections
                    .provider_endpoints_changed(&provider.name, &moved)
                    .await?
        };
        Ok(Response::new(pb::UpdateOAuthProviderResponse {
            oauth_provider: Some((&updated).into()),
            connections_requiring_consent: i64::try_from(connections_requiring_consent)
                .unwrap_or(i64::MAX),
        }))
    }

    async fn delete_o_auth_provider(
        &self,
        request: Request<pb::DeleteOAuthProviderRequest>,
    ) -> RpcResult<pb::DeleteOAuthProviderResponse> {
        self.state
            .auth
            .authorize(&request, "oauthprovider_delete")
            .await?;
        let request = request.into_inner();
        self.state.validator.validate(&request)?;
        let expected = parse_etag(&request.etag)?;
        self.state
            .store
            .providers()
            .delete(&request.name, expected)
            .await
            .map_err(store_error)?;
        self.state.credentials.provider_changed(&request.name).await;
        tracing::info!(provider = %request.name, "oauth provider deleted");
        Ok(Response::new(pb::DeleteOAuthProviderResponse {}))
    }
}
