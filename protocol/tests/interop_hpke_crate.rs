//! The format is the spec, not this code: records sealed here open with an independent
//! RFC 9180 implementation (the `hpke` crate) given the documented `info` and `aad`, and
//! records it seals open here.

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
use vbzkey_protocol::SecretKey;
use vbzkey_protocol::record::{self, HEADER_LEN, INFO};

type K = X25519HkdfSha256;

fn recipient() -> SecretKey {
    SecretKey::derive(b"interop test recipient key seed, 32+ bytes")
}

#[test]
fn our_records_open_with_the_hpke_crate() {
    let sk = recipient();
    let their_sk = <K as Kem>::PrivateKey::from_bytes(&sk.to_bytes()[..]).unwrap();
    for (ctx, value) in
        [(&b"cust_cards/1/card_number"[..], "4111111111111111"), (b"", ""), (b"x", "Grüße ✓")]
    {
        let rec = record::seal(sk.public_key(), ctx, value.as_bytes()).unwrap();
        let (header, rest) = rec.split_at(HEADER_LEN);
        let (enc, ct) = rest.split_at(32);
        let aad = [header, ctx].concat();
        let enc = <K as Kem>::EncappedKey::from_bytes(enc).unwrap();
        let pt = hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, K>(
            &OpModeR::Base,
            &their_sk,
            &enc,
            INFO,
            ct,
            &aad,
        )
        .unwrap();
        assert_eq!(pt, value.as_bytes());
    }
}

#[test]
fn hpke_crate_records_open_here() {
    let sk = recipient();
    let their_pk = <K as Kem>::PublicKey::from_bytes(sk.public_key().as_bytes()).unwrap();
    let ctx = b"cust_phones/77/phone";
    let mut header = Vec::from(*b"VK\x01\x01");
    header.extend_from_slice(&sk.key_id().0);
    let aad = [&header[..], ctx].concat();
    let (enc, ct) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, K>(
        &OpModeS::Base,
        &their_pk,
        INFO,
        b"+14155550100",
        &aad,
    )
    .unwrap();
    let rec = [&header[..], &enc.to_bytes()[..], &ct[..]].concat();
    assert_eq!(&record::open(&sk, ctx, &rec).unwrap()[..], b"+14155550100");
    // And the same ciphertext under another context must not open.
    assert!(record::open(&sk, b"cust_phones/78/phone", &rec).is_err());
}

#[test]
fn derive_key_pair_agrees_with_the_hpke_crate() {
    let ikm = b"interop test recipient key seed, 32+ bytes";
    let (_, their_pk) = K::derive_keypair(ikm);
    let ours = SecretKey::derive(ikm);
    // Private key bytes may differ by X25519 clamping (the hpke crate stores them clamped);
    // the public key is the observable result of DeriveKeyPair.
    assert_eq!(&ours.public_key().as_bytes()[..], &their_pk.to_bytes()[..]);
}
