use sea_orm::{DbErr, SqlErr};

/// What can go wrong in the store, in terms the caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} {name:?} not found")]
    NotFound { kind: &'static str, name: String },
    #[error("{kind} {name:?} already exists")]
    AlreadyExists { kind: &'static str, name: String },
    /// The row's version moved since the caller read it.
    #[error("{kind} {name:?} was changed concurrently")]
    VersionConflict { kind: &'static str, name: String },
    /// Other resources still point at this one.
    #[error("{kind} {name:?} is still used by {}", referenced_by.join(", "))]
    StillReferenced {
        kind: &'static str,
        name: String,
        referenced_by: Vec<String>,
    },
    /// A row refers to something that does not exist (a foreign key failed).
    #[error("a referenced resource does not exist")]
    MissingReference,
    #[error("stored {kind} {name:?} could not be decoded: {source}")]
    Corrupt {
        kind: &'static str,
        name: String,
        source: serde_json::Error,
    },
    #[error("database error: {0}")]
    Database(#[from] DbErr),
}

impl StoreError {
    /// Classifies a write error that may be a constraint violation.
    pub(crate) fn from_write(kind: &'static str, name: &str, error: DbErr) -> Self {
        match error.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => StoreError::AlreadyExists {
                kind,
                name: name.to_owned(),
            },
            Some(SqlErr::ForeignKeyConstraintViolation(_)) => StoreError::MissingReference,
            _ => StoreError::Database(error),
        }
    }
}
