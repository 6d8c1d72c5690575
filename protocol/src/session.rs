//! Authenticated, encrypted host sessions: Noise IK (`Noise_IK_25519_ChaChaPoly_SHA256`)
//! through `snow`'s state machine, on this project's own crypto crates (x25519-dalek,
//! chacha20poly1305, sha2), so the dongle carries one generation of each.
//!
//! The host (initiator) knows the dongle's device key from pairing; the dongle (responder)
//! learns the host's static key from the first handshake message and serves it only if it is
//! paired. After the two handshake messages, every frame payload travels encrypted.
//!
//! ```text
//! host  ── frame kind 1: version ‖ IK message 1 (e, es, s, ss) ──►  dongle: same version? paired?
//! host  ◄── frame kind 1: version ‖ IK message 2 (e, ee, se) ───   dongle
//! host  ══ frame kind 2: Noise transport messages ═══════════════  dongle
//! ```
//!
//! - **Prologue.** Both sides mix [`PROLOGUE_LABEL`] and the wire protocol version into the
//!   handshake (the Noise prologue), and send that version in clear before each handshake
//!   message. A peer of another version is told so ([`SessionError::UnsupportedVersion`]); a
//!   version altered on the way fails the handshake, because the prologues then differ.
//! - **Chunks bound into a frame.** Noise messages are at most 65535 bytes, frames up to
//!   2 MiB: a kind-2 payload is a sequence of `u16 big-endian length ‖ Noise message`. The
//!   first plaintext byte of each message says whether it is the frame's first chunk and
//!   whether it is its last, so a frame cut in two, two frames glued together or a chunk moved
//!   to another frame fails to open (the flags are inside the AEAD, and the nonces are in
//!   order). After any failure the session refuses everything: the caller must close it.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag};
use sha2::{Digest, Sha256};
use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::CryptoResolver;
use snow::types::{Cipher, Dh, Hash, Random};
use x25519_dalek::{PublicKey as DalekPublic, StaticSecret};
use zeroize::{Zeroize, Zeroizing};

use crate::wire::PROTOCOL_VERSION;

/// The Noise protocol name.
pub const NOISE_PARAMS: &str = "Noise_IK_25519_ChaChaPoly_SHA256";
/// The first part of the Noise prologue; the wire protocol version (u16, big-endian) follows.
pub const PROLOGUE_LABEL: &[u8] = b"vbzkey session";
/// Plaintext bytes per Noise transport message, the chunk flags included (65535 minus the
/// tag, rounded down).
const CHUNK: usize = 65_000;
/// Payload bytes per chunk: the rest of a chunk is its flags byte.
pub const CHUNK_DATA: usize = CHUNK - 1;
const TAG: usize = 16;
/// Largest Noise message (the Noise specification's limit).
const MAX_NOISE_MESSAGE: usize = 65_535;
/// Chunk flag: the frame's first chunk.
const FIRST: u8 = 0x01;
/// Chunk flag: the frame's last chunk.
const LAST: u8 = 0x02;
/// Bytes of the clear version in front of each handshake message.
const VERSION_LEN: usize = 2;
/// Room for an IK handshake message (96 bytes for message 1, 48 for message 2, no payload).
const HANDSHAKE_BUF: usize = 256;
/// The longest handshake frame payload a responder reads: the clear version and a Noise
/// message that fits [`Responder::read`]'s buffer. A transport refuses a longer one from its
/// frame header, before reading it.
pub const MAX_HANDSHAKE_MESSAGE: usize = VERSION_LEN + HANDSHAKE_BUF;

/// Why a session failed. Any of these ends the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The handshake or a transport message did not verify (wrong key, tampering, replay).
    #[error("the secure session failed: a message did not verify")]
    Crypto,
    /// A transport payload is not a sequence of length-prefixed Noise messages that closes
    /// exactly one frame.
    #[error("the secure session received a malformed message")]
    Malformed,
    /// The peer speaks another version of the protocol.
    #[error(
        "the peer speaks vbzkey protocol version {peer}, this side speaks version {PROTOCOL_VERSION}: update the older of the bridge/admin tool and the dongle firmware"
    )]
    UnsupportedVersion {
        /// The version the peer announced.
        peer: u16,
    },
    /// A message already failed in this session: it is closed.
    #[error("the secure session was closed after a failed message; open a new one")]
    Closed,
}

impl From<snow::Error> for SessionError {
    fn from(_: snow::Error) -> Self {
        SessionError::Crypto
    }
}

/// Where randomness comes from (the dongle passes its platform RNG).
pub type Fill = fn(&mut [u8]) -> bool;

struct Rng(Fill);

