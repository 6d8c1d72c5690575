//! The client's link and retry policy against a scripted peer on a real Unix socket: the peer
//! answers, hangs up, or answers wrongly at exactly the step a test names, which a real
//! dongle cannot be made to do on cue. (The real firmware behind real sockets and USB is
//! driven by `tests/` and the USB VM test.)

use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vbzkey_protocol::endpoint::Endpoint;
use vbzkey_protocol::stream::{read_frame_kind, write_frame};
use vbzkey_protocol::wire::{self, DongleError, FrameKind, Pin, Request, Response};

use crate::error::{ClientError, LinkError, ProtocolError, TransportError};
use crate::link::Link;
use crate::socket::{SocketConnector, SocketIo};
use crate::{Client, Connector};

/// What the peer does with the next request of a connection.
#[derive(Clone)]
enum Step {
    /// Answer it: `Pairings` with an empty list, anything else with `Ok`.
    Answer,
    /// Answer with this.
    Reply(Response),
    /// Read it, then hang up without answering.
    ReadThenClose,
    /// Answer with the wrong request id.
    WrongId,
    /// Answer with a frame of another kind.
    SealedFrame,
}

/// A peer serving one script per accepted connection, in order; a connection closes when its
/// script ends.
struct Peer {
    path: PathBuf,
    /// (connection number, request) for every request read.
    seen: Arc<Mutex<Vec<(usize, Request)>>>,
    accepted: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
}

impl Peer {
    fn start(name: &str, connections: Vec<Vec<Step>>) -> Peer {
        let path =
            std::env::temp_dir().join(format!("vbzkey-client-{name}-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        let peer =
            Peer { path, seen: Arc::default(), accepted: Arc::default(), closed: Arc::default() };
        let (seen, accepted, closed) =
            (Arc::clone(&peer.seen), Arc::clone(&peer.accepted), Arc::clone(&peer.closed));
        std::thread::spawn(move || {
            for (n, script) in connections.into_iter().enumerate() {
                let Ok((mut s, _)) = listener.accept() else { return };
                accepted.fetch_add(1, Ordering::SeqCst);
                for step in script {
                    let Ok(Some((_, payload))) = read_frame_kind(&mut s) else { break };
                    let (id, req) = wire::decode::<Request>(&payload).unwrap();
                    seen.lock().unwrap().push((n, req.clone()));
                    let answer = match step {
                        Step::Answer if req == Request::Pairings => {
                            wire::encode(id, &Response::Pairings(vec![]))
                        }
                        Step::Answer => wire::encode(id, &Response::Ok),
                        Step::Reply(r) => wire::encode(id, &r),
                        Step::ReadThenClose => break,
                        Step::WrongId => wire::encode(id + 1, &Response::Ok),
                        Step::SealedFrame => wire::frame(FrameKind::Sealed, b"not for you"),
                    };
                    write_frame(&mut s, &answer).unwrap();
                }
                drop(s);
                closed.fetch_add(1, Ordering::SeqCst);
            }
        });
        peer
    }

    fn endpoint(&self) -> Endpoint {
        Endpoint::Unix(self.path.clone())
    }

    fn client(&self) -> Client {
        Client::new(Box::new(SocketConnector::new(self.endpoint(), None)))
    }

    fn seen(&self) -> Vec<(usize, Request)> {
        self.seen.lock().unwrap().clone()
    }

    /// Wait (bounded) until the peer has hung up `n` connections.
    fn wait_closed(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.closed.load(Ordering::SeqCst) < n {
            assert!(Instant::now() < deadline, "the peer never hung up");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn pin() -> Pin {
    Pin::new(b"246810")
}

#[test]
fn a_dead_link_is_reopened_and_a_request_that_never_left_is_sent_again() {
    let peer = Peer::start("reopen", vec![vec![Step::Answer], vec![Step::Answer]]);
    let client = peer.client();
    client.lock().unwrap();
    // The dongle goes away (unplugged, restarted) after answering.
    peer.wait_closed(1);
    // Not even a PIN is counted twice: the first send failed, so it never reached anyone.
    client.unlock(pin()).unwrap();
    let seen = peer.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[1].0, 1, "the unlock went over the second connection");
    assert!(matches!(seen[1].1, Request::Unlock { .. }));
}

#[test]
fn a_lost_answer_is_asked_again_only_when_repeating_is_safe() {
    let peer =
        Peer::start("lost-safe", vec![vec![Step::Answer, Step::ReadThenClose], vec![Step::Answer]]);
    let client = peer.client();
    client.lock().unwrap();
    assert_eq!(client.pairings().unwrap(), vec![]);
    let seen: Vec<_> = peer.seen().into_iter().map(|(n, r)| (n, r == Request::Pairings)).collect();
    assert_eq!(seen, vec![(0, false), (0, true), (1, true)], "Pairings asked twice");

    let peer = Peer::start(
        "lost-unsafe",
        vec![vec![Step::Answer, Step::ReadThenClose], vec![Step::Answer]],
    );
    let client = peer.client();
    client.lock().unwrap();
    // The dongle read the PIN and may have counted it: it is not sent again.
    let err = client.unlock(pin()).unwrap_err();
    assert!(matches!(err, ClientError::Link(LinkError::Recv(TransportError::Closed))), "{err:?}");
    assert_eq!(peer.seen().len(), 2);
    assert_eq!(peer.accepted.load(Ordering::SeqCst), 1);
    // The dead link was dropped: the next request opens a new one.
    client.lock().unwrap();
    assert_eq!(peer.seen().last().unwrap().0, 1);
}

#[test]
fn a_link_opened_for_the_request_is_not_retried() {
    let peer = Peer::start("fresh", vec![vec![Step::ReadThenClose], vec![Step::Answer]]);
    let client = peer.client();
    let err = client.pairings().unwrap_err();
    assert!(matches!(err, ClientError::Link(LinkError::Recv(_))), "{err:?}");
    assert_eq!(peer.accepted.load(Ordering::SeqCst), 1);
    assert_eq!(peer.seen().len(), 1);
}

#[test]
fn an_invalid_answer_drops_the_link_and_is_not_retried() {
    let peer = Peer::start("wrong-id", vec![vec![Step::Answer, Step::WrongId], vec![Step::Answer]]);
    let client = peer.client();
    client.lock().unwrap();
    let err = client.pairings().unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Link(LinkError::Protocol(ProtocolError::WrongId { expected: 2, got: 3 }))
        ),
        "{err:?}"
    );
    assert_eq!(peer.seen().len(), 2);
    client.lock().unwrap();
    assert_eq!(peer.seen().last().unwrap().0, 1, "a new link after the invalid answer");

    let peer = Peer::start("wrong-kind", vec![vec![Step::SealedFrame]]);
    let err = peer.client().lock().unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Link(LinkError::Protocol(ProtocolError::FrameKind {
                expected: FrameKind::Plain,
                got: FrameKind::Sealed
            }))
        ),
        "{err:?}"
    );
}

