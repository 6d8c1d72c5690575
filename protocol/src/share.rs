//! The printed form of a recovery share: one line an admin can write down or print, with a
//! checksum that catches a mistyped character before the share reaches a dongle.
//!
//! ```text
//! vkshare1.<set>.<threshold>.<count>.<index>.<data>.<check>
//!   set        8 hex digits: first 4 bytes of SHA-256 of the secret the shares rebuild
//!   threshold  shares needed (M), count: shares made (N), index: this share's x (1..=255)
//!   data       the share's y bytes, unpadded base64url
//!   check      8 hex digits: first 4 bytes of SHA-256 of everything before ".<check>"
//! ```

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use base64ct::{Base64UrlUnpadded, Encoding};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

const PREFIX: &str = "vkshare1";
/// Most bytes a share's data may hold (every key version of a dongle, with room).
pub const MAX_SHARE_DATA: usize = 4096;

/// Why a share line is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShareError {
    /// Not a `vkshare1.` line, or fields missing.
    #[error("not a vbzkey recovery share (it starts with vkshare1. and has seven fields)")]
    Malformed,
    /// The checksum does not match: a character was mistyped.
    #[error("the share's checksum does not match: check it for a mistyped character")]
    BadChecksum,
    /// Numbers out of range (threshold, count, index).
    #[error("the share's threshold, count or index is impossible")]
    BadNumbers,
}

/// One share. On the wire (`Backup`'s answer, `Restore`'s request) it travels typed, and a
/// decoded share has passed the same checks as a parsed line: only the printed form needs the
/// checksum, since a frame is already checked by its session or link.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ShareFields")]
pub struct Share {
    /// Which secret the share belongs to.
    pub set: [u8; 4],
    /// Shares needed.
    pub threshold: u8,
    /// Shares made.
    pub count: u8,
    /// This share's x coordinate, 1..=count.
    pub index: u8,
    /// This share's y bytes: secret (a threshold of shares rebuilds the keys), wiped on drop.
    pub data: Zeroizing<Vec<u8>>,
}

/// A share as decoded, before its numbers and length are checked.
#[derive(Deserialize)]
struct ShareFields {
    set: [u8; 4],
    threshold: u8,
    count: u8,
    index: u8,
    data: Zeroizing<Vec<u8>>,
}

impl TryFrom<ShareFields> for Share {
    type Error = ShareError;

    fn try_from(f: ShareFields) -> Result<Self, ShareError> {
        Share::checked(f.set, f.threshold, f.count, f.index, f.data)
    }
}

impl core::fmt::Debug for Share {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "Share(set {}, {} of {}, #{}, data not shown)",
            hex4(&self.set),
            self.threshold,
            self.count,
            self.index
        )
    }
}

fn hex4(b: &[u8]) -> String {
    b.iter().take(4).map(|x| format!("{x:02x}")).collect()
}

fn checksum(body: &str) -> String {
    hex4(&Sha256::digest(body.as_bytes()))
}

impl Share {
    /// The set id of a secret.
    pub fn set_of(secret: &[u8]) -> [u8; 4] {
        let d = Sha256::digest(secret);
        [d[0], d[1], d[2], d[3]]
    }

    /// A share whose numbers and data length are possible.
    pub fn checked(
        set: [u8; 4],
        threshold: u8,
        count: u8,
        index: u8,
        data: Zeroizing<Vec<u8>>,
    ) -> Result<Self, ShareError> {
        if threshold < 2 || count < threshold || index == 0 || index > count {
            return Err(ShareError::BadNumbers);
        }
        if data.is_empty() || data.len() > MAX_SHARE_DATA {
            return Err(ShareError::Malformed);
        }
        Ok(Share { set, threshold, count, index, data })
    }

    /// The printed line (secret: it is what an admin writes down), wiped on drop.
    pub fn to_text(&self) -> Zeroizing<String> {
        let data = Zeroizing::new(Base64UrlUnpadded::encode_string(&self.data));
        let mut line = Zeroizing::new(String::with_capacity(40 + data.len()));
        line.push_str(&format!(
            "{PREFIX}.{}.{}.{}.{}.",
            hex4(&self.set),
            self.threshold,
            self.count,
            self.index
        ));
        line.push_str(&data);
        let check = checksum(&line);
        line.push('.');
        line.push_str(&check);
        line
    }

