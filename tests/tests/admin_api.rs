//! End-to-end tests of the admin API: the real control plane binary, real gRPC over
//! loopback sockets, SQLite by default and PostgreSQL when ADP_TEST_DATABASE_URL is set.
#![allow(clippy::unwrap_used)]

#[path = "admin_api/crud.rs"]
mod crud;
#[path = "admin_api/scenarios.rs"]
mod scenarios;
#[path = "admin_api/secret_rights.rs"]
mod secret_rights;
#[path = "admin_api/support.rs"]
mod support;

use adp_e2e::ControlPlaneProcess;
use support::*;

/// Runs each scenario on a fresh control plane per backend, then checks that no
/// secret value the scenario sent reached the process log.
macro_rules! on_every_backend {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            use super::*;
            $(
                #[tokio::test]
                async fn $scenario() {
                    let mut cp = ControlPlaneProcess::start().await;
                    scenarios::$scenario(&cp).await;
                    assert_no_secret_in_log(&mut cp).await;
                }
            )*
        }

        mod postgres {
            use super::*;
            $(
                #[tokio::test]
                #[cfg_attr(not(adp_postgres), ignore = "set ADP_TEST_DATABASE_URL to run on PostgreSQL")]
                async fn $scenario() {
                    let url = adp_e2e::pg::fresh_database().await;
                    let mut cp = ControlPlaneProcess::start_with(&[("ADP_DATABASE_URL", &url)]).await;
                    scenarios::$scenario(&cp).await;
                    assert_no_secret_in_log(&mut cp).await;
                }
            )*
        }
    };
}

on_every_backend!(
    provider_crud,
    secret_crud,
    server_crud,
    pagination,
    etag_conflicts,
    rule_ids,
    provider_not_found,
    provider_in_use,
    permissions,
    secret_references_need_secret_attach,
);

/// Replicas share nothing but the database: a write through one is read through the other.
#[tokio::test]
#[cfg_attr(
    not(adp_postgres),
    ignore = "set ADP_TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn postgres_replicas_share_one_database() {
    let url = adp_e2e::pg::fresh_database().await;
    let env = [("ADP_DATABASE_URL", url.as_str())];
    let a = ControlPlaneProcess::start_with(&env).await;
    let b = ControlPlaneProcess::start_with(&env).await;
    let (api_a, api_b) = (Api::admin(&a).await, Api::admin(&b).await);

    let provider = api_a.setup_provider("shared").await;
    assert_eq!(api_b.get_provider("shared").await.unwrap(), provider);
    let server = remote(
        "shared-docs",
        "https://docs.example.com/mcp",
        user_oauth("shared", &["read"], None),
    );
    let created = api_a.create_server(server).await.unwrap();
    assert_eq!(api_b.get_server("shared-docs").await.unwrap(), created);

    // B updates; A sees it, and A's stale etag loses
    let patch = |etag: &str| adp_api::v1::McpServer {
        name: "shared-docs".into(),
        description: "edited on b".into(),
        etag: etag.into(),
        ..Default::default()
    };
    let updated = api_b
        .update_server(patch(&created.etag), &["description"], false)
        .await
        .unwrap();
    assert_eq!(api_a.get_server("shared-docs").await.unwrap(), updated);
    let stale = api_a
        .update_server(patch(&created.etag), &["description"], false)
        .await;
    expect_error(stale, tonic::Code::Aborted, "ETAG_MISMATCH");

    api_b
        .delete_server("shared-docs", &updated.etag)
        .await
        .unwrap();
    let gone = api_a.get_server("shared-docs").await;
    expect_error(gone, tonic::Code::NotFound, "NOT_FOUND");
    assert!(a.stop().await.success());
    assert!(b.stop().await.success());
}

