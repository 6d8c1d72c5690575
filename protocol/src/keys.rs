//! Record key pairs, their key ids and their text forms (`vkpub1.` / `vksec1.`).

use alloc::string::String;
use core::fmt;

use base64ct::{Base64UrlUnpadded, Encoding};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use x25519_dalek::StaticSecret;
use zeroize::Zeroizing;

use crate::hpke;

/// Text prefix of a public key: `vkpub1.` + base64url (no padding) of the 32 key bytes.
pub const PUBLIC_KEY_PREFIX: &str = "vkpub1.";
/// Text prefix of a secret key: `vksec1.` + base64url (no padding) of the 32 key bytes.
pub const SECRET_KEY_PREFIX: &str = "vksec1.";
/// Domain separation for key ids, fixed by format v1.
const KEY_ID_LABEL: &[u8] = b"vbzkey key id v1";
/// Length of a key id in bytes.
pub const KEY_ID_LEN: usize = 8;

/// Why a key could not be read from its text form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The text does not start with the expected prefix.
    #[error("not a vbzkey {kind} key: it must start with `{prefix}`")]
    WrongPrefix {
        /// "public" or "secret".
        kind: &'static str,
        /// The prefix that was expected.
        prefix: &'static str,
    },
    /// The part after the prefix is not 32 bytes of unpadded base64url.
    #[error("the {kind} key is damaged: expected 43 base64url characters after the prefix")]
    BadEncoding {
        /// "public" or "secret".
        kind: &'static str,
    },
}

/// First 8 bytes of SHA-256("vbzkey key id v1" ‖ public key): names the key a record was
/// sealed to, so a holder of several keys knows which one to try.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct KeyId(pub [u8; KEY_ID_LEN]);

impl KeyId {
    /// The key id of a public key.
    pub fn of(public_key: &[u8; 32]) -> Self {
        let digest = Sha256::new().chain_update(KEY_ID_LABEL).chain_update(public_key).finalize();
        let mut id = [0u8; KEY_ID_LEN];
        for (i, d) in id.iter_mut().zip(digest) {
            *i = d;
        }
        KeyId(id)
    }
}

/// Why text is not a key id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyIdError {
    /// Not 16 hex digits, nor four groups of four separated by single spaces.
    #[error(
        "a key id is 16 hex digits, written together or in four groups of four (as `info` shows it)"
    )]
    Shape,
    /// A character that is not a hex digit.
    #[error("a key id holds hex digits only (0-9, a-f)")]
    NotHex,
}

impl KeyId {
    /// The key id in four groups of four hex digits (`5b97 724a 4496 1ff0`), to read aloud.
    pub fn grouped(&self) -> String {
        let mut s = String::with_capacity(2 * KEY_ID_LEN + 3);
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 && i % 2 == 0 {
                s.push(' ');
            }
            let _ = fmt::Write::write_fmt(&mut s, format_args!("{b:02x}"));
        }
        s
    }
}

/// Parses `5b97724a44961ff0` or the grouped form `5b97 724a 4496 1ff0` (surrounding
/// whitespace ignored, either case). Counted in characters, so no input can split a
/// multi-byte character.
impl core::str::FromStr for KeyId {
    type Err = KeyIdError;

    fn from_str(text: &str) -> Result<Self, KeyIdError> {
        const DIGITS: usize = 2 * KEY_ID_LEN;
        let text = text.trim();
        let grouped = text.contains(' ');
        let mut digits = [0u8; DIGITS];
        let mut n = 0;
        for (i, c) in text.chars().enumerate() {
            // In the grouped form, every fifth character is the single separating space.
            if grouped && i % 5 == 4 {
                if c != ' ' {
                    return Err(KeyIdError::Shape);
                }
                continue;
            }
            let slot = digits.get_mut(n).ok_or(KeyIdError::Shape)?;
            *slot = match c.to_digit(16) {
                Some(d) => d as u8,
                None if c == ' ' => return Err(KeyIdError::Shape),
                None => return Err(KeyIdError::NotHex),
            };
            n += 1;
        }
        let expected_chars = if grouped { DIGITS + 3 } else { DIGITS };
        if n != DIGITS || text.chars().count() != expected_chars {
            return Err(KeyIdError::Shape);
        }
        let mut id = [0u8; KEY_ID_LEN];
        for (b, pair) in id.iter_mut().zip(digits.chunks_exact(2)) {
            let [hi, lo] = [pair.first(), pair.get(1)].map(|d| d.copied().unwrap_or(0));
            *b = hi << 4 | lo;
        }
        Ok(KeyId(id))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// A recipient public key: what the store seals to. Not secret.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    bytes: [u8; 32],
    id: KeyId,
}

impl PublicKey {
    /// Wrap raw X25519 public key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        PublicKey { bytes, id: KeyId::of(&bytes) }
    }

