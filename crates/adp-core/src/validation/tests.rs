use adp_api::v1 as pb;
use adp_api::v1::mcp_server::{Auth, Source};

use super::*;
use crate::catalog::CATALOG;

fn user_oauth() -> Auth {
    Auth::UserOauth(pb::UserOAuthAuth {
        provider_name: "github".into(),
        required_scopes: vec!["repo".into()],
        token_injection: None,
    })
}

fn remote(url: &str) -> Source {
    Source::Remote(pb::RemoteMcp {
        url: url.into(),
        transport: 0,
    })
}

fn server(source: Source, auth: Auth) -> pb::McpServer {
    pb::McpServer {
        name: "tickets".into(),
        source: Some(source),
        auth: Some(auth),
        ..Default::default()
    }
}

fn violations(result: Result<(), ApiError>) -> Vec<FieldViolation> {
    result.err().map(|e| e.violations).unwrap_or_default()
}

#[test]
fn user_oauth_over_http_fails_with_the_https_rule_on_the_url() {
    let request = pb::CreateMcpServerRequest {
        mcp_server: Some(server(remote("http://mcp.example.com/mcp"), user_oauth())),
        validate_only: false,
    };
    let found = violations(RequestValidator::new().validate(&request));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].rule_id, "remote_mcp.user_oauth_requires_https");
    assert_eq!(found[0].field, "mcp_server.remote.url");
    assert_eq!(found[0].message, "HTTPS required");
}

#[test]
fn https_user_oauth_and_http_without_user_oauth_pass() {
    let validator = RequestValidator::new();
    assert!(
        validator
            .validate(&server(remote("https://mcp.example.com/mcp"), user_oauth()))
            .is_ok()
    );
    assert!(
        validator
            .validate(&server(
                remote("http://mcp.example.com/mcp"),
                Auth::None(pb::NoAuth {})
            ))
            .is_ok()
    );
}

#[test]
fn the_cel_rule_for_managed_types_agrees_with_the_catalog() {
    let validator = RequestValidator::new();
    for entry in CATALOG {
        let managed = Source::Managed(pb::ManagedMcp {
            r#type: entry.managed_type as i32,
        });
        let found = violations(validator.validate_as("mcp_server", &server(managed, user_oauth())));
        let rejected = found
            .iter()
            .any(|v| v.rule_id == "managed_mcp.user_oauth_unsupported");
        assert_eq!(
            rejected, !entry.supports_user_oauth,
            "{:?}: {found:?}",
            entry.managed_type
        );
        if rejected {
            assert_eq!(found[0].field, "mcp_server.managed.type");
        }
    }
}

#[test]
fn bad_names_headers_and_scopes_name_their_field() {
    let mut bad = server(
        remote("https://mcp.example.com/mcp"),
        Auth::UserOauth(pb::UserOAuthAuth {
            provider_name: "github".into(),
            required_scopes: vec!["has space".into()],
            token_injection: Some(pb::TokenInjection {
                header_name: "Bad Header".into(),
                header_prefix: None,
            }),
        }),
    );
    bad.name = "Not_Valid".into();
    let found = violations(RequestValidator::new().validate(&bad));
    let fields: Vec<&str> = found.iter().map(|v| v.field.as_str()).collect();
    assert!(fields.contains(&"name"), "{fields:?}");
    assert!(
        fields
            .iter()
            .any(|f| f.starts_with("user_oauth.required_scopes")),
        "{fields:?}"
    );
    assert!(
        fields.contains(&"user_oauth.token_injection.header_name"),
        "{fields:?}"
    );
}

#[test]
fn provider_rules_fire_with_their_ids() {
    let provider = pb::OAuthProvider {
        name: "github".into(),
        token_url: "https://github.com/login/oauth/access_token".into(),
        grant_types: vec![pb::GrantType::DeviceCode as i32],
        ..Default::default()
    };
    let found = violations(RequestValidator::new().validate(&provider));
    let rules: Vec<&str> = found.iter().map(|v| v.rule_id.as_str()).collect();
    assert!(
        rules.contains(&"oauth_provider.device_authorization_url_required"),
        "{rules:?}"
    );
    assert!(
        rules.contains(&"oauth_provider.client_secret_required"),
        "{rules:?}"
    );
    assert!(
        !rules.contains(&"oauth_provider.authorize_url_required"),
        "{rules:?}"
    );
}

#[test]
fn a_minimal_browser_consent_provider_is_valid() {
    let provider = pb::OAuthProvider {
        name: "github".into(),
        authorize_url: "https://github.com/login/oauth/authorize".into(),
        token_url: "https://github.com/login/oauth/access_token".into(),
        client_secret_ref: "GITHUB_CLIENT_SECRET".into(),
        ..Default::default()
    };
    let found = violations(RequestValidator::new().validate(&provider));
    assert!(found.is_empty(), "{found:?}");
}
