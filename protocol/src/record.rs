//! Sealed-record format v1: the 12-byte header, seal, open and the `vk1.` text form.
//!
//! ```text
//!  0      2   3   4            12                      44
//!  +------+---+---+------------+-----------------------+---------------------------+
//!  | "VK" | 1 | 1 |  key id    |  enc (X25519 pk_E)    | ChaCha20Poly1305 ct ‖ tag |
//!  +------+---+---+------------+-----------------------+---------------------------+
//!  aad = bytes 0..12 ‖ caller context        info = "vbzkey record v1"
//! ```
//!
//! Key transfer blobs (a dongle's keys on their way to a clone) share the layout in their own
//! domain: magic "VT", info "vbzkey key transfer v1", an empty context. Neither opens as the
//! other, and a transfer blob given where a record is expected is named as such
//! ([`RecordError::KeyTransfer`]).

use alloc::string::String;
use alloc::vec::Vec;

use base64ct::{Base64UrlUnpadded, Encoding};
use x25519_dalek::StaticSecret;
use zeroize::Zeroizing;

use crate::hpke;
use crate::keys::{KEY_ID_LEN, KeyId, PublicKey, SecretKey};

/// The two magic bytes every record starts with ("VK").
pub const MAGIC: [u8; 2] = *b"VK";
/// The format version this crate reads and writes.
pub const VERSION: u8 = 1;
/// Suite 1: HPKE base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305.
pub const SUITE: u8 = 1;
/// magic + version + suite + key id.
pub const HEADER_LEN: usize = 2 + 1 + 1 + KEY_ID_LEN;
/// Length of the HPKE encapsulated key (an X25519 public key).
pub const ENC_LEN: usize = hpke::N;
/// Length of the AEAD tag at the end of every record.
pub const TAG_LEN: usize = hpke::TAG_LEN;
/// Largest plaintext a record may hold. SCD values are short (a card number, an address);
/// a hard cap keeps every buffer on the dongle bounded.
pub const MAX_PLAINTEXT_LEN: usize = 4096;
/// Shortest valid record: an empty plaintext.
pub const MIN_RECORD_LEN: usize = HEADER_LEN + ENC_LEN + TAG_LEN;
/// Longest valid record.
pub const MAX_RECORD_LEN: usize = MIN_RECORD_LEN + MAX_PLAINTEXT_LEN;
/// Text form prefix, for SQL text columns and JSON.
pub const TEXT_PREFIX: &str = "vk1.";
/// Longest valid text form: prefix + unpadded base64url of `MAX_RECORD_LEN` bytes.
pub const MAX_TEXT_LEN: usize = TEXT_PREFIX.len() + (MAX_RECORD_LEN * 4).div_ceil(3);
/// Longest context accepted at seal and open. Contexts name a place (`table/id/field`); a cap
/// keeps the dongle's buffers bounded, and a record sealed under a longer context could never
/// be opened there.
pub const MAX_CONTEXT_LEN: usize = 512;
/// HPKE `info` for every v1 record.
pub const INFO: &[u8] = b"vbzkey record v1";
/// The magic bytes of a key transfer blob ("VT").
pub const TRANSFER_MAGIC: [u8; 2] = *b"VT";
/// HPKE `info` of key transfer blobs.
pub const TRANSFER_INFO: &[u8] = b"vbzkey key transfer v1";

/// What a sealed blob is for. Each domain has its own magic bytes and HPKE `info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Domain {
    /// A customer value, bound to its place by the context.
    Record,
    /// Every key of a dongle, sealed to a clone's transfer key.
    KeyTransfer,
}

impl Domain {
    fn magic(self) -> [u8; 2] {
        match self {
            Domain::Record => MAGIC,
            Domain::KeyTransfer => TRANSFER_MAGIC,
        }
    }

    fn key_schedule_context(self) -> [u8; 65] {
        match self {
            Domain::Record => KEY_SCHEDULE_CONTEXT,
            // Computed when used: a clone happens once in a dongle's life.
            Domain::KeyTransfer => hpke::key_schedule_context(TRANSFER_INFO),
        }
    }
}

