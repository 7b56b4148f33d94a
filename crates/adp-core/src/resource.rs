//! What every stored resource carries besides its spec: timestamps and a version
//! that doubles as the etag for optimistic concurrency.

use chrono::{DateTime, Utc};

use crate::error::ApiError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    /// Starts at 1 and grows by one on every write.
    pub version: i64,
}

impl Meta {
    pub fn etag(&self) -> String {
        format!("\"v{}\"", self.version)
    }
}

/// A spec as stored, with its metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct Stored<T> {
    pub spec: T,
    pub meta: Meta,
}

/// Parses an etag the caller sent back; empty means "no precondition".
pub fn parse_etag(etag: &str) -> Result<Option<i64>, ApiError> {
    let trimmed = etag.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    let inner = trimmed.trim_start_matches("W/").trim_matches('"');
    inner
        .strip_prefix('v')
        .and_then(|n| n.parse::<i64>().ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::invalid_field(
                "etag",
                "etag.format",
                "etag is not one this server issued; send back the etag from a get or list",
            )
        })
}

pub fn timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: time.timestamp_subsec_nanos() as i32,
    }
}

/// Refuses a write whose etag no longer matches what is stored.
pub fn check_etag(
    kind: &str,
    name: &str,
    expected: Option<i64>,
    meta: &Meta,
) -> Result<(), ApiError> {
    match expected {
        Some(version) if version != meta.version => Err(ApiError::etag_mismatch(kind, name)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_round_trips_and_rejects_foreign_values() {
        let now = Utc::now();
        let meta = Meta {
            create_time: now,
            update_time: now,
            version: 7,
        };
        assert_eq!(parse_etag(&meta.etag()).ok().flatten(), Some(7));
        assert_eq!(parse_etag("").ok().flatten(), None);
        assert!(parse_etag("\"abc\"").is_err());
    }
}
