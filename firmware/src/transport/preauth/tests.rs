use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use vbzkey_hardware::presence::Indicator;
use vbzkey_protocol::wire::{self, DongleError, FrameKind, MAX_FRAME_PAYLOAD, Request, Response};
use vbzkey_protocol::{record, session};

use super::*;
use crate::dongle::{Config, Dongle};
use crate::keystore::{Binding, KdfParams};
use crate::platform::{OsPlatform, PresenceGate};
use crate::storage::MemStorage;
use crate::transport::Clock;

use FrameKind::{Handshake, Plain, Sealed};
use Standing::{Open, Session, Unauthenticated};

#[test]
fn without_a_session_only_a_handshake_or_a_public_request_is_read() {
    let cases = [
        // A local link while no host is paired: plain requests of any size, a handshake.
        (Open, Plain, MAX_FRAME_PAYLOAD, Verdict::Read),
        (Open, Handshake, MAX_HANDSHAKE_MESSAGE, Verdict::Read),
        (Open, Handshake, MAX_HANDSHAKE_MESSAGE + 1, Verdict::Close),
        (Open, Sealed, 0, Verdict::Close),
        // A link that needs a session, before it has one.
        (Unauthenticated, Plain, 0, Verdict::Read),
        (Unauthenticated, Plain, MAX_PUBLIC_REQUEST, Verdict::Read),
        (Unauthenticated, Plain, MAX_PUBLIC_REQUEST + 1, Verdict::Refuse),
        (Unauthenticated, Plain, MAX_FRAME_PAYLOAD, Verdict::Refuse),
        (Unauthenticated, Handshake, MAX_HANDSHAKE_MESSAGE, Verdict::Read),
        (Unauthenticated, Handshake, MAX_HANDSHAKE_MESSAGE + 1, Verdict::Close),
        (Unauthenticated, Handshake, MAX_FRAME_PAYLOAD, Verdict::Close),
        (Unauthenticated, Sealed, 1, Verdict::Close),
        (Unauthenticated, Sealed, MAX_FRAME_PAYLOAD, Verdict::Close),
        // In a session: sealed frames only, up to the frame limit.
        (Session, Sealed, MAX_FRAME_PAYLOAD, Verdict::Read),
        (Session, Plain, 1, Verdict::Close),
        (Session, Handshake, 98, Verdict::Close),
    ];
    for (standing, kind, len, want) in cases {
        assert_eq!(verdict(standing, kind, len), want, "{standing:?} {kind:?} of {len} bytes");
    }
}

#[test]
fn the_public_requests_and_a_handshake_fit_what_is_read_before_a_session() {
    for req in [Request::Hello, Request::DeviceKey] {
        for id in [0, 1, u32::MAX] {
            let len = wire::encode_payload(id, &req).len();
            assert!(len <= MAX_PUBLIC_REQUEST, "{req:?} with id {id}: {len} bytes");
            assert_eq!(verdict(Unauthenticated, Plain, len), Verdict::Read);
        }
    }
    // Anything that carries a record is refused from its header (smaller requests that need
    // a session are read, and the core's policy refuses them).
    let item = wire::SealedItem { record: vec![0; record::MIN_RECORD_LEN], context: vec![] };
    let len = wire::encode_payload(1, &Request::UnsealBatch { items: vec![item] }).len();
    assert_eq!(verdict(Unauthenticated, Plain, len), Verdict::Refuse);
    let (m1, _) =
        session::initiate(&[7; 32], &session::public_of(&[8; 32]), |b| getrandom::fill(b).is_ok())
            .unwrap();
    assert!(m1.len() <= MAX_HANDSHAKE_MESSAGE, "message 1 is {} bytes", m1.len());
    assert_eq!(verdict(Unauthenticated, Handshake, m1.len()), Verdict::Read);
}

fn answer(frame: &[u8]) -> (u32, Response) {
    wire::decode::<Response>(&frame[wire::FRAME_HEADER_LEN..]).unwrap()
}

#[test]
fn a_refusal_names_the_request_it_refuses_and_its_version() {
    let payload = wire::encode_payload(4242, &Request::AuditTail { max: 5 });
    let prefix = &payload[..REFUSAL_PREFIX.min(payload.len())];
    assert_eq!(answer(&refusal(prefix)), (4242, Response::Error(DongleError::PairingRequired)));
    let old = postcard::to_allocvec(&(1u16, 77u32, 6u8)).unwrap();
    assert_eq!(answer(&refusal(&old)), (77, Response::Error(DongleError::UnsupportedVersion)));
    for junk in [&[][..], &[0xff; REFUSAL_PREFIX][..], &[2][..]] {
        assert_eq!(answer(&refusal(junk)), (0, Response::Error(DongleError::PairingRequired)));
    }
}

fn v4(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 168, 1, last))
}