/// HPKE `key_schedule_context` for `INFO` in base mode. It depends only on constants, so it is
/// fixed here instead of costing two HMACs per record; a unit test recomputes it.
const KEY_SCHEDULE_CONTEXT: [u8; 65] = [
    0x00, 0x43, 0x1d, 0xf6, 0xcd, 0x95, 0xe1, 0x1f, 0xf4, 0x9d, 0x70, 0x13, 0x56, 0x3b, 0xaf, 0x7f,
    0x11, 0x58, 0x8c, 0x75, 0xa6, 0x61, 0x1e, 0xe2, 0xa4, 0x40, 0x4a, 0x49, 0x30, 0x6a, 0xe4, 0xcf,
    0xc5, 0x99, 0x07, 0x41, 0x76, 0x9b, 0xf8, 0xdc, 0x6d, 0x3a, 0x11, 0x79, 0x26, 0x04, 0x3f, 0xad,
    0x97, 0xaf, 0x95, 0xe6, 0x4d, 0xf5, 0x24, 0x6b, 0x09, 0xaf, 0x5a, 0x9d, 0x28, 0xbd, 0x8f, 0x52,
    0xa6,
];

/// Every way a record can fail to seal or open. Each has its own variant so callers (and the
/// shared bad-record vectors) can tell them apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Fewer bytes than the smallest valid record.
    #[error("record is truncated: {len} bytes, a v1 record has at least {MIN_RECORD_LEN}")]
    Truncated {
        /// Bytes received.
        len: usize,
    },
    /// More bytes than the largest valid record.
    #[error("record is too long: {len} bytes, a v1 record has at most {MAX_RECORD_LEN}")]
    TooLong {
        /// Bytes received.
        len: usize,
    },
    /// The first two bytes are not "VK".
    #[error("not a vbzkey record: wrong magic bytes")]
    BadMagic,
    /// A version this code does not implement.
    #[error("record format version {0} is not supported (this build reads version 1)")]
    UnsupportedVersion(u8),
    /// A suite this code does not implement.
    #[error("record suite {0} is not supported (this build reads suite 1)")]
    UnsupportedSuite(u8),
    /// The record was sealed to another key.
    #[error("record was sealed to key {found}, which this key ({expected}) is not")]
    UnknownKeyId {
        /// Key id in the record.
        found: KeyId,
        /// Key id of the key that tried to open it.
        expected: KeyId,
    },
    /// The encapsulated key or recipient key is a low-order point (all-zero DH output).
    #[error("record or key is invalid: the Diffie-Hellman result is all zero (low-order point)")]
    LowOrderPoint,
    /// The AEAD tag did not verify: the record was altered, or the context differs.
    #[error(
        "record does not open: it was altered, or the context is not the one it was sealed with"
    )]
    TagMismatch,
    /// The plaintext exceeds `MAX_PLAINTEXT_LEN`.
    #[error("value is too long: {len} bytes, at most {MAX_PLAINTEXT_LEN} may be sealed")]
    PlaintextTooLong {
        /// Bytes offered.
        len: usize,
    },
    /// The plaintext is not UTF-8 (v1 values are text).
    #[error("value is not UTF-8 text; v1 records hold UTF-8 values only")]
    PlaintextNotUtf8,
    /// The context exceeds `MAX_CONTEXT_LEN`.
    #[error("context is too long: {len} bytes, at most {MAX_CONTEXT_LEN} are allowed")]
    ContextTooLong {
        /// Bytes offered.
        len: usize,
    },
    /// The text form does not start with `vk1.`.
    #[error("not a vbzkey record text: it must start with `vk1.`")]
    BadTextPrefix,
    /// The text form is not valid unpadded base64url.
    #[error("record text is damaged: not valid unpadded base64url after `vk1.`")]
    BadBase64,
    /// The operating system RNG failed.
    #[error("the system random number generator failed")]
    Rng,
    /// A key transfer blob (a clone's keys) where a record was expected: it opens only in a
    /// clone's `CloneImport`, never as a value.
    #[error("this is a key transfer blob, not a record: it opens only in a clone import")]
    KeyTransfer,
}

