//! `adp-control-plane vault rotate|rewrap`: add a primary key to the key ring, and
//! re-seal every stored secret and token set under the primary key.

use adp_core::listing::ListQuery;
use adp_store::Store;
use adp_vault::{Binding, KeyRing, Vault};
use anyhow::Context;

use crate::config::Settings;

/// Adds a new primary key; old keys stay so existing rows still open.
pub fn rotate(settings: &Settings) -> anyhow::Result<()> {
    let ring = KeyRing::rotate(&settings.vault_key_file)?;
    tracing::info!(primary = ring.primary_id(), path = %settings.vault_key_file.display(), "vault key rotated; run `vault rewrap` to re-seal stored values");
    Ok(())
}

/// What a rewrap did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RewrapReport {
    pub secrets: usize,
    pub connections: usize,
    pub already_current: usize,
    /// Rows that changed while we worked; they were written by a live server under
    /// the primary key already, or will be picked up by the next run.
    pub skipped: usize,
}

pub async fn rewrap(settings: &Settings) -> anyhow::Result<RewrapReport> {
    let (keys, _) = KeyRing::load_or_generate(&settings.vault_key_file)?;
    let vault = Vault::new(keys);
    let store = Store::connect(&settings.database_url)
        .await
        .context("cannot open the database")?;
    store.migrate().await?;
    let report = rewrap_all(&store, &vault).await?;
    tracing::info!(
        ?report,
        primary = vault.key_ring().primary_id(),
        "vault rewrap finished"
    );
    Ok(report)
}

pub async fn rewrap_all(store: &Store, vault: &Vault) -> anyhow::Result<RewrapReport> {
    let mut report = RewrapReport::default();
    let mut token = String::new();
    loop {
        let query = ListQuery::parse(1000, &token, "", "", &["name"])
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let page = store.secrets().list(&query).await?;
        token = query.next_page_token(page.items.len(), page.total);
        for secret in page.items {
            let name = &secret.spec;
            let sealed = store.secrets().sealed_value(name).await?;
            if !vault.needs_rewrap(&sealed) {
                report.already_current += 1;
                continue;
            }
            let resealed = vault
                .rewrap(&Binding::secret(name), &sealed)
                .with_context(|| format!("secret {name}"))?;
            match store.secrets().update(name, resealed, &secret.meta).await {
                Ok(_) => report.secrets += 1,
                Err(
                    adp_store::StoreError::VersionConflict { .. }
                    | adp_store::StoreError::NotFound { .. },
                ) => report.skipped += 1,
                Err(other) => return Err(other.into()),
            }
        }
        if token.is_empty() {
            break;
        }
    }
    for (key, version, sealed) in store.connections().all_sealed().await? {
        rewrap_connection(store, vault, key, version, sealed, &mut report).await?;
    }
    Ok(report)
}

/// How long one connection is waited on while live servers keep changing it or hold
/// its refresh lease, before it is left to the next run.
const CONNECTION_PATIENCE: std::time::Duration = std::time::Duration::from_secs(120);

/// Re-seals one connection's tokens. A row under a live refresh lease is waited on,
/// never re-sealed under it (that would make the refresh's store fail and drop a
/// rotated refresh token); once the refresh stored, the new row is re-sealed.
async fn rewrap_connection(
    store: &Store,
    vault: &Vault,
    key: adp_core::connection::ConnectionKey,
    mut version: i64,
    mut sealed: Vec<u8>,
    report: &mut RewrapReport,
) -> anyhow::Result<()> {
    let binding = Binding::token_set(&key.issuer, &key.subject, &key.provider_name);
    let give_up = tokio::time::Instant::now() + CONNECTION_PATIENCE;
    while tokio::time::Instant::now() < give_up {
        if sealed.is_empty() || !vault.needs_rewrap(&sealed) {
            report.already_current += 1;
            return Ok(());
        }
        let resealed = vault
            .rewrap(&binding, &sealed)
            .with_context(|| format!("connection to {}", key.provider_name))?;
        if store.connections().rewrap(&key, version, resealed).await? {
            report.connections += 1;
            return Ok(());
        }
        let Some(current) = store.connections().get(&key).await? else {
            report.skipped += 1;
            return Ok(());
        };
        if current.version == version {
            // leased: the refresh is still running
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        version = current.version;
        sealed = current.sealed_tokens;
    }
    tracing::warn!(provider = %key.provider_name, "a connection stayed busy during the rewrap; the next run re-seals it");
    report.skipped += 1;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use adp_core::connection::ConnectionKey;
    use adp_core::provider::{OAuthProvider, TokenAuthMethod};
    use adp_store::TokenWrite;

    use super::*;

    #[tokio::test]
    async fn rewrap_moves_secrets_and_tokens_to_the_new_primary_key() {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("keys.json");
        let store = Store::connect(&format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("adp.db").display()
        ))
        .await
        .unwrap();
        store.migrate().await.unwrap();
        let (old_ring, _) = KeyRing::load_or_generate(&key_file).unwrap();
        let old = Vault::new(old_ring);

        store
            .secrets()
            .create(
                "CLIENT_SECRET",
                old.seal_str(&Binding::secret("CLIENT_SECRET"), "s3cr3t")
                    .unwrap(),
            )
            .await
            .unwrap();
        let provider = OAuthProvider {
            name: "github".into(),
            display_name: String::new(),
            authorize_url: "https://idp.test/a".into(),
            token_url: "https://idp.test/t".into(),
            revocation_url: String::new(),
            device_authorization_url: String::new(),
            scopes: vec![],
            client_id: "c".into(),
            client_secret_ref: String::new(),
            token_auth_method: TokenAuthMethod::None,
            grant_types: vec![],
            require_pkce: true,
            enabled: true,
            issuer: String::new(),
        };
        store.providers().create(&provider).await.unwrap();
        let key = ConnectionKey {
            issuer: "iss".into(),
            subject: "alice".into(),
            provider_name: "github".into(),
        };
        let sealed = old
            .seal(
                &Binding::token_set("iss", "alice", "github"),
                b"{\"tokens\":1}",
            )
            .unwrap();
        store
            .connections()
            .save_consent(
                &key,
                TokenWrite {
                    sealed_tokens: sealed,
                    granted_scopes: vec![],
                    access_expire_time: None,
                },
            )
            .await
            .unwrap();

        let rotated = Vault::new(KeyRing::rotate(&key_file).unwrap());
        let report = rewrap_all(&store, &rotated).await.unwrap();
        assert_eq!(
            report,
            RewrapReport {
                secrets: 1,
                connections: 1,
                already_current: 0,
                skipped: 0
            }
        );
        let secret = store.secrets().sealed_value("CLIENT_SECRET").await.unwrap();
        assert!(!rotated.needs_rewrap(&secret));
        let opened = rotated
            .open_string(&Binding::secret("CLIENT_SECRET"), &secret)
            .unwrap();
        assert_eq!(secrecy::ExposeSecret::expose_secret(&opened), "s3cr3t");
        let connection = store.connections().get(&key).await.unwrap().unwrap();
        assert!(!rotated.needs_rewrap(&connection.sealed_tokens));

        let again = rewrap_all(&store, &rotated).await.unwrap();
        assert_eq!(again.already_current, 2, "a second run has nothing to do");
    }
}
