//! The ADP control plane: admin API (providers, secrets, MCP servers, catalog),
//! authentication, and the HTTP listener.
//!
//! ```ignore
//! let settings = adp_control_plane::config::Settings::resolve(&flags, adp_settings::process_env()?)?;
//! adp_control_plane::ControlPlane::start(settings).await?.run_until_signal().await?;
//! ```
#![forbid(unsafe_code)]

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod config_feed;
pub mod connections;
mod consent_errors;
mod consent_http;
pub mod credentials;
mod errors;
mod http;
pub mod service;
pub mod signin;
pub mod state;
pub mod telemetry;
pub mod vault_cmd;
mod web;

pub use app::ControlPlane;