impl RecordError {
    /// A stable, machine-readable name for the error, shared by every implementation (the
    /// bad-record vectors, the PHP code and the bridge's JSON answers use it).
    pub fn code(&self) -> &'static str {
        RecordErrorCode::from(self).code()
    }
}

/// `RecordError` reduced to its code, for the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[allow(missing_docs)]
pub enum RecordErrorCode {
    Truncated,
    TooLong,
    BadMagic,
    UnsupportedVersion,
    UnsupportedSuite,
    UnknownKeyId,
    LowOrderPoint,
    TagMismatch,
    PlaintextTooLong,
    PlaintextNotUtf8,
    ContextTooLong,
    BadTextPrefix,
    BadBase64,
    Rng,
    KeyTransfer,
}

impl From<&RecordError> for RecordErrorCode {
    fn from(e: &RecordError) -> Self {
        match e {
            RecordError::Truncated { .. } => Self::Truncated,
            RecordError::TooLong { .. } => Self::TooLong,
            RecordError::BadMagic => Self::BadMagic,
            RecordError::UnsupportedVersion(_) => Self::UnsupportedVersion,
            RecordError::UnsupportedSuite(_) => Self::UnsupportedSuite,
            RecordError::UnknownKeyId { .. } => Self::UnknownKeyId,
            RecordError::LowOrderPoint => Self::LowOrderPoint,
            RecordError::TagMismatch => Self::TagMismatch,
            RecordError::PlaintextTooLong { .. } => Self::PlaintextTooLong,
            RecordError::PlaintextNotUtf8 => Self::PlaintextNotUtf8,
            RecordError::ContextTooLong { .. } => Self::ContextTooLong,
            RecordError::BadTextPrefix => Self::BadTextPrefix,
            RecordError::BadBase64 => Self::BadBase64,
            RecordError::Rng => Self::Rng,
            RecordError::KeyTransfer => Self::KeyTransfer,
        }
    }
}

impl RecordErrorCode {
    /// The stable code string.
    pub fn code(self) -> &'static str {
        match self {
            Self::Truncated => "truncated",
            Self::TooLong => "too_long",
            Self::BadMagic => "bad_magic",
            Self::UnsupportedVersion => "unsupported_version",
            Self::UnsupportedSuite => "unsupported_suite",
            Self::UnknownKeyId => "unknown_key_id",
            Self::LowOrderPoint => "low_order_point",
            Self::TagMismatch => "tag_mismatch",
            Self::PlaintextTooLong => "plaintext_too_long",
            Self::PlaintextNotUtf8 => "plaintext_not_utf8",
            Self::ContextTooLong => "context_too_long",
            Self::BadTextPrefix => "bad_text_prefix",
            Self::BadBase64 => "bad_base64",
            Self::Rng => "rng",
            Self::KeyTransfer => "key_transfer",
        }
    }
}

/// A parsed (not yet opened) record, borrowing the bytes it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    domain: Domain,
    header: &'a [u8; HEADER_LEN],
    enc: &'a [u8; ENC_LEN],
    ciphertext: &'a [u8],
}

