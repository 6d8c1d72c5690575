//! The persistent wrong-PIN counter: a tiny file written crash-safely **before** each PIN
//! comparison, so pulling the power mid-guess cannot give an attacker a free try.
//!
//! Format: `"VZPC" ‖ 0x01 ‖ failures ‖ 0x00 0x00 ‖ SHA-256(first 8 bytes)[..8]`.

use sha2::{Digest, Sha256};

const MAGIC: &[u8; 4] = b"VZPC";
const LEN: usize = 16;

/// Encode a failure count.
pub fn encode(failures: u8) -> [u8; LEN] {
    let mut b = [0u8; LEN];
    b[..4].copy_from_slice(MAGIC);
    b[4] = 1;
    b[5] = failures;
    let sum = Sha256::digest(&b[..8]);
    b[8..].copy_from_slice(&sum[..8]);
    b
}

/// Decode a counter file; `None` if it is damaged.
pub fn decode(bytes: &[u8]) -> Option<u8> {
    if bytes.len() != LEN || &bytes[..4] != MAGIC || bytes[4] != 1 {
        return None;
    }
    (Sha256::digest(&bytes[..8])[..8] == bytes[8..]).then_some(bytes[5])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        for n in [0, 1, 7, 255] {
            assert_eq!(decode(&encode(n)), Some(n));
        }
        let mut b = encode(3);
        b[5] = 0;
        assert_eq!(decode(&b), None, "a counter edited back to zero is detected");
        assert_eq!(decode(&b[..15]), None);
        assert_eq!(decode(b""), None);
    }
}