fn limits(unauth: usize, unauth_per_peer: usize, sessions: usize, per_peer: usize) -> TcpLimits {
    TcpLimits {
        max_unauthenticated: unauth,
        max_unauthenticated_per_peer: unauth_per_peer,
        max_sessions: sessions,
        max_sessions_per_peer: per_peer,
        ..TcpLimits::default()
    }
}

#[test]
fn one_peer_gets_its_share_of_unauthenticated_slots_and_no_more() {
    let slots = Slots::new(limits(5, 2, 8, 4));
    let a: Vec<Slot> = (0..2).map(|_| slots.admit(v4(2)).unwrap()).collect();
    assert_eq!(slots.admit(v4(2)).err(), Some(Full::Peer(Stage::Unauthenticated)));
    let b: Vec<Slot> = (0..2).map(|_| slots.admit(v4(3)).unwrap()).collect();
    let c = slots.admit(v4(4)).unwrap();
    // Five held: a fourth peer finds every slot taken.
    assert_eq!(slots.admit(v4(5)).err(), Some(Full::All(Stage::Unauthenticated)));
    assert_eq!(slots.held(), (5, 0));
    drop(a);
    assert_eq!(slots.held(), (3, 0));
    let again = slots.admit(v4(2)).unwrap();
    drop((b, c, again));
    assert_eq!(slots.held(), (0, 0));
}

#[test]
fn a_session_moves_to_its_own_slots_which_a_flood_cannot_take() {
    let slots = Slots::new(limits(2, 2, 2, 1));
    let mut host = slots.admit(v4(10)).unwrap();
    host.promote().unwrap();
    assert_eq!(host.stage(), Stage::Session);
    assert_eq!(slots.held(), (0, 1), "the unauthenticated slot was given back");
    // A flood fills every unauthenticated slot...
    let flood: Vec<Slot> = (0..2).map(|_| slots.admit(v4(66)).unwrap()).collect();
    assert!(slots.admit(v4(67)).is_err());
    // ...and the session holds on; a second paired host's session still finds a slot.
    drop(flood);
    let mut other = slots.admit(v4(11)).unwrap();
    other.promote().unwrap();
    assert_eq!(slots.held(), (0, 2));
    // Sessions are full: a third stays unauthenticated (and its transport closes it).
    let mut third = slots.admit(v4(12)).unwrap();
    assert_eq!(third.promote(), Err(Full::All(Stage::Session)));
    assert_eq!(third.stage(), Stage::Unauthenticated);
    // One session per peer here: the same peer's second session is refused.
    drop(other);
    let mut twice = slots.admit(v4(10)).unwrap();
    assert_eq!(twice.promote(), Err(Full::Peer(Stage::Session)));
    drop((host, third, twice));
    assert_eq!(slots.held(), (0, 0));
}

#[test]
fn peers_are_counted_by_ipv4_address_and_ipv6_slash_64() {
    let a: Ipv6Addr = "2001:db8:1:2:aaaa::1".parse().unwrap();
    let b: Ipv6Addr = "2001:db8:1:2:bbbb::9".parse().unwrap();
    let c: Ipv6Addr = "2001:db8:1:3::1".parse().unwrap();
    assert_eq!(peer_key(a.into()), peer_key(b.into()), "one /64 is one peer");
    assert_ne!(peer_key(a.into()), peer_key(c.into()));
    let mapped: Ipv6Addr = "::ffff:192.168.1.7".parse().unwrap();
    assert_eq!(peer_key(mapped.into()), v4(7));
    assert_ne!(peer_key(v4(7)), peer_key(v4(8)));
    let slots = Slots::new(limits(8, 1, 8, 1));
    let _held = slots.admit(a.into()).unwrap();
    assert!(slots.admit(b.into()).is_err(), "another address of the same /64");
    assert!(slots.admit(c.into()).is_ok());
}

fn shared() -> Arc<Shared<MemStorage, OsPlatform>> {
    let cfg = Config { kdf: KdfParams::TEST_ONLY_WEAK, ..Config::default() };
    let binding = Binding { serial: "PREAUTH1".into(), device_secret: None };
    let clock = Clock::default();
    let platform = OsPlatform::new(Indicator::default());
    let dongle = Dongle::start(cfg, MemStorage::default(), platform, binding, clock.now()).unwrap();
    Shared::new(dongle, clock, PresenceGate::new(None, Indicator::default(), Duration::ZERO))
}

#[test]
fn a_network_link_needs_a_session_and_a_local_one_only_once_hosts_are_paired() {
    let shared = shared();
    assert_eq!(shared.standing(&shared.connect("tcp:192.168.1.9:4000", true)), Unauthenticated);
    assert_eq!(shared.standing(&shared.connect("unix", false)), Open, "no host is paired");
}