impl Random for Rng {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        if (self.0)(dest) { Ok(()) } else { Err(snow::Error::Rng) }
    }
}

#[derive(Default)]
struct X25519 {
    secret: Zeroizing<[u8; 32]>,
    public: [u8; 32],
}

impl Dh for X25519 {
    fn name(&self) -> &'static str {
        "25519"
    }
    fn pub_len(&self) -> usize {
        32
    }
    fn priv_len(&self) -> usize {
        32
    }
    fn set(&mut self, privkey: &[u8]) {
        // snow hands over `priv_len()` bytes; anything else leaves the key unset (all zero),
        // which then fails every DH as non-contributory instead of panicking.
        if let Some(k) = privkey.get(..32) {
            self.secret.copy_from_slice(k);
            self.public = DalekPublic::from(&StaticSecret::from(*self.secret)).to_bytes();
        }
    }
    fn generate(&mut self, rng: &mut dyn Random) -> Result<(), snow::Error> {
        let mut k = Zeroizing::new([0u8; 32]);
        rng.try_fill_bytes(&mut k[..])?;
        self.set(&k[..]);
        Ok(())
    }
    fn pubkey(&self) -> &[u8] {
        &self.public
    }
    fn privkey(&self) -> &[u8] {
        &self.secret[..]
    }
    fn dh(&self, pubkey: &[u8], out: &mut [u8]) -> Result<(), snow::Error> {
        // snow hands over its fixed-size key buffer: the key is its first 32 bytes.
        let peer: [u8; 32] =
            pubkey.get(..32).and_then(|k| k.try_into().ok()).ok_or(snow::Error::Dh)?;
        let shared = StaticSecret::from(*self.secret).diffie_hellman(&DalekPublic::from(peer));
        if !shared.was_contributory() {
            return Err(snow::Error::Dh);
        }
        out.get_mut(..32).ok_or(snow::Error::Dh)?.copy_from_slice(shared.as_bytes());
        Ok(())
    }
}

#[derive(Default)]
struct ChaChaPoly {
    key: Zeroizing<[u8; 32]>,
}

fn noise_nonce(n: u64) -> Nonce {
    let mut b = [0u8; 12];
    for (d, s) in b.iter_mut().skip(4).zip(n.to_le_bytes()) {
        *d = s;
    }
    Nonce::from(b)
}

impl Cipher for ChaChaPoly {
    fn name(&self) -> &'static str {
        "ChaChaPoly"
    }
    fn set(&mut self, key: &[u8; 32]) {
        self.key.copy_from_slice(key);
    }
    #[allow(
        clippy::indexing_slicing,
        clippy::expect_used,
        reason = "snow sizes `out` as plaintext + TAG (its own length checks come first) and \
                  keeps messages far below the AEAD's limit; the trait has no error path"
    )]
    fn encrypt(&self, nonce: u64, authtext: &[u8], plaintext: &[u8], out: &mut [u8]) -> usize {
        let n = plaintext.len();
        out[..n].copy_from_slice(plaintext);
        let tag = ChaCha20Poly1305::new(&Key::from(*self.key))
            .encrypt_inout_detached(&noise_nonce(nonce), authtext, (&mut out[..n]).into())
            .expect("Noise messages are far below the AEAD's limit");
        out[n..n + TAG].copy_from_slice(&tag);
        n + TAG
    }
    fn decrypt(
        &self,
        nonce: u64,
        authtext: &[u8],
        ciphertext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, snow::Error> {
        let n = ciphertext.len().checked_sub(TAG).ok_or(snow::Error::Decrypt)?;
        let (body, tag) = ciphertext.split_at_checked(n).ok_or(snow::Error::Decrypt)?;
        let out = out.get_mut(..n).ok_or(snow::Error::Decrypt)?;
        out.copy_from_slice(body);
        let tag = Tag::try_from(tag).map_err(|_| snow::Error::Decrypt)?;
        ChaCha20Poly1305::new(&Key::from(*self.key))
            .decrypt_inout_detached(&noise_nonce(nonce), authtext, out.into(), &tag)
            .map_err(|_| {
                out.zeroize();
                snow::Error::Decrypt
            })?;
        Ok(n)
    }
}

#[derive(Default)]
struct Sha(Sha256);

impl Hash for Sha {
    fn name(&self) -> &'static str {
        "SHA256"
    }
    fn block_len(&self) -> usize {
        64
    }
    fn hash_len(&self) -> usize {
        32
    }
    fn reset(&mut self) {
        self.0 = Sha256::new();
    }
    fn input(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    fn result(&mut self, out: &mut [u8]) {
        let digest = core::mem::take(&mut self.0).finalize();
        // snow's buffer is `hash_len()` bytes or more.
        for (o, d) in out.iter_mut().zip(digest) {
            *o = d;
        }
    }
}

