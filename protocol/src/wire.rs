//! The bridge ⇄ dongle wire protocol: framed, versioned postcard messages with request ids.
//!
//! ```text
//! frame   = header (8 bytes) ‖ payload (len bytes, len ≤ MAX_FRAME_PAYLOAD)
//! header  = "VZ" ‖ FRAME_VERSION (1) ‖ kind (1) ‖ len as u32 big-endian
//! kind    = 0 plain message, 1 session handshake, 2 session-sealed message
//! payload = postcard( protocol_version: u16, request_id: u32, body: Request | Response )
//! ```
//!
//! On USB the header and the payload go in two bulk transfers (the header transfer is a short
//! packet, so the receiver can size its read for the payload exactly). On a stream socket they
//! are simply consecutive bytes. `docs/PROTOCOL.md` describes every message.

use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::keys::KeyId;
use crate::record::RecordErrorCode;
use crate::share::Share;

pub(crate) mod bounded;

/// First two bytes of every frame.
pub const FRAME_MAGIC: [u8; 2] = *b"VZ";
/// Version of the framing (the 8-byte header).
pub const FRAME_VERSION: u8 = 1;
/// Length of the frame header.
pub const FRAME_HEADER_LEN: usize = 8;
/// Version of the message schema inside the payload. Version 2: the custody model (a
/// mandatory admin credential with its own counter, physical presence, per-connection admin
/// windows); version 1 dongles and hosts are refused (docs/DECISIONS.md).
pub const PROTOCOL_VERSION: u16 = 2;
/// Most records in one `UnsealBatch` or `Rewrap`. A staff page shows at most a few hundred
/// sealed fields; larger jobs (rotation) stream batches.
pub const MAX_BATCH: usize = 256;
/// Largest payload: a full batch of maximal records with maximal contexts, plus slack.
/// 256 × (4156 + 512 + 8) ≈ 1.2 MB; rounded up to 2 MiB.
pub const MAX_FRAME_PAYLOAD: usize = 2 * 1024 * 1024;
/// Longest PIN or passphrase accepted (bytes of UTF-8).
pub const MAX_PIN_LEN: usize = 128;
/// Shortest staff PIN accepted when one is set: six characters. With the key store's
/// Argon2id cost, a 6-digit PIN costs a card thief about a day of one CPU core to exhaust
/// offline (docs/THREAT-MODEL.md, "stolen dongle"); longer or non-numeric PINs cost more.
pub const MIN_PIN_LEN: usize = 6;
/// Shortest admin credential: eight characters. It guards key export, so it is longer than
/// the PIN staff type every day.
pub const MIN_ADMIN_PIN_LEN: usize = 8;
/// An admin window closes after this long without an admin request (and at once when its
/// connection ends or `EndAdmin` is sent): long enough between the steps of a rotation, short
/// enough that a walked-away admin session closes itself.
pub const ADMIN_IDLE_SECS: u64 = 300;
/// How long the dongle waits for a press of its button before refusing the request.
pub const PRESENCE_TIMEOUT_SECS: u64 = 30;

// Decode-time bounds (`bounded`): the largest value a valid message can carry in each field
// that the constants above and the record and share formats do not already bound. A longer
// field makes the whole message `Malformed` before its elements are decoded.

/// Longest host label (`Pair`, `Pairings`), in bytes of UTF-8.
pub const MAX_LABEL_LEN: usize = 64;
/// Most shares in `Restore` or `Shares`: a share's index is a u8 from 1, so no more distinct
/// shares of one backup exist.
pub const MAX_SHARES: usize = 255;
/// Most key versions in `Hello` and `PublicKeys`: more than a key store can list (its public
/// part is at most 64 KiB, and each version takes at least 34 bytes of it).
pub const MAX_KEY_VERSIONS: usize = 2048;
/// Most paired hosts in `Pairings`: each holds one of the key store's at most 255 slots.
pub const MAX_PAIRINGS: usize = 255;
/// Most lines in one `AuditTail` answer: all that its `max` (a u16) can ask for.
pub const MAX_AUDIT_ENTRIES: usize = u16::MAX as usize;
/// Longest audit line in an answer: the fixed fields and the key ids of a restore or clone
/// (at most about a hundred versions fit in the shares or the clone blob) fit many times over.
pub const MAX_AUDIT_LINE: usize = 16 * 1024;
/// Longest serial number or firmware version in `Hello`.
pub const MAX_DEVICE_TEXT: usize = 64;
/// Longest clone blob (`CloneBlob`, `CloneImport`): the key set travels sealed as one record.
pub const MAX_CLONE_BLOB: usize = crate::record::MAX_RECORD_LEN;