#[test]
fn the_dongles_refusal_reaches_the_caller_typed() {
    let refusal = DongleError::WrongPin { tries_left: 3 };
    let peer = Peer::start(
        "refusal",
        vec![vec![Step::Reply(Response::Error(refusal.clone())), Step::Reply(Response::Ok)]],
    );
    let client = peer.client();
    match client.unlock(pin()) {
        Err(ClientError::Dongle(e)) => assert_eq!(e, refusal),
        other => panic!("{other:?}"),
    }
    // An answer that does not answer the request is named, not printed, and not a panic.
    let err = client.pairings().unwrap_err();
    assert!(
        matches!(err, ClientError::Unexpected { request: "Pairings", answer: "Ok" }),
        "{err:?}"
    );
}

#[test]
fn no_dongle_is_reported_as_absent() {
    let path = std::env::temp_dir().join("vbzkey-client-nobody-here.sock");
    let client = Client::new(Box::new(SocketConnector::new(Endpoint::Unix(path), None)));
    let err = client.hello().unwrap_err();
    match &err {
        ClientError::Link(e) => assert!(e.is_absent(), "{e:?}"),
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("no dongle found at unix:"), "{err}");
    assert_eq!(client.describe(), None);
}

/// A connector whose hot-plug counter a test moves.
struct Hotplug {
    inner: SocketConnector,
    generation: Arc<AtomicU64>,
}

impl Connector for Hotplug {
    fn connect(&self) -> Result<Link, LinkError> {
        self.inner.connect()
    }
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }
}

#[test]
fn a_hotplug_event_drops_the_link_before_it_is_used() {
    let peer = Peer::start("hotplug", vec![vec![Step::Answer, Step::Answer], vec![Step::Answer]]);
    let generation = Arc::new(AtomicU64::new(0));
    let client = Client::new(Box::new(Hotplug {
        inner: SocketConnector::new(peer.endpoint(), None),
        generation: Arc::clone(&generation),
    }));
    client.lock().unwrap();
    assert!(client.describe().unwrap().starts_with("unix:"));
    generation.fetch_add(1, Ordering::SeqCst);
    client.lock().unwrap();
    let conns: Vec<usize> = peer.seen().into_iter().map(|(n, _)| n).collect();
    assert_eq!(conns, vec![0, 1], "the second request went to the new device");
}

#[test]
fn a_link_numbers_its_requests_and_checks_the_answers() {
    let (mine, theirs) = UnixStream::pair().unwrap();
    let peer = std::thread::spawn(move || {
        let mut s = theirs;
        let mut ids = Vec::new();
        while let Ok(Some((_, p))) = read_frame_kind(&mut s) {
            let (id, _req) = wire::decode::<Request>(&p).unwrap();
            ids.push(id);
            write_frame(&mut s, &wire::encode(id, &Response::Ok)).unwrap();
        }
        ids
    });
    let mut link = Link::open(Box::new(SocketIo::new(mine, "unix:pair")), None).unwrap();
    for _ in 0..3 {
        assert_eq!(link.call(&Request::Lock).unwrap(), Response::Ok);
    }
    assert_eq!(link.describe(), "unix:pair");
    drop(link);
    assert_eq!(peer.join().unwrap(), vec![1, 2, 3]);
}

/// `--dongle usb` where USB cannot be listed (this container, a VM without USB passed through)
/// used to say only libusb's "Other error".
#[test]
fn usb_unavailable_names_what_was_looked_for_and_what_to_check() {
    let text = LinkError::UsbUnavailable(rusb::Error::Other).to_string();
    let id = format!("{:04x}:{:04x}", crate::usb::DEFAULT_VID, crate::usb::DEFAULT_PID);
    for words in
        ["no dongle found", id.as_str(), "/dev/bus/usb", "plugged in", "udev rule", "unix:"]
    {
        assert!(text.contains(words), "{words:?} not in {text:?}");
    }
    let absent = LinkError::NoUsbDongle { vid: 0x1209, pid: 0x0001, serial: Some("A1".into()) };
    let text = absent.to_string();
    for words in ["1209:0001", "serial A1", "lsusb", "udev rule"] {
        assert!(text.contains(words), "{words:?} not in {text:?}");
    }
}
