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
    /// The database could not be reached or opened; the message never holds the URL's
    /// password (drivers quote the URL they were given).
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("database error: {0}")]
    Database(#[from] DbErr),
}

/// A connection error as it may be shown: `url`, and the password in it, scrubbed.
pub(crate) fn connect_error(url: &str, error: DbErr) -> StoreError {
    let mut message = error.to_string().replace(url, "<database url>");
    if let Some(password) = password_of(url) {
        message = message.replace(password, "<redacted>");
    }
    StoreError::Connect(message)
}

/// The password of a `scheme://user:password@host/…` URL, if it has one.
fn password_of(url: &str) -> Option<&str> {
    let rest = &url[url.find("://")? + 3..];
    let userinfo = &rest[..rest.rfind('@')?];
    let password = &userinfo[userinfo.find(':')? + 1..];
    (!password.is_empty()).then_some(password)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_error_never_shows_the_password() {
        let url = "postgress://adp:hunter2@db.internal:5432/adp";
        let error = connect_error(
            url,
            DbErr::Conn(sea_orm::RuntimeErr::Internal(format!(
                "error with configuration: bad scheme in {url} (password hunter2)"
            ))),
        );
        let text = error.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("<database url>"), "{text}");
        assert_eq!(password_of("postgres://u@h/db"), None);
        assert_eq!(password_of("postgres://u:p%40ss@h/db"), Some("p%40ss"));
    }
}
