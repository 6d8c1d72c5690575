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
use zeroize::{ZeroizeOnDrop, Zeroizing};

const PREFIX: &str = "vkshare1";
/// Most bytes a share's data may hold (every key version of a dongle, with room).
pub const MAX_SHARE_DATA: usize = 4096;
/// Longest share line: the prefix, an 8-digit set id, three numbers of up to 3 digits, the
/// base64url of `MAX_SHARE_DATA` bytes, an 8-digit checksum and six dots. Longer input is
/// refused before any work is done on it.
pub const MAX_SHARE_TEXT: usize =
    PREFIX.len() + 8 + 3 * 3 + (MAX_SHARE_DATA * 4).div_ceil(3) + 8 + 6;

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
    /// Longer than any share line (`MAX_SHARE_TEXT`).
    #[error("not a vbzkey recovery share: the line is longer than any share")]
    TooLong,
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
    #[serde(deserialize_with = "crate::wire::bounded::secret::<MAX_SHARE_DATA, _>")]
    data: Zeroizing<Vec<u8>>,
}

impl TryFrom<ShareFields> for Share {
    type Error = ShareError;

    fn try_from(f: ShareFields) -> Result<Self, ShareError> {
        Share::checked(f.set, f.threshold, f.count, f.index, f.data)
    }
}

/// `data` is `Zeroizing`: every copy of a share is wiped when dropped.
impl ZeroizeOnDrop for Share {}

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

/// The value of one lowercase hex digit (what `to_text` writes).
fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Four bytes from exactly 8 lowercase hex digits.
fn parse_hex4(field: &str) -> Option<[u8; 4]> {
    let digits: &[u8; 8] = field.as_bytes().try_into().ok()?;
    let mut out = [0u8; 4];
    for (o, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let [hi, lo] = [pair.first()?, pair.get(1)?].map(|d| hex_digit(*d));
        *o = hi? << 4 | lo?;
    }
    Some(out)
}

