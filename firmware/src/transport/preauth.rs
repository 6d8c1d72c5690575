//! Before authentication: what a connection without a session may send, and how many such
//! connections one peer may hold. The decisions are pure (no sockets, no clock) so they are
//! tested on their own; the transports apply them (docs/PROTOCOL.md, "Before a session").
//!
//! - **From the header.** A peer that needs a session and has none may send a handshake (at
//!   most [`MAX_HANDSHAKE_MESSAGE`] bytes) or a public request (`Hello`, `DeviceKey`: at most
//!   [`MAX_PUBLIC_REQUEST`] bytes). [`verdict`] decides from the 8-byte frame header alone: a
//!   longer plain frame is skipped without being kept and answered `PairingRequired`, any
//!   other frame closes the connection unread. So an unpaired peer costs the dongle a buffer
//!   of at most a few hundred bytes, whatever length its header announces.
//! - **A deadline.** On TCP a connection must open a session within
//!   [`TcpLimits::handshake_deadline`] of being accepted, however it spends that time (public
//!   requests included); sessions idle out after [`TcpLimits::session_idle`].
//! - **Per-peer slots.** [`Slots`] counts TCP connections without a session and sessions
//!   separately, in total and per peer address: a flood of unauthenticated connections
//!   never takes a paired host's session slot, and one address cannot take every
//!   unauthenticated slot.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use vbzkey_protocol::wire::{self, DongleError, FrameKind, PROTOCOL_VERSION, Response};

pub use vbzkey_protocol::session::MAX_HANDSHAKE_MESSAGE;

use super::{Connection, Shared};
use crate::dongle::Platform;
use crate::storage::Storage;

/// The longest plain payload a peer without a session may have read: `Hello` and `DeviceKey`
/// encode in at most 9 bytes (a version of up to 3 varint bytes, a request id of up to 5, the
/// variant), with room to spare.
pub const MAX_PUBLIC_REQUEST: usize = 16;
/// The payload bytes read from a refused plain frame, to answer under its request id: a u16
/// and a u32 varint.
pub const REFUSAL_PREFIX: usize = 8;

/// Where a connection stands, for what it may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// A local link (USB, the Unix socket) while no host is paired: every request is served
    /// in plain, as the custody policy says.
    Open,
    /// No session, on a link that needs one (TCP always; a local link once hosts are paired):
    /// a handshake or a public request only.
    Unauthenticated,
    /// A session is open: sealed frames only.
    Session,
}

/// What to do with a frame, decided from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Read the payload and handle it: its length is within what the connection may send.
    Read,
    /// A plain request too long to be a public one, from a connection without a session: skip
    /// its payload without keeping it (only [`REFUSAL_PREFIX`] bytes, for the request id) and
    /// answer with [`refusal`]. The connection stays in step and open.
    Refuse,
    /// A frame the connection may never send: close it without reading the payload.
    Close,
}

/// The verdict on a frame of `kind` announcing `len` payload bytes (`len` has passed
/// `wire::parse_header`, so it is at most `MAX_FRAME_PAYLOAD`).
pub fn verdict(standing: Standing, kind: FrameKind, len: usize) -> Verdict {
    match (standing, kind) {
        (Standing::Open, FrameKind::Plain) | (Standing::Session, FrameKind::Sealed) => {
            Verdict::Read
        }
        (Standing::Unauthenticated, FrameKind::Plain) if len <= MAX_PUBLIC_REQUEST => Verdict::Read,
        (Standing::Unauthenticated, FrameKind::Plain) => Verdict::Refuse,
        (Standing::Open | Standing::Unauthenticated, FrameKind::Handshake)
            if len <= MAX_HANDSHAKE_MESSAGE =>
        {
            Verdict::Read
        }
        // A handshake longer than any, a sealed frame without a session, a plain frame or a
        // second handshake inside one.
        (Standing::Open | Standing::Unauthenticated, FrameKind::Handshake | FrameKind::Sealed)
        | (Standing::Session, FrameKind::Plain | FrameKind::Handshake) => Verdict::Close,
    }
}

/// The answer to a refused plain frame, from the first bytes of its payload: the error the
/// dongle itself gives such a request (`PairingRequired`, or `UnsupportedVersion` for another
/// protocol version) under its request id (0 when the bytes hold none).
pub fn refusal(prefix: &[u8]) -> Vec<u8> {
    let (id, error) = match postcard::take_from_bytes::<(u16, u32)>(prefix) {
        Ok(((PROTOCOL_VERSION, id), _)) => (id, DongleError::PairingRequired),
        Ok(((_, id), _)) => (id, DongleError::UnsupportedVersion),
        Err(_) => (0, DongleError::PairingRequired),
    };
    wire::encode(id, &Response::Error(error))
}

/// A key that is never a paired host's: generated at random once per process, so nobody can
/// pair it on purpose.
impl<S: Storage, P: Platform> Shared<S, P> {
    /// Where `conn` stands. A local link is open while the core serves any local host (no
    /// host paired, or damaged pairings: the core still refuses what it must).
    pub fn standing(&self, conn: &Connection) -> Standing {
        if conn.session.is_some() {
            Standing::Session
        } else if !conn.peer.network && self.lock().serves_any_local_host() {
            Standing::Open
        } else {
            Standing::Unauthenticated
        }
    }
}