    /// Parse the `vkpub1.` text form (surrounding whitespace is ignored).
    pub fn from_text(text: &str) -> Result<Self, KeyError> {
        let kind = "public";
        let body = text
            .trim()
            .strip_prefix(PUBLIC_KEY_PREFIX)
            .ok_or(KeyError::WrongPrefix { kind, prefix: PUBLIC_KEY_PREFIX })?;
        let mut bytes = [0u8; 32];
        decode_32(body, &mut bytes).map_err(|()| KeyError::BadEncoding { kind })?;
        Ok(Self::from_bytes(bytes))
    }

    /// The `vkpub1.` text form.
    pub fn to_text(&self) -> String {
        let mut s = String::from(PUBLIC_KEY_PREFIX);
        s.push_str(&Base64UrlUnpadded::encode_string(&self.bytes));
        s
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// The key id records sealed to this key carry.
    pub fn key_id(&self) -> KeyId {
        self.id
    }
}

impl core::str::FromStr for PublicKey {
    type Err = KeyError;

    /// The `vkpub1.` text form, as [`PublicKey::from_text`].
    fn from_str(text: &str) -> Result<Self, KeyError> {
        Self::from_text(text)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_text())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

/// A recipient private key. Zeroized on drop; `Debug` never shows it.
#[derive(Clone)]
pub struct SecretKey {
    secret: StaticSecret,
    public: PublicKey,
}

impl SecretKey {
    /// Use raw X25519 private key bytes (clamping happens inside X25519, as RFC 7748 says).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let bytes = Zeroizing::new(bytes);
        let secret = StaticSecret::from(*bytes);
        let public = PublicKey::from_bytes(vbzkey_x25519::x25519_base(&bytes));
        SecretKey { secret, public }
    }

    /// RFC 9180 DeriveKeyPair: a key pair derived from input keying material (at least 32
    /// bytes of it). Used where a key must be reproducible from a seed.
    pub fn derive(ikm: &[u8]) -> Self {
        Self::from_bytes(*hpke::derive_private_key(ikm))
    }

    /// A fresh key pair from the operating system's RNG.
    #[cfg(feature = "getrandom")]
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut bytes[..])?;
        Ok(Self::from_bytes(*bytes))
    }

    /// Parse the `vksec1.` text form (surrounding whitespace is ignored).
    pub fn from_text(text: &str) -> Result<Self, KeyError> {
        let kind = "secret";
        let body = text
            .trim()
            .strip_prefix(SECRET_KEY_PREFIX)
            .ok_or(KeyError::WrongPrefix { kind, prefix: SECRET_KEY_PREFIX })?;
        let mut bytes = Zeroizing::new([0u8; 32]);
        decode_32(body, &mut bytes).map_err(|()| KeyError::BadEncoding { kind })?;
        Ok(Self::from_bytes(*bytes))
    }

    /// The `vksec1.` text form, in memory that is zeroized when dropped.
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut s = Zeroizing::new(String::from(SECRET_KEY_PREFIX));
        let encoded = Zeroizing::new(Base64UrlUnpadded::encode_string(self.secret.as_bytes()));
        s.push_str(&encoded);
        s
    }

    /// The raw private key bytes, for wrapping into a key store. Handle with care.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.secret.to_bytes())
    }

    /// The matching public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The unlock secret a paired host proves its share of the dongle's master key with
    /// (split custody): 256 bits derived from this host key, sent to the dongle only inside
    /// the host's encrypted session. Whoever holds the host-key file holds it.
    pub fn unlock_secret(&self) -> Zeroizing<[u8; 32]> {
        let ikm = Zeroizing::new(self.secret.to_bytes());
        let mut out = Zeroizing::new([0u8; 32]);
        // 32 bytes is always a valid HKDF-SHA256 output length.
        let _ = hkdf::Hkdf::<Sha256>::new(None, &ikm[..])
            .expand(b"vbzkey host unlock secret v1", &mut out[..]);
        out
    }

    /// The key id of the matching public key.
    pub fn key_id(&self) -> KeyId {
        self.public.id
    }

    pub(crate) fn dalek(&self) -> &StaticSecret {
        &self.secret
    }
}

