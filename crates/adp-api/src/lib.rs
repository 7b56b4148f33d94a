//! Generated prost/tonic code for the `adp.v1` API, plus the file descriptor set that
//! serves gRPC reflection and protovalidate.
//!
//! ```ignore
//! use adp_api::v1::{OAuthProvider, o_auth_provider_service_server::OAuthProviderServiceServer};
//! let pool = &*adp_api::DESCRIPTOR_POOL;
//! ```
#![forbid(unsafe_code)]
#![allow(missing_debug_implementations, clippy::all)]

use std::sync::LazyLock;

/// The encoded `FileDescriptorSet` of every adp.v1 file and its imports, with the
/// `buf.validate` options intact.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/adp_descriptor.bin"));

/// Descriptor pool that the generated `ReflectMessage` impls refer to.
pub static DESCRIPTOR_POOL: LazyLock<prost_reflect::DescriptorPool> = LazyLock::new(|| {
    prost_reflect::DescriptorPool::decode(FILE_DESCRIPTOR_SET)
        .expect("the descriptor set embedded at build time decodes")
});

pub mod v1 {
    tonic::include_proto!("adp.v1");
}

macro_rules! redacted_debug {
    ($($message:ident),*) => {$(
        impl std::fmt::Debug for v1::$message {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($message))
                    .field("secret", &self.secret)
                    .field("value", &"<redacted>")
                    .field("validate_only", &self.validate_only)
                    .finish()
            }
        }
    )*};
}

redacted_debug!(CreateSecretRequest, UpdateSecretRequest);

impl std::fmt::Debug for v1::GetUpstreamCredentialResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GetUpstreamCredentialResponse")
            .field("header_name", &self.header_name)
            .field("header_value", &"<redacted>")
            .field("expire_time", &self.expire_time)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn secret_values_never_reach_debug_output() {
        let request = super::v1::CreateSecretRequest {
            value: "hunter2".into(),
            ..Default::default()
        };
        assert!(!format!("{request:?}").contains("hunter2"));
    }
}
