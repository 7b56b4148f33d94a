//! Store behaviour written once and run on SQLite always and on PostgreSQL when
//! `ADP_TEST_DATABASE_URL` is set (each test gets a fresh database).
#![allow(clippy::unwrap_used)]

use adp_core::connection::{ConnectionKey, ConsentAttempt, ExpiredReason};
use adp_core::listing::ListQuery;
use adp_core::provider::{OAuthProvider, TokenAuthMethod};
use adp_core::server::{Auth, McpServer, Source, TokenInjection, Transport};
use adp_core::session::BrowserSession;
use adp_store::{Store, StoreError, TokenWrite};
use sea_orm::{ConnectionTrait, Database};

fn provider(name: &str, display_name: &str) -> OAuthProvider {
    OAuthProvider {
        name: name.into(),
        display_name: display_name.into(),
        authorize_url: "https://idp.example.com/authorize".into(),
        token_url: "https://idp.example.com/token".into(),
        revocation_url: String::new(),
        device_authorization_url: String::new(),
        scopes: vec!["repo".into()],
        client_id: "client".into(),
        client_secret_ref: String::new(),
        token_auth_method: TokenAuthMethod::None,
        grant_types: vec![],
        require_pkce: true,
        enabled: true,
        issuer: String::new(),
    }
}

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

