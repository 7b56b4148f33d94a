//! Create, read, update and delete of each admin resource (providers, secrets, servers),
//! run against each storage backend by the same macro as the other scenarios.

use adp_api::v1::mcp_server::{Auth, Source};
use adp_api::v1::*;
use adp_e2e::{ControlPlaneProcess, authed};
use tonic::Code;

use super::support::*;

pub async fn provider_crud(cp: &ControlPlaneProcess) {
    let api = Api::admin(cp).await;
    api.create_secret("GITHUB_CLIENT_SECRET", &secret_value())
        .await
        .unwrap();
    let wanted = provider("github", "GITHUB_CLIENT_SECRET");

    let created = api.create_provider(wanted.clone()).await.unwrap();
    assert_eq!(provider_spec(&created), wanted);
    assert_eq!(created.etag, "\"v1\"");
    assert!(created.create_time.is_some() && created.update_time.is_some());
    assert_eq!(api.get_provider("github").await.unwrap(), created);
    let again = api.create_provider(wanted.clone()).await;
    expect_error(again, Code::AlreadyExists, "ALREADY_EXISTS");

    // plain http endpoints are refused by default
    let insecure = OAuthProvider {
        name: "plain".into(),
        token_url: "http://idp.example.com/token".into(),
        ..wanted.clone()
    };
    expect_violation(
        api.create_provider(insecure).await,
        "oauth_provider.token_url",
        "oauth_provider.endpoint_requires_https",
        "",
    );
    // the client secret must exist
    let dangling = provider("gitlab", "NO_SUCH_SECRET");
    let status = expect_error(
        api.create_provider(dangling).await,
        Code::FailedPrecondition,
        "SECRET_NOT_FOUND",
    );
    assert_eq!(error_info(&status).metadata["secretName"], "NO_SUCH_SECRET");

    // a public client needs no secret, and optional endpoints may stay empty
    let public = OAuthProvider {
        name: "public".into(),
        client_secret_ref: String::new(),
        token_auth_method: TokenAuthMethod::None as i32,
        revocation_url: String::new(),
        ..wanted.clone()
    };
    let public = api.create_provider(public).await.unwrap();
    let confidential = OAuthProvider {
        token_auth_method: TokenAuthMethod::ClientSecretBasic as i32,
        ..public.clone()
    };
    expect_violation(
        api.update_provider(confidential, &["token_auth_method"])
            .await,
        "oauth_provider.client_secret_ref",
        "oauth_provider.client_secret_required",
        "client_secret_ref is required",
    );
    api.delete_provider("public", &public.etag).await.unwrap();

    let listed = api
        .providers()
        .list_o_auth_providers(authed(ListOAuthProvidersRequest::default(), &api.token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_size, 1);
    assert_eq!(listed.oauth_providers, vec![created.clone()]);
    // the exact URL is checked by callback_url_names_the_bound_port
    assert!(
        listed.callback_url.ends_with("/oauth/v1/callback"),
        "{listed:?}"
    );

    // only the masked field changes, even though the patch carries another token_url
    let patch = OAuthProvider {
        name: "github".into(),
        display_name: "GitHub Enterprise".into(),
        token_url: "https://elsewhere.example.com/token".into(),
        etag: created.etag.clone(),
        ..Default::default()
    };
    let updated = api.update_provider(patch, &["display_name"]).await.unwrap();
    assert_eq!(updated.display_name, "GitHub Enterprise");
    assert_eq!(updated.token_url, wanted.token_url);
    assert_eq!(updated.client_secret_ref, "GITHUB_CLIENT_SECRET");
    assert_eq!(updated.etag, "\"v2\"");
    assert_eq!(updated.create_time, created.create_time);
    assert_eq!(api.get_provider("github").await.unwrap(), updated);

    api.delete_provider("github", &updated.etag).await.unwrap();
    let gone = api.get_provider("github").await;
    expect_error(gone, Code::NotFound, "NOT_FOUND");
}

pub async fn secret_crud(cp: &ControlPlaneProcess) {
    let api = Api::admin(cp).await;
    let (first, second) = (secret_value(), secret_value());
    let mut secrets = api.secrets();
    macro_rules! req {
        ($message:expr) => {
            authed($message, &api.token)
        };
    }
    // every response, success or error, Debug-formatted
    let mut seen: Vec<String> = Vec::new();

    let secret = |name: &str, etag: &str| Secret {
        name: name.into(),
        etag: etag.into(),
        ..Default::default()
    };
    let create = |value: &str, validate_only| CreateSecretRequest {
        secret: Some(secret("SLACK_SIGNING_KEY", "")),
        value: value.into(),
        validate_only,
    };
    let preview = secrets.create_secret(req!(create(&first, true))).await;
    seen.push(format!("{preview:?}"));
    let missing = secrets
        .get_secret(req!(GetSecretRequest {
            name: "SLACK_SIGNING_KEY".into(),
        }))
        .await;
    seen.push(format!("{missing:?}"));
    expect_error(missing, Code::NotFound, "NOT_FOUND");

    let created = secrets.create_secret(req!(create(&first, false))).await;
    seen.push(format!("{created:?}"));
    let created = created.unwrap().into_inner().secret.unwrap();
    assert_eq!(created.name, "SLACK_SIGNING_KEY");
    assert_eq!(created.etag, "\"v1\"");
    let duplicate = secrets.create_secret(req!(create(&second, false))).await;
    seen.push(format!("{duplicate:?}"));
    expect_error(duplicate, Code::AlreadyExists, "ALREADY_EXISTS");

    let got = secrets
        .get_secret(req!(GetSecretRequest {
            name: "SLACK_SIGNING_KEY".into(),
        }))
        .await;
    seen.push(format!("{got:?}"));
    assert_eq!(got.unwrap().into_inner().secret.unwrap(), created);
    let listed = secrets
        .list_secrets(req!(ListSecretsRequest {
            name_contains: "slack".into(),
            ..Default::default()
        }))
        .await;
    seen.push(format!("{listed:?}"));
    let listed = listed.unwrap().into_inner();
    assert_eq!(
        (listed.total_size, listed.secrets),
        (1, vec![created.clone()])
    );

    let update = |etag: &str, value: &str| UpdateSecretRequest {
        secret: Some(secret("SLACK_SIGNING_KEY", etag)),
        value: value.into(),
        validate_only: false,
    };
    let updated = secrets
        .update_secret(req!(update(&created.etag, &second)))
        .await;
    seen.push(format!("{updated:?}"));
    let updated = updated.unwrap().into_inner().secret.unwrap();
    assert_eq!(updated.etag, "\"v2\"");
    assert_eq!(updated.create_time, created.create_time);
    let stale = secrets
        .update_secret(req!(update(&created.etag, &first)))
        .await;
    seen.push(format!("{stale:?}"));
    expect_error(stale, Code::Aborted, "ETAG_MISMATCH");

    // a provider using the secret keeps it from being deleted
    api.create_provider(provider("slack", "SLACK_SIGNING_KEY"))
        .await
        .unwrap();
    let delete = |etag: &str| DeleteSecretRequest {
        name: "SLACK_SIGNING_KEY".into(),
        etag: etag.into(),
    };
    let in_use = secrets.delete_secret(req!(delete(""))).await;
    seen.push(format!("{in_use:?}"));
    let status = expect_error(in_use, Code::FailedPrecondition, "RESOURCE_IN_USE");
    assert!(
        status.message().contains("oauth provider slack"),
        "{status:?}"
    );
    api.delete_provider("slack", "").await.unwrap();

    let stale = secrets.delete_secret(req!(delete(&created.etag))).await;
    seen.push(format!("{stale:?}"));
    expect_error(stale, Code::Aborted, "ETAG_MISMATCH");
    let deleted = secrets.delete_secret(req!(delete(&updated.etag))).await;
    seen.push(format!("{deleted:?}"));
    deleted.unwrap();
    let gone = secrets
        .get_secret(req!(GetSecretRequest {
            name: "SLACK_SIGNING_KEY".into(),
        }))
        .await;
    seen.push(format!("{gone:?}"));
    expect_error(gone, Code::NotFound, "NOT_FOUND");

    for response in &seen {
        assert!(!response.contains(&first) && !response.contains(&second));
        assert!(!response.contains(SECRET_MARKER), "{response}");
    }
}

pub async fn server_crud(cp: &ControlPlaneProcess) {
    let api = Api::admin(cp).await;
    api.setup_provider("acme").await;

    // custom injection with an explicitly empty prefix: the bare token
    let bare = TokenInjection {
        header_name: "X-Acme-Token".into(),
        header_prefix: Some(String::new()),
    };
    let mut docs = remote(
        "acme-docs",
        "https://mcp.acme.example/mcp",
        user_oauth("acme", &["read"], Some(bare.clone())),
    );
    if let Some(Source::Remote(remote)) = &mut docs.source {
        remote.transport = Transport::Sse as i32;
    }
    let created = api.create_server(docs.clone()).await.unwrap();
    assert_eq!(spec(&created), docs);
    assert_eq!(created.etag, "\"v1\"");
    assert!(created.create_time.is_some());
    let fetched = api.get_server("acme-docs").await.unwrap();
    assert_eq!(fetched, created);
    let Some(Auth::UserOauth(auth)) = &fetched.auth else {
        panic!("{fetched:?}")
    };
    assert_eq!(
        auth.token_injection.as_ref().unwrap().header_prefix,
        Some(String::new())
    );
    let duplicate = api.create_server(docs.clone()).await;
    expect_error(duplicate, Code::AlreadyExists, "ALREADY_EXISTS");

    // managed Slack with user-delegated OAuth and the default injection
    let slack = managed(
        "slack",
        ManagedType::Slack,
        user_oauth("acme", &["read", "write"], None),
    );
    let slack_created = api.create_server(slack).await.unwrap();
    let Some(Auth::UserOauth(auth)) = &slack_created.auth else {
        panic!("{slack_created:?}")
    };
    assert_eq!(auth.required_scopes, ["read", "write"]);
    let injection = auth.token_injection.clone().unwrap_or_default();
    assert_eq!(injection.header_prefix, None, "unset stays unset");
    assert_eq!(api.get_server("slack").await.unwrap(), slack_created);

    // update only the required scopes; the injection survives untouched
    let patch = McpServer {
        name: "acme-docs".into(),
        auth: Some(user_oauth("acme", &["read", "write"], None)),
        etag: created.etag.clone(),
        ..Default::default()
    };
    let updated = api
        .update_server(patch, &["user_oauth.required_scopes"], false)
        .await
        .unwrap();
    let Some(Auth::UserOauth(auth)) = &updated.auth else {
        panic!("{updated:?}")
    };
    assert_eq!(auth.required_scopes, ["read", "write"]);
    assert_eq!(auth.token_injection, Some(bare));
    assert_eq!(updated.source, docs.source);
    assert_eq!(updated.etag, "\"v2\"");
    assert_eq!(updated.create_time, created.create_time);
    assert_eq!(api.get_server("acme-docs").await.unwrap(), updated);

    let listed = api.list_servers(Default::default()).await.unwrap();
    assert_eq!(listed.mcp_servers, vec![updated.clone(), slack_created]);
    assert_eq!(listed.next_page_token, "");

    api.delete_server("acme-docs", &updated.etag).await.unwrap();
    api.delete_server("slack", "").await.unwrap();
    let gone = api.get_server("acme-docs").await;
    let status = expect_error(gone, Code::NotFound, "NOT_FOUND");
    assert_eq!(error_info(&status).metadata["name"], "acme-docs");
    let missing = api.delete_server("acme-docs", "").await;
    expect_error(missing, Code::NotFound, "NOT_FOUND");
    assert_eq!(
        api.list_servers(Default::default())
            .await
            .unwrap()
            .total_size,
        0
    );
}