/// The TCP transport's limits (docs/DECISIONS.md, "pre-authentication limits").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpLimits {
    /// From accepting a connection until its session must be open: a host on the LAN needs
    /// two round trips (its `DeviceKey` and the handshake), milliseconds.
    pub handshake_deadline: Duration,
    /// A session silent this long is closed (a bridge reconnects when it needs the dongle).
    pub session_idle: Duration,
    /// Connections without a session at once.
    pub max_unauthenticated: usize,
    /// Connections without a session at once from one peer address.
    pub max_unauthenticated_per_peer: usize,
    /// Sessions at once.
    pub max_sessions: usize,
    /// Sessions at once from one peer address (a workstation runs a bridge and, now and then,
    /// the admin tool).
    pub max_sessions_per_peer: usize,
}

impl Default for TcpLimits {
    fn default() -> Self {
        TcpLimits {
            handshake_deadline: Duration::from_secs(5),
            session_idle: Duration::from_secs(300),
            max_unauthenticated: 16,
            max_unauthenticated_per_peer: 4,
            max_sessions: 8,
            max_sessions_per_peer: 4,
        }
    }
}

/// Why a connection gets no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Full {
    /// The peer address holds its share already.
    #[error("this peer holds its {0} already")]
    Peer(Stage),
    /// Every slot is taken.
    #[error("every {0} slot is taken")]
    All(Stage),
}

/// Which kind of slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// A connection without a session.
    Unauthenticated,
    /// A session.
    Session,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::Unauthenticated => "unauthenticated connection",
            Stage::Session => "session",
        })
    }
}

#[derive(Default)]
struct Count {
    total: usize,
    per_peer: BTreeMap<IpAddr, usize>,
}

impl Count {
    fn take(
        &mut self,
        peer: IpAddr,
        max: usize,
        per_peer: usize,
        stage: Stage,
    ) -> Result<(), Full> {
        let mine = self.per_peer.get(&peer).copied().unwrap_or(0);
        if mine >= per_peer {
            return Err(Full::Peer(stage));
        }
        if self.total >= max {
            return Err(Full::All(stage));
        }
        self.total += 1;
        self.per_peer.insert(peer, mine + 1);
        Ok(())
    }

    fn give_back(&mut self, peer: IpAddr) {
        self.total = self.total.saturating_sub(1);
        if let Some(n) = self.per_peer.get_mut(&peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_peer.remove(&peer);
            }
        }
    }
}

#[derive(Default)]
struct Counts {
    unauthenticated: Count,
    sessions: Count,
}

/// The TCP transport's connection slots.
pub struct Slots {
    limits: TcpLimits,
    counts: Mutex<Counts>,
}

/// One connection's slot, given back when dropped.
pub struct Slot {
    slots: Arc<Slots>,
    peer: IpAddr,
    stage: Stage,
}

/// The address a peer is counted under: an IPv4 address (an IPv4-mapped IPv6 one as the IPv4
/// address), or an IPv6 address's /64 prefix (a single host commonly holds a whole /64).
pub fn peer_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(prefix.into())
        }
        v4 => v4,
    }
}

impl Slots {
    /// Slots under `limits`.
    pub fn new(limits: TcpLimits) -> Arc<Self> {
        Arc::new(Slots { limits, counts: Mutex::new(Counts::default()) })
    }

    fn counts(&self) -> MutexGuard<'_, Counts> {
        // The counts are plain numbers, consistent after every statement.
        self.counts.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A slot for a new connection from `ip`, without a session yet.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Full> {
        let peer = peer_key(ip);
        let l = &self.limits;
        self.counts().unauthenticated.take(
            peer,
            l.max_unauthenticated,
            l.max_unauthenticated_per_peer,
            Stage::Unauthenticated,
        )?;
        Ok(Slot { slots: Arc::clone(self), peer, stage: Stage::Unauthenticated })
    }

    /// Connections without a session and sessions held now.
    #[cfg(test)]
    pub(crate) fn held(&self) -> (usize, usize) {
        let c = self.counts();
        (c.unauthenticated.total, c.sessions.total)
    }
}

impl Slot {
    /// The connection opened a session: move it to a session slot. When none is free it keeps
    /// its unauthenticated slot, and the caller closes it.
    pub fn promote(&mut self) -> Result<(), Full> {
        if self.stage == Stage::Session {
            return Ok(());
        }
        let l = &self.slots.limits;
        let mut c = self.slots.counts();
        c.sessions.take(self.peer, l.max_sessions, l.max_sessions_per_peer, Stage::Session)?;
        c.unauthenticated.give_back(self.peer);
        self.stage = Stage::Session;
        Ok(())
    }

    /// Which slot it holds.
    pub fn stage(&self) -> Stage {
        self.stage
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.slots.counts();
        match self.stage {
            Stage::Unauthenticated => c.unauthenticated.give_back(self.peer),
            Stage::Session => c.sessions.give_back(self.peer),
        }
    }
}

#[cfg(test)]
mod tests;
