//! The ADP data plane. It never sees the store or the vault: only short-lived
//! upstream access tokens for the user whose JWT it presents. This crate starts with
//! token injection; the config subscriber and MCP reverse proxy build on it.
//!
//! ```ignore
//! let (name, value) = adp_proxy::injection::header_for(&injection, &token)?;
//! upstream_request.headers_mut().insert(name, value);
//! ```
#![forbid(unsafe_code)]

pub mod injection;
