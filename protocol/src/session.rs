//! Authenticated, encrypted host sessions: Noise IK (`Noise_IK_25519_ChaChaPoly_SHA256`)
//! through `snow`'s state machine, on this project's own crypto crates (x25519-dalek,
//! chacha20poly1305, sha2), so the dongle carries one generation of each.
//!
//! The host (initiator) knows the dongle's device key from pairing; the dongle (responder)
//! learns the host's static key from the first handshake message and serves it only if it is
//! paired. After the two handshake messages, every frame payload travels encrypted.
//!
//! ```text
//! host  ── frame kind 1: IK message 1 (e, es, s, ss) ──►  dongle: is s paired?
//! host  ◄── frame kind 1: IK message 2 (e, ee, se) ───   dongle
//! host  ══ frame kind 2: Noise transport messages ═════  dongle
//! ```
//!
//! Noise messages are at most 65535 bytes, frames up to 2 MiB: a kind-2 payload is a sequence
//! of `u16 big-endian length ‖ Noise message`, each sealing at most `CHUNK` plaintext bytes.

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

/// The Noise protocol name.
pub const NOISE_PARAMS: &str = "Noise_IK_25519_ChaChaPoly_SHA256";
/// Plaintext bytes per Noise transport message (65535 minus the tag, rounded down).
const CHUNK: usize = 65_000;
const TAG: usize = 16;

/// Why a session failed. Any of these ends the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The handshake or a transport message did not verify (wrong key, tampering, replay).
    #[error("the secure session failed: a message did not verify")]
    Crypto,
    /// A transport payload is not a sequence of length-prefixed Noise messages.
    #[error("the secure session received a malformed message")]
    Malformed,
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
        self.secret.copy_from_slice(&privkey[..32]);
        self.public = DalekPublic::from(&StaticSecret::from(*self.secret)).to_bytes();
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
        out[..32].copy_from_slice(shared.as_bytes());
        Ok(())
    }
}

#[derive(Default)]
struct ChaChaPoly {
    key: Zeroizing<[u8; 32]>,
}

fn noise_nonce(n: u64) -> Nonce {
    let mut b = [0u8; 12];
    b[4..].copy_from_slice(&n.to_le_bytes());
    Nonce::from(b)
}

