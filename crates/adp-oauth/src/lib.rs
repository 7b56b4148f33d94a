//! OAuth 2.0 client side of ADP: which provider endpoints are acceptable, how scope sets
//! compare, and the flows themselves (authorization code with PKCE, refresh, client
//! credentials, device authorization, revocation) with errors classified so that only
//! `invalid_grant` ever ends a connection; and OpenID Connect sign-in for the
//! control plane's own pages.
//!
//! ```
//! use adp_oauth::{EndpointPolicy, Pkce, scope};
//! assert!(EndpointPolicy::default().check("https://idp.example.com/token").is_ok());
//! assert_eq!(scope::missing(&["a", "b"], &["a"]), vec!["b"]);
//! assert!(Pkce::generate().is_valid());
//! ```
#![forbid(unsafe_code)]

mod client;
mod device;
pub mod endpoint;
mod error;
mod oidc;
mod pkce;
mod provider;
mod retry;
pub mod scope;
mod token;

#[cfg(test)]
mod test_support;

pub use client::{OAuthClient, TokenTypeHint};
pub use device::DeviceAuthorization;
pub use endpoint::{EndpointError, EndpointPolicy};
pub use error::FlowError;
pub use oidc::OidcMetadata;
pub use pkce::Pkce;
pub use provider::{AuthMethod, ProviderEndpoints};
pub use retry::RetryPolicy;
pub use secrecy::SecretString;
pub use token::{TokenSet, TokenSetDecodeError};
