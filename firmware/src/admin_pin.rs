//! The optional admin PIN, separate from the staff PIN: an Argon2id verifier in its own file.
//!
//! `"VZAP" ‖ 0x01 ‖ m, t, p (u32 BE) ‖ salt (16) ‖ Argon2id(admin PIN, salt) (32) ‖ SHA-256 of
//! all before (32)`. The checksum tells damage from a wrong PIN. Wrong admin PINs count in the
//! same persistent counter as staff PINs, written before each comparison.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::keystore::KdfParams;

const MAGIC: &[u8; 4] = b"VZAP";
const LEN: usize = 4 + 1 + 12 + 16 + 32 + 32;

fn stretch(pin: &[u8], salt: &[u8; 16], kdf: KdfParams) -> Option<Zeroizing<[u8; 32]>> {
    let params = argon2::Params::new(kdf.m_kib, kdf.t, kdf.p, Some(32)).ok()?;
    let mut out = Zeroizing::new([0u8; 32]);
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into(pin, salt, &mut out[..])
        .ok()?;
    Some(out)
}

/// The file for `pin`.
pub fn make(pin: &[u8], salt: [u8; 16], kdf: KdfParams) -> Vec<u8> {
    let mut out = Vec::with_capacity(LEN);
    out.extend_from_slice(MAGIC);
    out.push(1);
    for v in [kdf.m_kib, kdf.t, kdf.p] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(&salt);
    out.extend_from_slice(
        &stretch(pin, &salt, kdf).expect("parameters from the config are valid")[..],
    );
    let sum = Sha256::digest(&out);
    out.extend_from_slice(&sum);
    out
}

/// Whether `pin` is the admin PIN; `None` if the file is damaged.
pub fn verify(file: &[u8], pin: &[u8]) -> Option<bool> {
    if file.len() != LEN
        || &file[..4] != MAGIC
        || file[4] != 1
        || Sha256::digest(&file[..LEN - 32])[..] != file[LEN - 32..]
    {
        return None;
    }
    let u = |i: usize| u32::from_be_bytes(file[i..i + 4].try_into().expect("4 bytes"));
    let kdf = KdfParams { m_kib: u(5), t: u(9), p: u(13) };
    let salt: [u8; 16] = file[17..33].try_into().expect("16 bytes");
    let got = stretch(pin, &salt, kdf)?;
    Some(bool::from(got[..].ct_eq(&file[33..65])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn right_wrong_and_damaged() {
        let f = make(b"admin-2468", [5; 16], KdfParams::TEST_ONLY_WEAK);
        assert_eq!(verify(&f, b"admin-2468"), Some(true));
        assert_eq!(verify(&f, b"admin-2469"), Some(false));
        let mut bad = f.clone();
        bad[40] ^= 1;
        assert_eq!(verify(&bad, b"admin-2468"), None);
        assert_eq!(verify(&f[..10], b"admin-2468"), None);
    }
}