/// The redirect URI admins register must name the port the HTTP listener really got.
#[tokio::test]
async fn callback_url_names_the_bound_port() {
    let cp = ControlPlaneProcess::start_in_process(&[]).await;
    let api = Api::admin(&cp).await;
    let request = adp_e2e::authed(
        adp_api::v1::ListOAuthProvidersRequest::default(),
        &api.token,
    );
    let listed = api.providers().list_o_auth_providers(request).await;
    let callback_url = listed.unwrap().into_inner().callback_url;
    assert_eq!(callback_url, format!("{}/oauth/v1/callback", cp.http_url));
}

#[tokio::test]
async fn reflection_lists_every_service() {
    use tokio_stream::StreamExt;
    let cp = ControlPlaneProcess::start_in_process(&[]).await;
    let expected = [
        "adp.v1.OAuthProviderService",
        "adp.v1.MCPServerService",
        "adp.v1.SecretService",
        "adp.v1.ManagedCatalogService",
        "grpc.health.v1.Health",
    ];

    use tonic_reflection::pb::v1 as r1;
    let request = r1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(r1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut client = r1::server_reflection_client::ServerReflectionClient::new(cp.channel().await);
    let mut stream = client
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    let response = stream.next().await.unwrap().unwrap();
    let Some(r1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        response.message_response
    else {
        panic!("{response:?}")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for service in expected {
        assert!(names.iter().any(|n| n == service), "{service} in {names:?}");
    }

    use tonic_reflection::pb::v1alpha as ra;
    let request = ra::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(ra::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut client = ra::server_reflection_client::ServerReflectionClient::new(cp.channel().await);
    let mut stream = client
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    let response = stream.next().await.unwrap().unwrap();
    let Some(ra::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        response.message_response
    else {
        panic!("{response:?}")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for service in expected {
        assert!(names.iter().any(|n| n == service), "{service} in {names:?}");
    }
}

#[tokio::test]
async fn health_over_grpc_and_http() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let cp = ControlPlaneProcess::start_in_process(&[]).await;
    let mut health = HealthClient::new(cp.channel().await);
    for service in ["", "adp.v1.MCPServerService", "adp.v1.OAuthProviderService"] {
        let response = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(response.status(), ServingStatus::Serving, "{service:?}");
    }

    let response = reqwest::get(format!("{}/healthz", cp.http_url))
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
}

#[tokio::test]
async fn sigterm_shuts_down_cleanly() {
    let cp = ControlPlaneProcess::start().await;
    let api = Api::admin(&cp).await;
    api.create_server(remote(
        "before-stop",
        "https://a.example.com/mcp",
        no_auth(),
    ))
    .await
    .unwrap();
    let status = cp.stop().await;
    assert!(status.success(), "{status:?}");
}

/// JWT settings cannot be weak by accident: with a JWKS the control plane needs an
/// issuer and an audience and an https URL, and says which setting is missing.
#[tokio::test]
async fn weak_jwt_settings_stop_the_control_plane() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[(&str, &str)], &str); 3] = [
        (
            &[("ADP_JWKS_URL", "https://idp.example.com/jwks")],
            "ADP_JWT_ISSUER",
        ),
        (
            &[
                ("ADP_JWKS_URL", "https://idp.example.com/jwks"),
                ("ADP_JWT_ISSUER", "https://idp.example.com"),
            ],
            "ADP_JWT_AUDIENCE",
        ),
        (
            &[
                ("ADP_JWKS_URL", "http://127.0.0.1:9/jwks"),
                ("ADP_JWT_ISSUER", "https://idp.example.com"),
                ("ADP_JWT_AUDIENCE", "adp"),
            ],
            "https",
        ),
    ];
    for (env, named) in cases {
        let output = tokio::process::Command::new(adp_e2e::binary("adp-control-plane"))
            .env_clear()
            .env("ADP_DATA_DIR", dir.path())
            .env("ADP_GRPC_ADDR", "127.0.0.1:0")
            .env("ADP_HTTP_ADDR", "127.0.0.1:0")
            .envs(env.iter().copied())
            .output()
            .await
            .unwrap();
        assert!(!output.status.success(), "{env:?} started");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(said.contains(named), "{env:?}: {said}");
    }
}
