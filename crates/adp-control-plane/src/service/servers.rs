use adp_api::v1 as pb;
use adp_api::v1::mcp_server_service_server::McpServerService;
use adp_core::fieldmask::apply_update_mask;
use adp_core::identity::Identity;
use adp_core::listing::ListQuery;
use adp_core::provider::GrantType;
use adp_core::resource::{Stored, check_etag, parse_etag};
use adp_core::server::{Auth, McpServer};
use adp_core::{ApiError, Code};
use adp_store::StoreError;
use tonic::{Request, Response};

use super::providers::secret_must_exist;
use super::{RpcResult, require_name, required};
use crate::auth::require;
use crate::errors::store_error;
use crate::state::SharedState;

const ORDER_FIELDS: &[&str] = &["name", "create_time", "update_time"];

#[derive(Debug)]
pub struct ServerService {
    pub state: SharedState,
}

impl ServerService {
    /// Checks that depend on other rows and on who is asking: binding a server to a
    /// provider (or moving a bound server to another URL) needs `oauthprovider_attach`,
    /// the provider must exist, offer the scopes and allow the grant; naming a static
    /// key (or moving a server that sends one) needs `secret_attach`, and the secret
    /// must exist.
    async fn check_bindings(
        &self,
        caller: &Identity,
        server: &McpServer,
        before: Option<&McpServer>,
    ) -> Result<(), ApiError> {
        if let Some(provider_name) = server.auth.provider_name() {
            // pointing a bound server somewhere else sends every user's token there
            let rebinding = before.is_none_or(|b| {
                b.auth.provider_name() != Some(provider_name) || b.source != server.source
            });
            if rebinding {
                require(caller, "oauthprovider_attach")?;
            }
            let provider = match self.state.store.providers().get(provider_name).await {
                Ok(stored) => stored.spec,
                Err(StoreError::NotFound { .. }) => return Err(provider_not_found(provider_name)),
                Err(other) => return Err(store_error(other)),
            };
            if let Some((field, scopes)) = server.auth.scopes() {
                let not_offered: Vec<&str> = if provider.scopes.is_empty() {
                    Vec::new()
                } else {
                    scopes
                        .iter()
                        .filter(|s| !provider.scopes.contains(s))
                        .map(String::as_str)
                        .collect()
                };
                if !not_offered.is_empty() {
                    return Err(ApiError::invalid_field(
                        &format!("mcp_server.{field}"),
                        "oauth_provider.scope_not_offered",
                        format!(
                            "OAuth provider {provider_name:?} does not offer {}; it offers {}",
                            not_offered.join(", "),
                            provider.scopes.join(", ")
                        ),
                    ));
                }
            }
            let grants = provider.effective_grant_types();
            let (usable, needed) = match &server.auth {
                Auth::ServiceAccountOAuth { .. } => (
                    grants.contains(&GrantType::ClientCredentials),
                    "CLIENT_CREDENTIALS",
                ),
                _ => (
                    grants.contains(&GrantType::BrowserConsent)
                        || grants.contains(&GrantType::DeviceCode),
                    "BROWSER_CONSENT or DEVICE_CODE",
                ),
            };
            if !usable {
                return Err(ApiError::new(
                    Code::FailedPrecondition,
                    format!("OAuth provider {provider_name:?} does not allow the {needed} grant this auth mode needs"),
                )
                .with_reason(adp_core::Reason::OauthProviderGrantNotAllowed)
                .with_metadata("providerName", provider_name));
            }
        }
        if let Auth::StaticKey { key_ref, .. } = &server.auth {
            // the key goes wherever the server points: naming it, or moving where it
            // is sent, is using the secret, not just configuring a server
            let (before_ref, before_url) = match before.map(|b| (&b.auth, &b.source)) {
                Some((Auth::StaticKey { key_ref, .. }, source)) => {
                    (Some(key_ref.as_str()), Some(source))
                }
                _ => (None, None),
            };
            if before_ref != Some(key_ref.as_str()) || before_url != Some(&server.source) {
                require(caller, "secret_attach")?;
            }
            secret_must_exist(&self.state, key_ref).await?;
        }
        Ok(())
    }
}

fn provider_not_found(provider_name: &str) -> ApiError {
    ApiError::new(
        Code::FailedPrecondition,
        format!("OAuth provider not found: {provider_name:?}"),
    )
    .with_reason(adp_core::Reason::OauthProviderNotFound)
    .with_metadata("providerName", provider_name)
}

/// A write can still lose the race with a provider delete; the foreign key catches it.
fn write_error(server: &McpServer, error: StoreError) -> ApiError {
    match (error, server.auth.provider_name()) {
        (StoreError::MissingReference, Some(provider)) => provider_not_found(provider),
        (other, _) => store_error(other),
    }
}

