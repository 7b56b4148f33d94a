//! Scope sets as RFC 6749 §3.3 defines them: space-separated, order-free tokens.

/// Scopes in `required` that `granted` lacks, in the order `required` lists them.
pub fn missing<'a>(required: &[&'a str], granted: &[&str]) -> Vec<&'a str> {
    required
        .iter()
        .copied()
        .filter(|scope| !granted.contains(scope))
        .collect()
}

/// The union of two scope lists, without duplicates, first-seen order kept.
pub fn union(a: &[String], b: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(a.len() + b.len());
    for scope in a.iter().chain(b) {
        if !out.contains(scope) {
            out.push(scope.clone());
        }
    }
    out
}

/// Parses a `scope` parameter value.
pub fn parse(value: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for scope in value.split(' ').filter(|s| !s.is_empty()) {
        if !out.iter().any(|s| s == scope) {
            out.push(scope.to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_union_and_parse() {
        assert_eq!(missing(&["repo", "read:org"], &["repo"]), vec!["read:org"]);
        assert!(missing(&["repo"], &["repo", "x"]).is_empty());
        assert_eq!(
            union(&["a".into(), "b".into()], &["b".into(), "c".into()]),
            vec!["a", "b", "c"]
        );
        assert_eq!(parse(" a  b a "), vec!["a", "b"]);
    }
}