/// What a frame carries (byte 3 of the header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// A plain postcard message.
    Plain = 0,
    /// A Noise handshake message (`session`).
    Handshake = 1,
    /// A postcard message sealed in an established session.
    Sealed = 2,
}

/// Why bytes are not a valid frame or message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The header does not start with "VZ".
    #[error("not a vbzkey frame (bad magic)")]
    BadMagic,
    /// A framing version this code does not speak.
    #[error("frame version {0} is not supported")]
    UnsupportedFrameVersion(u8),
    /// The announced payload exceeds `MAX_FRAME_PAYLOAD`.
    #[error("frame of {0} bytes exceeds the {MAX_FRAME_PAYLOAD}-byte limit")]
    FrameTooLarge(usize),
    /// A message schema version this code does not speak.
    #[error("protocol version {0} is not supported (this build speaks {PROTOCOL_VERSION})")]
    UnsupportedProtocolVersion(u16),
    /// The payload is not a valid message.
    #[error("malformed message")]
    Malformed,
    /// Header byte 3 names no known frame kind.
    #[error("unknown frame kind {0}")]
    UnknownFrameKind(u8),
}

/// Parse a frame header; returns the payload length that follows.
pub fn parse_header(header: &[u8; FRAME_HEADER_LEN]) -> Result<usize, WireError> {
    let [m0, m1, version, _kind, l0, l1, l2, l3] = *header;
    if [m0, m1] != FRAME_MAGIC {
        return Err(WireError::BadMagic);
    }
    if version != FRAME_VERSION {
        return Err(WireError::UnsupportedFrameVersion(version));
    }
    let len = u32::from_be_bytes([l0, l1, l2, l3]) as usize;
    if len > MAX_FRAME_PAYLOAD {
        return Err(WireError::FrameTooLarge(len));
    }
    Ok(len)
}

/// The frame kind of a header that passed [`parse_header`].
pub fn frame_kind(header: &[u8; FRAME_HEADER_LEN]) -> Result<FrameKind, WireError> {
    let [_, _, _, kind, ..] = *header;
    match kind {
        0 => Ok(FrameKind::Plain),
        1 => Ok(FrameKind::Handshake),
        2 => Ok(FrameKind::Sealed),
        k => Err(WireError::UnknownFrameKind(k)),
    }
}

/// The header for a plain payload of `len` bytes.
pub fn header_for(len: usize) -> [u8; FRAME_HEADER_LEN] {
    header_for_kind(len, FrameKind::Plain)
}

/// The header for a payload of `len` bytes of `kind` (`len` at most `MAX_FRAME_PAYLOAD`:
/// larger payloads are never sent, and would be refused by [`parse_header`]).
pub fn header_for_kind(len: usize, kind: FrameKind) -> [u8; FRAME_HEADER_LEN] {
    let [m0, m1] = FRAME_MAGIC;
    let [l0, l1, l2, l3] = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
    [m0, m1, FRAME_VERSION, kind as u8, l0, l1, l2, l3]
}

/// A whole frame of `kind` around `payload`.
pub fn frame(kind: FrameKind, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(FRAME_HEADER_LEN + payload.len());
    f.extend_from_slice(&header_for_kind(payload.len(), kind));
    f.extend_from_slice(payload);
    f
}

/// The postcard payload of a message (no frame header): what a session seals.
#[allow(
    clippy::expect_used,
    reason = "postcard fails only for types serde cannot size (none here) or a full buffer \
              (a Vec grows)"
)]
pub fn encode_payload<T: Serialize>(id: u32, body: &T) -> Vec<u8> {
    postcard::to_allocvec(&EnvelopeRef { version: PROTOCOL_VERSION, id, body })
        .expect("wire messages always serialize")
}

/// A PIN or passphrase: zeroized on drop, never printed.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pin(
    #[serde(deserialize_with = "bounded::secret::<MAX_PIN_LEN, _>")] pub Zeroizing<Vec<u8>>,
);

