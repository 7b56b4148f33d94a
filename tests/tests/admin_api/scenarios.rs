//! Scenarios that run unchanged against each storage backend.

use std::collections::HashSet;

use adp_api::v1::mcp_server::{Auth, Source};
use adp_api::v1::*;
use adp_e2e::{ControlPlaneProcess, authed};
use tonic::Code;

use super::support::*;

// scenarios that grew a file of their own, run by the same macro
pub use super::secret_rights::secret_references_need_secret_attach;

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

pub async fn pagination(cp: &ControlPlaneProcess) {
    let api = Api::admin(cp).await;
    let created_order = [
        "gamma-docs",
        "alpha-search",
        "echo-files",
        "bravo-git",
        "delta-wiki",
        "foxtrot-git",
        "charlie-crm",
    ];
    for name in created_order {
        let url = format!("https://{name}.example.com/mcp");
        api.create_server(remote(name, &url, no_auth()))
            .await
            .unwrap();
    }
    let collect = async |name_contains: &str, order_by: &str| {
        let (mut names, mut totals) = (Vec::new(), HashSet::new());
        let mut page_token = String::new();
        loop {
            let page = api
                .list_servers(ListMcpServersRequest {
                    page_size: 3,
                    page_token,
                    name_contains: name_contains.into(),
                    order_by: order_by.into(),
                })
                .await
                .unwrap();
            assert!(page.mcp_servers.len() <= 3);
            names.push(
                page.mcp_servers
                    .iter()
                    .map(|s| s.name.clone())
                    .collect::<Vec<_>>(),
            );
            totals.insert(page.total_size);
            if page.next_page_token.is_empty() {
                return (names, totals.into_iter().collect::<Vec<_>>());
            }
            page_token = page.next_page_token;
        }
    };

    let (pages, totals) = collect("", "").await;
    assert_eq!(totals, [7], "every page reports the full total");
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 1]);
    let names: Vec<String> = pages.concat();
    let mut sorted: Vec<String> = created_order.iter().map(|s| s.to_string()).collect();
    sorted.sort();
    assert_eq!(names, sorted, "default order is by name");
    assert_eq!(
        names.iter().collect::<HashSet<_>>().len(),
        7,
        "no duplicates"
    );

    let (pages, totals) = collect("GIT", "").await;
    assert_eq!(pages.concat(), ["bravo-git", "foxtrot-git"]);
    assert_eq!(totals, [2]);

    let (pages, _) = collect("", "create_time desc").await;
    let newest_first: Vec<String> = created_order.iter().rev().map(|s| s.to_string()).collect();
    assert_eq!(pages.concat(), newest_first);

    for order_by in ["secret desc", "name sideways", "name, name"] {
        let bad = api
            .list_servers(ListMcpServersRequest {
                order_by: order_by.into(),
                ..Default::default()
            })
            .await;
        expect_violation(bad, "order_by", "list.order_by", "");
    }
    // a page token only continues the query that issued it
    let first = api
        .list_servers(ListMcpServersRequest {
            page_size: 3,
            ..Default::default()
        })
        .await
        .unwrap();
    let other_query = api
        .list_servers(ListMcpServersRequest {
            page_size: 3,
            page_token: first.next_page_token,
            name_contains: "git".into(),
            ..Default::default()
        })
        .await;
    expect_violation(other_query, "page_token", "list.page_token", "");
}

pub async fn etag_conflicts(cp: &ControlPlaneProcess) {
    let api = Api::admin(cp).await;
    let v1 = api
        .create_server(remote("wiki", "https://wiki.example.com/mcp", no_auth()))
        .await
        .unwrap();
    let patch = |description: &str, etag: &str| McpServer {
        name: "wiki".into(),
        description: description.into(),
        etag: etag.into(),
        ..Default::default()
    };
    let v2 = api
        .update_server(patch("first", &v1.etag), &["description"], false)
        .await
        .unwrap();
    assert_eq!(v2.etag, "\"v2\"");

    let stale = api
        .update_server(patch("second", &v1.etag), &["description"], false)
        .await;
    let status = expect_error(stale, Code::Aborted, "ETAG_MISMATCH");
    assert_eq!(error_info(&status).metadata["name"], "wiki");
    let stale = api.delete_server("wiki", &v1.etag).await;
    expect_error(stale, Code::Aborted, "ETAG_MISMATCH");
    let garbage = api.delete_server("wiki", "not-an-etag").await;
    expect_violation(garbage, "etag", "etag.format", "");
    assert_eq!(api.get_server("wiki").await.unwrap(), v2, "nothing changed");

    // an update without an etag is unconditional
    let v3 = api
        .update_server(patch("third", ""), &["description"], false)
        .await
        .unwrap();
    assert_eq!(v3.etag, "\"v3\"");
    api.delete_server("wiki", &v3.etag).await.unwrap();
}

