use super::*;

fn sample() -> Vec<u8> {
    let mut frame = header("k1", &[7; NONCE_LEN], 3);
    frame.extend_from_slice(b"abc");
    frame.extend_from_slice(&[9; TAG_LEN]);
    frame
}

#[test]
fn layout_is_version_key_id_nonce_ciphertext_tag() {
    let frame = sample();
    assert_eq!(&frame[..4], &[FORMAT_VERSION, 2, b'k', b'1']);
    assert_eq!(&frame[4..16], &[7; NONCE_LEN]);
    assert_eq!(&frame[16..19], b"abc");
    assert_eq!(&frame[19..], &[9; TAG_LEN]);
}

#[test]
fn parse_splits_the_parts() {
    let frame = sample();
    let parsed = Frame::parse(&frame).expect("valid frame");
    assert_eq!(parsed.key_id, "k1");
    assert_eq!(parsed.nonce, [7; NONCE_LEN]);
    assert_eq!(parsed.ciphertext, b"abc");
    assert_eq!(parsed.tag, [9; TAG_LEN]);
    assert_eq!(Frame::key_id(&frame).expect("valid header"), "k1");
}

#[test]
fn empty_ciphertext_is_allowed() {
    let mut frame = header("k1", &[0; NONCE_LEN], 0);
    frame.extend_from_slice(&[0; TAG_LEN]);
    assert!(
        Frame::parse(&frame)
            .expect("valid frame")
            .ciphertext
            .is_empty()
    );
}

#[test]
fn every_truncation_is_an_error() {
    let frame = sample();
    let header_only = 2 + 2 + NONCE_LEN + TAG_LEN;
    for len in 0..header_only {
        assert!(
            matches!(
                Frame::parse(&frame[..len]),
                Err(VaultError::Malformed { .. })
            ),
            "prefix of {len} bytes"
        );
    }
}

#[test]
fn unknown_version_is_rejected() {
    let mut frame = sample();
    frame[0] = 2;
    assert!(matches!(
        Frame::parse(&frame),
        Err(VaultError::Malformed {
            reason: "unsupported format version"
        })
    ));
}

#[test]
fn key_id_must_be_valid() {
    let mut frame = sample();
    frame[2] = b'/';
    assert!(matches!(
        Frame::key_id(&frame),
        Err(VaultError::Malformed {
            reason: "key id is not valid"
        })
    ));
    let mut frame = sample();
    frame[1] = 0;
    assert!(Frame::key_id(&frame).is_err());
}