impl Pin {
    /// Wrap PIN bytes.
    pub fn new(bytes: &[u8]) -> Self {
        Pin(Zeroizing::new(bytes.to_vec()))
    }
}

impl core::fmt::Debug for Pin {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Pin(…)")
    }
}

/// A paired host's unlock secret (`SecretKey::unlock_secret`): zeroized on drop, never
/// printed, sent only inside a session.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UnlockSecret(pub Zeroizing<[u8; 32]>);

impl core::fmt::Debug for UnlockSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("UnlockSecret(…)")
    }
}

/// One record to open (or re-wrap) and the context it was sealed under.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SealedItem {
    /// The binary record.
    #[serde(deserialize_with = "bounded::seq::<{ crate::record::MAX_RECORD_LEN }, _, _>")]
    pub record: Vec<u8>,
    /// The context bytes.
    #[serde(deserialize_with = "bounded::seq::<{ crate::record::MAX_CONTEXT_LEN }, _, _>")]
    pub context: Vec<u8>,
}

/// What the bridge asks of the dongle. Which request needs what (a session, the staff
/// unlock, the admin credential, a press of the button) is the firmware's custody policy
/// (`firmware/src/dongle/policy.rs`, docs/PROTOCOL.md); the notes below only summarise it.
/// Variants are encoded by index: new ones are appended, never inserted (golden test).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum Request {
    /// Who are you and what state are you in? Needs nothing.
    Hello,
    /// Generate the first key on the device and set both credentials. Refused once
    /// initialised.
    Init {
        /// The staff PIN to set; `None` leaves the keys openable by whoever holds the dongle.
        pin: Option<Pin>,
        /// The admin credential (mandatory, different from the staff PIN): key export, PIN
        /// resets, pairing, rotation and reset need it.
        admin_pin: Pin,
    },
    /// Prove the admin credential: opens an admin window for this connection only, closed by
    /// `EndAdmin`, `Lock`, the end of the connection, or `ADMIN_IDLE_SECS` without use. Wrong
    /// admin PINs count in their own persistent counter.
    AdminAuth {
        /// The admin credential.
        admin_pin: Pin,
        /// This host's unlock secret, once hosts are paired (split custody).
        unlock_secret: Option<UnlockSecret>,
    },
    /// Unlock with the staff PIN (for `UnsealBatch`). Wrong PINs are counted, persistently.
    /// Once hosts are paired, the session's host must also give its unlock secret: the PIN
    /// opens the dongle's half of the master key, the secret the host's half.
    Unlock {
        /// The PIN.
        pin: Pin,
        /// This host's unlock secret, once hosts are paired (split custody).
        unlock_secret: Option<UnlockSecret>,
    },
    /// Forget the unlocked keys now, and close this connection's admin window.
    Lock,
    /// The public keys (all versions).
    PublicKeys,
    /// Open many records; each gets its own result. Needs the staff unlock.
    UnsealBatch {
        /// The records.
        #[serde(deserialize_with = "bounded::seq::<MAX_BATCH, _, _>")]
        items: Vec<SealedItem>,
    },
    /// Open each record and seal its value to `new_public_key` (one of the dongle's own keys)
    /// under the same context, inside the device: plaintext never leaves it. Admin.
    Rewrap {
        /// The records.
        #[serde(deserialize_with = "bounded::seq::<MAX_BATCH, _, _>")]
        items: Vec<SealedItem>,
        /// The key to re-seal to.
        new_public_key: [u8; 32],
    },
    /// The last entries of the audit log and its head hash.
    AuditTail {
        /// At most this many entries.
        max: u16,
    },
    /// Set a new staff PIN without the old one, or remove it (`None`): for a forgotten PIN or
    /// a staff lock-out. Admin and a press of the button; resets the staff counter.
    SetStaffPin {
        /// The new staff PIN; `None` removes it.
        new: Option<Pin>,
    },
    /// Generate a new key version on the device and make it the one new records use; older
    /// versions stay for opening. Admin.
    Rotate,
    /// Delete an old key version; the active key cannot be retired. Admin.
    Retire {
        /// The key to delete.
        key_id: KeyId,
    },
    /// Wipe the key store, the counters and the pairings (the audit log and the device key
    /// stay). Admin and a press; without the admin credential only when it cannot be given
    /// (admin locked out, key store damaged, uninitialised).
    FactoryReset,
    /// Deal M-of-N recovery shares of every key version. Admin and a press.
    Backup {
        /// Shares needed to restore (M, at least 2).
        threshold: u8,
        /// Shares to make (N, at most 16).
        count: u8,
    },
    /// Rebuild the keys from recovery shares into an uninitialised dongle, with new
    /// credentials.
    Restore {
        /// The shares, typed (the admin tool parses and checks the printed lines).
        #[serde(deserialize_with = "bounded::seq::<MAX_SHARES, _, _>")]
        shares: Vec<Share>,
        /// The staff PIN to set.
        pin: Option<Pin>,
        /// The admin credential to set.
        admin_pin: Pin,
    },
    /// On the clone's target (uninitialised): make a transfer key, kept in RAM only.
    CloneBegin,
    /// On the clone's source: seal every key version to the target's transfer key. Admin and
    /// a press.
    CloneExport {
        /// The target's transfer public key.
        to: [u8; 32],
    },
    /// The dongle's device public key (for hosts to pair with and open sessions to).
    DeviceKey,
    /// Pair a host: from then on, only paired hosts are served (in an encrypted session).
    /// Admin and a press.
    Pair {
        /// The host's static X25519 public key.
        host_key: [u8; 32],
        /// A name for the host (shown by `Pairings`), at most 64 bytes.
        #[serde(deserialize_with = "bounded::string::<MAX_LABEL_LEN, _>")]
        label: String,
        /// The host's unlock secret: the dongle wraps its half of the master key under it.
        unlock_secret: UnlockSecret,
    },
    /// Remove a pairing. Admin and a press.
    Unpair {
        /// The host's public key.
        host_key: [u8; 32],
    },
    /// The paired hosts.
    Pairings,
    /// On the target: open the blob with its transfer key and store the keys under new
    /// credentials.
    CloneImport {
        /// The sealed key set from `CloneExport`.
        #[serde(deserialize_with = "bounded::seq::<MAX_CLONE_BLOB, _, _>")]
        blob: Vec<u8>,
        /// The staff PIN to set.
        pin: Option<Pin>,
        /// The admin credential to set.
        admin_pin: Pin,
    },
    /// Change the admin credential. Admin and a press; resets the admin counter.
    ChangeAdminPin {
        /// The new admin credential.
        new: Pin,
    },
    /// Close this connection's admin window now (the admin tool sends it when it finishes).
    EndAdmin,
    /// Audit entries from `from_seq` on, with the head they chain from: the whole log is
    /// read page by page (`vbzkey-admin audit export`). At most `max` entries, and at most
    /// what fits one answer.
    AuditRead {
        /// The first entry wanted.
        from_seq: u64,
        /// At most this many entries.
        max: u16,
    },
}