#[tonic::async_trait]
impl McpServerService for ServerService {
    async fn create_mcp_server(
        &self,
        request: Request<pb::CreateMcpServerRequest>,
    ) -> RpcResult<pb::CreateMcpServerResponse> {
        let caller = self
            .state
            .auth
            .authorize(&request, "mcpserver_create")
            .await?;
        let request = request.into_inner();
        self.state.validator.validate(&request)?;
        let server = McpServer::try_from(required(request.mcp_server, "mcp_server")?)?;
        self.check_bindings(&caller, &server, None).await?;
        if request.validate_only {
            return Ok(Response::new(pb::CreateMcpServerResponse {
                mcp_server: Some((&server).into()),
            }));
        }
        let stored = self
            .state
            .store
            .servers()
            .create(&server)
            .await
            .map_err(|e| write_error(&server, e))?;
        tracing::info!(server = %server.name, auth = server.auth.field_name(), "mcp server created");
        Ok(Response::new(pb::CreateMcpServerResponse {
            mcp_server: Some((&stored).into()),
        }))
    }

    async fn get_mcp_server(
        &self,
        request: Request<pb::GetMcpServerRequest>,
    ) -> RpcResult<pb::GetMcpServerResponse> {
        self.state.auth.authorize(&request, "mcpserver_get").await?;
        let request = request.into_inner();
        self.state.validator.validate(&request)?;
        let stored = self
            .state
            .store
            .servers()
            .get(&request.name)
            .await
            .map_err(store_error)?;
        Ok(Response::new(pb::GetMcpServerResponse {
            mcp_server: Some((&stored).into()),
        }))
    }

    async fn list_mcp_servers(
        &self,
        request: Request<pb::ListMcpServersRequest>,
    ) -> RpcResult<pb::ListMcpServersResponse> {
        self.state
            .auth
            .authorize(&request, "mcpserver_list")
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
            .servers()
            .list(&query)
            .await
            .map_err(store_error)?;
        Ok(Response::new(pb::ListMcpServersResponse {
            next_page_token: query.next_page_token(page.items.len(), page.total),
            mcp_servers: page.items.iter().map(Into::into).collect(),
            total_size: i32::try_from(page.total).unwrap_or(i32::MAX),
        }))
    }

    async fn update_mcp_server(
        &self,
        request: Request<pb::UpdateMcpServerRequest>,
    ) -> RpcResult<pb::UpdateMcpServerResponse> {
        let caller = self
            .state
            .auth
            .authorize(&request, "mcpserver_update")
            .await?;
        let request = request.into_inner();
        let patch = required(request.mcp_server, "mcp_server")?;
        require_name(&patch.name, "mcp_server.name")?;
        let expected = parse_etag(&patch.etag)?;
        let stored = self
            .state
            .store
            .servers()
            .get(&patch.name)
            .await
            .map_err(store_error)?;
        check_etag("mcp server", &patch.name, expected, &stored.meta)?;
        let paths = request.update_mask.map(|m| m.paths).unwrap_or_default();
        let merged = apply_update_mask(
            &pb::McpServer::from(&stored.spec),
            &patch,
            &paths,
            "update_mask",
        )?;
        self.state.validator.validate_as("mcp_server", &merged)?;
        let server = McpServer::try_from(merged)?;
        self.check_bindings(&caller, &server, Some(&stored.spec))
            .await?;
        if request.validate_only {
            let preview = Stored {
                spec: server,
                meta: stored.meta,
            };
            return Ok(Response::new(pb::UpdateMcpServerResponse {
                mcp_server: Some((&preview).into()),
            }));
        }
        let updated = self
            .state
            .store
            .servers()
            .update(&server, &stored.meta)
            .await
            .map_err(|e| write_error(&server, e))?;
        tracing::info!(server = %server.name, version = updated.meta.version, "mcp server updated");
        self.state.credentials.server_changed(&server.name).await;
        self.state
            .connections
            .auth_mode_switched(&server.name, &stored.spec.auth, &server.auth)
            .await?;
        Ok(Response::new(pb::UpdateMcpServerResponse {
            mcp_server: Some((&updated).into()),
        }))
    }

    async fn delete_mcp_server(
        &self,
        request: Request<pb::DeleteMcpServerRequest>,
    ) -> RpcResult<pb::DeleteMcpServerResponse> {
        self.state
            .auth
            .authorize(&request, "mcpserver_delete")
            .await?;
        let request = request.into_inner();
        self.state.validator.validate(&request)?;
        let expected = parse_etag(&request.etag)?;
        self.state
            .store
            .servers()
            .delete(&request.name, expected)
            .await
            .map_err(store_error)?;
        self.state.credentials.server_changed(&request.name).await;
        tracing::info!(server = %request.name, "mcp server deleted");
        Ok(Response::new(pb::DeleteMcpServerResponse {}))
    }
}
