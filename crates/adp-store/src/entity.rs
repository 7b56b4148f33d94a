//! One module per table. Specs that nothing queries are stored as JSON text so the
//! schema stays the same on both databases.

pub mod browser_session;
pub mod config_change;
pub mod config_revision;
pub mod connection;
pub mod consent_attempt;
pub mod mcp_server;
pub mod oauth_provider;
pub mod secret;