struct Resolver(Fill);

impl CryptoResolver for Resolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        Some(Box::new(Rng(self.0)))
    }
    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        matches!(choice, DHChoice::Curve25519).then(|| Box::new(X25519::default()) as Box<dyn Dh>)
    }
    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        matches!(choice, HashChoice::SHA256).then(|| Box::new(Sha::default()) as Box<dyn Hash>)
    }
    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        matches!(choice, CipherChoice::ChaChaPoly)
            .then(|| Box::new(ChaChaPoly::default()) as Box<dyn Cipher>)
    }
}

/// The Noise prologue for a protocol version: the label, then the version.
fn prologue(version: u16) -> [u8; PROLOGUE_LABEL.len() + VERSION_LEN] {
    let mut p = [0u8; PROLOGUE_LABEL.len() + VERSION_LEN];
    for (d, s) in p.iter_mut().zip(PROLOGUE_LABEL.iter().chain(&version.to_be_bytes())) {
        *d = *s;
    }
    p
}

fn build<'a, T>(
    local_secret: &'a [u8; 32],
    prologue: &'a [u8],
    fill: Fill,
    finish: impl FnOnce(snow::Builder<'a>) -> Result<T, snow::Error>,
) -> Result<T, SessionError> {
    let params = NOISE_PARAMS.parse().map_err(|_| SessionError::Crypto)?;
    let builder = snow::Builder::with_resolver(params, Box::new(Resolver(fill)))
        .local_private_key(local_secret)?
        .prologue(prologue)?;
    Ok(finish(builder)?)
}

/// A handshake message as sent: the version in clear, then the Noise message.
fn with_version(version: u16, hs: &mut snow::HandshakeState) -> Result<Vec<u8>, SessionError> {
    let mut msg = vec![0u8; VERSION_LEN + HANDSHAKE_BUF];
    let (v, body) = msg.split_at_mut(VERSION_LEN);
    v.copy_from_slice(&version.to_be_bytes());
    let n = hs.write_message(&[], body)?;
    msg.truncate(VERSION_LEN + n);
    Ok(msg)
}

/// Split a received handshake message into the Noise message, refusing another version.
fn strip_version(version: u16, msg: &[u8]) -> Result<&[u8], SessionError> {
    let (v, body) = msg.split_first_chunk::<VERSION_LEN>().ok_or(SessionError::Malformed)?;
    match u16::from_be_bytes(*v) {
        peer if peer == version => Ok(body),
        peer => Err(SessionError::UnsupportedVersion { peer }),
    }
}

/// The public key of a static secret (a host key or a device key).
pub fn public_of(secret: &[u8; 32]) -> [u8; 32] {
    DalekPublic::from(&StaticSecret::from(*secret)).to_bytes()
}

/// The host's side: returns the first handshake message and the state to finish with.
pub fn initiate(
    host_secret: &[u8; 32],
    device_public: &[u8; 32],
    fill: Fill,
) -> Result<(Vec<u8>, Initiator), SessionError> {
    initiate_as(PROTOCOL_VERSION, host_secret, device_public, fill)
}

/// [`initiate`] speaking `version` (tests of a peer of another version).
fn initiate_as(
    version: u16,
    host_secret: &[u8; 32],
    device_public: &[u8; 32],
    fill: Fill,
) -> Result<(Vec<u8>, Initiator), SessionError> {
    let prologue = prologue(version);
    let mut hs = build(host_secret, &prologue, fill, |b| {
        b.remote_public_key(device_public)?.build_initiator()
    })?;
    let msg = with_version(version, &mut hs)?;
    Ok((msg, Initiator { hs, version }))
}

/// A host waiting for the dongle's answer.
pub struct Initiator {
    hs: snow::HandshakeState,
    version: u16,
}

impl Initiator {
    /// Read the dongle's answer; the session is then established. A dongle of another
    /// protocol version gives [`SessionError::UnsupportedVersion`].
    pub fn finish(mut self, reply: &[u8]) -> Result<Transport, SessionError> {
        let mut buf = [0u8; HANDSHAKE_BUF];
        self.hs.read_message(strip_version(self.version, reply)?, &mut buf)?;
        Ok(Transport::new(self.hs.into_transport_mode()?))
    }
}

/// The dongle's side of message 1: who is the host?
pub struct Responder {
    hs: snow::HandshakeState,
    version: u16,
}

