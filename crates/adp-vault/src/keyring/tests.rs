#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::*;

/// base64 of 32 bytes of 0x41, so tests can look for it in output
const KEY_A: &str = "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=";
const KEY_B: &str = "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=";

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn write(path: &Path, content: &str) {
    fs::write(path, content).unwrap();
}

#[test]
fn generated_key_file_is_private_and_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/vault-keys.json");

    let (generated, was_generated) = KeyRing::load_or_generate(&path).unwrap();
    assert!(was_generated);
    assert_eq!(mode_of(&path), 0o600);
    assert_eq!(mode_of(path.parent().unwrap()), 0o700);

    let (loaded, was_generated) = KeyRing::load_or_generate(&path).unwrap();
    assert!(!was_generated);
    assert_eq!(loaded.primary_id(), generated.primary_id());
    assert_eq!(loaded.key_ids().count(), 1);
}

#[test]
fn generation_leaves_no_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault-keys.json");
    KeyRing::load_or_generate(&path).unwrap();
    KeyRing::rotate(&path).unwrap();
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names, ["vault-keys.json"]);
}

#[test]
fn generated_file_has_the_documented_shape() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault-keys.json");
    let (ring, _) = KeyRing::load_or_generate(&path).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(json["primary"], ring.primary_id());
    let entry = &json["keys"][0];
    assert_eq!(entry["id"], ring.primary_id());
    assert_eq!(entry["key"].as_str().unwrap().len(), 44);
    assert!(entry["created"].as_u64().unwrap() > 1_700_000_000);
}

#[test]
fn rotate_adds_a_primary_and_keeps_old_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault-keys.json");
    let (first, _) = KeyRing::load_or_generate(&path).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();

    let rotated = KeyRing::rotate(&path).unwrap();
    assert_ne!(rotated.primary_id(), first.primary_id());
    assert!(rotated.contains(first.primary_id()));
    assert_eq!(mode_of(&path), 0o600);

    let reloaded = KeyRing::load(&path).unwrap();
    assert_eq!(reloaded.primary_id(), rotated.primary_id());
    let ids: Vec<_> = reloaded.key_ids().collect();
    assert_eq!(ids, [rotated.primary_id(), first.primary_id()]);
}

