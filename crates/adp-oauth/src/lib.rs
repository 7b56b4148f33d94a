//! OAuth 2.0 client-side rules ADP applies to upstream providers: which endpoint
//! URLs are acceptable and how scope sets compare.
//!
//! ```
//! use adp_oauth::{EndpointPolicy, scope};
//! assert!(EndpointPolicy::default().check("https://idp.example.com/token").is_ok());
//! assert_eq!(scope::missing(&["a", "b"], &["a"]), vec!["b"]);
//! ```
#![forbid(unsafe_code)]

pub mod endpoint;
pub mod scope;

pub use endpoint::{EndpointError, EndpointPolicy};
