//! gRPC metadata keys and HTTP header names that more than one crate writes or reads,
//! declared once so a sender and its reader cannot drift apart.
//!
//! ```
//! let mut request = tonic::Request::new(());
//! request.metadata_mut().insert(adp_core::metadata::PROXY_AUTHORIZATION, "Bearer x".parse().unwrap());
//! ```

/// A proxy's own credential (`Bearer <JWT>` with permission `proxy`) on its calls to the
/// control plane, beside the end-user's `authorization`.
pub const PROXY_AUTHORIZATION: &str = "x-adp-proxy-authorization";

/// The id of one request, taken from the caller when sent and logged in the request's
/// span by both programs (the control plane makes one up when absent; the proxy logs
/// `-`, and ignores one longer than 128 characters or outside `[A-Za-z0-9._:-]`).
pub const REQUEST_ID: &str = "x-request-id";
