#![allow(clippy::unwrap_used)]

use secrecy::ExposeSecret;

use super::*;
use crate::RecordKind;

const ALICE: Binding<'static> = Binding {
    kind: RecordKind::TokenSet,
    issuer: "https://idp.example",
    subject: "alice",
    provider: "github",
};

fn vault() -> Vault {
    Vault::new(KeyRing::generate())
}

#[test]
fn round_trip() {
    let vault = vault();
    for plaintext in [&b""[..], b"x", b"refresh-token-value", &[0u8; 4096]] {
        let sealed = vault.seal(&ALICE, plaintext).unwrap();
        assert_eq!(vault.open(&ALICE, &sealed).unwrap().as_slice(), plaintext);
    }
}

#[test]
fn string_round_trip() {
    let vault = vault();
    let binding = Binding::secret("github-client-secret");
    let sealed = vault.seal_str(&binding, "s3cr3t").unwrap();
    assert_eq!(
        vault
            .open_string(&binding, &sealed)
            .unwrap()
            .expose_secret(),
        "s3cr3t"
    );
}

#[test]
fn open_string_rejects_non_utf8() {
    let vault = vault();
    let sealed = vault.seal(&ALICE, &[0xff, 0xfe]).unwrap();
    assert!(matches!(
        vault.open_string(&ALICE, &sealed),
        Err(VaultError::NotUtf8)
    ));
}

#[test]
fn ciphertext_does_not_contain_the_plaintext() {
    let vault = vault();
    let sealed = vault.seal(&ALICE, b"plain-text-marker").unwrap();
    assert!(!sealed.windows(5).any(|window| window == b"plain"));
}

#[test]
fn flipping_any_bit_fails_to_open() {
    let vault = vault();
    let sealed = vault.seal(&ALICE, b"token").unwrap();
    for byte in 0..sealed.len() {
        for bit in 0..8 {
            let mut tampered = sealed.clone();
            tampered[byte] ^= 1 << bit;
            assert!(
                vault.open(&ALICE, &tampered).is_err(),
                "bit {bit} of byte {byte}"
            );
        }
    }
}

#[test]
fn other_binding_fails_to_open() {
    let vault = vault();
    let sealed = vault.seal(&ALICE, b"token").unwrap();
    let others = [
        Binding {
            subject: "bob",
            ..ALICE
        },
        Binding {
            provider: "gitlab",
            ..ALICE
        },
        Binding {
            issuer: "https://other-idp.example",
            ..ALICE
        },
        Binding {
            kind: RecordKind::RequestState,
            ..ALICE
        },
        Binding {
            kind: RecordKind::Secret,
            ..ALICE
        },
    ];
    for other in others {
        assert!(
            matches!(vault.open(&other, &sealed), Err(VaultError::OpenFailed)),
            "{other:?}"
        );
    }
}

#[test]
fn two_seals_of_the_same_value_differ() {
    let vault = vault();
    let first = vault.seal(&ALICE, b"token").unwrap();
    let second = vault.seal(&ALICE, b"token").unwrap();
    assert_ne!(first, second);
    let nonce = |sealed: &[u8]| Frame::parse(sealed).unwrap().nonce;
    assert_ne!(nonce(&first), nonce(&second));
}

#[test]
fn frame_names_the_primary_key() {
    let vault = vault();
    let sealed = vault.seal(&ALICE, b"token").unwrap();
    assert_eq!(
        Vault::key_id_of(&sealed).unwrap(),
        vault.key_ring().primary_id()
    );
    assert!(!vault.needs_rewrap(&sealed));
    assert_eq!(sealed[0], frame::FORMAT_VERSION);
    assert_eq!(
        sealed.len(),
        2 + vault.key_ring().primary_id().len() + 12 + b"token".len() + 16
    );
}

