//! Store errors as callers see them. The one place that classifies them.

use adp_core::{ApiError, Code};
use adp_store::StoreError;
use sea_orm_error::is_unavailable;

pub fn store_error(error: StoreError) -> ApiError {
    match error {
        StoreError::NotFound { kind, name } => ApiError::not_found(kind, &name),
        StoreError::AlreadyExists { kind, name } => ApiError::already_exists(kind, &name),
        StoreError::VersionConflict { kind, name } => ApiError::etag_mismatch(kind, &name),
        StoreError::StillReferenced {
            kind,
            name,
            referenced_by,
        } => {
            let users = if referenced_by.is_empty() {
                "other resources".to_owned()
            } else {
                referenced_by.join(", ")
            };
            ApiError::new(
                Code::FailedPrecondition,
                format!("{kind} {name:?} is still used by {users}; remove those first"),
            )
            .with_reason(adp_core::Reason::ResourceInUse)
            .with_metadata("resource", kind)
            .with_metadata("name", name)
            .with_metadata("referencedBy", referenced_by.join(","))
        }
        StoreError::MissingReference => ApiError::new(
            Code::FailedPrecondition,
            "a resource this one refers to does not exist",
        )
        .with_reason(adp_core::Reason::ReferenceNotFound),
        StoreError::Database(ref db) if is_unavailable(db) => {
            tracing::warn!(error = %error, "database unavailable");
            ApiError::unavailable("the database is unavailable; retry shortly")
        }
        other => {
            tracing::error!(error = %other, "store failure");
            ApiError::internal("internal storage error")
        }
    }
}

mod sea_orm_error {
    pub fn is_unavailable(error: &adp_store::DbErr) -> bool {
        matches!(
            error,
            adp_store::DbErr::Conn(_) | adp_store::DbErr::ConnectionAcquire(_)
        )
    }
}