impl Cipher for ChaChaPoly {
    fn name(&self) -> &'static str {
        "ChaChaPoly"
    }
    fn set(&mut self, key: &[u8; 32]) {
        self.key.copy_from_slice(key);
    }
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
        out[..n].copy_from_slice(&ciphertext[..n]);
        let tag = Tag::try_from(&ciphertext[n..]).map_err(|_| snow::Error::Decrypt)?;
        ChaCha20Poly1305::new(&Key::from(*self.key))
            .decrypt_inout_detached(&noise_nonce(nonce), authtext, (&mut out[..n]).into(), &tag)
            .map_err(|_| {
                out[..n].zeroize();
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
        out[..32].copy_from_slice(&core::mem::take(&mut self.0).finalize());
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

fn builder(local_secret: &[u8; 32], fill: Fill) -> Result<snow::Builder<'_>, SessionError> {
    let params = NOISE_PARAMS.parse().map_err(|_| SessionError::Crypto)?;
    Ok(snow::Builder::with_resolver(params, Box::new(Resolver(fill)))
        .local_private_key(local_secret)?)
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
    let mut hs = builder(host_secret, fill)?.remote_public_key(device_public)?.build_initiator()?;
    let mut msg = vec![0u8; 256];
    let n = hs.write_message(&[], &mut msg)?;
    msg.truncate(n);
    Ok((msg, Initiator(hs)))
}

/// A host waiting for the dongle's answer.
pub struct Initiator(snow::HandshakeState);

impl Initiator {
    /// Read the dongle's answer; the session is then established.
    pub fn finish(mut self, reply: &[u8]) -> Result<Transport, SessionError> {
        let mut buf = [0u8; 256];
        self.0.read_message(reply, &mut buf)?;
        Ok(Transport(self.0.into_transport_mode()?))
    }
}

/// The dongle's side of message 1: who is the host?
pub struct Responder(snow::HandshakeState);

impl Responder {
    /// Read the host's first message; [`Responder::host_key`] then tells who it claims to be
    /// (already proven: IK message 1 authenticates the initiator's static key).
    pub fn read(device_secret: &[u8; 32], msg: &[u8], fill: Fill) -> Result<Self, SessionError> {
        let mut hs = builder(device_secret, fill)?.build_responder()?;
        let mut buf = [0u8; 256];
        hs.read_message(msg, &mut buf)?;
        Ok(Responder(hs))
    }

    /// The host's static public key.
    pub fn host_key(&self) -> Option<[u8; 32]> {
        self.0.get_remote_static().and_then(|k| k.try_into().ok())
    }

    /// Accept the host: the answer to send, and the established session.
    pub fn accept(mut self) -> Result<(Vec<u8>, Transport), SessionError> {
        let mut msg = vec![0u8; 256];
        let n = self.0.write_message(&[], &mut msg)?;
        msg.truncate(n);
        Ok((msg, Transport(self.0.into_transport_mode()?)))
    }
}

/// An established session.
pub struct Transport(snow::TransportState);

impl Transport {
    /// Encrypt a frame payload.
    pub fn seal(&mut self, payload: &[u8]) -> Result<Vec<u8>, SessionError> {
        let mut out =
            Vec::with_capacity(payload.len() + payload.len() / CHUNK * (TAG + 2) + TAG + 2);
        let mut buf = vec![0u8; CHUNK + TAG];
        let mut chunks = payload.chunks(CHUNK).peekable();
        if chunks.peek().is_none() {
            // An empty payload is still one (empty) authenticated message.
            let n = self.0.write_message(&[], &mut buf)?;
            out.extend_from_slice(&(n as u16).to_be_bytes());
            out.extend_from_slice(&buf[..n]);
        }
        for chunk in chunks {
            let n = self.0.write_message(chunk, &mut buf)?;
            out.extend_from_slice(&(n as u16).to_be_bytes());
            out.extend_from_slice(&buf[..n]);
        }
        Ok(out)
    }

    /// Decrypt a frame payload; nothing is returned unless every message verifies.
    pub fn open(&mut self, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SessionError> {
        let mut out = Zeroizing::new(Vec::with_capacity(sealed.len()));
        let mut buf = Zeroizing::new(vec![0u8; CHUNK + TAG]);
        let mut rest = sealed;
        if rest.is_empty() {
            return Err(SessionError::Malformed);
        }
        while !rest.is_empty() {
            let (len, tail) = rest.split_first_chunk::<2>().ok_or(SessionError::Malformed)?;
            let len = usize::from(u16::from_be_bytes(*len));
            if len < TAG || len > tail.len() {
                return Err(SessionError::Malformed);
            }
            let n = self.0.read_message(&tail[..len], &mut buf)?;
            out.extend_from_slice(&buf[..n]);
            rest = &tail[len..];
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(b: &mut [u8]) -> bool {
        getrandom::fill(b).is_ok()
    }

    fn pair() -> ([u8; 32], [u8; 32], [u8; 32], [u8; 32]) {
        let host = [1u8; 32];
        let device = [2u8; 32];
        (host, public_of(&host), device, public_of(&device))
    }

    #[test]
    fn handshake_and_transport_both_ways() {
        let (host, host_pub, device, device_pub) = pair();
        let (m1, init) = initiate(&host, &device_pub, os).unwrap();
        let resp = Responder::read(&device, &m1, os).unwrap();
        assert_eq!(resp.host_key(), Some(host_pub));
        let (m2, mut dev) = resp.accept().unwrap();
        let mut h = init.finish(&m2).unwrap();
        for payload in [&b""[..], b"hello", &vec![9u8; 200_000]] {
            let sealed = h.seal(payload).unwrap();
            assert_eq!(&dev.open(&sealed).unwrap()[..], payload);
            let back = dev.seal(payload).unwrap();
            assert_eq!(&h.open(&back).unwrap()[..], payload);
        }
    }

    #[test]
    fn the_wrong_device_key_or_tampering_fails() {
        let (host, _, device, _) = pair();
        let (m1, _) = initiate(&host, &public_of(&[3u8; 32]), os).unwrap();
        assert!(Responder::read(&device, &m1, os).is_err(), "message 1 for another device");
        let (m1, init) = initiate(&host, &public_of(&device), os).unwrap();
        let (m2, mut dev) = Responder::read(&device, &m1, os).unwrap().accept().unwrap();
        let mut h = init.finish(&m2).unwrap();
        let mut sealed = h.seal(b"unseal these").unwrap();
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(dev.open(&sealed).unwrap_err(), SessionError::Crypto);
        assert_eq!(dev.open(b"\x00").unwrap_err(), SessionError::Malformed);
        assert_eq!(dev.open(&[0, 200, 1, 2]).unwrap_err(), SessionError::Malformed);
    }
}
