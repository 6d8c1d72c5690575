//! The session gate on a real socket: the firmware binary serving a Unix socket, and a host
//! driving it with the protocol's own session and stream framing (the lowest-level pieces a
//! client is built from). A sealed frame cut in two, a request with bytes behind it, and a
//! host of another protocol version are refused, and nothing of them runs.

use std::io::Write;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vbzkey_client::socket::SocketIo;
use vbzkey_client::{DevicePin, Link, SessionKeys};
use vbzkey_protocol::session::{self, CHUNK_DATA, Transport};
use vbzkey_protocol::stream::read_frame_kind;
use vbzkey_protocol::wire::{
    self, DongleError, FrameKind, PROTOCOL_VERSION, Pin, Request, Response, SealedItem,
    UnlockSecret,
};
use vbzkey_protocol::{SecretKey, record};
use zeroize::Zeroizing;

const HOST: [u8; 32] = [0x11; 32];
const INTRUDER: [u8; 32] = [0x66; 32];
const ADMIN: &[u8] = b"admin-2468";

fn intruder_pair() -> Request {
    Request::Pair {
        host_key: session::public_of(&INTRUDER),
        label: "intruder".into(),
        unlock_secret: UnlockSecret(Zeroizing::new([0x67; 32])),
    }
}

/// One plain request and its answer.
fn call(s: &mut UnixStream, id: u32, req: &Request) -> Response {
    s.write_all(&wire::encode(id, req)).unwrap();
    let (kind, p) = read_frame_kind(s).unwrap().expect("an answer");
    assert_eq!(kind, FrameKind::Plain);
    let (got, resp) = wire::decode::<Response>(&p).unwrap();
    assert_eq!(got, id);
    resp
}

struct Firmware {
    child: Child,
    dir: PathBuf,
}

