//! The gRPC services. Each handler authenticates, validates, then talks to the store;
//! errors become `tonic::Status` through `ApiError` only.

pub mod catalog;
pub mod config;
pub mod connections;
pub mod providers;
pub mod secrets;
pub mod servers;
pub mod tokens;

use adp_core::ApiError;
use tonic::Status;

pub(crate) type RpcResult<T> = Result<tonic::Response<T>, Status>;

/// Unwraps a required resource field the validator has already checked.
pub(crate) fn required<T>(value: Option<T>, field: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| ApiError::invalid_field(field, "required", format!("{field} is required")))
}

pub(crate) fn require_name(name: &str, field: &str) -> Result<(), ApiError> {
    if name.is_empty() {
        return Err(ApiError::invalid_field(
            field,
            "required",
            format!("{field} is required"),
        ));
    }
    Ok(())
}
