//! RFC 9180 HPKE for exactly one suite, base mode, single-shot: DHKEM(X25519, HKDF-SHA256),
//! HKDF-SHA256, ChaCha20Poly1305.
//!
//! Written on the primitives rather than a generic HPKE crate so that every intermediate value
//! the RFC publishes (shared secret, key schedule context, secret, key, base nonce) can be
//! checked against the RFC's own vectors, and so the code a reviewer must read is this page.

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag};
use hkdf::{Hkdf, HkdfExtract};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use x25519_dalek::StaticSecret;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Length of an X25519 public key, private key, DH output and of `Nh` for HKDF-SHA256.
pub(crate) const N: usize = 32;
/// `Nn`: ChaCha20Poly1305 nonce length.
pub(crate) const NONCE_LEN: usize = 12;
/// `Nt`: ChaCha20Poly1305 tag length.
pub(crate) const TAG_LEN: usize = 16;

const HPKE_V1: &[u8] = b"HPKE-v1";
/// `suite_id` of the KEM: "KEM" ‖ I2OSP(0x0020, 2).
const KEM_SUITE_ID: &[u8] = b"KEM\x00\x20";
/// `suite_id` of the whole HPKE suite: "HPKE" ‖ kem 0x0020 ‖ kdf 0x0001 ‖ aead 0x0003.
const HPKE_SUITE_ID: &[u8] = b"HPKE\x00\x20\x00\x01\x00\x03";
const MODE_BASE: u8 = 0x00;

/// The DH step produced the all-zero value: the peer's public key is a low-order point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LowOrderPoint;

/// The AEAD tag did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TagMismatch;

fn labeled_extract(suite_id: &[u8], salt: &[u8], label: &[u8], ikm: &[u8]) -> Zeroizing<[u8; N]> {
    let mut ext = HkdfExtract::<Sha256>::new(Some(salt));
    ext.input_ikm(HPKE_V1);
    ext.input_ikm(suite_id);
    ext.input_ikm(label);
    ext.input_ikm(ikm);
    let (prk, _) = ext.finalize();
    let mut out = Zeroizing::new([0u8; N]);
    out.copy_from_slice(&prk);
    out
}

#[allow(
    clippy::expect_used,
    reason = "every call site passes a 32-byte PRK and asks for at most 32 bytes: constants"
)]
fn labeled_expand(suite_id: &[u8], prk: &[u8; N], label: &[u8], info: &[u8], out: &mut [u8]) {
    let hk = Hkdf::<Sha256>::from_prk(prk).expect("a PRK of Nh bytes is always valid");
    let len = u16::try_from(out.len()).expect("HPKE outputs here are at most 32 bytes");
    hk.expand_multi_info(&[&len.to_be_bytes(), HPKE_V1, suite_id, label, info], out)
        .expect("HPKE outputs here are far below 255 * Nh");
}

/// DeriveKeyPair(ikm) for DHKEM(X25519, HKDF-SHA256): returns the private key bytes.
pub(crate) fn derive_private_key(ikm: &[u8]) -> Zeroizing<[u8; N]> {
    let prk = labeled_extract(KEM_SUITE_ID, b"", b"dkp_prk", ikm);
    let mut sk = Zeroizing::new([0u8; N]);
    labeled_expand(KEM_SUITE_ID, &prk, b"sk", b"", &mut sk[..]);
    sk
}

/// DH(sk, pk) = X25519(sk, pk), refusing the all-zero output of a low-order `pk` (RFC 9180
/// §7.1.4), compared in constant time. X25519 is vbzkey-x25519's: the ARMv6 assembly on the
/// Pi Zero, x25519-dalek elsewhere.
fn dh(sk: &StaticSecret, pk: &[u8; N]) -> Result<Zeroizing<[u8; N]>, LowOrderPoint> {
    let shared = Zeroizing::new(vbzkey_x25519::x25519(sk.as_bytes(), pk));
    if bool::from(shared.ct_eq(&[0u8; N])) {
        return Err(LowOrderPoint);
    }
    Ok(shared)
}

/// ExtractAndExpand(dh, kem_context) with kem_context = enc ‖ pkR.
fn extract_and_expand(dh: &[u8; N], enc: &[u8; N], pk_r: &[u8; N]) -> Zeroizing<[u8; N]> {
    let eae_prk = labeled_extract(KEM_SUITE_ID, b"", b"eae_prk", dh);
    let mut kem_context = [0u8; 2 * N];
    kem_context[..N].copy_from_slice(enc);
    kem_context[N..].copy_from_slice(pk_r);
    let mut shared_secret = Zeroizing::new([0u8; N]);
    labeled_expand(KEM_SUITE_ID, &eae_prk, b"shared_secret", &kem_context, &mut shared_secret[..]);
    shared_secret
}

