//! Who may use a write-only secret: naming one in a `*_ref`, or moving where it is
//! sent, needs `secret_attach` on top of the resource's own permission.

use adp_api::v1::mcp_server::{Auth, Source};
use adp_api::v1::*;
use adp_e2e::ControlPlaneProcess;
use tonic::Code;

use super::support::*;

/// Naming a secret, or moving where one is sent, is using it: `secret_attach` is
/// needed on top of the resource's own create or update permission, for servers'
/// static keys and providers' client secrets alike, with `validate_only` too.
pub async fn secret_references_need_secret_attach(cp: &ControlPlaneProcess) {
    let admin = Api::admin(cp).await;
    admin
        .create_secret("TEAM_A_KEY", &secret_value())
        .await
        .unwrap();
    admin
        .create_secret("TEAM_B_CLIENT_SECRET", &secret_value())
        .await
        .unwrap();
    let denied = |status: tonic::Status| {
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
        assert_eq!(error_info(&status).reason, "PERMISSION_MISSING");
        assert_eq!(error_info(&status).metadata["permission"], "secret_attach");
    };
    let static_key = |name: &str, url: &str, key_ref: &str| {
        remote(
            name,
            url,
            Auth::StaticKey(StaticKeyAuth {
                key_ref: key_ref.into(),
                header_name: "X-Api-Key".into(),
            }),
        )
    };

    // a server admin cannot send another team's secret to a URL they control
    let server_admin = Api::with_token(
        cp,
        cp.token(
            "server-admin",
            &["mcpserver_create", "mcpserver_update", "mcpserver_get"],
        ),
    )
    .await;
    let stolen = static_key(
        "exfil",
        "https://attacker.example.com/mcp",
        "TEAM_B_CLIENT_SECRET",
    );
    denied(
        server_admin
            .create_server(stolen.clone())
            .await
            .unwrap_err(),
    );
    denied(
        server_admin
            .create_server_with(stolen, true)
            .await
            .unwrap_err(),
    );
    expect_error(admin.get_server("exfil").await, Code::NotFound, "NOT_FOUND");

    // nor re-point an existing key, nor move a keyed server to another host
    let keyed = admin
        .create_server(static_key(
            "team-a",
            "https://mcp.team-a.example.com/mcp",
            "TEAM_A_KEY",
        ))
        .await
        .unwrap();
    let rekey = McpServer {
        name: "team-a".into(),
        auth: Some(Auth::StaticKey(StaticKeyAuth {
            key_ref: "TEAM_B_CLIENT_SECRET".into(),
            header_name: "X-Api-Key".into(),
        })),
        ..Default::default()
    };
    denied(
        server_admin
            .update_server(rekey, &["static_key"], false)
            .await
            .unwrap_err(),
    );
    let moved = McpServer {
        name: "team-a".into(),
        source: Some(Source::Remote(RemoteMcp {
            url: "https://attacker.example.com/mcp".into(),
            transport: Transport::StreamableHttp as i32,
        })),
        ..Default::default()
    };
    denied(
        server_admin
            .update_server(moved.clone(), &["remote.url"], true)
            .await
            .unwrap_err(),
    );
    assert_eq!(admin.get_server("team-a").await.unwrap(), keyed);
    // what does not touch the key stays theirs to change
    let described = McpServer {
        name: "team-a".into(),
        description: "new words".into(),
        ..Default::default()
    };
    server_admin
        .update_server(described, &["description"], false)
        .await
        .unwrap();
    // with the permission, it works
    let attacher = Api::with_token(
        cp,
        cp.token("attacher", &["mcpserver_update", "secret_attach"]),
    )
    .await;
    attacher
        .update_server(moved, &["remote.url"], false)
        .await
        .unwrap();

    // providers: binding a client secret, or moving where it goes, needs it too
    let provider_admin = Api::with_token(
        cp,
        cp.token(
            "provider-admin",
            &[
                "oauthprovider_create",
                "oauthprovider_update",
                "oauthprovider_get",
            ],
        ),
    )
    .await;
    denied(
        provider_admin
            .create_provider(provider("team-b", "TEAM_B_CLIENT_SECRET"))
            .await
            .unwrap_err(),
    );
    admin
        .create_provider(provider("team-b", "TEAM_B_CLIENT_SECRET"))
        .await
        .unwrap();
    for (field, patch) in [
        (
            "token_url",
            OAuthProvider {
                name: "team-b".into(),
                token_url: "https://attacker.example.com/token".into(),
                ..Default::default()
            },
        ),
        (
            "client_secret_ref",
            OAuthProvider {
                name: "team-b".into(),
                client_secret_ref: "TEAM_A_KEY".into(),
                ..Default::default()
            },
        ),
        (
            "revocation_url",
            OAuthProvider {
                name: "team-b".into(),
                revocation_url: "https://attacker.example.com/revoke".into(),
                ..Default::default()
            },
        ),
        (
            "client_id",
            OAuthProvider {
                name: "team-b".into(),
                client_id: "attacker-client".into(),
                ..Default::default()
            },
        ),
        (
            "issuer",
            OAuthProvider {
                name: "team-b".into(),
                issuer: "https://attacker.example.com".into(),
                ..Default::default()
            },
        ),
    ] {
        let status = provider_admin
            .update_provider(patch, &[field])
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{field}: {status:?}");
        assert_eq!(
            error_info(&status).metadata["permission"],
            "secret_attach",
            "{field}"
        );
    }
    // a provider without a client secret is theirs alone; so is a cosmetic change
    let public = OAuthProvider {
        token_auth_method: TokenAuthMethod::None as i32,
        ..provider("public", "")
    };
    provider_admin.create_provider(public).await.unwrap();
    let renamed = OAuthProvider {
        name: "team-b".into(),
        display_name: "Team B".into(),
        ..Default::default()
    };
    provider_admin
        .update_provider(renamed, &["display_name"])
        .await
        .unwrap();
    let team_b = admin.get_provider("team-b").await.unwrap();
    assert_eq!(
        team_b.token_url,
        "https://team-b.idp.example.com/oauth/token"
    );
    assert_eq!(team_b.client_secret_ref, "TEAM_B_CLIENT_SECRET");
}