impl<'a> Record<'a> {
    /// Check the header and lengths of a binary record. Does not need a key.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, RecordError> {
        Self::parse_in(Domain::Record, bytes)
    }

    fn parse_in(domain: Domain, bytes: &'a [u8]) -> Result<Self, RecordError> {
        let Some([m0, m1, version, suite]) = bytes.first_chunk::<4>() else {
            return Err(RecordError::Truncated { len: bytes.len() });
        };
        match [*m0, *m1] {
            m if m == domain.magic() => {}
            TRANSFER_MAGIC => return Err(RecordError::KeyTransfer),
            _ => return Err(RecordError::BadMagic),
        }
        if *version != VERSION {
            return Err(RecordError::UnsupportedVersion(*version));
        }
        if *suite != SUITE {
            return Err(RecordError::UnsupportedSuite(*suite));
        }
        if bytes.len() > MAX_RECORD_LEN {
            return Err(RecordError::TooLong { len: bytes.len() });
        }
        let truncated = RecordError::Truncated { len: bytes.len() };
        let (header, rest) = bytes.split_first_chunk::<HEADER_LEN>().ok_or(truncated.clone())?;
        let (enc, ciphertext) = rest.split_first_chunk::<ENC_LEN>().ok_or(truncated.clone())?;
        if ciphertext.len() < TAG_LEN {
            return Err(truncated);
        }
        Ok(Record { domain, header, enc, ciphertext })
    }

    /// The id of the key this record was sealed to.
    pub fn key_id(&self) -> KeyId {
        let [.., k0, k1, k2, k3, k4, k5, k6, k7] = *self.header;
        KeyId([k0, k1, k2, k3, k4, k5, k6, k7])
    }

    /// The encapsulated ephemeral public key.
    pub fn enc(&self) -> &[u8; ENC_LEN] {
        self.enc
    }

    /// Length of the sealed value.
    pub fn plaintext_len(&self) -> usize {
        // `parse` checked that the ciphertext holds a tag.
        self.ciphertext.len().saturating_sub(TAG_LEN)
    }

    /// Open with `key` under `context`. On any failure nothing of the plaintext is returned.
    pub fn open(&self, key: &SecretKey, context: &[u8]) -> Result<Zeroizing<Vec<u8>>, RecordError> {
        if context.len() > MAX_CONTEXT_LEN {
            return Err(RecordError::ContextTooLong { len: context.len() });
        }
        if self.key_id() != key.key_id() {
            return Err(RecordError::UnknownKeyId { found: self.key_id(), expected: key.key_id() });
        }
        let shared = hpke::decap(self.enc, key.dalek(), key.public_key().as_bytes())
            .map_err(|_| RecordError::LowOrderPoint)?;
        let mut ctx = hpke::Context::new(&shared, &self.domain.key_schedule_context());
        let (body, tag) = self
            .ciphertext
            .split_last_chunk::<TAG_LEN>()
            .ok_or(RecordError::Truncated { len: MIN_RECORD_LEN - 1 })?;
        let mut plaintext = Zeroizing::new(body.to_vec());
        let aad = aad(self.header, context);
        ctx.open_in_place(&aad, &mut plaintext, tag).map_err(|_| RecordError::TagMismatch)?;
        if self.domain == Domain::Record && core::str::from_utf8(&plaintext).is_err() {
            return Err(RecordError::PlaintextNotUtf8);
        }
        Ok(plaintext)
    }
}

fn header_for(domain: Domain, key_id: KeyId) -> [u8; HEADER_LEN] {
    let [m0, m1] = domain.magic();
    let [k0, k1, k2, k3, k4, k5, k6, k7] = key_id.0;
    [m0, m1, VERSION, SUITE, k0, k1, k2, k3, k4, k5, k6, k7]
}

fn aad(header: &[u8; HEADER_LEN], context: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(HEADER_LEN + context.len());
    aad.extend_from_slice(header);
    aad.extend_from_slice(context);
    aad
}

/// Seal `plaintext` (UTF-8, at most 4096 bytes) to `to` under `context`, with a fresh
/// ephemeral key drawn from `fill`: a CSPRNG (the dongle passes its platform RNG) that returns
/// false when it failed, and the record is then not sealed ([`RecordError::Rng`]).
pub fn seal_with_rng(
    to: &PublicKey,
    context: &[u8],
    plaintext: &[u8],
    fill: &mut dyn FnMut(&mut [u8]) -> bool,
) -> Result<Vec<u8>, RecordError> {
    check_seal_input(context, plaintext)?;
    let mut ephemeral = Zeroizing::new([0u8; 32]);
    if !fill(&mut ephemeral[..]) {
        return Err(RecordError::Rng);
    }
    seal_to(Domain::Record, to, context, plaintext, &ephemeral)
}

