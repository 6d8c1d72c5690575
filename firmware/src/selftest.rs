//! Start-up self-test: known-answer tests of every primitive and of a full record, run before
//! the firmware serves. A miscompiled or bit-flipped build must refuse to handle keys.
// Known answers are constants of this file: decoding them cannot fail on input from outside.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::string_slice,
    reason = "constant known-answer vectors"
)]

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;
use vbzkey_protocol::SecretKey;
use vbzkey_protocol::record;

/// A failed known-answer test.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("self-test failed: {0}")]
pub struct SelfTestFailed(pub &'static str);

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("constant hex"))
        .collect()
}

/// RFC 7748 §5.2, first X25519 test vector.
fn x25519_kat() -> Result<(), SelfTestFailed> {
    let k: [u8; 32] = unhex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
        .try_into()
        .unwrap();
    let u: [u8; 32] = unhex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
        .try_into()
        .unwrap();
    // The X25519 the records use (on the Pi Zero, the ARMv6 assembly).
    let out = vbzkey_x25519::x25519(&k, &u);
    (out[..] == unhex("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")[..])
        .then_some(())
        .ok_or(SelfTestFailed("X25519 (RFC 7748)"))
}

/// RFC 5869 appendix A.1 (HKDF-SHA256 test case 1).
fn hkdf_kat() -> Result<(), SelfTestFailed> {
    let ikm = [0x0bu8; 22];
    let salt = unhex("000102030405060708090a0b0c");
    let info = unhex("f0f1f2f3f4f5f6f7f8f9");
    let mut okm = [0u8; 42];
    Hkdf::<Sha256>::new(Some(&salt), &ikm)
        .expand(&info, &mut okm)
        .map_err(|_| SelfTestFailed("HKDF expand"))?;
    let want = unhex(
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
    );
    (okm[..] == want[..]).then_some(()).ok_or(SelfTestFailed("HKDF-SHA256 (RFC 5869)"))
}

/// RFC 8439 §2.8.2 (ChaCha20-Poly1305 AEAD).
fn chacha_kat() -> Result<(), SelfTestFailed> {
    let key: [u8; 32] = unhex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
        .try_into()
        .unwrap();
    let nonce: [u8; 12] = unhex("070000004041424344454647").try_into().unwrap();
    let aad = unhex("50515253c0c1c2c3c4c5c6c7");
    let mut buf = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.".to_vec();
    let cipher = ChaCha20Poly1305::new(&Key::from(key));
    let tag = cipher
        .encrypt_inout_detached(&Nonce::from(nonce), &aad, buf.as_mut_slice().into())
        .map_err(|_| SelfTestFailed("ChaCha20-Poly1305 encrypt"))?;
    let want_ct = unhex(
        "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b\
         1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc\
         3ff4def08e4b7a9de576d26586cec64b6116",
    );
    let want_tag = unhex("1ae10b594f09e26a7e902ecbd0600691");
    (buf == want_ct && tag[..] == want_tag[..])
        .then_some(())
        .ok_or(SelfTestFailed("ChaCha20-Poly1305 (RFC 8439)"))
}

/// The first good record of the project's test kit opened for real (the known answer of
/// decapsulation, the key schedule and the AEAD), then a record sealed with the OS RNG and
/// opened again. The kit's fixed ephemeral key is not reproduced here: the release build has
/// no way to seal with a chosen ephemeral key (`dangerous-fixed-ephemeral` is test-only).
fn record_kat() -> Result<(), SelfTestFailed> {
    const KIT: &str = "vk1.VksBATjh3t0UxEmTpOCSkrZRwni5dyxWn1-puxPZBrRqtoyd-dwrRAn4ogmpLyATngCoIgmsGmRHWg3I9qz9eQJMy7aSJ9qmu8a7IA";
    let key = SecretKey::derive(b"vbzkey test kit recipient key v1");
    let ctx = b"cust_cards/1001/card_number";
    let kit = record::from_text(KIT).map_err(|_| SelfTestFailed("record text form"))?;
    let pt = record::open(&key, ctx, &kit).map_err(|_| SelfTestFailed("record open"))?;
    if &pt[..] != b"4111111111111111" || record::open(&key, b"other", &kit).is_ok() {
        return Err(SelfTestFailed("record open (known answer)"));
    }
    let rec = record::seal(key.public_key(), ctx, b"4111111111111111")
        .map_err(|_| SelfTestFailed("record seal"))?;
    if rec.get(..12) != kit.get(..12) || rec.len() != kit.len() || rec == kit {
        return Err(SelfTestFailed("record seal (header, length, fresh ephemeral key)"));
    }
    let pt = record::open(&key, ctx, &rec).map_err(|_| SelfTestFailed("record round trip"))?;
    if &pt[..] != b"4111111111111111" {
        return Err(SelfTestFailed("record round trip"));
    }
    Ok(())
}

/// Run every known-answer test.
pub fn run() -> Result<(), SelfTestFailed> {
    x25519_kat()?;
    hkdf_kat()?;
    chacha_kat()?;
    record_kat()
}

#[cfg(test)]
mod tests {
    #[test]
    fn all_known_answer_tests_pass() {
        super::run().unwrap();
    }
}
