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
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/adp_descriptor.bin"));

/// Descriptor pool that the generated `ReflectMessage` impls refer to.
pub static DESCRIPTOR_POOL: LazyLock<prost_reflect::DescriptorPool> = LazyLock::new(|| {
    prost_reflect::DescriptorPool::decode(FILE_DESCRIPTOR_SET)
        .expect("the descriptor set embedded at build time decodes")
});

pub mod v1 {
    tonic::include_proto!("adp.v1");
}