pub async fn rule_ids(cp: &ControlPlaneProcess) {
    let api = Api::admin(cp).await;
    api.setup_provider("acme").await;
    let insecure = remote(
        "insecure",
        "http://mcp.acme.example/mcp",
        user_oauth("acme", &["read"], None),
    );
    let https_rule = (
        "mcp_server.remote.url",
        "remote_mcp.user_oauth_requires_https",
    );
    for validate_only in [false, true] {
        let rejected = api
            .create_server_with(insecure.clone(), validate_only)
            .await;
        expect_violation(rejected, https_rule.0, https_rule.1, "HTTPS required");
    }
    expect_error(
        api.get_server("insecure").await,
        Code::NotFound,
        "NOT_FOUND",
    );

    // managed SQL cannot use user-delegated OAuth
    let sql = managed("warehouse", ManagedType::Sql, user_oauth("acme", &[], None));
    expect_violation(
        api.create_server(sql).await,
        "mcp_server.managed.type",
        "managed_mcp.user_oauth_unsupported",
        "",
    );

    // a valid validate_only create answers with the server and stores nothing
    let valid = remote(
        "secure",
        "https://mcp.acme.example/mcp",
        user_oauth("acme", &["read"], None),
    );
    let preview = api.create_server_with(valid.clone(), true).await.unwrap();
    assert_eq!(spec(&preview).name, "secure");
    expect_error(api.get_server("secure").await, Code::NotFound, "NOT_FOUND");

    // the same rule guards updates, validate_only or not
    let stored = api.create_server(valid).await.unwrap();
    let patch = McpServer {
        name: "secure".into(),
        source: Some(Source::Remote(RemoteMcp {
            url: "http://mcp.acme.example/mcp".into(),
            transport: 0,
        })),
        ..Default::default()
    };
    for validate_only in [true, false] {
        let rejected = api
            .update_server(patch.clone(), &["remote.url"], validate_only)
            .await;
        expect_violation(rejected, https_rule.0, https_rule.1, "HTTPS required");
    }
    assert_eq!(api.get_server("secure").await.unwrap(), stored);

    // scopes the provider does not offer
    let greedy = remote(
        "greedy",
        "https://mcp.acme.example/mcp",
        user_oauth("acme", &["read", "root"], None),
    );
    expect_violation(
        api.create_server(greedy).await,
        "mcp_server.user_oauth.required_scopes",
        "oauth_provider.scope_not_offered",
        "root",
    );
}

pub async fn provider_not_found(cp: &ControlPlaneProcess) {
    let api = Api::admin(cp).await;
    let orphan = remote(
        "orphan",
        "https://mcp.example.com/mcp",
        user_oauth("nobody", &["read"], None),
    );
    for validate_only in [false, true] {
        let result = api.create_server_with(orphan.clone(), validate_only).await;
        let status = expect_error(result, Code::FailedPrecondition, "OAUTH_PROVIDER_NOT_FOUND");
        assert!(
            status.message().contains("OAuth provider not found"),
            "{status:?}"
        );
        assert_eq!(error_info(&status).metadata["providerName"], "nobody");
    }
    // rebinding an existing server to a missing provider fails the same way
    api.create_server(remote("orphan", "https://mcp.example.com/mcp", no_auth()))
        .await
        .unwrap();
    let patch = McpServer {
        name: "orphan".into(),
        auth: Some(user_oauth("nobody", &["read"], None)),
        ..Default::default()
    };
    let result = api.update_server(patch, &["user_oauth"], false).await;
    expect_error(result, Code::FailedPrecondition, "OAUTH_PROVIDER_NOT_FOUND");
    expect_error(api.get_server("ghost").await, Code::NotFound, "NOT_FOUND");
    expect_error(api.get_provider("ghost").await, Code::NotFound, "NOT_FOUND");
}

