//! RFC 7748's test vectors (§5.2 and §6.1) and its iterated test, against `x25519` — the
//! ARMv6 assembly on the Pi Zero's target (run under `qemu-arm -cpu arm1176` by
//! `scripts/meter --check`), x25519-dalek elsewhere — and against the portable reference.
//!
//! The iterated test runs 1,000 iterations; `VBZKEY_X25519_ITERATIONS=1000000` runs the
//! RFC's million as well (recorded in docs/PERFORMANCE.md).

use vbzkey_x25519::{BASEPOINT, portable, x25519, x25519_base};

fn h(s: &str) -> [u8; 32] {
    let v: Vec<u8> =
        (0..64).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect();
    v.try_into().unwrap()
}

#[test]
fn rfc7748_section_5_2_vectors() {
    let cases = [
        (
            "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
            "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
            "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
        ),
        (
            "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
            // The top bit of this u is set: it must be masked.
            "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
            "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
        ),
    ];
    for (k, u, out) in cases {
        assert_eq!(x25519(&h(k), &h(u)), h(out));
        assert_eq!(portable(&h(k), &h(u)), h(out));
    }
}

#[test]
fn rfc7748_section_6_1_diffie_hellman() {
    let a = h("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    let a_pub = h("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    let b = h("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
    let b_pub = h("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
    let shared = h("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
    assert_eq!(x25519_base(&a), a_pub);
    assert_eq!(x25519_base(&b), b_pub);
    assert_eq!(x25519(&a, &b_pub), shared);
    assert_eq!(x25519(&b, &a_pub), shared);
}

/// RFC 7748 §5.2: k = u = 9; repeatedly (k, u) = (X25519(k, u), k).
#[test]
fn rfc7748_iterated() {
    let n: u32 =
        std::env::var("VBZKEY_X25519_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let (mut k, mut u) = (BASEPOINT, BASEPOINT);
    for i in 1..=n {
        let out = x25519(&k, &u);
        u = k;
        k = out;
        let want = match i {
            1 => "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079",
            1_000 => "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51",
            1_000_000 => "7c3911e0ab2586fd864497297e575e6f3bc601c0883c30df5f4dd2d24f665424",
            _ => continue,
        };
        assert_eq!(k, h(want), "after {i} iterations");
        println!("rfc7748 iterated: {i} iterations ok");
    }
}
