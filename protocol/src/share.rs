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
use sha2::{Digest, Sha256};

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

/// One share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    /// Which secret the share belongs to.
    pub set: [u8; 4],
    /// Shares needed.
    pub threshold: u8,
    /// Shares made.
    pub count: u8,
    /// This share's x coordinate, 1..=count.
    pub index: u8,
    /// This share's y bytes.
    pub data: Vec<u8>,
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

    /// The printed line.
    pub fn to_text(&self) -> String {
        let body = format!(
            "{PREFIX}.{}.{}.{}.{}.{}",
            hex4(&self.set),
            self.threshold,
            self.count,
            self.index,
            Base64UrlUnpadded::encode_string(&self.data)
        );
        let check = checksum(&body);
        format!("{body}.{check}")
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
        if threshold < 2 || count < threshold || index == 0 || index > count {
            return Err(ShareError::BadNumbers);
        }
        let mut set = [0u8; 4];
        if fields[1].len() != 8 {
            return Err(ShareError::Malformed);
        }
        for (i, b) in set.iter_mut().enumerate() {
            *b = u8::from_str_radix(&fields[1][2 * i..2 * i + 2], 16)
                .map_err(|_| ShareError::Malformed)?;
        }
        let data = Base64UrlUnpadded::decode_vec(fields[5]).map_err(|_| ShareError::Malformed)?;
        if data.is_empty() || data.len() > MAX_SHARE_DATA {
            return Err(ShareError::Malformed);
        }
        Ok(Share { set, threshold, count, index, data })
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
            data: alloc::vec![1, 2, 3, 250],
        }
    }

    #[test]
    fn round_trip() {
        let s = sample();
        let t = s.to_text();
        assert!(t.starts_with("vkshare1.deadbeef.3.5.2."));
        assert_eq!(Share::from_text(&format!("  {t}\n")).unwrap(), s);
    }

    #[test]
    fn any_typo_is_caught() {
        let t = sample().to_text();
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