pub async fn provider_in_use(cp: &ControlPlaneProcess) {
    let api = Api::admin(cp).await;
    let acme = api.setup_provider("acme").await;
    let server = remote(
        "acme-tickets",
        "https://tickets.acme.example/mcp",
        user_oauth("acme", &["read"], None),
    );
    let server = api.create_server(server).await.unwrap();

    let blocked = api.delete_provider("acme", &acme.etag).await;
    let status = expect_error(blocked, Code::FailedPrecondition, "RESOURCE_IN_USE");
    assert!(status.message().contains("acme-tickets"), "{status:?}");
    assert_eq!(error_info(&status).metadata["referencedBy"], "acme-tickets");
    assert_eq!(api.get_provider("acme").await.unwrap(), acme);

    api.delete_server("acme-tickets", &server.etag)
        .await
        .unwrap();
    api.delete_provider("acme", &acme.etag).await.unwrap();
}

pub async fn permissions(cp: &ControlPlaneProcess) {
    let admin = Api::admin(cp).await;
    admin.setup_provider("acme").await;
    let plain = |name: &str| remote(name, "https://mcp.example.com/mcp", no_auth());
    let bound = |name: &str| {
        let auth = user_oauth("acme", &["read"], None);
        remote(name, "https://mcp.example.com/mcp", auth)
    };

    // no token at all
    let mut servers = admin.servers();
    let request = tonic::Request::new(GetMcpServerRequest { name: "x".into() });
    let anonymous = servers.get_mcp_server(request).await;
    expect_error(anonymous, Code::Unauthenticated, "TOKEN_MISSING");
    // a token this control plane did not sign, and one that is not a JWT
    for token in [foreign_token(), "garbage".to_owned()] {
        let stranger = Api::with_token(cp, token).await;
        let status = stranger.create_server(plain("s")).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        assert!(
            error_info(&status).reason.starts_with("TOKEN_"),
            "{status:?}"
        );
    }

    // authenticated, without the permission the RPC needs
    let reader = Api::with_token(cp, cp.token("reader", &["mcpserver_get"])).await;
    let status = expect_error(
        reader.create_server(plain("s")).await,
        Code::PermissionDenied,
        "PERMISSION_MISSING",
    );
    assert_eq!(
        error_info(&status).metadata["permission"],
        "mcpserver_create"
    );

    // creating is not enough to bind a server to a provider
    let creator = Api::with_token(cp, cp.token("creator", &["mcpserver_create"])).await;
    let status = expect_error(
        creator.create_server(bound("bound")).await,
        Code::PermissionDenied,
        "PERMISSION_MISSING",
    );
    assert_eq!(
        error_info(&status).metadata["permission"],
        "oauthprovider_attach"
    );
    expect_error(admin.get_server("bound").await, Code::NotFound, "NOT_FOUND");
    creator.create_server(plain("unbound")).await.unwrap();

    let attacher = Api::with_token(
        cp,
        cp.token("attacher", &["mcpserver_create", "oauthprovider_attach"]),
    )
    .await;
    attacher.create_server(bound("bound")).await.unwrap();
    assert!(admin.get_server("bound").await.is_ok());

    // `*` grants everything, including the attach check on update
    let patch = McpServer {
        name: "unbound".into(),
        auth: Some(user_oauth("acme", &["read"], None)),
        ..Default::default()
    };
    let updater = Api::with_token(cp, cp.token("updater", &["mcpserver_update"])).await;
    let status = updater
        .update_server(patch.clone(), &["user_oauth"], false)
        .await
        .unwrap_err();
    assert_eq!(
        error_info(&status).metadata["permission"],
        "oauthprovider_attach"
    );
    admin
        .update_server(patch, &["user_oauth"], false)
        .await
        .unwrap();
}