/// Seal a dongle's keys (`plaintext`, at most 4096 bytes) to a clone's transfer key `to`, in
/// the key transfer domain, with a fresh ephemeral key from `fill`.
pub fn seal_key_transfer(
    to: &PublicKey,
    plaintext: &[u8],
    fill: &mut dyn FnMut(&mut [u8]) -> bool,
) -> Result<Vec<u8>, RecordError> {
    if plaintext.len() > MAX_PLAINTEXT_LEN {
        return Err(RecordError::PlaintextTooLong { len: plaintext.len() });
    }
    let mut ephemeral = Zeroizing::new([0u8; 32]);
    if !fill(&mut ephemeral[..]) {
        return Err(RecordError::Rng);
    }
    seal_to(Domain::KeyTransfer, to, b"", plaintext, &ephemeral)
}

/// Open a key transfer blob with the clone's transfer key. A record is refused
/// ([`RecordError::BadMagic`]): only transfer blobs open here.
pub fn open_key_transfer(key: &SecretKey, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, RecordError> {
    Record::parse_in(Domain::KeyTransfer, blob)?.open(key, b"")
}

/// Seal `plaintext` to `to` under `context` with a fresh ephemeral key from the OS RNG.
#[cfg(feature = "getrandom")]
pub fn seal(to: &PublicKey, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, RecordError> {
    seal_with_rng(to, context, plaintext, &mut |b| getrandom::fill(b).is_ok())
}

/// Seal with a caller-chosen ephemeral key: **for test vectors only**. Reusing an ephemeral
/// key reuses the AEAD key and nonce, so this exists only behind the
/// `dangerous-fixed-ephemeral` feature, which no release build enables.
#[cfg(feature = "dangerous-fixed-ephemeral")]
#[doc(hidden)]
pub fn seal_with_ephemeral(
    to: &PublicKey,
    context: &[u8],
    plaintext: &[u8],
    ephemeral: Zeroizing<[u8; 32]>,
) -> Result<Vec<u8>, RecordError> {
    check_seal_input(context, plaintext)?;
    seal_to(Domain::Record, to, context, plaintext, &ephemeral)
}

fn check_seal_input(context: &[u8], plaintext: &[u8]) -> Result<(), RecordError> {
    if plaintext.len() > MAX_PLAINTEXT_LEN {
        return Err(RecordError::PlaintextTooLong { len: plaintext.len() });
    }
    if core::str::from_utf8(plaintext).is_err() {
        return Err(RecordError::PlaintextNotUtf8);
    }
    if context.len() > MAX_CONTEXT_LEN {
        return Err(RecordError::ContextTooLong { len: context.len() });
    }
    Ok(())
}

fn seal_to(
    domain: Domain,
    to: &PublicKey,
    context: &[u8],
    plaintext: &[u8],
    ephemeral: &[u8; 32],
) -> Result<Vec<u8>, RecordError> {
    let sk_e = StaticSecret::from(*ephemeral);
    let (shared, enc) =
        hpke::encap(&sk_e, to.as_bytes()).map_err(|_| RecordError::LowOrderPoint)?;
    let header = header_for(domain, to.key_id());
    let mut ctx = hpke::Context::new(&shared, &domain.key_schedule_context());

    let mut out = Vec::with_capacity(MIN_RECORD_LEN + plaintext.len());
    out.extend_from_slice(&header);
    out.extend_from_slice(&enc);
    let mut body = Zeroizing::new(plaintext.to_vec());
    let tag = ctx.seal_in_place(&aad(&header, context), &mut body);
    out.extend_from_slice(&body);
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Parse and open a binary record in one step.
pub fn open(
    key: &SecretKey,
    context: &[u8],
    record: &[u8],
) -> Result<Zeroizing<Vec<u8>>, RecordError> {
    Record::parse(record)?.open(key, context)
}

/// The `vk1.` text form of a binary record.
pub fn to_text(record: &[u8]) -> String {
    let mut s = String::with_capacity(TEXT_PREFIX.len() + (record.len() * 4).div_ceil(3));
    s.push_str(TEXT_PREFIX);
    s.push_str(&Base64UrlUnpadded::encode_string(record));
    s
}

/// Decode the `vk1.` text form to binary. Checks the encoding and the length bound only;
/// [`Record::parse`] checks the rest.
pub fn from_text(text: &str) -> Result<Vec<u8>, RecordError> {
    let body = text.strip_prefix(TEXT_PREFIX).ok_or(RecordError::BadTextPrefix)?;
    if text.len() > MAX_TEXT_LEN {
        // Refuse before decoding, so a huge input costs nothing.
        return Err(RecordError::TooLong { len: body.len() / 4 * 3 });
    }
    Base64UrlUnpadded::decode_vec(body).map_err(|_| RecordError::BadBase64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_schedule_context_constant_is_what_the_rfc_computes() {
        assert_eq!(hpke::key_schedule_context(INFO), KEY_SCHEDULE_CONTEXT);
    }

    #[test]
    fn length_constants_match_the_spec() {
        assert_eq!(HEADER_LEN, 12);
        assert_eq!(MIN_RECORD_LEN, 60);
        assert_eq!(MAX_RECORD_LEN, 4156);
    }

    #[test]
    fn sealed_record_has_the_documented_layout() {
        let sk = SecretKey::derive(&[5u8; 32]);
        let rec = seal_with_ephemeral(sk.public_key(), b"t/1/f", b"abc", Zeroizing::new([6u8; 32]))
            .unwrap();
        assert_eq!(&rec[..4], b"VK\x01\x01");
        assert_eq!(&rec[4..12], &sk.key_id().0);
        let eph_pub = x25519_dalek::PublicKey::from(&StaticSecret::from([6u8; 32]));
        assert_eq!(&rec[12..44], eph_pub.as_bytes());
        assert_eq!(rec.len(), 44 + 3 + 16);
        assert_eq!(&open(&sk, b"t/1/f", &rec).unwrap()[..], b"abc");
    }

    fn os_fill(b: &mut [u8]) -> bool {
        getrandom::fill(b).is_ok()
    }

    /// A clone's key transfer and a customer record never open as each other, even sealed to
    /// the same key: their magic and HPKE `info` differ, and a transfer blob is named as such.
    #[test]
    fn key_transfers_and_records_live_in_separate_domains() {
        let sk = SecretKey::derive(&[9u8; 32]);
        let keys = [1u8, 2, 0xff, 0]; // not text: a transfer carries bytes
        let blob = seal_key_transfer(sk.public_key(), &keys, &mut os_fill).unwrap();
        assert_eq!(&blob[..4], b"VT\x01\x01");
        assert_eq!(&open_key_transfer(&sk, &blob).unwrap()[..], keys);
        // Given where a record is expected, with the right key and any context.
        assert_eq!(Record::parse(&blob), Err(RecordError::KeyTransfer));
        assert_eq!(open(&sk, b"", &blob), Err(RecordError::KeyTransfer));
        assert_eq!(RecordError::KeyTransfer.code(), "key_transfer");
        // Relabelled as a record, it still does not open: the HPKE info differs.
        let mut relabelled = blob.clone();
        relabelled[..2].copy_from_slice(b"VK");
        assert_eq!(open(&sk, b"", &relabelled), Err(RecordError::TagMismatch));
        // And a record never opens as a transfer.
        let rec = seal_with_rng(sk.public_key(), b"", b"4111", &mut os_fill).unwrap();
        assert_eq!(open_key_transfer(&sk, &rec), Err(RecordError::BadMagic));
        let mut as_transfer = rec.clone();
        as_transfer[..2].copy_from_slice(b"VT");
        assert_eq!(open_key_transfer(&sk, &as_transfer), Err(RecordError::TagMismatch));
    }
}