/// Lock state reported by `Hello`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum LockState {
    /// No key yet: send `Init`.
    Uninitialised,
    /// A PIN is needed.
    Locked,
    /// Records can be opened.
    Unlocked,
    /// Too many wrong staff PINs: unsealing is refused until an admin sets a new staff PIN
    /// (`SetStaffPin`).
    LockedOut,
    /// The key store is sealed to this board's OTP device secret, which the firmware was not
    /// given (the boot unit could not read it): nothing opens, no PIN is asked or counted,
    /// until it is back. Not damage: do not reset.
    DeviceSecretMissing,
}

/// One key held by the dongle.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyInfo {
    /// Key id.
    pub key_id: KeyId,
    /// Version number, 1 for the first key, +1 per rotation.
    pub version: u32,
    /// The X25519 public key.
    pub public_key: [u8; 32],
    /// Whether new records should be sealed to this key.
    pub active: bool,
}

/// Limits the dongle enforces.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame payload.
    pub max_frame_payload: u32,
    /// Most items per batch.
    pub max_batch: u16,
    /// Records per minute (token bucket refill).
    pub records_per_minute: u32,
    /// Token bucket size (burst).
    pub burst: u32,
    /// Wrong staff PINs before the staff lock-out.
    pub max_pin_tries: u8,
    /// Wrong admin credentials before the admin lock-out.
    pub max_admin_tries: u8,
    /// Seconds without key use before auto-lock.
    pub idle_lock_secs: u32,
    /// Batches larger than this need the button (None: never).
    pub confirm_batch_over: Option<u16>,
    /// Seconds without an admin request before an admin window closes.
    pub admin_idle_secs: u32,
    /// Argon2id memory (KiB) of each PIN check: what one offline guess costs a thief.
    pub kdf_m_kib: u32,
    /// Argon2id passes of each PIN check.
    pub kdf_t: u32,
}