/// Encap(pkR) with a caller-supplied ephemeral private key (deterministic; the caller draws it
/// from a CSPRNG). Returns (shared_secret, enc).
pub(crate) fn encap(
    sk_e: &StaticSecret,
    pk_r: &[u8; N],
) -> Result<(Zeroizing<[u8; N]>, [u8; N]), LowOrderPoint> {
    let enc = vbzkey_x25519::x25519_base(sk_e.as_bytes());
    let dh = dh(sk_e, pk_r)?;
    Ok((extract_and_expand(&dh, &enc, pk_r), enc))
}

/// Decap(enc, skR); `pk_r` is passed in because the recipient already knows it.
pub(crate) fn decap(
    enc: &[u8; N],
    sk_r: &StaticSecret,
    pk_r: &[u8; N],
) -> Result<Zeroizing<[u8; N]>, LowOrderPoint> {
    let dh = dh(sk_r, enc)?;
    Ok(extract_and_expand(&dh, enc, pk_r))
}

/// `key_schedule_context` = mode ‖ psk_id_hash ‖ info_hash for base mode. Records use a
/// precomputed constant (their `info` never changes, and they are opened by the thousand); key
/// transfers compute theirs, once per clone.
pub(crate) fn key_schedule_context(info: &[u8]) -> [u8; 1 + 2 * N] {
    let psk_id_hash = labeled_extract(HPKE_SUITE_ID, b"", b"psk_id_hash", b"");
    let info_hash = labeled_extract(HPKE_SUITE_ID, b"", b"info_hash", info);
    let bytes = core::iter::once(MODE_BASE)
        .chain(psk_id_hash.iter().copied())
        .chain(info_hash.iter().copied());
    let mut ctx = [0u8; 1 + 2 * N];
    for (c, b) in ctx.iter_mut().zip(bytes) {
        *c = b;
    }
    ctx
}

/// The encryption context produced by the key schedule.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct Context {
    key: [u8; N],
    base_nonce: [u8; NONCE_LEN],
    seq: u64,
}

impl Context {
    /// KeySchedule(mode_base, shared_secret, info) given a precomputed key schedule context.
    pub(crate) fn new(shared_secret: &[u8; N], ks_context: &[u8; 1 + 2 * N]) -> Self {
        // psk = "" in base mode.
        let secret = labeled_extract(HPKE_SUITE_ID, shared_secret, b"secret", b"");
        let mut ctx = Context { key: [0; N], base_nonce: [0; NONCE_LEN], seq: 0 };
        labeled_expand(HPKE_SUITE_ID, &secret, b"key", ks_context, &mut ctx.key);
        labeled_expand(HPKE_SUITE_ID, &secret, b"base_nonce", ks_context, &mut ctx.base_nonce);
        ctx
    }

    #[allow(
        clippy::expect_used,
        reason = "a record uses sequence 0 only; wrapping the nonce would be worse than stopping"
    )]
    fn next_nonce(&mut self) -> Nonce {
        let mut nonce = self.base_nonce;
        for (n, s) in nonce[NONCE_LEN - 8..].iter_mut().zip(self.seq.to_be_bytes()) {
            *n ^= s;
        }
        // A single-shot record uses sequence 0 only; the RFC vectors exercise larger ones.
        // u64 cannot reach the RFC's 2^96 - 1 limit in practice, but never wrap silently.
        self.seq = self.seq.checked_add(1).expect("HPKE sequence number overflow");
        Nonce::from(nonce)
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(&Key::from(self.key))
    }

    /// Seal `buf` in place; returns the tag to append.
    #[allow(
        clippy::expect_used,
        reason = "ChaCha20Poly1305 fails only above 256 GiB; records are at most 4096 bytes"
    )]
    pub(crate) fn seal_in_place(&mut self, aad: &[u8], buf: &mut [u8]) -> [u8; TAG_LEN] {
        let nonce = self.next_nonce();
        let tag = self
            .cipher()
            .encrypt_inout_detached(&nonce, aad, buf.into())
            .expect("ChaCha20Poly1305 accepts any message below 256 GiB");
        tag.into()
    }

    /// Open `buf` in place against `tag`; on failure `buf` is zeroed so no partial plaintext
    /// can leak to a caller that ignores the error.
    pub(crate) fn open_in_place(
        &mut self,
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), TagMismatch> {
        let nonce = self.next_nonce();
        let result =
            self.cipher().decrypt_inout_detached(&nonce, aad, buf.into(), &Tag::from(*tag));
        result.map_err(|_| {
            buf.zeroize();
            TagMismatch
        })
    }

    #[cfg(test)]
    pub(crate) fn key(&self) -> &[u8; N] {
        &self.key
    }

    #[cfg(test)]
    pub(crate) fn base_nonce(&self) -> &[u8; NONCE_LEN] {
        &self.base_nonce
    }
}

#[cfg(test)]
mod tests {
    //! The RFC 9180 appendix A.2 vectors (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
    //! ChaCha20Poly1305), base mode, checked byte for byte.
    use super::*;
    use alloc::vec::Vec;

