//! ADP domain types, validation glue, identity and the error model shared by the
//! control plane and the proxy.
//!
//! ```ignore
//! let server = adp_core::server::McpServer::try_from(proto_server)?;
//! let status: tonic::Status = adp_core::error::ApiError::not_found("mcp server", "x").into();
//! ```
#![forbid(unsafe_code)]

pub mod backoff;
pub mod catalog;
pub mod connection;
pub mod error;
pub mod fieldmask;
pub mod identity;
pub mod json_struct;
pub mod listing;
pub mod metadata;
pub mod provider;
pub mod reason;
pub mod resource;
pub mod server;
pub mod session;
pub mod validation;

pub use error::{ApiError, Code};
pub use reason::Reason;