#[test]
fn old_values_open_after_rotation_and_rewrap() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault-keys.json");
    let before = Vault::new(KeyRing::load_or_generate(&path).unwrap().0);
    let old_key_id = before.key_ring().primary_id().to_owned();
    let sealed = before.seal(&ALICE, b"token").unwrap();

    let after = Vault::new(KeyRing::rotate(&path).unwrap());
    assert_ne!(after.key_ring().primary_id(), old_key_id);
    assert_eq!(after.open(&ALICE, &sealed).unwrap().as_slice(), b"token");
    assert!(after.needs_rewrap(&sealed));

    let rewrapped = after.rewrap(&ALICE, &sealed).unwrap();
    assert_eq!(
        Vault::key_id_of(&rewrapped).unwrap(),
        after.key_ring().primary_id()
    );
    assert!(!after.needs_rewrap(&rewrapped));
    assert_eq!(after.open(&ALICE, &rewrapped).unwrap().as_slice(), b"token");

    // the re-wrapped value is bound to the same record
    let bob = Binding {
        subject: "bob",
        ..ALICE
    };
    assert!(matches!(
        after.open(&bob, &rewrapped),
        Err(VaultError::OpenFailed)
    ));
    // and cannot be re-wrapped under the wrong binding
    assert!(after.rewrap(&bob, &sealed).is_err());
}

#[test]
fn unknown_key_id_is_reported() {
    let sealed = vault().seal(&ALICE, b"token").unwrap();
    let sealing_key = Vault::key_id_of(&sealed).unwrap().to_owned();
    let other = vault();
    match other.open(&ALICE, &sealed) {
        Err(VaultError::UnknownKey { key_id }) => assert_eq!(key_id, sealing_key),
        result => panic!("expected an unknown key, got {result:?}"),
    }
}

#[test]
fn same_key_id_with_other_bytes_fails_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, key: &str| {
        let path = dir.path().join(name);
        let content = format!(r#"{{"primary":"k1","keys":[{{"id":"k1","key":"{key}"}}]}}"#);
        std::fs::write(&path, content).unwrap();
        Vault::new(KeyRing::load(&path).unwrap())
    };
    let first = write("a.json", "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=");
    let second = write("b.json", "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=");
    let sealed = first.seal(&ALICE, b"token").unwrap();
    assert!(matches!(
        second.open(&ALICE, &sealed),
        Err(VaultError::OpenFailed)
    ));
}

#[test]
fn truncated_frames_are_errors_not_panics() {
    let vault = vault();
    let sealed = vault.seal(&ALICE, b"token").unwrap();
    for len in 0..sealed.len() {
        assert!(vault.open(&ALICE, &sealed[..len]).is_err(), "{len} bytes");
        assert!(vault.rewrap(&ALICE, &sealed[..len]).is_err(), "{len} bytes");
        assert!(!vault.needs_rewrap(&sealed[..len]) || len > 2);
    }
    assert!(matches!(
        vault.open(&ALICE, &[]),
        Err(VaultError::Malformed { .. })
    ));
    assert!(Vault::key_id_of(&[]).is_err());
}

#[test]
fn garbage_is_malformed_and_not_in_need_of_rewrap() {
    let vault = vault();
    for garbage in [
        &b""[..],
        b"\x00",
        b"\x01\x00",
        b"plain text row",
        &[0xff; 64],
    ] {
        assert!(vault.open(&ALICE, garbage).is_err());
        assert!(!vault.needs_rewrap(garbage));
    }
}

#[test]
fn errors_do_not_reveal_plaintext() {
    let vault = vault();
    let mut sealed = vault.seal(&ALICE, b"very-secret-token").unwrap();
    let last = sealed.len() - 1;
    sealed[last] ^= 1;
    let error = vault.open(&ALICE, &sealed).unwrap_err();
    assert_eq!(
        error.to_string(),
        "could not open: wrong key, wrong binding or tampered data"
    );
    assert!(!format!("{error:?}").contains("secret"));
}

#[test]
fn debug_shows_key_ids_only() {
    let vault = vault();
    let debug = format!("{vault:?}");
    let primary = vault.key_ring().primary_id();
    assert_eq!(
        debug,
        format!(r#"Vault {{ keys: KeyRing {{ primary: "{primary}", key_ids: ["{primary}"] }} }}"#)
    );
}
