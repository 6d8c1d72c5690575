//! The firmware binary as a process on a real socket, driven by a client speaking the wire
//! protocol: the full session, restarts, bad frames, and SIGKILL during key-store writes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use vbzkey_client::socket::SocketIo;
use vbzkey_client::{DevicePin, Link, SessionKeys};
use vbzkey_protocol::PublicKey;
use vbzkey_protocol::record;
use vbzkey_protocol::stream::read_frame_kind;
use vbzkey_protocol::wire::{self, DongleError, LockState, Pin, Request, Response, SealedItem};

const PIN: &[u8] = b"246810";
const ADMIN: &[u8] = b"admin-13579";

struct Firmware {
    child: Child,
    dir: PathBuf,
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vbzkey-fw-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

impl Firmware {
    fn start(dir: &Path, crash_at: Option<&str>) -> Self {
        Self::start_with(dir, crash_at, &[])
    }

    fn start_with(dir: &Path, crash_at: Option<&str>, extra: &[&str]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vbzkey-firmware"));
        cmd.args([
            "serve",
            "--identity",
            "dangerous-fixed:TEST0001",
            "--dangerous-weak-kdf",
            "--state-dir",
        ])
        .arg(dir.join("state"))
        .arg("--transport")
        .arg(format!("unix:{}", dir.join("dongle.sock").display()))
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        if let Some(c) = crash_at {
            cmd.env("VBZKEY_DANGEROUS_CRASH_AT", c);
        }
        let _ = std::fs::remove_file(dir.join("dongle.sock"));
        Firmware { child: cmd.spawn().unwrap(), dir: dir.to_path_buf() }
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

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A new connection in a session of a host key made for it (an admin window opens in
    /// no other), with an admin window open.
    fn admin(&self) -> Link {
        let keys = SessionKeys::ephemeral(DevicePin::Ask).unwrap();
        let mut link =
            Link::open(Box::new(SocketIo::new(self.connect(), "admin")), Some(&keys)).unwrap();
        let auth = Request::AdminAuth { admin_pin: Pin::new(ADMIN), unlock_secret: None };
        assert_eq!(link.call(&auth).unwrap(), Response::Ok);
        link
    }
}

impl Drop for Firmware {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request on the connection, through the project's client (frames, ids, checks).
fn call<S: Read + Write + Send + 'static>(s: S, r: &Request) -> Response {
    Link::open(Box::new(SocketIo::new(s, "test")), None).unwrap().call(r).unwrap()
}

fn req(s: &mut UnixStream, r: Request) -> Response {
    call(s.try_clone().unwrap(), &r)
}

/// Init with both credentials, then unlock for staff (init leaves the dongle locked).
fn init(s: &mut UnixStream) -> PublicKey {
    let pk = match req(s, Request::Init { pin: Some(Pin::new(PIN)), admin_pin: Pin::new(ADMIN) }) {
        Response::PublicKeys(k) => PublicKey::from_bytes(k[0].public_key),
        other => panic!("{other:?}"),
    };
    assert_eq!(req(s, Request::Unlock { pin: Pin::new(PIN), unlock_secret: None }), Response::Ok);
    pk
}

fn batch(pk: &PublicKey, n: usize) -> Vec<SealedItem> {
    (0..n)
        .map(|i| {
            let ctx = format!("cust_cards/{i}/card_number");
            let rec = record::seal(pk, ctx.as_bytes(), format!("4111 #{i}").as_bytes()).unwrap();
            SealedItem { record: rec, context: ctx.into_bytes() }
        })
        .collect()
}

fn unseal_all(s: &mut UnixStream, items: Vec<SealedItem>) -> Result<Vec<String>, DongleError> {
    match req(s, Request::UnsealBatch { items }) {
        Response::Unsealed(r) => {
            Ok(r.into_iter().map(|r| String::from_utf8(r.unwrap().0.to_vec()).unwrap()).collect())
        }
        Response::Error(e) => Err(e),
        other => panic!("{other:?}"),
    }
}

fn state(s: &mut UnixStream) -> (LockState, usize) {
    match req(s, Request::Hello) {
        Response::Hello(h) => (h.state, h.keys.len()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn full_session_over_a_unix_socket_survives_a_restart() {
    let dir = temp_dir("session");
    let fw = Firmware::start(&dir, None);
    let mut s = fw.connect();
    assert_eq!(state(&mut s).0, LockState::Uninitialised);
    let pk = init(&mut s);
    let items = batch(&pk, 20);
    let want: Vec<String> = (0..20).map(|i| format!("4111 #{i}")).collect();
    assert_eq!(unseal_all(&mut s, items.clone()).unwrap(), want);
    assert_eq!(req(&mut s, Request::Lock), Response::Ok);
    assert_eq!(unseal_all(&mut s, items.clone()), Err(DongleError::Locked));
    assert_eq!(
        req(&mut s, Request::Unlock { pin: Pin::new(PIN), unlock_secret: None }),
        Response::Ok
    );
    assert_eq!(unseal_all(&mut s, items.clone()).unwrap(), want);
    fw.stop();

    let fw = Firmware::start(&dir, None);
    let mut s = fw.connect();
    assert_eq!(state(&mut s), (LockState::Locked, 1));
    assert_eq!(unseal_all(&mut s, items.clone()), Err(DongleError::Locked));
    assert!(matches!(
        req(&mut s, Request::Unlock { pin: Pin::new(b"000000"), unlock_secret: None }),
        Response::Error(DongleError::WrongPin { tries_left: 7 })
    ));
    assert_eq!(
        req(&mut s, Request::Unlock { pin: Pin::new(PIN), unlock_secret: None }),
        Response::Ok
    );
    assert_eq!(unseal_all(&mut s, items).unwrap(), want);
    // Everything above is in the audit log, chained.
    match req(&mut s, Request::AuditTail { max: 100 }) {
        Response::AuditTail { entries, total, .. } => {
            assert!(total >= 7);
            assert!(entries.iter().any(|e| e.line.contains(" unlock-failed ")));
        }
        other => panic!("{other:?}"),
    }
    fw.stop();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Read one answer frame, or `None` if the firmware closed the connection.
fn answer(s: &mut UnixStream) -> Option<Response> {
    let (_, payload) = read_frame_kind(s).ok()??;
    Some(wire::decode::<Response>(&payload).unwrap().1)
}

#[test]
fn bad_frames_get_an_error_or_a_closed_connection_never_a_hang() {
    let dir = temp_dir("badframes");
    let fw = Firmware::start(&dir, None);
    let hello_frame = wire::encode(9, &Request::Hello);
    let mut wrong_version = hello_frame.clone();
    wrong_version[8] = 7; // protocol version varint
    let mut oversized = wire::header_for(wire::MAX_FRAME_PAYLOAD + 1).to_vec();
    oversized.extend_from_slice(&[0; 32]);
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        ("garbage", b"GET / HTTP/1.1\r\n\r\n".to_vec(), false),
        ("bad frame version", [b"VZ\x09\x00".as_slice(), &[0, 0, 0, 1, 0]].concat(), false),
        ("oversized", oversized, false),
        ("valid frame, garbage payload", [&wire::header_for(5)[..], &[0xff; 5]].concat(), true),
        ("valid frame, wrong protocol version", wrong_version, true),
    ];
    for (name, bytes, keeps_open) in cases {
        let mut s = fw.connect();
        s.write_all(&bytes).unwrap();
        match answer(&mut s) {
            Some(Response::Error(DongleError::Malformed | DongleError::UnsupportedVersion)) => {}
            other => panic!("{name}: {other:?}"),
        }
        if keeps_open {
            s.write_all(&hello_frame).unwrap();
            assert!(
                matches!(answer(&mut s), Some(Response::Hello(_))),
                "{name}: connection still usable"
            );
        } else {
            assert!(answer(&mut s).is_none(), "{name}: connection closed after a framing error");
        }
    }
    // Session frames that are not a session: a garbage handshake (of this protocol version: a
    // handshake of another version is told so, see session_framing.rs), or a sealed frame
    // before any handshake, close the connection without an answer.
    let garbage = [&wire::PROTOCOL_VERSION.to_be_bytes()[..], &[0x42; 96]].concat();
    for (name, kind) in [
        ("garbage handshake", wire::FrameKind::Handshake),
        ("sealed without a session", wire::FrameKind::Sealed),
    ] {
        let mut s = fw.connect();
        s.write_all(&wire::frame(kind, &garbage)).unwrap();
        assert!(answer(&mut s).is_none(), "{name}: closed without an answer");
    }
    // A truncated frame followed by a hang-up costs nothing, and the firmware still serves.
    let mut s = fw.connect();
    s.write_all(&hello_frame[..hello_frame.len() - 1]).unwrap();
    drop(s);
    let mut s = fw.connect();
    assert!(matches!(req(&mut s, Request::Hello), Response::Hello(_)));
    fw.stop();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sigkill_at_every_step_of_a_key_store_write_leaves_old_or_new() {
    let dir = temp_dir("crash");
    let fw = Firmware::start(&dir, None);
    let pk = init(&mut fw.connect());
    fw.stop();
    let items = batch(&pk, 3);
    let mut keys_before = 1;
    for step in vbzkey_os::durable::CRASH_STEPS {
        let fw = Firmware::start(&dir, Some(&format!("keystore.v1:{step}")));
        let mut admin = fw.admin();
        // The rotation writes the key store; the firmware dies at `step` of that write.
        assert!(
            admin.call(&Request::Rotate).is_err(),
            "{step}: the firmware died before answering"
        );
        let mut fw = fw;
        let status = fw.child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "{step}: killed by SIGKILL"
        );

        let fw = Firmware::start(&dir, None);
        let mut s = fw.connect();
        let (st, keys) = state(&mut s);
        assert_eq!(st, LockState::Locked, "{step}: the key store opens after the crash");
        assert!(
            keys == keys_before || keys == keys_before + 1,
            "{step}: old or new content, got {keys} keys"
        );
        assert_eq!(
            req(&mut s, Request::Unlock { pin: Pin::new(PIN), unlock_secret: None }),
            Response::Ok,
            "{step}"
        );
        assert_eq!(
            unseal_all(&mut s, items.clone()).unwrap().len(),
            3,
            "{step}: old records still open"
        );
        keys_before = keys;
        let leftovers: Vec<_> = std::fs::read_dir(dir.join("state"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "{step}: temp files are cleaned up at start");
        fw.stop();
    }
    // Early steps keep the old store, late steps (after the rename) the new one.
    assert!(keys_before >= 2, "at least the steps after the rename kept the rotation");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn tcp_serves_only_sessions_of_paired_hosts() {
    let dir = temp_dir("tcp");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_vbzkey-firmware"))
        .args(["serve", "--identity", "dangerous-fixed:T", "--dangerous-weak-kdf", "--state-dir"])
        .arg(dir.join("state"))
        .arg("--transport")
        .arg(format!("tcp:127.0.0.1:{port}"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut s = loop {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
            break s;
        }
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    };
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // Hello and the device key are public; everything else needs a paired session.
    let r = call(s.try_clone().unwrap(), &Request::Hello);
    assert!(matches!(r, Response::Hello(h) if h.serial == "T" && h.paired_hosts == 0));
    let r = call(s.try_clone().unwrap(), &Request::DeviceKey);
    assert!(matches!(r, Response::DeviceKey(_)));
    let init = Request::Init { pin: None, admin_pin: Pin::new(ADMIN) };
    let r = call(s.try_clone().unwrap(), &init);
    assert_eq!(r, Response::Error(DongleError::PairingRequired));
    let mut byte = [0u8; 1];
    s.write_all(b"not a frame at all").unwrap();
    let _ = s.read(&mut byte);
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_button_wait_neither_blocks_other_connections_nor_confirms_without_a_press() {
    let dir = temp_dir("presence");
    let fifo = dir.join("button");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let fifo_arg = fifo.display().to_string();
    let fw = Firmware::start_with(&dir, None, &["--presence-fifo", &fifo_arg]);
    init(&mut fw.connect());
    let mut admin = fw.admin();
    // The dongle asks for the button first (an interim answer under the same request id)...
    let asked = Arc::new(AtomicBool::new(false));
    let (seen, sock, press) = (Arc::clone(&asked), fw.dir.join("dongle.sock"), fifo.clone());
    admin.on_presence(Box::new(move |timeout_secs| {
        assert_eq!(timeout_secs, 30);
        // ...and, while it waits, another connection is served: the core is not held.
        let mut other = UnixStream::connect(&sock).unwrap();
        other.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let t = Instant::now();
        assert!(
            matches!(req(&mut other, Request::Hello), Response::Hello(h) if h.presence_input && !h.admin_window)
        );
        assert!(t.elapsed() < Duration::from_secs(5), "Hello waited for the button");
        // The other connection has no admin window: it cannot ride on the admin's.
        assert_eq!(
            req(&mut other, Request::CloneExport { to: [9; 32] }),
            Response::Error(DongleError::AdminRequired)
        );
        // A press (a line on the FIFO, as the real button is a GPIO edge) deals the shares.
        std::fs::write(&press, b"press\n").unwrap();
        seen.store(true, Ordering::SeqCst);
    }));
    match admin.call(&Request::Backup { threshold: 2, count: 3 }).unwrap() {
        Response::Shares(s) => assert_eq!(s.len(), 3),
        other => panic!("{other:?}"),
    }
    assert!(asked.load(Ordering::SeqCst), "the dongle asked for its button");
    // Closing the connection closes its admin window: a new one starts without it.
    drop(admin);
    let mut again = fw.connect();
    assert!(matches!(req(&mut again, Request::Hello), Response::Hello(h) if !h.admin_window));
    assert_eq!(req(&mut again, Request::Rotate), Response::Error(DongleError::AdminRequired));
    fw.stop();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn without_a_button_nothing_that_needs_one_is_confirmed() {
    let dir = temp_dir("nobutton");
    let fw = Firmware::start(&dir, None);
    init(&mut fw.connect());
    let mut admin = fw.admin();
    let asked = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&asked);
    admin.on_presence(Box::new(move |_| seen.store(true, Ordering::SeqCst)));
    let backup = admin.call(&Request::Backup { threshold: 2, count: 3 }).unwrap();
    assert!(asked.load(Ordering::SeqCst), "the dongle asked for its button");
    assert_eq!(backup, Response::Error(DongleError::NotConfirmed));
    match admin.call(&Request::AuditTail { max: 5 }).unwrap() {
        Response::AuditTail { entries, .. } => {
            assert!(entries.iter().any(|e| e.line.contains(" presence-missing ")))
        }
        other => panic!("{other:?}"),
    }
    fw.stop();
    std::fs::remove_dir_all(&dir).unwrap();
}