/// The answer to `Hello`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HelloInfo {
    /// Firmware version string.
    #[serde(deserialize_with = "bounded::string::<MAX_DEVICE_TEXT, _>")]
    pub firmware_version: String,
    /// Wire protocol version.
    pub protocol_version: u16,
    /// Device serial number (not secret).
    #[serde(deserialize_with = "bounded::string::<MAX_DEVICE_TEXT, _>")]
    pub serial: String,
    /// Lock state.
    pub state: LockState,
    /// Whether a staff PIN is set.
    pub pin_set: bool,
    /// Wrong staff PINs left before the staff lock-out.
    pub pin_tries_left: u8,
    /// Wrong admin credentials left before the admin lock-out (0: admin requests are refused
    /// until a factory reset).
    pub admin_tries_left: u8,
    /// Keys held (present even when locked: public keys are stored in clear).
    #[serde(deserialize_with = "bounded::seq::<MAX_KEY_VERSIONS, _, _>")]
    pub keys: Vec<KeyInfo>,
    /// Limits.
    pub limits: Limits,
    /// Whether the audit log's hash chain verified.
    pub audit_intact: bool,
    /// Hosts paired (0: any host on USB or the local socket is served; TCP needs a pairing).
    pub paired_hosts: u16,
    /// Whether the dongle has a presence input (a button) to confirm requests with.
    pub presence_input: bool,
    /// Whether the asking connection holds an open admin window.
    pub admin_window: bool,
    /// Whether unlocking needs a paired host's secret as well as the PIN (split custody). When
    /// false, a stolen dongle is protected by its PIN only.
    pub split_custody: bool,
}

/// A paired host.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PairingInfo {
    /// The host's static public key.
    pub host_key: [u8; 32],
    /// Its name.
    #[serde(deserialize_with = "bounded::string::<MAX_LABEL_LEN, _>")]
    pub label: String,
    /// When it was paired (Unix seconds, by the dongle's clock).
    pub paired_at: u64,
}

/// One audit log entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditEntry {
    /// The entry exactly as stored (one line of the log), for export and re-verification.
    #[serde(deserialize_with = "bounded::string::<MAX_AUDIT_LINE, _>")]
    pub line: String,
}

/// Why one item of a batch failed.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum ItemError {
    /// The record failed to parse or open; the code is `RecordError::code`.
    Record(RecordErrorCode),
    /// The dongle holds no key with the record's key id.
    NoSuchKey,
}

impl ItemError {
    /// Stable code, as in `RecordError::code`, plus `no_such_key`.
    pub fn code(&self) -> &'static str {
        match self {
            ItemError::NoSuchKey => "no_such_key",
            ItemError::Record(c) => c.code(),
        }
    }
}

/// A plaintext on its way to the bridge: zeroized on drop, never printed.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Plaintext(
    #[serde(deserialize_with = "bounded::secret::<{ crate::record::MAX_PLAINTEXT_LEN }, _>")]
    pub  Zeroizing<Vec<u8>>,
);

impl core::fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Plaintext({} bytes)", self.0.len())
    }
}

