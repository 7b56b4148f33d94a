//! The configuration admins write: providers, servers and secrets round-trip, conflict,
//! refer to each other, and list page by page.

use adp_core::listing::ListQuery;
use adp_core::provider::TokenAuthMethod;
use adp_core::server::{Auth, McpServer, Source, TokenInjection, Transport};
use adp_store::{Store, StoreError};

use super::provider;

fn server(name: &str, auth: Auth) -> McpServer {
    McpServer {
        name: name.into(),
        description: format!("{name} server"),
        enabled: true,
        source: Source::Remote {
            url: "https://mcp.example.com/mcp".into(),
            transport: Transport::StreamableHttp,
        },
        auth,
    }
}

fn user_oauth(provider_name: &str) -> Auth {
    Auth::UserOAuth {
        provider_name: provider_name.into(),
        required_scopes: vec!["repo".into()],
        token_injection: TokenInjection {
            header_name: "X-Token".into(),
            header_prefix: Some(String::new()),
        },
    }
}

fn query(page_size: i32, token: &str, contains: &str, order_by: &str) -> ListQuery {
    ListQuery::parse(
        page_size,
        token,
        contains,
        order_by,
        &["name", "display_name", "create_time"],
    )
    .unwrap()
}

pub async fn crud_round_trips_specs_exactly(store: Store) {
    let created = store
        .providers()
        .create(&provider("github", "GitHub"))
        .await
        .unwrap();
    assert_eq!(created.meta.version, 1);
    let fetched = store.providers().get("github").await.unwrap();
    assert_eq!(fetched, created);

    let stored_server = store
        .servers()
        .create(&server("tickets", user_oauth("github")))
        .await
        .unwrap();
    assert_eq!(store.servers().get("tickets").await.unwrap(), stored_server);

    let mut changed = stored_server.spec.clone();
    changed.description = "changed".into();
    let updated = store
        .servers()
        .update(&changed, &stored_server.meta)
        .await
        .unwrap();
    assert_eq!(updated.meta.version, 2);
    assert_eq!(store.servers().get("tickets").await.unwrap(), updated);

    store.servers().delete("tickets", Some(2)).await.unwrap();
    assert!(matches!(
        store.servers().get("tickets").await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn duplicate_names_are_already_exists(store: Store) {
    store
        .providers()
        .create(&provider("github", "GitHub"))
        .await
        .unwrap();
    let again = store.providers().create(&provider("github", "Other")).await;
    assert!(
        matches!(again, Err(StoreError::AlreadyExists { .. })),
        "{again:?}"
    );
}

pub async fn stale_versions_conflict(store: Store) {
    let first = store
        .providers()
        .create(&provider("github", "GitHub"))
        .await
        .unwrap();
    let mut spec = first.spec.clone();
    spec.display_name = "One".into();
    store.providers().update(&spec, &first.meta).await.unwrap();
    spec.display_name = "Two".into();
    let stale = store.providers().update(&spec, &first.meta).await;
    assert!(
        matches!(stale, Err(StoreError::VersionConflict { .. })),
        "{stale:?}"
    );
    let stale_delete = store.providers().delete("github", Some(1)).await;
    assert!(
        matches!(stale_delete, Err(StoreError::VersionConflict { .. })),
        "{stale_delete:?}"
    );
    assert_eq!(
        store
            .providers()
            .get("github")
            .await
            .unwrap()
            .spec
            .display_name,
        "One"
    );
}

pub async fn servers_need_a_real_provider_and_providers_in_use_cannot_go(store: Store) {
    let missing = store
        .servers()
        .create(&server("tickets", user_oauth("nobody")))
        .await;
    assert!(
        matches!(missing, Err(StoreError::MissingReference)),
        "{missing:?}"
    );

    store
        .providers()
        .create(&provider("github", "GitHub"))
        .await
        .unwrap();
    store
        .servers()
        .create(&server("tickets", user_oauth("github")))
        .await
        .unwrap();
    let in_use = store.providers().delete("github", None).await;
    match in_use {
        Err(StoreError::StillReferenced { referenced_by, .. }) => {
            assert_eq!(referenced_by, ["tickets"])
        }
        other => panic!("expected StillReferenced, got {other:?}"),
    }
    store.servers().delete("tickets", None).await.unwrap();
    store.providers().delete("github", None).await.unwrap();
}

pub async fn secrets_keep_sealed_bytes_and_refuse_delete_while_used(store: Store) {
    store
        .secrets()
        .create("GITHUB_SECRET", vec![1, 2, 3])
        .await
        .unwrap();
    assert_eq!(
        store.secrets().sealed_value("GITHUB_SECRET").await.unwrap(),
        vec![1, 2, 3]
    );
    let meta = store.secrets().get("GITHUB_SECRET").await.unwrap().meta;
    store
        .secrets()
        .update("GITHUB_SECRET", vec![4, 5], &meta)
        .await
        .unwrap();
    assert_eq!(
        store.secrets().sealed_value("GITHUB_SECRET").await.unwrap(),
        vec![4, 5]
    );

    let mut with_secret = provider("github", "GitHub");
    with_secret.client_secret_ref = "GITHUB_SECRET".into();
    with_secret.token_auth_method = TokenAuthMethod::ClientSecretBasic;
    store.providers().create(&with_secret).await.unwrap();
    let in_use = store.secrets().delete("GITHUB_SECRET", None).await;
    assert!(
        matches!(in_use, Err(StoreError::StillReferenced { .. })),
        "{in_use:?}"
    );

    let mut unknown = provider("gitlab", "GitLab");
    unknown.client_secret_ref = "NO_SUCH_SECRET".into();
    assert!(matches!(
        store.providers().create(&unknown).await,
        Err(StoreError::MissingReference)
    ));
}

pub async fn lists_page_filter_order_and_count(store: Store) {
    for (name, display) in [
        ("alpha", "Zed"),
        ("beta", "Yak"),
        ("gamma", "Xen"),
        ("alphabet", "Wax"),
        ("delta", "Vim"),
    ] {
        store
            .providers()
            .create(&provider(name, display))
            .await
            .unwrap();
    }
    let first = query(2, "", "", "display_name desc");
    let page = store.providers().list(&first).await.unwrap();
    assert_eq!(page.total, 5);
    let names: Vec<_> = page.items.iter().map(|p| p.spec.name.as_str()).collect();
    assert_eq!(names, ["alpha", "beta"]);
    let token = first.next_page_token(page.items.len(), page.total);
    let page = store
        .providers()
        .list(&query(2, &token, "", "display_name desc"))
        .await
        .unwrap();
    let names: Vec<_> = page.items.iter().map(|p| p.spec.name.as_str()).collect();
    assert_eq!(names, ["gamma", "alphabet"]);

    let page = store
        .providers()
        .list(&query(10, "", "ALPHA", ""))
        .await
        .unwrap();
    assert_eq!(page.total, 2);
    let names: Vec<_> = page.items.iter().map(|p| p.spec.name.as_str()).collect();
    assert_eq!(names, ["alpha", "alphabet"]);

    let page = store
        .providers()
        .list(&query(10, "", "%", ""))
        .await
        .unwrap();
    assert_eq!(page.total, 0, "LIKE wildcards in the needle are literal");
}