    /// Parse a printed line (surrounding whitespace ignored).
    pub fn from_text(text: &str) -> Result<Self, ShareError> {
        let text = text.trim();
        let (body, check) = text.rsplit_once('.').ok_or(ShareError::Malformed)?;
        let fields: Vec<&str> = body.split('.').collect();
        if fields.len() != 6 || fields[0] != PREFIX {
            return Err(ShareError::Malformed);
        }
        if checksum(body) != check {
            return Err(ShareError::BadChecksum);
        }
        let num = |s: &str| s.parse::<u8>().map_err(|_| ShareError::BadNumbers);
        let (threshold, count, index) = (num(fields[2])?, num(fields[3])?, num(fields[4])?);
        // Read digit by digit (not by byte ranges): a multi-byte character is refused, never
        // split.
        let digits: Vec<u8> = fields[1]
            .chars()
            .map(|c| c.to_digit(16).map(|d| d as u8))
            .collect::<Option<_>>()
            .ok_or(ShareError::Malformed)?;
        if digits.len() != 8 {
            return Err(ShareError::Malformed);
        }
        let mut set = [0u8; 4];
        for (b, pair) in set.iter_mut().zip(digits.chunks(2)) {
            *b = pair[0] << 4 | pair[1];
        }
        if fields[5].len() > MAX_SHARE_DATA * 4 / 3 + 4 {
            return Err(ShareError::Malformed);
        }
        let data = Zeroizing::new(
            Base64UrlUnpadded::decode_vec(fields[5]).map_err(|_| ShareError::Malformed)?,
        );
        Share::checked(set, threshold, count, index, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Share {
        Share {
            set: [0xde, 0xad, 0xbe, 0xef],
            threshold: 3,
            count: 5,
            index: 2,
            data: Zeroizing::new(alloc::vec![1, 2, 3, 250]),
        }
    }

    #[test]
    fn non_ascii_set_ids_are_refused_not_split() {
        // Eight bytes but four characters: byte slicing would cut "é" in half.
        let body = "vkshare1.\u{e9}\u{e9}\u{e9}\u{e9}.3.5.2.AQID";
        let line = format!("{body}.{}", checksum(body));
        assert_eq!(Share::from_text(&line), Err(ShareError::Malformed));
    }

    #[test]
    fn typed_shares_are_checked_when_decoded() {
        let s = sample();
        let bytes = postcard::to_allocvec(&s).unwrap();
        assert_eq!(postcard::from_bytes::<Share>(&bytes).unwrap(), s);
        for bad in [
            Share { threshold: 1, ..sample() },
            Share { index: 0, ..sample() },
            Share { index: 6, ..sample() },
            Share { data: Zeroizing::new(alloc::vec![]), ..sample() },
        ] {
            let bytes = postcard::to_allocvec(&bad).unwrap();
            assert!(postcard::from_bytes::<Share>(&bytes).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn debug_does_not_show_the_share_data() {
        let s = Share { data: Zeroizing::new(alloc::vec![0xab; 8]), ..sample() };
        let shown = format!("{s:?}");
        assert!(shown.contains("deadbeef") && !shown.contains("abab"), "{shown}");
    }

    #[test]
    fn round_trip() {
        let s = sample();
        let t = s.to_text();
        assert!(t.starts_with("vkshare1.deadbeef.3.5.2."));
        assert_eq!(Share::from_text(&format!("  {}\n", t.as_str())).unwrap(), s);
    }

    #[test]
    fn any_typo_is_caught() {
        let t = sample().to_text().to_string();
        for i in 9..t.len() {
            let mut b = t.clone().into_bytes();
            b[i] = if b[i] == b'A' {
                b'B'
            } else if b[i] == b'.' {
                b'x'
            } else {
                b'A'
            };
            let Ok(typo) = String::from_utf8(b) else { continue };
            if typo != t {
                assert!(Share::from_text(&typo).is_err(), "{typo}");
            }
        }
        assert_eq!(Share::from_text("hello"), Err(ShareError::Malformed));
    }

    #[test]
    fn impossible_numbers_are_refused() {
        for (m, n, x) in [(1, 5, 1), (6, 5, 1), (3, 5, 0), (3, 5, 6)] {
            let s = Share { threshold: m, count: n, index: x, ..sample() };
            assert_eq!(Share::from_text(&s.to_text()), Err(ShareError::BadNumbers), "{m} {n} {x}");
        }
    }
}