/// Why a whole request failed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, thiserror::Error)]
pub enum DongleError {
    /// The dongle has no key: send `Init`.
    #[error("the dongle is not initialised")]
    NotInitialised,
    /// `Init` on an initialised dongle.
    #[error("the dongle is already initialised; factory-reset it first to start over")]
    AlreadyInitialised,
    /// The request needs the PIN first.
    #[error("the dongle is locked: unlock it with the PIN")]
    Locked,
    /// The staff PIN was wrong.
    #[error("wrong PIN: {tries_left} tries left before the dongle locks itself")]
    WrongPin {
        /// Tries left.
        tries_left: u8,
    },
    /// Too many wrong staff PINs.
    #[error(
        "too many wrong PINs: the dongle is locked out; an admin can set a new PIN (vbzkey-admin set-pin)"
    )]
    LockedOut,
    /// A PIN does not meet the length rules.
    #[error(
        "a staff PIN must be {MIN_PIN_LEN} to {MAX_PIN_LEN} bytes, an admin PIN {MIN_ADMIN_PIN_LEN} to {MAX_PIN_LEN}"
    )]
    BadPin,
    /// The rate limit is exhausted.
    #[error("rate limit reached: try again in {retry_after_ms} ms")]
    RateLimited {
        /// When enough tokens will be back.
        retry_after_ms: u32,
    },
    /// The batch is empty or larger than `MAX_BATCH`.
    #[error("a batch must hold 1 to {MAX_BATCH} items")]
    BadBatchSize,
    /// The request needs a press of the dongle's button, and none came in time (or the
    /// dongle has no button).
    #[error("this needs a press of the dongle's button, and none came in time")]
    NotConfirmed,
    /// No such key version (retire).
    #[error("the dongle holds no key with that id")]
    NoSuchKey,
    /// The active key cannot be retired.
    #[error("the active key cannot be retired; rotate first")]
    KeyIsActive,
    /// A public key to re-wrap to is invalid.
    #[error("the new public key is invalid")]
    BadPublicKey,
    /// The key store or audit log could not be read or written.
    #[error("the dongle's storage failed; see its log")]
    Storage,
    /// The key store exists but fails its integrity check.
    #[error("the key store is damaged or belongs to another device; it was left untouched")]
    KeyStoreDamaged,
    /// The audit log's hash chain is broken: requests that use or change keys, credentials or
    /// pairings are refused.
    #[error(
        "the audit log failed verification: requests that use or change keys, PINs or pairings \
         are refused; a factory reset sets the log aside (kept on the card) and starts a new one"
    )]
    AuditBroken,
    /// The request could not be decoded.
    #[error("malformed request")]
    Malformed,
    /// The request's protocol version is not spoken.
    #[error("protocol version not supported")]
    UnsupportedVersion,
    /// The request is not allowed in the current state or from this host.
    #[error("request not allowed")]
    NotAllowed,
    /// The RNG failed.
    #[error("the device's random number generator failed")]
    Rng,
    /// Backup parameters out of range.
    #[error("a backup needs a threshold of at least 2 and at most 16 shares, threshold <= shares")]
    BadBackupParameters,
    /// Shares from different backups.
    #[error("the recovery shares come from different backups")]
    SharesMixed,
    /// Not enough distinct shares.
    #[error("{need} different recovery shares are needed, {got} were given")]
    TooFewShares {
        /// The threshold.
        need: u8,
        /// Distinct shares given.
        got: u8,
    },
    /// The shares do not rebuild a valid key set.
    #[error("the recovery shares do not rebuild the keys: one of them is wrong")]
    WrongShare,
    /// `CloneImport` without a `CloneBegin` since start.
    #[error("no clone is in progress on this dongle: start with CloneBegin")]
    NoCloneInProgress,
    /// The clone blob does not open with this dongle's transfer key.
    #[error("the clone blob is not for this dongle, or it was altered")]
    BadCloneBlob,
    /// The request needs an admin window of this connection (`AdminAuth`) first.
    #[error("this needs the admin PIN: authenticate as admin first")]
    AdminRequired,
    /// The dongle serves only paired hosts, in an encrypted session.
    #[error("this dongle serves paired hosts only: open a session with a paired host key")]
    PairingRequired,
    /// The host's key is not paired with this dongle.
    #[error("this host is not paired with the dongle")]
    NotPaired,
    /// No such pairing (unpair), or a bad label.
    #[error("no such paired host, or a label longer than 64 bytes")]
    BadPairing,
    /// The admin credential was wrong.
    #[error("wrong admin PIN: {tries_left} tries left before admin requests are refused for good")]
    WrongAdminPin {
        /// Tries left.
        tries_left: u8,
    },
    /// Too many wrong admin credentials: admin requests are refused until a factory reset.
    #[error(
        "too many wrong admin PINs: admin requests are refused until a factory reset (unsealing still works)"
    )]
    AdminLockedOut,
    /// The admin credential may not equal the staff PIN.
    #[error("the admin PIN must differ from the staff PIN")]
    SamePin,
    /// Split custody: this host gave no unlock secret, or one the dongle holds no share for.
    #[error(
        "this workstation holds no share of the dongle's keys: use a paired workstation, or pair this one (vbzkey-admin pair)"
    )]
    HostNotTrusted,
    /// `AuditRead` from beyond the end of the log.
    #[error("the audit log has only {total} entries")]
    AuditBeyond {
        /// Entries in the log.
        total: u64,
    },

    /// The key store needs the board's OTP device secret and the firmware was not given it,
    /// or the board's identity is not the one it was sealed to (a wrong secret, another Pi).
    /// The PIN was not checked and no try was counted.
    #[error(
        "the dongle cannot open its key store on this board as started: its OTP device secret was not read at boot, or the SD card is in another Pi (the PIN was not checked or counted); on the dongle: `systemctl status vbzkey-otp`, or put the card back in its own board. Do not reset it"
    )]
    DeviceSecretMissing,
}

