//! The TCP transport's limits before a session, in process on loopback, with short
//! deadlines. Peers connect from distinct loopback addresses (127.0.0.2, …), which the
//! per-peer slots count as distinct hosts.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;

use vbzkey_hardware::presence::Indicator;
use vbzkey_protocol::stream::read_frame_kind;
use vbzkey_protocol::wire::{FrameKind, MAX_FRAME_PAYLOAD, PROTOCOL_VERSION, Pin, Request};

use super::*;
use crate::dongle::{Config, Dongle};
use crate::keystore::{Binding, KdfParams};
use crate::platform::{OsPlatform, PresenceGate};
use crate::storage::MemStorage;
use crate::transport::Clock;
use crate::transport::preauth::MAX_HANDSHAKE_MESSAGE;

struct Server {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// An uninitialised dongle serving TCP on a loopback port under `limits`.
    fn start(limits: TcpLimits) -> Self {
        let cfg = Config { kdf: KdfParams::TEST_ONLY_WEAK, ..Config::default() };
        let binding = Binding { serial: "TCP1".into(), device_secret: None };
        let clock = Clock::default();
        let platform = OsPlatform::new(Indicator::default());
        let dongle =
            Dongle::start(cfg, MemStorage::default(), platform, binding, clock.now()).unwrap();
        let gate = PresenceGate::new(None, Indicator::default(), Duration::ZERO);
        let shared = Shared::new(dongle, clock, gate);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let stop = Arc::clone(&stop);
            move || serve_tcp_on(listener, shared, stop, limits)
        });
        Server { port, stop, thread: Some(thread) }
    }

    /// A connection from the loopback address 127.0.0.`host`.
    fn connect_from(&self, host: u8) -> TcpStream {
        use socket2::{Domain, Socket, Type};
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        s.bind(&SocketAddr::from((Ipv4Addr::new(127, 0, 0, host), 0)).into()).unwrap();
        s.connect(&SocketAddr::from((Ipv4Addr::LOCALHOST, self.port)).into()).unwrap();
        let s: TcpStream = s.into();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn limits(deadline_ms: u64, unauth: usize, per_peer: usize) -> TcpLimits {
    TcpLimits {
        handshake_deadline: Duration::from_millis(deadline_ms),
        max_unauthenticated: unauth,
        max_unauthenticated_per_peer: per_peer,
        ..TcpLimits::default()
    }
}

/// Send `req` with `id`; the answer, or `None` when the connection was closed instead.
fn ask(s: &mut TcpStream, id: u32, req: &Request) -> Option<(u32, Response)> {
    s.write_all(&wire::encode(id, req)).ok()?;
    answer(s)
}

fn answer(s: &mut TcpStream) -> Option<(u32, Response)> {
    match read_frame_kind(s) {
        Ok(Some((FrameKind::Plain, p))) => Some(wire::decode::<Response>(&p).unwrap()),
        Ok(Some((kind, _))) => panic!("a {kind:?} frame before any session"),
        Ok(None) | Err(_) => None,
    }
}

/// How long until the firmware closes `s` (0 bytes read, or a reset).
fn closed_after(s: &mut TcpStream, start: Instant) -> Duration {
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return start.elapsed(),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return start.elapsed(),
            Err(e) => panic!("still open after {:?}: {e}", start.elapsed()),
        }
    }
}

fn is_hello(a: Option<(u32, Response)>, id: u32) -> bool {
    matches!(a, Some((got, Response::Hello(_))) if got == id)
}

