//! What users hold: connections updated in place by consent, one refresh lease per
//! version, expiry and re-consent, single-use consent attempts and browser sessions.

use adp_core::connection::{ConnectionKey, ConsentAttempt, ExpiredReason};
use adp_core::session::BrowserSession;
use adp_store::{Store, StoreError, TokenWrite};

use super::provider;

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

pub async fn consent_updates_the_same_connection_in_place(store: Store) {
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

pub async fn one_refresh_lease_per_version(store: Store) {
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

pub async fn expiry_reconsent_and_delete(store: Store) {
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

pub async fn consent_attempts_are_taken_once_and_expire(store: Store) {
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

pub async fn browser_sessions_live_until_signed_out_or_expired(store: Store) {
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
