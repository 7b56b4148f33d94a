//! Scenarios that run unchanged against each storage backend.

use std::collections::HashSet;

use adp_api::v1::mcp_server::Source;
use adp_api::v1::*;
use adp_e2e::ControlPlaneProcess;
use tonic::Code;

use super::support::*;

// scenarios that grew a file of their own, run by the same macro
pub use super::crud::{provider_crud, secret_crud, server_crud};
pub use super::secret_rights::secret_references_need_secret_attach;

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