    const VECTORS: &str =
        include_str!("../tests/vectors/rfc9180-a2-x25519-sha256-chacha20poly1305.json");

    fn hex(s: &serde_json::Value) -> Vec<u8> {
        let s = s.as_str().expect("hex string");
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn arr(s: &serde_json::Value) -> [u8; N] {
        hex(s).try_into().expect("32 bytes")
    }

    fn base_vectors() -> Vec<serde_json::Value> {
        let all: Vec<serde_json::Value> = serde_json::from_str(VECTORS).unwrap();
        let base: Vec<_> = all
            .into_iter()
            .filter(|v| {
                v["mode"] == 0 && v["kem_id"] == 32 && v["kdf_id"] == 1 && v["aead_id"] == 3
            })
            .collect();
        assert!(!base.is_empty(), "the vector file must contain the base-mode block");
        base
    }

    #[test]
    fn rfc9180_derive_key_pair() {
        for v in base_vectors() {
            for (ikm, sk, pk) in [("ikmE", "skEm", "pkEm"), ("ikmR", "skRm", "pkRm")] {
                let derived = derive_private_key(&hex(&v[ikm]));
                assert_eq!(&derived[..], &hex(&v[sk])[..], "{sk}");
                let public = vbzkey_x25519::x25519_base(&derived);
                assert_eq!(public, arr(&v[pk]), "{pk}");
            }
        }
    }

    #[test]
    fn rfc9180_encap_decap_and_key_schedule() {
        for v in base_vectors() {
            let sk_e = StaticSecret::from(arr(&v["skEm"]));
            let sk_r = StaticSecret::from(arr(&v["skRm"]));
            let pk_r = arr(&v["pkRm"]);
            let (shared, enc) = encap(&sk_e, &pk_r).unwrap();
            assert_eq!(enc, arr(&v["enc"]), "enc");
            assert_eq!(&shared[..], &hex(&v["shared_secret"])[..], "shared_secret");
            let shared_r = decap(&enc, &sk_r, &pk_r).unwrap();
            assert_eq!(&shared_r[..], &shared[..], "decap");

            let ksc = key_schedule_context(&hex(&v["info"]));
            assert_eq!(&ksc[..], &hex(&v["key_schedule_context"])[..], "key_schedule_context");
            let secret = labeled_extract(HPKE_SUITE_ID, &shared[..], b"secret", b"");
            assert_eq!(&secret[..], &hex(&v["secret"])[..], "secret");
            let ctx = Context::new(&shared, &ksc);
            assert_eq!(&ctx.key()[..], &hex(&v["key"])[..], "key");
            assert_eq!(&ctx.base_nonce()[..], &hex(&v["base_nonce"])[..], "base_nonce");
        }
    }

    #[test]
    fn rfc9180_encryptions() {
        for v in base_vectors() {
            let shared = hex(&v["shared_secret"]).try_into().unwrap();
            let ksc = key_schedule_context(&hex(&v["info"]));
            let encs = v["encryptions"].as_array().unwrap();
            assert!(encs.len() >= 2);
            for e in encs {
                let seq = e["sequence_number"].as_u64().unwrap();
                let (pt, aad, ct) = (hex(&e["pt"]), hex(&e["aad"]), hex(&e["ct"]));

                let mut sender = Context::new(&shared, &ksc);
                sender.seq = seq;
                let mut buf = pt.clone();
                let tag = sender.seal_in_place(&aad, &mut buf);
                buf.extend_from_slice(&tag);
                assert_eq!(buf, ct, "ct at sequence {seq}");

                let mut receiver = Context::new(&shared, &ksc);
                receiver.seq = seq;
                let (body, tag) = ct.split_at(ct.len() - TAG_LEN);
                let mut body = body.to_vec();
                receiver.open_in_place(&aad, &mut body, tag.try_into().unwrap()).unwrap();
                assert_eq!(body, pt, "pt at sequence {seq}");
            }
        }
    }

    #[test]
    fn all_zero_shared_secret_is_refused() {
        let sk = StaticSecret::from([7u8; N]);
        // The identity (u = 0) is a low-order point: X25519 gives all zeros.
        assert_eq!(encap(&sk, &[0u8; N]).err(), Some(LowOrderPoint));
        assert_eq!(decap(&[0u8; N], &sk, &[1u8; N]).err(), Some(LowOrderPoint));
    }

    #[test]
    fn failed_open_leaves_no_plaintext() {
        let ksc = key_schedule_context(b"x");
        let mut ctx = Context::new(&[9u8; N], &ksc);
        let mut buf = *b"secret value";
        let tag = ctx.seal_in_place(b"", &mut buf);
        let mut bad_tag = tag;
        bad_tag[0] ^= 1;
        let mut ctx = Context::new(&[9u8; N], &ksc);
        assert_eq!(ctx.open_in_place(b"", &mut buf, &bad_tag), Err(TagMismatch));
        assert_eq!(buf, [0u8; 12]);
    }
}