#[test]
fn a_connection_without_a_session_is_closed_at_its_deadline_even_while_it_trickles_bytes() {
    let server = Server::start(limits(600, 4, 4));
    let start = Instant::now();
    let mut s = server.connect_from(2);
    // Public requests are answered, but they do not extend the deadline...
    assert!(is_hello(ask(&mut s, 1, &Request::Hello), 1));
    // ...and neither does a peer that sends one byte at a time, each well within any idle
    // timeout: a header announcing a large frame, trickled.
    let header = wire::header_for(MAX_FRAME_PAYLOAD);
    let mut sent = 0;
    while start.elapsed() < Duration::from_millis(900) {
        let byte = header.get(sent % header.len()..=sent % header.len()).unwrap_or(&[0]);
        if s.write_all(byte).is_err() {
            break;
        }
        sent += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    let open_for = closed_after(&mut s, start);
    assert!(open_for >= Duration::from_millis(550), "closed early: {open_for:?}");
    assert!(open_for < Duration::from_secs(3), "closed late: {open_for:?}");
    // A silent connection is closed at the deadline too.
    let start = Instant::now();
    let mut quiet = server.connect_from(2);
    let open_for = closed_after(&mut quiet, start);
    assert!((Duration::from_millis(550)..Duration::from_secs(3)).contains(&open_for));
}

#[test]
fn one_peer_address_cannot_take_every_unauthenticated_slot() {
    let server = Server::start(limits(20_000, 3, 2));
    // Two connections from 127.0.0.2 are served (each holds its slot once answered).
    let mut a1 = server.connect_from(2);
    assert!(is_hello(ask(&mut a1, 1, &Request::Hello), 1));
    let mut a2 = server.connect_from(2);
    assert!(is_hello(ask(&mut a2, 1, &Request::Hello), 1));
    // A third from the same address is closed at accept, unread.
    let mut a3 = server.connect_from(2);
    assert_eq!(ask(&mut a3, 1, &Request::Hello), None);
    // Another address still gets in; then every slot is taken, for everyone.
    let mut b1 = server.connect_from(3);
    assert!(is_hello(ask(&mut b1, 1, &Request::Hello), 1));
    let mut c1 = server.connect_from(4);
    assert_eq!(ask(&mut c1, 1, &Request::Hello), None);
    // A closed connection gives its slot back.
    drop(a1);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut again = server.connect_from(2);
        if is_hello(ask(&mut again, 2, &Request::Hello), 2) {
            break;
        }
        assert!(Instant::now() < deadline, "the slot was never given back");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop((a2, b1));
}

#[test]
fn a_plain_request_too_long_to_be_public_is_refused_unread_and_the_connection_stays_in_step() {
    let server = Server::start(limits(20_000, 4, 4));
    let mut s = server.connect_from(2);
    let init = Request::Init { pin: None, admin_pin: Pin::new(b"admin-1234") };
    assert_eq!(ask(&mut s, 41, &init), Some((41, Response::Error(DongleError::PairingRequired))));
    // A 2 MiB frame: skipped in small reads, answered under its id.
    let mut big = wire::encode_payload(42, &Request::Rotate);
    big.resize(MAX_FRAME_PAYLOAD, 0x5a);
    s.write_all(&wire::frame(FrameKind::Plain, &big)).unwrap();
    assert_eq!(answer(&mut s), Some((42, Response::Error(DongleError::PairingRequired))));
    // A client of another version is told so, as the core would tell it.
    let mut old = postcard::to_allocvec(&(PROTOCOL_VERSION + 1, 43u32, 1u8)).unwrap();
    old.resize(100, 0);
    s.write_all(&wire::frame(FrameKind::Plain, &old)).unwrap();
    assert_eq!(answer(&mut s), Some((43, Response::Error(DongleError::UnsupportedVersion))));
    // In step: the next request is answered.
    assert!(is_hello(ask(&mut s, 44, &Request::Hello), 44));
}

#[test]
fn a_frame_no_connection_without_a_session_may_send_closes_it_unread() {
    let server = Server::start(limits(20_000, 4, 4));
    let frames = [
        // Headers only: the connection closes without waiting for the announced payload.
        wire::header_for_kind(MAX_FRAME_PAYLOAD, FrameKind::Sealed).to_vec(),
        wire::header_for_kind(1, FrameKind::Sealed).to_vec(),
        wire::header_for_kind(MAX_HANDSHAKE_MESSAGE + 1, FrameKind::Handshake).to_vec(),
        wire::header_for_kind(MAX_FRAME_PAYLOAD, FrameKind::Handshake).to_vec(),
    ];
    for frame in frames {
        let start = Instant::now();
        let mut s = server.connect_from(2);
        s.write_all(&frame).unwrap();
        let open_for = closed_after(&mut s, start);
        assert!(open_for < Duration::from_secs(5), "{frame:?}: open for {open_for:?}");
    }
}