impl Firmware {
    fn start(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("vbzkey-fw-sf-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let button = dir.join("button");
        assert!(Command::new("mkfifo").arg(&button).status().unwrap().success());
        let child = Command::new(env!("CARGO_BIN_EXE_vbzkey-firmware"))
            .args(["serve", "--identity", "dangerous-fixed:SF01", "--dangerous-weak-kdf"])
            .arg("--presence-fifo")
            .arg(&button)
            .arg("--state-dir")
            .arg(dir.join("state"))
            .arg("--transport")
            .arg(format!("unix:{}", dir.join("dongle.sock").display()))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Firmware { child, dir }
    }

    fn connect(&self) -> UnixStream {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(s) = UnixStream::connect(self.dir.join("dongle.sock")) {
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                return s;
            }
            assert!(Instant::now() < deadline, "the firmware did not start listening");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Initialise without a staff PIN, pair `HOST`, and return the device key.
    fn initialise_and_pair(&self) -> [u8; 32] {
        let mut s = self.connect();
        let r = call(&mut s, 1, &Request::Init { pin: None, admin_pin: Pin::new(ADMIN) });
        assert!(matches!(r, Response::PublicKeys(_)), "{r:?}");
        self.pair_host()
    }

    /// Pair `HOST` in `HOST`'s own session (an admin window opens in no other; served while
    /// no host is paired), with the admin PIN and a press of the button; the device key.
    fn pair_host(&self) -> [u8; 32] {
        let keys = SessionKeys::with_pin(&SecretKey::from_bytes(HOST), DevicePin::Ask);
        let io = SocketIo::new(self.connect(), "test");
        let mut link = Link::open(Box::new(io), Some(&keys)).unwrap();
        let button = self.dir.join("button");
        assert!(std::fs::metadata(&button).unwrap().file_type().is_fifo());
        // Pressed when the dongle asks: a press made before would not count.
        link.on_presence(Box::new(move |_| std::fs::write(&button, b"press\n").unwrap()));
        let auth = Request::AdminAuth { admin_pin: Pin::new(ADMIN), unlock_secret: None };
        assert_eq!(link.call(&auth).unwrap(), Response::Ok);
        let pair = Request::Pair {
            host_key: session::public_of(&HOST),
            label: "till".into(),
            unlock_secret: UnlockSecret(Zeroizing::new([0x12; 32])),
        };
        assert_eq!(link.call(&pair).unwrap(), Response::Ok);
        match link.call(&Request::DeviceKey).unwrap() {
            Response::DeviceKey(k) => k,
            other => panic!("{other:?}"),
        }
    }
}

impl Drop for Firmware {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn os_fill(b: &mut [u8]) -> bool {
    getrandom::fill(b).is_ok()
}

/// Open a session as `HOST`.
fn open_session(s: &mut UnixStream, device: &[u8; 32]) -> Transport {
    let (m1, init) = session::initiate(&HOST, device, os_fill).unwrap();
    s.write_all(&wire::frame(FrameKind::Handshake, &m1)).unwrap();
    let (kind, m2) = read_frame_kind(s).unwrap().unwrap();
    assert_eq!(kind, FrameKind::Handshake);
    init.finish(&m2).unwrap()
}

fn send_sealed(s: &mut UnixStream, sealed: &[u8]) {
    s.write_all(&wire::frame(FrameKind::Sealed, sealed)).unwrap();
}

fn session_call(s: &mut UnixStream, t: &mut Transport, id: u32, req: &Request) -> Response {
    send_sealed(s, &t.seal(&wire::encode_payload(id, req)).unwrap());
    let (kind, p) = read_frame_kind(s).unwrap().expect("an answer");
    assert_eq!(kind, FrameKind::Sealed);
    let (got, resp) = wire::decode::<Response>(&t.open(&p).unwrap()).unwrap();
    assert_eq!(got, id);
    resp
}

/// The connection was closed without an answer.
fn closed_without_answer(s: &mut UnixStream) -> bool {
    matches!(read_frame_kind(s), Ok(None) | Err(_))
}

/// What a fresh, honest session sees: the paired hosts and the audit log's length.
fn observe(fw: &Firmware, device: &[u8; 32]) -> (Vec<[u8; 32]>, u64) {
    let mut s = fw.connect();
    let mut t = open_session(&mut s, device);
    let hosts = match session_call(&mut s, &mut t, 1, &Request::Pairings) {
        Response::Pairings(p) => p.into_iter().map(|p| p.host_key).collect(),
        other => panic!("{other:?}"),
    };
    let total = match session_call(&mut s, &mut t, 2, &Request::AuditTail { max: 1 }) {
        Response::AuditTail { total, .. } => total,
        other => panic!("{other:?}"),
    };
    (hosts, total)
}

/// The `u16 length ‖ Noise message` chunks of a sealed payload.
fn chunks(sealed: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = sealed;
    while let Some((len, _)) = rest.split_first_chunk::<2>() {
        let (chunk, tail) = rest.split_at(2 + usize::from(u16::from_be_bytes(*len)));
        out.push(chunk);
        rest = tail;
    }
    out
}

#[test]
fn a_sealed_frame_cut_into_two_frames_closes_the_session_and_runs_nothing() {
    let fw = Firmware::start("split");
    let device = fw.initialise_and_pair();
    let before = observe(&fw, &device);
    assert_eq!(before.0, vec![session::public_of(&HOST)]);

    // The attack of issue 16: a record (which the bridge forwards verbatim) carries, at the
    // start of the second chunk, a whole `Pair` request for the intruder's key. Cut at the
    // chunk boundary, the second frame would decode as that request if chunks were not bound
    // into their frame.
    // (Records are at most `MAX_RECORD_LEN` bytes: a batch of long ones spans the chunks.)
    let smuggled = wire::encode_payload(77, &intruder_pair());
    let item = SealedItem { record: vec![0xAA; record::MAX_RECORD_LEN], context: b"c".to_vec() };
    let mut payload = wire::encode_payload(9, &Request::UnsealBatch { items: vec![item; 32] });
    let cut = CHUNK_DATA..CHUNK_DATA + smuggled.len();
    assert!(payload[cut.clone()].iter().all(|&b| b == 0xAA), "the cut falls inside a record");
    payload[cut].copy_from_slice(&smuggled);
    assert!(wire::decode::<Request>(&payload).is_ok(), "still one valid request");

    let mut s = fw.connect();
    let mut t = open_session(&mut s, &device);
    assert!(matches!(session_call(&mut s, &mut t, 1, &Request::Hello), Response::Hello(_)));
    let sealed = t.seal(&payload).unwrap();
    let parts = chunks(&sealed);
    assert_eq!(parts.len(), 3);
    send_sealed(&mut s, parts[0]);
    let _ = s.write_all(&wire::frame(FrameKind::Sealed, &parts[1..].concat()));
    assert!(closed_without_answer(&mut s), "the session is closed at the first half");

    // Nothing ran: no new pairing, no unseal logged.
    assert_eq!(observe(&fw, &device), before);
}

#[test]
fn a_request_with_trailing_bytes_is_refused_sealed_or_plain() {
    let fw = Firmware::start("trailing");

    // Plain (no host paired yet, so the local socket serves plain requests): a valid `Rotate`
    // with one byte behind it is answered `Malformed` and does not run.
    let mut s = fw.connect();
    let r = call(&mut s, 1, &Request::Init { pin: None, admin_pin: Pin::new(ADMIN) });
    assert!(matches!(r, Response::PublicKeys(ref k) if k.len() == 1), "{r:?}");
    let mut rotate = wire::encode_payload(2, &Request::Rotate);
    rotate.push(0);
    s.write_all(&wire::frame(FrameKind::Plain, &rotate)).unwrap();
    let (kind, answer) = read_frame_kind(&mut s).unwrap().unwrap();
    assert_eq!(kind, FrameKind::Plain);
    assert_eq!(
        wire::decode::<Response>(&answer).unwrap(),
        (2, Response::Error(DongleError::Malformed))
    );
    let keys = call(&mut s, 3, &Request::PublicKeys);
    assert!(matches!(keys, Response::PublicKeys(ref k) if k.len() == 1), "no rotation: {keys:?}");
    drop(s);

    // Sealed: a valid `Pair` with a second request glued behind it closes the session.
    let device = fw.pair_host();
    let before = observe(&fw, &device);
    let mut s = fw.connect();
    let mut t = open_session(&mut s, &device);
    let mut glued = wire::encode_payload(5, &intruder_pair());
    glued.extend_from_slice(&wire::encode_payload(6, &Request::Lock));
    send_sealed(&mut s, &t.seal(&glued).unwrap());
    assert!(closed_without_answer(&mut s), "the session is closed");
    assert_eq!(observe(&fw, &device), before, "nothing ran");
}

#[test]
fn a_host_of_another_protocol_version_is_told_so_at_the_handshake() {
    let fw = Firmware::start("version");
    let device = fw.initialise_and_pair();
    let (mut m1, _) = session::initiate(&HOST, &device, os_fill).unwrap();
    m1[..2].copy_from_slice(&(PROTOCOL_VERSION + 1).to_be_bytes());
    let mut s = fw.connect();
    s.write_all(&wire::frame(FrameKind::Handshake, &m1)).unwrap();
    let (kind, answer) = read_frame_kind(&mut s).unwrap().expect("an answer");
    assert_eq!(kind, FrameKind::Plain);
    let (_, r) = wire::decode::<Response>(&answer).unwrap();
    assert_eq!(r, Response::Error(DongleError::UnsupportedVersion));
    assert!(closed_without_answer(&mut s), "then the connection closes");
    // A host of this version is still served.
    let mut s = fw.connect();
    let mut t = open_session(&mut s, &device);
    assert!(matches!(session_call(&mut s, &mut t, 1, &Request::Hello), Response::Hello(_)));
}
