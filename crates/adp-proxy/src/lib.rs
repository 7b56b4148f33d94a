//! The ADP data plane. It never sees the store or the vault: only short-lived upstream
//! access tokens for the user whose JWT it presents. It follows the control plane's
//! config stream, serves MCP at `/mcp/{server}`, and injects each caller's own upstream
//! credential into what it forwards.
//!
//! Only `app` (start and stop a proxy) and `settings` are public, for the binary; every
//! other module is the crate's own.
//!
//! ```ignore
//! let settings = adp_proxy::settings::Settings::resolve(&flags, adp_settings::process_env()?)?;
//! adp_proxy::app::Proxy::start(settings).await?.run_until_signal().await?;
//! ```
#![forbid(unsafe_code)]

pub mod app;
mod bounded;
mod callers;
mod consent;
mod control_plane_client;
mod credential_cache;
mod errors;
mod feed;
mod forward;
mod gateway;
mod keys;
mod legacy_sse;
mod mcp;
mod mcp_http;
mod routes;
mod session_ids;
pub mod settings;
mod shared;
mod tls;
mod upstream_sessions;