impl PartialEq for SecretKey {
    /// Constant-time comparison of the private scalars' bytes.
    fn eq(&self, other: &Self) -> bool {
        self.secret.as_bytes().ct_eq(other.secret.as_bytes()).into()
    }
}

impl Eq for SecretKey {}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(key id {}, secret not shown)", self.key_id())
    }
}

/// Decode exactly 32 bytes of unpadded base64url, rejecting any other length and any
/// non-canonical trailing bits (so one key has exactly one text form).
fn decode_32(body: &str, out: &mut [u8; 32]) -> Result<(), ()> {
    match Base64UrlUnpadded::decode(body, out) {
        Ok(decoded) if decoded.len() == 32 => Ok(()),
        _ => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_id_matches_the_format_definition() {
        // SHA-256("vbzkey key id v1" ‖ 32 zero bytes), first 8 bytes, computed independently.
        assert_eq!(KeyId::of(&[0u8; 32]).to_string(), "6d918584912fe365");
    }

    #[test]
    fn key_ids_parse_plain_and_grouped() {
        let id = KeyId::of(&[0u8; 32]);
        assert_eq!(id.grouped(), "6d91 8584 912f e365");
        for text in ["6d918584912fe365", "6D918584912FE365", "  6d91 8584 912f e365\n"] {
            assert_eq!(text.parse::<KeyId>(), Ok(id), "{text:?}");
        }
        assert_eq!(id.grouped().parse::<KeyId>(), Ok(id));
    }

    #[test]
    fn malformed_key_ids_are_refused_without_panicking() {
        for (text, err) in [
            ("", KeyIdError::Shape),
            ("6d918584912fe36", KeyIdError::Shape),
            ("6d918584912fe3650", KeyIdError::Shape),
            ("6d91  8584 912f e365", KeyIdError::Shape),
            ("6d918 584 912f e365", KeyIdError::Shape),
            ("6d91 8584 912f e365 0000", KeyIdError::Shape),
            ("6d91 8584 912fe365", KeyIdError::Shape),
            ("6d918584912fe36g", KeyIdError::NotHex),
            ("not-a-key-id-xyz", KeyIdError::NotHex),
            // Multi-byte characters where byte slicing would split them.
            ("6d918584912fe3\u{e9}", KeyIdError::NotHex),
            ("\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}", KeyIdError::NotHex),
            ("\u{1f600}6d918584912fe3", KeyIdError::NotHex),
            ("\u{663}d918584912fe365", KeyIdError::NotHex),
        ] {
            assert_eq!(text.parse::<KeyId>(), Err(err), "{text:?}");
        }
    }

    #[test]
    fn text_forms_round_trip() {
        let sk = SecretKey::derive(&[42u8; 32]);
        let pk_text = sk.public_key().to_text();
        assert!(pk_text.starts_with("vkpub1.") && pk_text.len() == 7 + 43);
        assert_eq!(PublicKey::from_text(&pk_text).unwrap(), *sk.public_key());
        let sk2 = SecretKey::from_text(&sk.to_text()).unwrap();
        assert_eq!(sk2, sk);
        assert_eq!(sk2.key_id(), sk.key_id());
    }

    #[test]
    fn bad_text_forms_are_refused() {
        let sk = SecretKey::derive(&[1u8; 32]);
        let pk = sk.public_key().to_text();
        let wrong = PublicKey::from_text(&sk.to_text());
        assert!(matches!(wrong, Err(KeyError::WrongPrefix { kind: "public", .. })));
        assert!(matches!(SecretKey::from_text(&pk), Err(KeyError::WrongPrefix { .. })));
        for bad in [&pk[..pk.len() - 1], &alloc::format!("{pk}A"), "vkpub1.", "vkpub1.!!!!"] {
            assert!(
                matches!(PublicKey::from_text(bad), Err(KeyError::BadEncoding { .. })),
                "{bad}"
            );
        }
        // Non-canonical final character (unused low bits set) is refused.
        let mut noncanon = pk.clone();
        let last = noncanon.pop().unwrap();
        noncanon.push(if last == 'A' { 'B' } else { 'A' });
        if noncanon != pk {
            let parsed = PublicKey::from_text(&noncanon);
            assert!(parsed.is_err() || parsed.unwrap().to_text() == noncanon);
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let sk = SecretKey::derive(&[3u8; 32]);
        let shown = alloc::format!("{sk:?}");
        let text = sk.to_text();
        assert!(!shown.contains(&text[SECRET_KEY_PREFIX.len()..]));
        assert!(shown.contains("not shown"));
    }
}