#[test]
fn rotate_keeps_hand_written_keys_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault-keys.json");
    write(
        &path,
        &format!(r#"{{"primary":"old","keys":[{{"id":"old","key":"{KEY_A}"}}]}}"#),
    );
    KeyRing::rotate(&path).unwrap();
    let content = fs::read_to_string(&path).unwrap();
    assert!(content.contains(KEY_A));
    assert!(content.contains(r#""id": "old""#));
}

#[test]
fn rotate_refuses_a_malformed_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault-keys.json");
    let content = format!(r#"{{"primary":"gone","keys":[{{"id":"a","key":"{KEY_A}"}}]}}"#);
    write(&path, &content);
    assert!(KeyRing::rotate(&path).is_err());
    assert_eq!(fs::read_to_string(&path).unwrap(), content);
}

#[test]
fn loads_a_hand_written_file_with_several_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    write(
        &path,
        &format!(
            r#"{{"primary":"b","keys":[{{"id":"a","key":"{KEY_A}","created":1}},{{"id":"b","key":"{KEY_B}"}}]}}"#
        ),
    );
    let ring = KeyRing::load(&path).unwrap();
    assert_eq!(ring.primary_id(), "b");
    assert_eq!(ring.key_ids().collect::<Vec<_>>(), ["b", "a"]);
    assert!(ring.contains("a") && !ring.contains("c"));
}

#[test]
fn malformed_key_files_give_clear_errors() {
    let key = |id: &str, key: &str| format!(r#"{{"id":"{id}","key":"{key}"}}"#);
    let short = "QUFBQQ=="; // 4 bytes
    let long = "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"; // 36 bytes
    let cases = [
        ("{".to_owned(), "is not valid JSON"),
        ("[]".to_owned(), "does not have the expected shape"),
        (
            format!(r#"{{"keys":[{}]}}"#, key("a", KEY_A)),
            "missing field `primary`",
        ),
        (
            format!(
                r#"{{"primary":"a","keys":[{}],"extra":1}}"#,
                key("a", KEY_A)
            ),
            "unknown field `extra`",
        ),
        (r#"{"primary":"a","keys":[]}"#.to_owned(), "has no keys"),
        (
            format!(r#"{{"primary":"a","keys":[{}]}}"#, key("a", short)),
            "key \"a\" is 4 bytes, expected exactly 32",
        ),
        (
            format!(r#"{{"primary":"a","keys":[{}]}}"#, key("a", long)),
            "key \"a\" is 36 bytes, expected exactly 32",
        ),
        (
            format!(
                r#"{{"primary":"a","keys":[{}]}}"#,
                key("a", &"QUFB".repeat(30))
            ),
            "key \"a\" is longer than 32 bytes",
        ),
        (
            format!(r#"{{"primary":"a","keys":[{}]}}"#, key("a", "not base64!")),
            "key \"a\" is not valid base64",
        ),
        (
            format!(r#"{{"primary":"z","keys":[{}]}}"#, key("a", KEY_A)),
            "primary key \"z\" is not among the keys",
        ),
        (
            format!(
                r#"{{"primary":"a","keys":[{},{}]}}"#,
                key("a", KEY_A),
                key("a", KEY_B)
            ),
            "duplicate key id \"a\"",
        ),
        (
            format!(r#"{{"primary":"a","keys":[{}]}}"#, key("a/b", KEY_A)),
            "keys[0]: id is not valid",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    for (content, expected) in cases {
        write(&path, &content);
        let error = KeyRing::load(&path).unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, VaultError::KeyFile { .. }), "{message}");
        assert!(message.contains(expected), "{message:?} lacks {expected:?}");
        assert!(message.contains(&*path.to_string_lossy()), "{message}");
        assert!(
            !message.contains("QUFB") && !message.contains("QkJC"),
            "{message}"
        );
    }
}

#[test]
fn a_misplaced_key_is_never_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    let cases = [
        format!(r#"{{"primary":"a","keys":[{{"id":"{KEY_A}","key":"{KEY_B}"}}]}}"#),
        format!(r#"{{"primary":"{KEY_A}","keys":[{{"id":"a","key":"{KEY_B}"}}]}}"#),
        format!(r#"{{"primary":"a","keys":[{{"id":"a","key":"{KEY_B}","created":"{KEY_A}"}}]}}"#),
        format!(r#"{{"primary":"a","keys":[{{"id":"a","key":1}}],"x":"{KEY_A}"}}"#),
    ];
    for content in cases {
        write(&path, &content);
        let message = KeyRing::load(&path).unwrap_err().to_string();
        assert!(
            !message.contains("QUFB") && !message.contains("QkJC"),
            "{message}"
        );
    }
}

#[test]
fn missing_file_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.json");
    let error = KeyRing::load(&path).unwrap_err();
    assert!(matches!(error, VaultError::KeyFileIo { .. }));
    assert!(error.to_string().starts_with("key file "), "{error}");
    assert!(error.to_string().contains("could not read it"), "{error}");
    assert!(matches!(
        KeyRing::rotate(&path),
        Err(VaultError::KeyFileIo { .. })
    ));
}

#[test]
fn a_file_readable_by_others_still_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    write(
        &path,
        &format!(r#"{{"primary":"a","keys":[{{"id":"a","key":"{KEY_A}"}}]}}"#),
    );
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    // logs a warning; the file itself is not changed by loading
    assert!(KeyRing::load_or_generate(&path).is_ok());
    assert_eq!(mode_of(&path), 0o644);
}

#[test]
fn debug_shows_key_ids_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    write(
        &path,
        &format!(
            r#"{{"primary":"b","keys":[{{"id":"a","key":"{KEY_A}"}},{{"id":"b","key":"{KEY_B}"}}]}}"#
        ),
    );
    let ring = KeyRing::load(&path).unwrap();
    assert_eq!(
        format!("{ring:?}"),
        r#"KeyRing { primary: "b", key_ids: ["b", "a"] }"#
    );
    let pretty = format!("{ring:#?}");
    assert!(
        !pretty.contains("65") && !pretty.contains("QUFB"),
        "{pretty}"
    );
}

#[test]
fn generated_ids_are_short_and_valid() {
    let ring = KeyRing::generate();
    assert_eq!(ring.primary_id().len(), 8);
    assert!(is_valid_key_id(ring.primary_id()));
}

#[test]
fn key_id_rules() {
    for valid in ["a", "k1", "2026-01.key_B", &"x".repeat(32)] {
        assert!(is_valid_key_id(valid), "{valid}");
    }
    for invalid in ["", "a b", "a/b", "é", &"x".repeat(33)] {
        assert!(!is_valid_key_id(invalid), "{invalid}");
    }
}

#[test]
fn ciphers_are_zeroized_on_drop() {
    fn assert_zeroize_on_drop<T: zeroize::ZeroizeOnDrop>() {}
    assert_zeroize_on_drop::<Aes256Gcm>();
}
