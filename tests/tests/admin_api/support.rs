//! Clients, fixtures and error assertions shared by the admin API scenarios.

use std::time::Duration;

use adp_api::v1::mcp_server::{Auth, Source};
use adp_api::v1::mcp_server_service_client::McpServerServiceClient;
use adp_api::v1::o_auth_provider_service_client::OAuthProviderServiceClient;
use adp_api::v1::secret_service_client::SecretServiceClient;
use adp_api::v1::*;
use adp_e2e::{ControlPlaneProcess, authed};
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::{ErrorInfo, FieldViolation, StatusExt};

/// Every secret value the scenarios send starts with this, so one search of the
/// process log covers them all.
pub const SECRET_MARKER: &str = "e2e-secret-value";

pub fn secret_value() -> String {
    format!("{SECRET_MARKER}-{}", uuid::Uuid::new_v4().simple())
}

/// One caller (one token) talking to one control plane.
pub struct Api {
    channel: Channel,
    pub token: String,
}

impl Api {
    pub async fn admin(cp: &ControlPlaneProcess) -> Self {
        Self::with_token(cp, cp.admin_token()).await
    }

    pub async fn with_token(cp: &ControlPlaneProcess, token: String) -> Self {
        Api {
            channel: cp.channel().await,
            token,
        }
    }

    fn req<T>(&self, message: T) -> tonic::Request<T> {
        authed(message, &self.token)
    }

    pub fn providers(&self) -> OAuthProviderServiceClient<Channel> {
        OAuthProviderServiceClient::new(self.channel.clone())
    }

    pub fn servers(&self) -> McpServerServiceClient<Channel> {
        McpServerServiceClient::new(self.channel.clone())
    }

    pub fn secrets(&self) -> SecretServiceClient<Channel> {
        SecretServiceClient::new(self.channel.clone())
    }

    pub async fn create_secret(&self, name: &str, value: &str) -> Result<Secret, Status> {
        let request = CreateSecretRequest {
            secret: Some(Secret {
                name: name.into(),
                ..Default::default()
            }),
            value: value.into(),
            validate_only: false,
        };
        let response = self.secrets().create_secret(self.req(request)).await?;
        Ok(response.into_inner().secret.unwrap())
    }

    pub async fn create_provider(&self, provider: OAuthProvider) -> Result<OAuthProvider, Status> {
        let request = CreateOAuthProviderRequest {
            oauth_provider: Some(provider),
            validate_only: false,
        };
        let response = self
            .providers()
            .create_o_auth_provider(self.req(request))
            .await?;
        Ok(response.into_inner().oauth_provider.unwrap())
    }

    pub async fn get_provider(&self, name: &str) -> Result<OAuthProvider, Status> {
        let request = GetOAuthProviderRequest { name: name.into() };
        let response = self
            .providers()
            .get_o_auth_provider(self.req(request))
            .await?;
        Ok(response.into_inner().oauth_provider.unwrap())
    }

    pub async fn update_provider(
        &self,
        patch: OAuthProvider,
        paths: &[&str],
    ) -> Result<OAuthProvider, Status> {
        let request = UpdateOAuthProviderRequest {
            oauth_provider: Some(patch),
            update_mask: Some(mask(paths)),
            validate_only: false,
        };
        let response = self
            .providers()
            .update_o_auth_provider(self.req(request))
            .await?;
        Ok(response.into_inner().oauth_provider.unwrap())
    }

    pub async fn delete_provider(&self, name: &str, etag: &str) -> Result<(), Status> {
        let request = DeleteOAuthProviderRequest {
            name: name.into(),
            etag: etag.into(),
        };
        self.providers()
            .delete_o_auth_provider(self.req(request))
            .await?;
        Ok(())
    }

    /// A secret for the client secret, then a confidential provider that uses it.
    pub async fn setup_provider(&self, name: &str) -> OAuthProvider {
        let secret_ref = format!("{}_CLIENT_SECRET", name.to_uppercase().replace('-', "_"));
        self.create_secret(&secret_ref, &secret_value())
            .await
            .unwrap();
        self.create_provider(provider(name, &secret_ref))
            .await
            .unwrap()
    }

    pub async fn create_server(&self, server: McpServer) -> Result<McpServer, Status> {
        self.create_server_with(server, false).await
    }

    pub async fn create_server_with(
        &self,
        server: McpServer,
        validate_only: bool,
    ) -> Result<McpServer, Status> {
        let request = CreateMcpServerRequest {
            mcp_server: Some(server),
            validate_only,
        };
        let response = self.servers().create_mcp_server(self.req(request)).await?;
        Ok(response.into_inner().mcp_server.unwrap())
    }

    pub async fn get_server(&self, name: &str) -> Result<McpServer, Status> {
        let request = GetMcpServerRequest { name: name.into() };
        let response = self.servers().get_mcp_server(self.req(request)).await?;
        Ok(response.into_inner().mcp_server.unwrap())
    }

    pub async fn list_servers(
        &self,
        request: ListMcpServersRequest,
    ) -> Result<ListMcpServersResponse, Status> {
        let response = self.servers().list_mcp_servers(self.req(request)).await?;
        Ok(response.into_inner())
    }

    pub async fn update_server(
        &self,
        patch: McpServer,
        paths: &[&str],
        validate_only: bool,
    ) -> Result<McpServer, Status> {
        let request = UpdateMcpServerRequest {
            mcp_server: Some(patch),
            update_mask: Some(mask(paths)),
            validate_only,
        };
        let response = self.servers().update_mcp_server(self.req(request)).await?;
        Ok(response.into_inner().mcp_server.unwrap())
    }

