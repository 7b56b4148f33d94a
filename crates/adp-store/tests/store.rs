//! Store behaviour written once and run on SQLite always and on PostgreSQL when
//! `ADP_TEST_DATABASE_URL` is set (each test gets a fresh database).
#![allow(clippy::unwrap_used)]

#[path = "store/admin_config.rs"]
mod admin_config;
#[path = "store/connections_and_sessions.rs"]
mod connections_and_sessions;

// the scenarios, for store_tests! to stamp out per backend
use admin_config::*;
use connections_and_sessions::*;

use adp_core::provider::{OAuthProvider, TokenAuthMethod};
use adp_store::Store;
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

async fn migrations_are_idempotent(store: Store) {
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
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