/// What the dongle answers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum Response {
    /// Answer to `Hello`.
    Hello(HelloInfo),
    /// Success without data.
    Ok,
    /// Answer to `PublicKeys`, `Init`, `Rotate`.
    PublicKeys(#[serde(deserialize_with = "bounded::seq::<MAX_KEY_VERSIONS, _, _>")] Vec<KeyInfo>),
    /// Per-item results of `UnsealBatch`, in request order.
    Unsealed(
        #[serde(deserialize_with = "bounded::seq::<MAX_BATCH, _, _>")]
        Vec<Result<Plaintext, ItemError>>,
    ),
    /// Per-item results of `Rewrap`: the new records, in request order.
    Rewrapped(#[serde(deserialize_with = "bounded::rewrapped")] Vec<Result<Vec<u8>, ItemError>>),
    /// Answer to `AuditTail`.
    AuditTail {
        /// Entries, oldest first.
        #[serde(deserialize_with = "bounded::seq::<MAX_AUDIT_ENTRIES, _, _>")]
        entries: Vec<AuditEntry>,
        /// Hash of the newest entry (zeros for an empty log).
        head: [u8; 32],
        /// Entries in the whole log.
        total: u64,
    },
    /// Answer to `Backup`: the shares (printed as `vkshare1.` lines by the admin tool).
    Shares(#[serde(deserialize_with = "bounded::seq::<MAX_SHARES, _, _>")] Vec<Share>),
    /// Answer to `CloneBegin`: the transfer public key.
    CloneKey([u8; 32]),
    /// Answer to `CloneExport`: the sealed key set.
    CloneBlob(#[serde(deserialize_with = "bounded::seq::<MAX_CLONE_BLOB, _, _>")] Vec<u8>),
    /// Answer to `DeviceKey`.
    DeviceKey([u8; 32]),
    /// Answer to `Pairings`.
    Pairings(#[serde(deserialize_with = "bounded::seq::<MAX_PAIRINGS, _, _>")] Vec<PairingInfo>),
    /// The request failed as a whole.
    Error(DongleError),
    /// Not an answer yet: the dongle waits for a press of its button (its LED blinks) before
    /// it answers this request; the final answer follows with the same request id.
    PresenceNeeded {
        /// How long it waits.
        timeout_secs: u16,
    },
    /// Answer to `AuditRead`.
    AuditLines {
        /// The head the first entry chains from (the hash of entry `from_seq - 1`; zeros for
        /// entry 0): with it, the page verifies on its own.
        prev_head: [u8; 32],
        /// Entries from `from_seq`, oldest first.
        entries: Vec<AuditEntry>,
        /// Hash of the newest entry of the whole log.
        head: [u8; 32],
        /// Entries in the whole log.
        total: u64,
    },
}

#[derive(Serialize)]
struct EnvelopeRef<'a, T> {
    version: u16,
    id: u32,
    body: &'a T,
}

#[derive(Deserialize)]
struct Envelope<T> {
    // Checked before the body is decoded; present so the layout matches `EnvelopeRef`.
    _version: u16,
    id: u32,
    body: T,
}

/// Encode a message into a full frame (header ‖ payload).
pub fn encode<T: Serialize>(id: u32, body: &T) -> Vec<u8> {
    frame(FrameKind::Plain, &encode_payload(id, body))
}

/// Decode a payload: exactly one message, nothing after it (postcard alone would ignore
/// trailing bytes, so a payload could carry a second message behind the first). On a version
/// mismatch the request id is still returned when readable, so the answer can name the
/// request it refuses.
pub fn decode<'de, T: Deserialize<'de>>(
    payload: &'de [u8],
) -> Result<(u32, T), (Option<u32>, WireError)> {
    let (version, id): (u16, u32) = match postcard::take_from_bytes::<(u16, u32)>(payload) {
        Ok((v, _)) => v,
        Err(_) => return Err((None, WireError::Malformed)),
    };
    if version != PROTOCOL_VERSION {
        return Err((Some(id), WireError::UnsupportedProtocolVersion(version)));
    }
    match postcard::take_from_bytes::<Envelope<T>>(payload) {
        Ok((env, [])) => Ok((env.id, env.body)),
        Ok(_) | Err(_) => Err((Some(id), WireError::Malformed)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let req = Request::UnsealBatch {
            items: alloc::vec![SealedItem { record: alloc::vec![1, 2, 3], context: b"c".to_vec() }],
        };
        let frame = encode(7, &req);
        let len = parse_header(frame[..8].try_into().unwrap()).unwrap();
        assert_eq!(len, frame.len() - 8);
        let (id, back): (u32, Request) = decode(&frame[8..]).unwrap();
        assert_eq!((id, back), (7, req));
    }

    #[test]
    fn bad_headers_are_refused() {
        assert_eq!(parse_header(b"XZ\x01\x00\x00\x00\x00\x01"), Err(WireError::BadMagic));
        assert_eq!(
            parse_header(b"VZ\x02\x00\x00\x00\x00\x01"),
            Err(WireError::UnsupportedFrameVersion(2))
        );
        let too_big = header_for(MAX_FRAME_PAYLOAD + 1);
        assert_eq!(parse_header(&too_big), Err(WireError::FrameTooLarge(MAX_FRAME_PAYLOAD + 1)));
    }

    #[test]
    fn wrong_protocol_version_keeps_the_request_id() {
        for old_or_new in [1u16, PROTOCOL_VERSION + 1] {
            let payload = postcard::to_allocvec(&(old_or_new, 99u32, 0u8)).unwrap();
            let err = decode::<Request>(&payload).unwrap_err();
            assert_eq!(err, (Some(99), WireError::UnsupportedProtocolVersion(old_or_new)));
        }
        assert_eq!(decode::<Request>(&[]).unwrap_err(), (None, WireError::Malformed));
        let junk = postcard::to_allocvec(&(PROTOCOL_VERSION, 5u32, 250u8)).unwrap();
        assert_eq!(decode::<Request>(&junk).unwrap_err(), (Some(5), WireError::Malformed));
    }

    #[test]
    fn a_message_with_trailing_bytes_is_refused() {
        let payload = encode_payload(3, &Request::Hello);
        assert_eq!(decode::<Request>(&payload).unwrap(), (3, Request::Hello));
        // A second whole message, or one stray byte, behind a valid one.
        let mut two = payload.clone();
        two.extend_from_slice(&encode_payload(4, &Request::FactoryReset));
        assert_eq!(decode::<Request>(&two).unwrap_err(), (Some(3), WireError::Malformed));
        for extra in [0u8, 1, 0xff] {
            let mut p = payload.clone();
            p.push(extra);
            assert_eq!(decode::<Request>(&p).unwrap_err(), (Some(3), WireError::Malformed));
            let mut answer = encode_payload(3, &Response::Ok);
            answer.push(extra);
            assert_eq!(decode::<Response>(&answer).unwrap_err(), (Some(3), WireError::Malformed));
        }
    }

    #[test]
    fn headers_round_trip_for_every_kind() {
        for kind in [FrameKind::Plain, FrameKind::Handshake, FrameKind::Sealed] {
            let h = header_for_kind(MAX_FRAME_PAYLOAD, kind);
            assert_eq!(parse_header(&h), Ok(MAX_FRAME_PAYLOAD));
            assert_eq!(frame_kind(&h), Ok(kind));
        }
        let mut h = header_for(0);
        h[3] = 3;
        assert_eq!(frame_kind(&h), Err(WireError::UnknownFrameKind(3)));
    }

    #[test]
    fn secrets_are_not_printed() {
        let s = alloc::format!(
            "{:?} {:?}",
            Pin::new(b"123456"),
            Plaintext(Zeroizing::new(b"4111".to_vec()))
        );
        assert!(!s.contains("123456") && !s.contains("4111"), "{s}");
    }
}