impl Responder {
    /// Read the host's first message; [`Responder::host_key`] then tells who it claims to be
    /// (already proven: IK message 1 authenticates the initiator's static key). A host of
    /// another protocol version gets [`SessionError::UnsupportedVersion`].
    pub fn read(device_secret: &[u8; 32], msg: &[u8], fill: Fill) -> Result<Self, SessionError> {
        Self::read_as(PROTOCOL_VERSION, device_secret, msg, fill)
    }

    fn read_as(
        version: u16,
        device_secret: &[u8; 32],
        msg: &[u8],
        fill: Fill,
    ) -> Result<Self, SessionError> {
        let body = strip_version(version, msg)?;
        let prologue = prologue(version);
        let mut hs = build(device_secret, &prologue, fill, |b| b.build_responder())?;
        let mut buf = [0u8; HANDSHAKE_BUF];
        hs.read_message(body, &mut buf)?;
        Ok(Responder { hs, version })
    }

    /// The host's static public key.
    pub fn host_key(&self) -> Option<[u8; 32]> {
        self.hs.get_remote_static().and_then(|k| k.try_into().ok())
    }

    /// Accept the host: the answer to send, and the established session.
    pub fn accept(mut self) -> Result<(Vec<u8>, Transport), SessionError> {
        let msg = with_version(self.version, &mut self.hs)?;
        Ok((msg, Transport::new(self.hs.into_transport_mode()?)))
    }
}

/// An established session. Once a message fails (to seal or to open), it is closed for good:
/// the nonces may have moved, and a peer that sent a bad frame is not trusted again.
pub struct Transport {
    state: snow::TransportState,
    closed: bool,
}

impl Transport {
    fn new(state: snow::TransportState) -> Self {
        Transport { state, closed: false }
    }

    /// Encrypt a frame payload.
    pub fn seal(&mut self, payload: &[u8]) -> Result<Vec<u8>, SessionError> {
        if self.closed {
            return Err(SessionError::Closed);
        }
        let result = self.seal_chunks(payload);
        self.closed = result.is_err();
        result
    }

    fn seal_chunks(&mut self, payload: &[u8]) -> Result<Vec<u8>, SessionError> {
        let count = payload.len().div_ceil(CHUNK_DATA).max(1);
        let mut out = Vec::with_capacity(payload.len() + count * (2 + 1 + TAG));
        let mut plain = Zeroizing::new(Vec::with_capacity(CHUNK));
        let mut buf = vec![0u8; CHUNK + TAG];
        // An empty payload is still one (empty) authenticated chunk.
        let chunks = payload.chunks(CHUNK_DATA).chain(payload.is_empty().then_some(&[][..]));
        for (i, chunk) in chunks.enumerate() {
            let flags = if i == 0 { FIRST } else { 0 } | if i + 1 == count { LAST } else { 0 };
            plain.clear();
            plain.push(flags);
            plain.extend_from_slice(chunk);
            let n = self.state.write_message(&plain, &mut buf)?;
            let len = u16::try_from(n).map_err(|_| SessionError::Malformed)?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(buf.get(..n).ok_or(SessionError::Malformed)?);
        }
        Ok(out)
    }

    /// Decrypt a frame payload; nothing is returned unless every message verifies and the
    /// chunks make exactly one frame (first flag on the first, last flag on the last only).
    pub fn open(&mut self, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SessionError> {
        if self.closed {
            return Err(SessionError::Closed);
        }
        let result = self.open_chunks(sealed);
        self.closed = result.is_err();
        result
    }

    fn open_chunks(&mut self, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SessionError> {
        let mut out = Zeroizing::new(Vec::with_capacity(sealed.len()));
        let mut buf = Zeroizing::new(vec![0u8; MAX_NOISE_MESSAGE]);
        let mut rest = sealed;
        let mut first = true;
        loop {
            let (len, tail) = rest.split_first_chunk::<2>().ok_or(SessionError::Malformed)?;
            let len = usize::from(u16::from_be_bytes(*len));
            let (msg, tail) = tail.split_at_checked(len).ok_or(SessionError::Malformed)?;
            if len <= TAG {
                return Err(SessionError::Malformed);
            }
            let n = self.state.read_message(msg, &mut buf)?;
            let (&flags, data) =
                buf.get(..n).and_then(<[u8]>::split_first).ok_or(SessionError::Malformed)?;
            if flags & !(FIRST | LAST) != 0 || (flags & FIRST != 0) != first {
                return Err(SessionError::Malformed);
            }
            out.extend_from_slice(data);
            first = false;
            rest = tail;
            match (flags & LAST != 0, rest.is_empty()) {
                (true, true) => return Ok(out),
                (false, false) => {}
                // A last chunk with more behind it, or the bytes end before the last chunk.
                _ => return Err(SessionError::Malformed),
            }
        }
    }
}

#[cfg(test)]
mod tests;
