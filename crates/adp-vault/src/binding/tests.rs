use super::*;

#[test]
fn constructors_fill_the_expected_fields() {
    let secret = Binding::secret("github-client-secret");
    assert_eq!(secret.kind, RecordKind::Secret);
    assert_eq!((secret.issuer, secret.subject), ("", ""));
    assert_eq!(secret.provider, "github-client-secret");

    let tokens = Binding::token_set("https://idp", "alice", "github");
    assert_eq!(tokens.kind, RecordKind::TokenSet);
    assert_eq!(
        (tokens.issuer, tokens.subject, tokens.provider),
        ("https://idp", "alice", "github")
    );
    assert_eq!(
        Binding::request_state("i", "s", "p").kind,
        RecordKind::RequestState
    );
}

#[test]
fn field_boundaries_cannot_be_shifted() {
    // naive concatenation would make these two equal
    let a = Binding::token_set("ab", "c", "d").associated_data("k1");
    let b = Binding::token_set("a", "bc", "d").associated_data("k1");
    assert_ne!(a, b);
    let c = Binding::token_set("a", "b", "cd").associated_data("k1");
    let d = Binding::token_set("a", "bc", "d").associated_data("k1");
    assert_ne!(c, d);
}

#[test]
fn kind_and_key_id_are_part_of_the_associated_data() {
    let tokens = Binding::token_set("i", "s", "p");
    let state = Binding::request_state("i", "s", "p");
    assert_ne!(tokens.associated_data("k1"), state.associated_data("k1"));
    assert_ne!(tokens.associated_data("k1"), tokens.associated_data("k2"));
}

#[test]
fn encoding_is_stable() {
    let ad = Binding::secret("x").associated_data("k");
    let mut expected = vec![1, 1];
    expected.extend_from_slice(&0u64.to_be_bytes());
    expected.extend_from_slice(&0u64.to_be_bytes());
    expected.extend_from_slice(&1u64.to_be_bytes());
    expected.push(b'x');
    expected.extend_from_slice(&[1, b'k']);
    assert_eq!(ad, expected);
}
