//! List requests: page size, opaque page tokens bound to their query, `name_contains`
//! and `order_by` parsing, shared by every List RPC.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

pub const DEFAULT_PAGE_SIZE: u64 = 50;
pub const MAX_PAGE_SIZE: u64 = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Asc,
    Desc,
}

/// A parsed list request, ready for a repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListQuery {
    pub limit: u64,
    pub offset: u64,
    pub name_contains: Option<String>,
    /// Fields from the allowed set, in priority order; `name` is always the last tie-break.
    pub order_by: Vec<(String, Direction)>,
    fingerprint: String,
}

impl ListQuery {
    /// Parses and checks a request. `allowed` lists the sortable fields.
    pub fn parse(
        page_size: i32,
        page_token: &str,
        name_contains: &str,
        order_by: &str,
        allowed: &[&str],
    ) -> Result<Self, ApiError> {
        let limit = match page_size {
            0 => DEFAULT_PAGE_SIZE,
            n if n < 0 => {
                return Err(ApiError::invalid_field(
                    "page_size",
                    "int32.gte",
                    "page_size must not be negative",
                ));
            }
            n => (n as u64).min(MAX_PAGE_SIZE),
        };
        let order = parse_order_by(order_by, allowed)?;
        let name_contains = Some(name_contains.trim().to_lowercase()).filter(|s| !s.is_empty());
        let fingerprint = fingerprint(name_contains.as_deref().unwrap_or(""), &order);
        let offset = if page_token.is_empty() {
            0
        } else {
            decode_token(page_token, &fingerprint)?
        };
        Ok(ListQuery {
            limit,
            offset,
            name_contains,
            order_by: order,
            fingerprint,
        })
    }

    /// The token for the page after one that returned `returned` of `total` items.
    pub fn next_page_token(&self, returned: usize, total: u64) -> String {
        let next = self.offset + returned as u64;
        if returned == 0 || next >= total {
            return String::new();
        }
        URL_SAFE_NO_PAD.encode(format!("{next}:{}", self.fingerprint))
    }
}

fn parse_order_by(order_by: &str, allowed: &[&str]) -> Result<Vec<(String, Direction)>, ApiError> {
    let mut parsed: Vec<(String, Direction)> = Vec::new();
    for clause in order_by.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        let mut words = clause.split_whitespace();
        let field = words.next().unwrap_or_default();
        let direction = match words.next().map(str::to_ascii_lowercase).as_deref() {
            None | Some("asc") => Direction::Asc,
            Some("desc") => Direction::Desc,
            Some(other) => {
                return Err(ApiError::invalid_field(
                    "order_by",
                    "list.order_by",
                    format!("unknown direction {other:?}; use asc or desc"),
                ));
            }
        };
        if words.next().is_some() || !allowed.contains(&field) {
            return Err(ApiError::invalid_field(
                "order_by",
                "list.order_by",
                format!(
                    "cannot order by {clause:?}; use a comma-separated list of `field [asc|desc]` over {}",
                    allowed.join(", ")
                ),
            ));
        }
        if parsed.iter().any(|(f, _)| f == field) {
            return Err(ApiError::invalid_field(
                "order_by",
                "list.order_by",
                format!("{field} appears twice"),
            ));
        }
        parsed.push((field.to_owned(), direction));
    }
    if !parsed.iter().any(|(f, _)| f == "name") {
        parsed.push(("name".to_owned(), Direction::Asc));
    }
    Ok(parsed)
}

fn fingerprint(name_contains: &str, order: &[(String, Direction)]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(name_contains.as_bytes());
    for (field, direction) in order {
        hasher.update(format!("\0{field}:{direction:?}").as_bytes());
    }
    hex::encode(&hasher.finalize()[..8])
}

fn decode_token(token: &str, expected_fingerprint: &str) -> Result<u64, ApiError> {
    let invalid = || {
        ApiError::invalid_field(
            "page_token",
            "list.page_token",
            "page_token is not valid for this query; send it with the same name_contains and order_by, or start again without it",
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (offset, fingerprint) = text.split_once(':').ok_or_else(invalid)?;
    if fingerprint != expected_fingerprint {
        return Err(invalid());
    }
    offset.parse().map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALLOWED: &[&str] = &["name", "display_name", "create_time"];

    #[test]
    fn order_by_parses_and_appends_the_name_tie_break() {
        let query =
            ListQuery::parse(0, "", "", "create_time desc, display_name", ALLOWED).expect("parse");
        assert_eq!(query.limit, DEFAULT_PAGE_SIZE);
        assert_eq!(
            query.order_by,
            vec![
                ("create_time".to_owned(), Direction::Desc),
                ("display_name".to_owned(), Direction::Asc),
                ("name".to_owned(), Direction::Asc)
            ]
        );
        assert!(ListQuery::parse(0, "", "", "secret", ALLOWED).is_err());
        assert!(ListQuery::parse(0, "", "", "name sideways", ALLOWED).is_err());
    }

    #[test]
    fn page_tokens_continue_the_same_query_only() {
        let first = ListQuery::parse(2, "", "git", "name", ALLOWED).expect("parse");
        let token = first.next_page_token(2, 5);
        let second = ListQuery::parse(2, &token, "git", "name", ALLOWED).expect("parse");
        assert_eq!(second.offset, 2);
        assert!(ListQuery::parse(2, &token, "other", "name", ALLOWED).is_err());
        assert!(ListQuery::parse(2, "garbage!", "git", "name", ALLOWED).is_err());
        assert_eq!(second.next_page_token(3, 5), "");
    }
}