    pub async fn delete_server(&self, name: &str, etag: &str) -> Result<(), Status> {
        let request = DeleteMcpServerRequest {
            name: name.into(),
            etag: etag.into(),
        };
        self.servers().delete_mcp_server(self.req(request)).await?;
        Ok(())
    }
}

pub fn mask(paths: &[&str]) -> prost_types::FieldMask {
    prost_types::FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    }
}

/// A confidential browser-consent provider with https endpoints.
pub fn provider(name: &str, secret_ref: &str) -> OAuthProvider {
    let base = format!("https://{name}.idp.example.com");
    OAuthProvider {
        name: name.into(),
        display_name: format!("{name} identity"),
        authorize_url: format!("{base}/oauth/authorize"),
        token_url: format!("{base}/oauth/token"),
        revocation_url: format!("{base}/oauth/revoke"),
        scopes: vec!["read".into(), "write".into(), "admin".into()],
        client_id: format!("{name}-client"),
        client_secret_ref: secret_ref.into(),
        token_auth_method: TokenAuthMethod::ClientSecretPost as i32,
        grant_types: vec![GrantType::BrowserConsent as i32],
        require_pkce: true,
        enabled: true,
        issuer: base,
        ..Default::default()
    }
}

pub fn user_oauth(provider: &str, scopes: &[&str], injection: Option<TokenInjection>) -> Auth {
    Auth::UserOauth(UserOAuthAuth {
        provider_name: provider.into(),
        required_scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        token_injection: injection,
    })
}

pub fn remote(name: &str, url: &str, auth: Auth) -> McpServer {
    McpServer {
        name: name.into(),
        description: format!("{name} tools"),
        enabled: true,
        source: Some(Source::Remote(RemoteMcp {
            url: url.into(),
            transport: Transport::StreamableHttp as i32,
        })),
        auth: Some(auth),
        ..Default::default()
    }
}

pub fn managed(name: &str, managed_type: ManagedType, auth: Auth) -> McpServer {
    McpServer {
        name: name.into(),
        description: format!("managed {name}"),
        enabled: true,
        source: Some(Source::Managed(ManagedMcp {
            r#type: managed_type as i32,
        })),
        auth: Some(auth),
        ..Default::default()
    }
}

pub fn no_auth() -> Auth {
    Auth::None(NoAuth {})
}

/// The server as an admin wrote it: output-only fields cleared.
pub fn spec(server: &McpServer) -> McpServer {
    McpServer {
        create_time: None,
        update_time: None,
        etag: String::new(),
        ..server.clone()
    }
}

pub fn provider_spec(provider: &OAuthProvider) -> OAuthProvider {
    OAuthProvider {
        create_time: None,
        update_time: None,
        etag: String::new(),
        ..provider.clone()
    }
}

/// Unwraps an error, checks its code and `ErrorInfo` reason, and hands it back.
#[track_caller]
pub fn expect_error<T: std::fmt::Debug>(
    result: Result<T, Status>,
    code: Code,
    reason: &str,
) -> Status {
    let status = result.expect_err("the call should fail");
    assert_eq!(status.code(), code, "{status:?}");
    let info = error_info(&status);
    assert_eq!(info.reason, reason, "{status:?}");
    assert_eq!(info.domain, "adp.v1");
    status
}

#[track_caller]
pub fn error_info(status: &Status) -> ErrorInfo {
    status
        .get_error_details()
        .error_info()
        .cloned()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"))
}

/// The BadRequest field violation on `field`.
#[track_caller]
pub fn violation(status: &Status, field: &str) -> FieldViolation {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let details = status.get_error_details();
    let bad_request = details
        .bad_request()
        .unwrap_or_else(|| panic!("no BadRequest in {status:?}"));
    bad_request
        .field_violations
        .iter()
        .find(|v| v.field == field)
        .cloned()
        .unwrap_or_else(|| panic!("no violation on {field}: {bad_request:?}"))
}

/// Checks an INVALID_ARGUMENT names `field` with `rule` (and `text`) in its description.
#[track_caller]
pub fn expect_violation<T: std::fmt::Debug>(
    result: Result<T, Status>,
    field: &str,
    rule: &str,
    text: &str,
) {
    let status = result.expect_err("the call should be rejected");
    let found = violation(&status, field);
    assert!(found.description.contains(rule), "{found:?}");
    assert!(found.description.contains(text), "{found:?}");
}

/// The process log up to now, read until a line logged after this call arrives,
/// so nothing the scenario caused can still be in the pipe.
pub async fn flushed_log(cp: &mut ControlPlaneProcess) -> Vec<String> {
    let sentinel = format!("log-sentinel-{}", uuid::Uuid::new_v4().simple());
    // a denied call logs "permission denied" with the caller's subject
    let api = Api::with_token(cp, cp.token(&sentinel, &[])).await;
    assert!(api.get_server("anything").await.is_err());
    let mut lines = Vec::new();
    adp_e2e::assert_eventually!(
        Duration::from_secs(5),
        {
            lines.extend(cp.drain_log());
            lines.iter().any(|line| line.contains(&sentinel))
        },
        "the sentinel reaching the log; got {lines:#?}"
    );
    lines
}

pub async fn assert_no_secret_in_log(cp: &mut ControlPlaneProcess) {
    let lines = flushed_log(cp).await;
    for line in &lines {
        assert!(!line.contains(SECRET_MARKER), "secret value logged: {line}");
    }
}

/// A well-formed JWT with every permission, signed with a key no control plane knows.
pub fn foreign_token() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "iss": adp_e2e::ISSUER, "sub": "intruder", "iat": now, "exp": now + 3600,
        "permissions": ["*"],
    });
    adp_core::identity::mint_hs256(b"not-the-control-plane-secret", &claims).unwrap()
}
