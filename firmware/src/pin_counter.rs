//! The persistent wrong-credential counters, one per credential (staff PIN, admin PIN): a
//! tiny file written crash-safely **before** each comparison, so pulling the power mid-guess
//! cannot give an attacker a free try. Each counter is reset only by its own correct entry
//! (or, for the staff counter, by an admin setting a new staff PIN).
//!
//! Format: `"VZPC" ‖ 0x02 ‖ staff failures ‖ admin failures ‖ 0x00 ‖ SHA-256(first 8 bytes)[..8]`.

use sha2::{Digest, Sha256};

use crate::bytes::Reader;
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

    /// The file content: magic, version, the two counts, a zero byte, and the first 8 bytes
    /// of the SHA-256 of those 8.
    pub fn encode(&self) -> [u8; LEN] {
        let mut head = [0u8; 8];
        for (h, b) in head.iter_mut().zip(MAGIC.iter().chain(&[VERSION, self.staff, self.admin, 0]))
        {
            *h = *b;
        }
        let sum = Sha256::digest(head);
        let mut out = [0u8; LEN];
        for (o, b) in out.iter_mut().zip(head.iter().chain(sum.iter())) {
            *o = *b;
        }
        out
    }

    /// Decode a counter file; `None` if it is damaged.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != LEN {
            return None;
        }
        let mut r = Reader::new(bytes);
        let head = r.array::<8>()?;
        let sum = r.array::<8>()?;
        let [m0, m1, m2, m3, version, staff, admin, zero] = head;
        if [m0, m1, m2, m3] != *MAGIC || version != VERSION || zero != 0 {
            return None;
        }
        (Sha256::digest(head).get(..8) == Some(sum.as_slice())).then_some(Counters { staff, admin })
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
