//! The persistent wrong-credential counters, one per credential (staff PIN, admin PIN): a
//! tiny file written crash-safely **before** each comparison, so pulling the power mid-guess
//! cannot give an attacker a free try. Each counter is reset only by its own correct entry
//! (or, for the staff counter, by an admin setting a new staff PIN).
//!
//! Format: `"VZPC" ‖ 0x02 ‖ staff failures ‖ admin failures ‖ 0x00 ‖ SHA-256(first 8 bytes)[..8]`.

use sha2::{Digest, Sha256};

use crate::keystore::Credential;

const MAGIC: &[u8; 4] = b"VZPC";
const VERSION: u8 = 2;
const LEN: usize = 16;

/// Wrong entries of each credential since its last correct one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Wrong staff PINs.
    pub staff: u8,
    /// Wrong admin credentials.
    pub admin: u8,
}

impl Counters {
    /// Both counters at their limit: what a missing or damaged file means (fail closed).
    pub fn exhausted(max_staff: u8, max_admin: u8) -> Self {
        Counters { staff: max_staff, admin: max_admin }
    }

    /// The count for `who`.
    pub fn get(&self, who: Credential) -> u8 {
        match who {
            Credential::Staff => self.staff,
            Credential::Admin => self.admin,
        }
    }

    /// The counters with `who`'s count set to `n`.
    pub fn with(self, who: Credential, n: u8) -> Self {
        match who {
            Credential::Staff => Counters { staff: n, ..self },
            Credential::Admin => Counters { admin: n, ..self },
        }
    }

    /// The file content.
    pub fn encode(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[..4].copy_from_slice(MAGIC);
        b[4] = VERSION;
        b[5] = self.staff;
        b[6] = self.admin;
        let sum = Sha256::digest(&b[..8]);
        b[8..].copy_from_slice(&sum[..8]);
        b
    }

    /// Decode a counter file; `None` if it is damaged.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != LEN || &bytes[..4] != MAGIC || bytes[4] != VERSION || bytes[7] != 0 {
            return None;
        }
        (Sha256::digest(&bytes[..8])[..8] == bytes[8..])
            .then_some(Counters { staff: bytes[5], admin: bytes[6] })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        for (staff, admin) in [(0, 0), (1, 7), (7, 1), (255, 255)] {
            let c = Counters { staff, admin };
            assert_eq!(Counters::decode(&c.encode()), Some(c));
        }
        let mut b = Counters { staff: 3, admin: 2 }.encode();
        b[5] = 0;
        assert_eq!(Counters::decode(&b), None, "a counter edited back to zero is detected");
        let mut b = Counters { staff: 3, admin: 2 }.encode();
        b[6] = 0;
        assert_eq!(Counters::decode(&b), None);
        assert_eq!(Counters::decode(&b[..15]), None);
        assert_eq!(Counters::decode(b""), None);
    }

    #[test]
    fn each_credential_has_its_own_count() {
        let c = Counters::default().with(Credential::Staff, 3).with(Credential::Admin, 5);
        assert_eq!((c.get(Credential::Staff), c.get(Credential::Admin)), (3, 5));
        assert_eq!(c.with(Credential::Staff, 0).get(Credential::Admin), 5);
    }
}