impl Share {
    /// The set id of a secret.
    pub fn set_of(secret: &[u8]) -> [u8; 4] {
        let d: [u8; 32] = Sha256::digest(secret).into();
        let [a, b, c, e, ..] = d;
        [a, b, c, e]
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

    /// Parse a printed line (surrounding whitespace ignored). Only the exact form `to_text`
    /// prints is accepted: ASCII, lowercase hex, numbers without sign or leading zeros,
    /// canonical base64url; anything else is an error, never a panic.
    pub fn from_text(text: &str) -> Result<Self, ShareError> {
        let text = text.trim();
        if text.len() > MAX_SHARE_TEXT {
            return Err(ShareError::TooLong);
        }
        // Share lines are ASCII; checking first keeps every later step on whole characters.
        if !text.is_ascii() {
            return Err(ShareError::Malformed);
        }
        let (body, check) = text.rsplit_once('.').ok_or(ShareError::Malformed)?;
        let mut fields = body.split('.');
        let (Some(PREFIX), Some(set), Some(m), Some(n), Some(x), Some(data), None) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err(ShareError::Malformed);
        };
        if checksum(body) != check {
            return Err(ShareError::BadChecksum);
        }
        let num = |s: &str| s.parse::<u8>().map_err(|_| ShareError::BadNumbers);
        let (threshold, count, index) = (num(m)?, num(n)?, num(x)?);
        let set = parse_hex4(set).ok_or(ShareError::Malformed)?;
        let data =
            Zeroizing::new(Base64UrlUnpadded::decode_vec(data).map_err(|_| ShareError::Malformed)?);
        let share = Share::checked(set, threshold, count, index, data)?;
        // "+3", "03" or another spelling of the same share is not the printed form.
        if share.to_text().as_str() != text {
            return Err(ShareError::Malformed);
        }
        Ok(share)
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
    fn share_data_is_wiped_on_drop_and_never_printed() {
        fn wiped_on_drop<T: ZeroizeOnDrop>() {}
        wiped_on_drop::<Share>();
        let printed = format!("{:?}", sample());
        assert_eq!(printed, "Share(set deadbeef, 3 of 5, #2, data not shown)");
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
    fn round_trip() {
        let s = sample();
        let t = s.to_text().to_string();
        assert!(t.starts_with("vkshare1.deadbeef.3.5.2."));
        assert_eq!(Share::from_text(&format!("  {t}\n")).unwrap(), s);
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

    /// A line with a checksum that matches whatever the body is (what an attacker, or a tool
    /// that recomputes it, produces).
    fn with_check(body: &str) -> String {
        format!("{body}.{}", checksum(body))
    }

    #[test]
    fn non_ascii_input_is_an_error_not_a_panic() {
        // The set id is 8 bytes but 7 characters: slicing it at byte offsets panicked.
        let line = with_check("vkshare1.a\u{e9}12345.3.5.2.AQID-g");
        assert_eq!(Share::from_text(&line), Err(ShareError::Malformed));
        for body in [
            "vkshare1.deadbeef.3.5.2.AQID-g\u{e9}",
            "vkshare1.deadbeef.\u{663}.5.2.AQID-g", // an Arabic-Indic digit three
            "vkshare1.deadbeef.3.5.2.\u{ff21}QID-g",
            "\u{1f511}.deadbeef.3.5.2.AQID-g",
        ] {
            assert_eq!(Share::from_text(&with_check(body)), Err(ShareError::Malformed), "{body}");
        }
        let t = sample().to_text().to_string();
        assert_eq!(Share::from_text(&format!("{t}\u{e9}")), Err(ShareError::Malformed));
        assert_eq!(Share::from_text("\u{e9}"), Err(ShareError::Malformed));
    }

    #[test]
    fn short_input_is_refused() {
        for line in ["", " ", ".", "vkshare1", "vkshare1.", "vkshare1.deadbeef.3.5.2"] {
            assert_eq!(Share::from_text(line), Err(ShareError::Malformed), "{line:?}");
        }
        let t = sample().to_text().to_string();
        for cut in 1..t.len() {
            assert!(Share::from_text(&t[..cut]).is_err(), "{}", &t[..cut]);
        }
        for body in [
            "vkshare1.deadbee.3.5.2.AQID-g", // 7 hex digits
            "vkshare1..3.5.2.AQID-g",        // no set id
            "vkshare1.deadbeef.3.5.2.",      // no data
            "vkshare1.deadbeef.3.5.AQID-g",  // a field missing
        ] {
            assert_eq!(Share::from_text(&with_check(body)), Err(ShareError::Malformed), "{body}");
        }
    }

    #[test]
    fn long_input_is_refused() {
        let mut big = sample();
        big.data = Zeroizing::new(alloc::vec![7; MAX_SHARE_DATA]);
        assert_eq!(Share::from_text(&big.to_text()).unwrap(), big, "the largest share parses");
        assert!(big.to_text().len() <= MAX_SHARE_TEXT);
        assert_eq!(MAX_SHARE_TEXT, 5501, "as docs/FORMAT.md says");
        let mut too_big = sample();
        too_big.data = Zeroizing::new(alloc::vec![7; MAX_SHARE_DATA + 1]);
        assert_eq!(Share::from_text(&too_big.to_text()), Err(ShareError::Malformed));
        let mut widest = too_big;
        (widest.threshold, widest.count, widest.index) = (200, 255, 255);
        assert_eq!(
            Share::from_text(&format!("{}AAAA", widest.to_text().as_str())),
            Err(ShareError::TooLong)
        );
        let huge = "A".repeat(1 << 20);
        assert_eq!(Share::from_text(&huge), Err(ShareError::TooLong));
        for body in [
            "vkshare1.deadbeef.3.5.2.AQID-g.AQID", // a field too many
            "vkshare1.deadbeef00.3.5.2.AQID-g",    // 10 hex digits
            "vkshare1.deadbeef.3.5.2000.AQID-g",   // a number beyond u8
        ] {
            assert!(Share::from_text(&with_check(body)).is_err(), "{body}");
        }
    }

    #[test]
    fn tampered_input_with_a_recomputed_checksum_is_refused_unless_it_is_the_printed_form() {
        for body in [
            "vkshare1.DEADBEEF.3.5.2.AQID-g", // uppercase hex
            "vkshare1.deadbeef.+3.5.2.AQID-g",
            "vkshare1.deadbeef.03.5.2.AQID-g",
            "vkshare1.deadbeef.3.5.2.AQID-h", // non-canonical last base64 character
            "vkshare1.deadbeef.3.5.2.AQID+g", // the standard alphabet
            "vkshare1.deadbeef.3.5.2.AQID-g==",
            "vkshare1.dead beef.3.5.2.AQID-g",
            "VKSHARE1.deadbeef.3.5.2.AQID-g",
            "vkshare2.deadbeef.3.5.2.AQID-g",
        ] {
            let line = with_check(body);
            assert!(
                matches!(
                    Share::from_text(&line),
                    Err(ShareError::Malformed | ShareError::BadNumbers)
                ),
                "{line}"
            );
        }
        assert_eq!(
            Share::from_text(&with_check("vkshare1.deadbeef.3.5.2.AQID-g")).unwrap(),
            sample()
        );
        let t = sample().to_text().to_string();
        let (body, _) = t.rsplit_once('.').unwrap();
        assert_eq!(Share::from_text(&format!("{body}.00000000")), Err(ShareError::BadChecksum));
        assert_eq!(Share::from_text(&format!("{body}.")), Err(ShareError::BadChecksum));
    }

    #[test]
    fn impossible_numbers_are_refused() {
        for (m, n, x) in [(1, 5, 1), (6, 5, 1), (3, 5, 0), (3, 5, 6)] {
            let mut s = sample();
            (s.threshold, s.count, s.index) = (m, n, x);
            assert_eq!(Share::from_text(&s.to_text()), Err(ShareError::BadNumbers), "{m} {n} {x}");
        }
    }
}
