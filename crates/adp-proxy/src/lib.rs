//! The ADP data plane. It never sees the store or the vault: only short-lived upstream
//! access tokens for the user whose JWT it presents. It follows the control plane's
//! config stream, serves MCP at `/mcp/{server}`, and injects each caller's own upstream
//! credential into what it forwards.
//!
//! ```ignore
//! let settings = adp_proxy::settings::Settings::resolve(std::env::args_os().collect(), &|k| std::env::var(k).ok())?;
//! adp_proxy::app::Proxy::start(settings).await?.run_until_signal().await?;
//! ```
#![forbid(unsafe_code)]

pub mod app;
pub mod bounded;
pub mod callers;
pub mod consent;
pub mod control_plane_client;
pub mod credential_cache;
pub mod errors;
pub mod feed;
pub mod forward;
pub mod gateway;
pub mod injection;
pub mod keys;
pub mod legacy_sse;
pub mod mcp;
pub mod mcp_http;
pub mod routes;
pub mod session_ids;
pub mod settings;
pub mod shared;
pub mod tls;
pub mod upstream_sessions;
