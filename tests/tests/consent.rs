//! End-to-end consent interop: the real control plane binary against a real OAuth
//! authorization server (oidc-provider on loopback), driven through the admin,
//! connection and token APIs and a browser that follows the consent links.
//!
//! Build the binaries first: `cargo build --workspace --bins`.
#![allow(clippy::unwrap_used)]

#[path = "consent/bounds.rs"]
mod bounds;
#[path = "consent/flows.rs"]
mod flows;
#[path = "consent/refresh.rs"]
mod refresh;
#[path = "consent/refresh_faults.rs"]
mod refresh_faults;
#[path = "consent/security.rs"]
mod security;
#[allow(dead_code)]
#[path = "consent/support.rs"]
mod support;