async fn crud_round_trips_specs_exactly(store: Store) {
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

async fn duplicate_names_are_already_exists(store: Store) {
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

async fn stale_versions_conflict(store: Store) {
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

async fn servers_need_a_real_provider_and_providers_in_use_cannot_go(store: Store) {
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

async fn secrets_keep_sealed_bytes_and_refuse_delete_while_used(store: Store) {
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

async fn lists_page_filter_order_and_count(store: Store) {
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

async fn migrations_are_idempotent(store: Store) {
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
}

fn key(subject: &str) -> ConnectionKey {
    ConnectionKey {
        issuer: "https://idp.test".into(),
        subject: subject.into(),
        provider_name: "github".into(),
    }
}

fn tokens(bytes: &[u8], scopes: &[&str]) -> TokenWrite {
    TokenWrite {
        sealed_tokens: bytes.to_vec(),
        granted_scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        access_expire_time: Some(chrono::Utc::now() + chrono::Duration::minutes(5)),
    }
}

async fn consent_updates_the_same_connection_in_place(store: Store) {
    store
        .providers()
        .create(&provider("github", "GitHub"))
        .await
        .unwrap();
    let first = store
        .connections()
        .save_consent(&key("alice"), tokens(b"one", &["repo"]))
        .await
        .unwrap();
    assert_eq!(first.version, 1);
    let upgraded = store
        .connections()
        .save_consent(&key("alice"), tokens(b"two", &["repo", "read:org"]))
        .await
        .unwrap();
    assert_eq!(upgraded.version, 2);
    assert_eq!(upgraded.granted_scopes, ["repo", "read:org"]);
    assert_eq!(upgraded.sealed_tokens, b"two");
    assert!(
        store
            .connections()
            .get(&key("bob"))
            .await
            .unwrap()
            .is_none(),
        "another user sees nothing"
    );
    assert_eq!(
        store
            .connections()
            .list_for_user("https://idp.test", "alice")
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .connections()
            .list_for_user("https://idp.test", "bob")
            .await
            .unwrap()
            .is_empty()
    );
}

async fn one_refresh_lease_per_version(store: Store) {
    store
        .providers()
        .create(&provider("github", "GitHub"))
        .await
        .unwrap();
    let saved = store
        .connections()
        .save_consent(&key("alice"), tokens(b"one", &["repo"]))
        .await
        .unwrap();
    let lease_until = chrono::Utc::now() + chrono::Duration::seconds(30);
    let mut contenders = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        contenders.push(tokio::spawn(async move {
            store
                .connections()
                .acquire_refresh_lease(&key("alice"), saved.version, lease_until)
                .await
                .unwrap()
        }));
    }
    let mut winners = 0;
    for contender in contenders {
        winners += usize::from(contender.await.unwrap());
    }
    assert_eq!(winners, 1);
    assert!(
        store
            .connections()
            .store_refresh(&key("alice"), saved.version, tokens(b"rotated", &["repo"]))
            .await
            .unwrap()
    );
    assert!(
        !store
            .connections()
            .store_refresh(&key("alice"), saved.version, tokens(b"late", &["repo"]))
            .await
            .unwrap(),
        "a stale refresh loses"
    );
    let now = store
        .connections()
        .get(&key("alice"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(now.sealed_tokens, b"rotated");
    assert_eq!(now.refresh_lease_until, None);
    assert!(
        store
            .connections()
            .acquire_refresh_lease(&key("alice"), now.version, lease_until)
            .await
            .unwrap()
    );
    store
        .connections()
        .release_lease(&key("alice"), now.version)
        .await
        .unwrap();
    assert!(
        store
            .connections()
            .acquire_refresh_lease(&key("alice"), now.version, lease_until)
            .await
            .unwrap(),
        "released leases can be taken again"
    );
}

async fn expiry_reconsent_and_delete(store: Store) {
    store
        .providers()
        .create(&provider("github", "GitHub"))
        .await
        .unwrap();
    let saved = store
        .connections()
        .save_consent(&key("alice"), tokens(b"one", &["repo"]))
        .await
        .unwrap();
    assert!(
        store
            .connections()
            .mark_expired(
                &key("alice"),
                saved.version,
                ExpiredReason::RefreshRejected,
                "invalid_grant"
            )
            .await
            .unwrap()
    );
    let expired = store
        .connections()
        .get(&key("alice"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(expired.expired, Some(ExpiredReason::RefreshRejected));
    let lease_until = chrono::Utc::now() + chrono::Duration::seconds(30);
    assert!(
        !store
            .connections()
            .acquire_refresh_lease(&key("alice"), expired.version, lease_until)
            .await
            .unwrap(),
        "expired connections are not refreshed"
    );

    store
        .connections()
        .save_consent(&key("bob"), tokens(b"b", &["repo"]))
        .await
        .unwrap();
    assert_eq!(
        store
            .connections()
            .require_reconsent("github", "auth mode changed", false)
            .await
            .unwrap(),
        1,
        "only working connections"
    );
    let deleted = store
        .connections()
        .delete(&key("bob"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(deleted.sealed_tokens, b"b");
    assert!(
        store
            .connections()
            .delete(&key("bob"))
            .await
            .unwrap()
            .is_none()
    );

    store.providers().delete("github", None).await.unwrap();
    assert!(
        store
            .connections()
            .get(&key("alice"))
            .await
            .unwrap()
            .is_none(),
        "connections go with their provider"
    );
}

async fn consent_attempts_are_taken_once_and_expire(store: Store) {
    store
        .providers()
        .create(&provider("github", "GitHub"))
        .await
        .unwrap();
    let now = chrono::Utc::now();
    let attempt = |state: &str, expire_time| ConsentAttempt {
        state: state.into(),
        key: key("alice"),
        sealed_verifier: vec![9; 16],
        scopes: vec!["repo".into()],
        server_name: Some("tickets".into()),
        browser_binding: None,
        create_time: now,
        expire_time,
    };
    store
        .consents()
        .create(&attempt("live", now + chrono::Duration::minutes(10)))
        .await
        .unwrap();
    store
        .consents()
        .create(&attempt("stale", now - chrono::Duration::seconds(1)))
        .await
        .unwrap();
    assert!(store.consents().get("stale").await.unwrap().is_none());
    assert!(
        store
            .consents()
            .bind_browser("live", "cookie-hash")
            .await
            .unwrap()
    );
    assert!(
        !store
            .consents()
            .bind_browser("live", "other-browser")
            .await
            .unwrap(),
        "bound once"
    );
    let taken = store.consents().take("live").await.unwrap().unwrap();
    assert_eq!(taken.browser_binding.as_deref(), Some("cookie-hash"));
    assert_eq!(taken.server_name.as_deref(), Some("tickets"));
    assert!(
        store.consents().take("live").await.unwrap().is_none(),
        "one-time"
    );
    assert_eq!(store.consents().purge_expired().await.unwrap(), 1);
}

async fn browser_sessions_live_until_signed_out_or_expired(store: Store) {
    let now = chrono::Utc::now();
    let session = |id_hash: &str, expire_time| BrowserSession {
        id_hash: id_hash.into(),
        issuer: "https://idp.example.com".into(),
        subject: "alice".into(),
        display_name: "Alice".into(),
        create_time: now,
        expire_time,
    };
    store
        .sessions()
        .create(&session("live", now + chrono::Duration::hours(1)))
        .await
        .unwrap();
    store
        .sessions()
        .create(&session("stale", now - chrono::Duration::seconds(1)))
        .await
        .unwrap();
    let live = store.sessions().get("live").await.unwrap().unwrap();
    assert_eq!(
        (live.subject.as_str(), live.display_name.as_str()),
        ("alice", "Alice")
    );
    assert_eq!(live.identity().issuer, "https://idp.example.com");
    assert!(store.sessions().get("stale").await.unwrap().is_none());
    assert!(store.sessions().get("unknown").await.unwrap().is_none());
    assert!(matches!(
        store
            .sessions()
            .create(&session("live", now + chrono::Duration::hours(1)))
            .await,
        Err(StoreError::AlreadyExists { .. })
    ));
    assert_eq!(store.sessions().purge_expired().await.unwrap(), 1);
    assert!(store.sessions().delete("live").await.unwrap());
    assert!(
        !store.sessions().delete("live").await.unwrap(),
        "signed out once"
    );
    assert!(store.sessions().get("live").await.unwrap().is_none());
}

async fn sqlite_store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("adp.db").display());
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    (store, dir)
}

/// A fresh database on the server named by ADP_TEST_DATABASE_URL.
async fn postgres_store() -> Store {
    let admin_url = std::env::var("ADP_TEST_DATABASE_URL").expect("ADP_TEST_DATABASE_URL");
    let admin = Database::connect(&admin_url).await.unwrap();
    let name = format!("adp_store_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let (base, _) = admin_url.rsplit_once('/').unwrap();
    let store = Store::connect(&format!("{base}/{name}")).await.unwrap();
    store.migrate().await.unwrap();
    store
}

macro_rules! store_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let (store, _dir) = super::sqlite_store().await;
                    super::$name(store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                #[cfg_attr(not(adp_postgres), ignore = "set ADP_TEST_DATABASE_URL to run on PostgreSQL")]
                async fn $name() {
                    super::$name(super::postgres_store().await).await;
                }
            )*
        }
    };
}

store_tests!(
    crud_round_trips_specs_exactly,
    duplicate_names_are_already_exists,
    stale_versions_conflict,
    servers_need_a_real_provider_and_providers_in_use_cannot_go,
    secrets_keep_sealed_bytes_and_refuse_delete_while_used,
    lists_page_filter_order_and_count,
    migrations_are_idempotent,
    consent_updates_the_same_connection_in_place,
    one_refresh_lease_per_version,
    expiry_reconsent_and_delete,
    consent_attempts_are_taken_once_and_expire,
    browser_sessions_live_until_signed_out_or_expired,
);
