//! OAuth providers as the domain sees them, converted from and to `adp.v1.OAuthProvider`.

use adp_api::v1 as pb;
use serde::{Deserialize, Serialize};

use crate::resource::{Meta, Stored, timestamp};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenAuthMethod {
    #[default]
    ClientSecretBasic,
    ClientSecretPost,
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    BrowserConsent,
    DeviceCode,
    ClientCredentials,
}

/// An upstream authorization server. Holds a reference to the client secret,
/// never the secret itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthProvider {
    pub name: String,
    pub display_name: String,
    pub authorize_url: String,
    pub token_url: String,
    pub revocation_url: String,
    pub device_authorization_url: String,
    pub scopes: Vec<String>,
    pub client_id: String,
    pub client_secret_ref: String,
    pub token_auth_method: TokenAuthMethod,
    /// As the admin wrote it; see [`OAuthProvider::effective_grant_types`].
    pub grant_types: Vec<GrantType>,
    pub require_pkce: bool,
    pub enabled: bool,
    pub issuer: String,
}

impl OAuthProvider {
    /// Browser consent when the admin named no grant.
    pub fn effective_grant_types(&self) -> Vec<GrantType> {
        if self.grant_types.is_empty() {
            vec![GrantType::BrowserConsent]
        } else {
            self.grant_types.clone()
        }
    }

    /// Every endpoint URL with the field it came from, for policy checks.
    /// The fields that decide where the client secret and users' tokens are sent, and
    /// who they were issued to, that differ between `self` and `other`.
    pub fn token_destination_changes(&self, other: &OAuthProvider) -> Vec<&'static str> {
        let pairs = [
            ("token_url", &self.token_url, &other.token_url),
            (
                "revocation_url",
                &self.revocation_url,
                &other.revocation_url,
            ),
            (
                "device_authorization_url",
                &self.device_authorization_url,
                &other.device_authorization_url,
            ),
            ("client_id", &self.client_id, &other.client_id),
            ("issuer", &self.issuer, &other.issuer),
        ];
        pairs
            .into_iter()
            .filter(|(_, before, after)| before != after)
            .map(|(field, _, _)| field)
            .collect()
    }

    pub fn endpoints(&self) -> [(&'static str, &str); 4] {
        [
            ("authorize_url", self.authorize_url.as_str()),
            ("token_url", self.token_url.as_str()),
            ("revocation_url", self.revocation_url.as_str()),
            (
                "device_authorization_url",
                self.device_authorization_url.as_str(),
            ),
        ]
    }
}

impl From<pb::OAuthProvider> for OAuthProvider {
    /// Infallible because the request validator has already run on the message.
    fn from(p: pb::OAuthProvider) -> Self {
        let token_auth_method = match pb::TokenAuthMethod::try_from(p.token_auth_method) {
            Ok(pb::TokenAuthMethod::ClientSecretPost) => TokenAuthMethod::ClientSecretPost,
            Ok(pb::TokenAuthMethod::None) => TokenAuthMethod::None,
            _ => TokenAuthMethod::ClientSecretBasic,
        };
        let grant_types = p
            .grant_types
            .iter()
            .filter_map(|g| match pb::GrantType::try_from(*g) {
                Ok(pb::GrantType::BrowserConsent) => Some(GrantType::BrowserConsent),
                Ok(pb::GrantType::DeviceCode) => Some(GrantType::DeviceCode),
                Ok(pb::GrantType::ClientCredentials) => Some(GrantType::ClientCredentials),
                _ => None,
            })
            .collect();
        OAuthProvider {
            name: p.name,
            display_name: p.display_name,
            authorize_url: p.authorize_url,
            token_url: p.token_url,
            revocation_url: p.revocation_url,
            device_authorization_url: p.device_authorization_url,
            scopes: p.scopes,
            client_id: p.client_id,
            client_secret_ref: p.client_secret_ref,
            token_auth_method,
            grant_types,
            require_pkce: p.require_pkce,
            enabled: p.enabled,
            issuer: p.issuer,
        }
    }
}

impl From<&OAuthProvider> for pb::OAuthProvider {
    fn from(p: &OAuthProvider) -> Self {
        let token_auth_method = match p.token_auth_method {
            TokenAuthMethod::ClientSecretBasic => pb::TokenAuthMethod::ClientSecretBasic,
            TokenAuthMethod::ClientSecretPost => pb::TokenAuthMethod::ClientSecretPost,
            TokenAuthMethod::None => pb::TokenAuthMethod::None,
        };
        pb::OAuthProvider {
            name: p.name.clone(),
            display_name: p.display_name.clone(),
            authorize_url: p.authorize_url.clone(),
            token_url: p.token_url.clone(),
            revocation_url: p.revocation_url.clone(),
            device_authorization_url: p.device_authorization_url.clone(),
            scopes: p.scopes.clone(),
            client_id: p.client_id.clone(),
            client_secret_ref: p.client_secret_ref.clone(),
            token_auth_method: token_auth_method as i32,
            grant_types: p
                .grant_types
                .iter()
                .map(|g| match g {
                    GrantType::BrowserConsent => pb::GrantType::BrowserConsent as i32,
                    GrantType::DeviceCode => pb::GrantType::DeviceCode as i32,
                    GrantType::ClientCredentials => pb::GrantType::ClientCredentials as i32,
                })
                .collect(),
            require_pkce: p.require_pkce,
            enabled: p.enabled,
            issuer: p.issuer.clone(),
            create_time: None,
            update_time: None,
            etag: String::new(),
        }
    }
}

impl From<&Stored<OAuthProvider>> for pb::OAuthProvider {
    fn from(stored: &Stored<OAuthProvider>) -> Self {
        with_meta(pb::OAuthProvider::from(&stored.spec), &stored.meta)
    }
}

fn with_meta(mut p: pb::OAuthProvider, meta: &Meta) -> pb::OAuthProvider {
    p.create_time = Some(timestamp(meta.create_time));
    p.update_time = Some(timestamp(meta.update_time));
    p.etag = meta.etag();
    p
}
