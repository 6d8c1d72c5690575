//! Before authentication, on the LAN: the firmware binary serving TCP, flooded by an unpaired
//! peer, while a paired host keeps being served (issue 11, part 4; docs/THREAT-MODEL.md,
//! "a LAN peer floods the key server before authenticating").
//!
//! Every "peer" is on loopback: the attacker connects from 127.0.0.2 and 127.0.0.3 (all of
//! 127.0.0.0/8 is loopback on Linux), the paired host from 127.0.0.1, so the per-address
//! limits apply to them as they would to three machines on a LAN.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use vbzkey_client::socket::SocketIo;
use vbzkey_client::{Client, ConnectOptions, Link, SessionKeys};
use vbzkey_protocol::stream::read_frame_kind;
use vbzkey_protocol::wire::{
    self, DongleError, FrameKind, ItemError, MAX_FRAME_PAYLOAD, Pin, Plaintext, Request, Response,
    SealedItem, UnlockSecret,
};
use vbzkey_protocol::{PublicKey, SecretKey, record};

const PIN: &[u8] = b"246810";
const ADMIN: &[u8] = b"admin-97531";
const HOST: [u8; 32] = [0x21; 32];
/// Concurrent junk frames of the flood (the figure), from two attacker addresses.
const FLOOD: usize = 8;
/// How far the firmware's peak resident memory (VmHWM) may rise during the flood above what
/// it held just before: 256 KiB for each of the eight connections (its thread's stack pages
/// and the allocator's arena for it; the payload itself costs a 16-byte buffer, or an 8 KiB
/// copy buffer on the stack while a refused frame is skipped), which also covers the paired
/// host's second session. Measured: +248 to +396 KiB. Without the limits the same flood
/// raised it by 58 MiB: 8 × 2 MiB of frame buffers and the decoding of a million-item
/// batch (docs/DECISIONS.md, "Pre-authentication limits").
const GROWTH_BOUND_KIB: u64 = FLOOD as u64 * 256;
/// The firmware's handshake deadline (`transport::preauth::TcpLimits`) and the slack a loaded CI
/// machine may add before the close is seen.
const DEADLINE: Duration = Duration::from_secs(5);
const SLACK: Duration = Duration::from_secs(5);

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vbzkey-fw-pa-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

struct Firmware(Child);

impl Firmware {
    fn start(dir: &Path, transport: &str) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_vbzkey-firmware"))
            .args(["serve", "--identity", "dangerous-fixed:PA01", "--dangerous-weak-kdf"])
            .arg("--presence-fifo")
            .arg(dir.join("button"))
            .arg("--state-dir")
            .arg(dir.join("state"))
            .args(["--transport", transport])
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Firmware(child)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Firmware {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn retry<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A field of /proc/PID/status, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Set the process's peak resident size (VmHWM) back to its current one (proc(5),
/// clear_refs "5"), so the peak read later is the peak of what happened in between.
fn reset_peak(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), b"5").unwrap();
}

/// Initialise the dongle and pair `HOST` over the local socket (in `HOST`'s own session,
/// served while no host is paired; the admin PIN and a press of the emulated button). Returns the record
/// key and the device key.
fn initialise_and_pair(dir: &Path, host: &SessionKeys) -> (PublicKey, PublicKey) {
    let button = dir.join("button");
    assert!(Command::new("mkfifo").arg(&button).status().unwrap().success());
    let sock = dir.join("dongle.sock");
    let _fw = Firmware::start(dir, &format!("unix:{}", sock.display()));
    let stream = retry("the firmware's socket", || UnixStream::connect(&sock).ok());
    let mut link = Link::open(Box::new(SocketIo::new(stream, "unix")), Some(host)).unwrap();
    let pressed = button.clone();
    link.on_presence(Box::new(move |_| std::fs::write(&pressed, b"press\n").unwrap()));
    let init = Request::Init { pin: Some(Pin::new(PIN)), admin_pin: Pin::new(ADMIN) };
    let record_key = match link.call(&init).unwrap() {
        Response::PublicKeys(k) => PublicKey::from_bytes(k[0].public_key),
        other => panic!("{other:?}"),
    };
    let auth = Request::AdminAuth { admin_pin: Pin::new(ADMIN), unlock_secret: None };
    assert_eq!(link.call(&auth).unwrap(), Response::Ok);
    let pair = Request::Pair {
        host_key: host.host_public(),
        label: "till".into(),
        unlock_secret: UnlockSecret(host.unlock_secret().0),
    };
    assert_eq!(link.call(&pair).unwrap(), Response::Ok);
    let device = match link.call(&Request::DeviceKey).unwrap() {
        Response::DeviceKey(k) => PublicKey::from_bytes(k),
        other => panic!("{other:?}"),
    };
    // A host is paired: a local connection without a session may now send only what a TCP
    // one may. A 2 MiB plain frame is skipped unread and refused under its id, and the
    // connection stays in step.
    let mut s = UnixStream::connect(&sock).unwrap();
    s.write_all(&junk_frame(0)).unwrap();
    let (_, refused) = read_frame_kind(&mut s).unwrap().unwrap();
    let refused = wire::decode::<Response>(&refused).unwrap();
    assert_eq!(refused, (0, Response::Error(DongleError::PairingRequired)));
    s.write_all(&wire::encode(5, &Request::Hello)).unwrap();
    let (_, hello) = read_frame_kind(&mut s).unwrap().unwrap();
    assert!(matches!(wire::decode::<Response>(&hello).unwrap(), (5, Response::Hello(_))));
    (record_key, device)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A connection from the loopback address `from` (the attacker's machine).
fn connect_from(from: Ipv4Addr, port: u16) -> std::io::Result<TcpStream> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    s.bind(&SocketAddr::from((from, 0)).into())?;
    s.connect(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)).into())?;
    Ok(s.into())
}

/// A 2 MiB junk frame of the kind `n` picks: a plain `UnsealBatch` of a million empty items
/// (what used to decode into tens of megabytes), a sealed frame without a session, or a
/// handshake far longer than any Noise message.
fn junk_frame(n: usize) -> Vec<u8> {
    let kind = [FrameKind::Plain, FrameKind::Sealed, FrameKind::Handshake][n % 3];
    let mut payload = match kind {
        FrameKind::Plain => {
            // The envelope and the variant, then the item count: the empty batch's encoding
            // ends with its count (0), replaced by one that fills the frame.
            let mut p = wire::encode_payload(n as u32, &Request::UnsealBatch { items: vec![] });
            p.pop();
            let items = (MAX_FRAME_PAYLOAD - p.len() - 3) / 2;
            let mut count = [0u8; 3];
            for (i, byte) in count.iter_mut().enumerate() {
                *byte = ((items >> (7 * i)) & 0x7f) as u8 | if i < 2 { 0x80 } else { 0 };
            }
            p.extend_from_slice(&count);
            // Each item: an empty record and an empty context, one byte each.
            p.resize(p.len() + 2 * items, 0);
            p
        }
        _ => Vec::new(),
    };
    payload.resize(MAX_FRAME_PAYLOAD, 0xa5);
    wire::frame(kind, &payload)
}

/// What one flooding connection saw.
#[derive(Debug)]
struct Seen {
    /// The answer before the close, if any.
    answer: Option<Response>,
    /// From connecting until the firmware closed the connection.
    open_for: Duration,
}

/// Send one junk frame, read what comes back, wait at `hold` (the flood is complete and is
/// measured while every connection is open), then wait for the firmware to close.
fn flood_one(from: Ipv4Addr, port: u16, n: usize, hold: &Barrier) -> Seen {
    let frame = junk_frame(n);
    let start = Instant::now();
    let s = connect_from(from, port);
    let mut answer = None;
    if let Ok(mut s) = s {
        s.set_read_timeout(Some(DEADLINE + SLACK + SLACK)).unwrap();
        // A connection refused at accept is closed at once: the write may fail half-way.
        if s.write_all(&frame).is_ok()
            && let Ok(Some((FrameKind::Plain, p))) = read_frame_kind(&mut s)
        {
            answer = Some(wire::decode::<Response>(&p).unwrap().1);
        }
        hold.wait();
        let mut rest = [0u8; 64];
        // Until the firmware closes (0 bytes, or a reset); a timeout fails below.
        while matches!(s.read(&mut rest), Ok(n) if n > 0) {}
    } else {
        hold.wait();
    }
    Seen { answer, open_for: start.elapsed() }
}

fn plaintexts(results: Vec<Result<Plaintext, ItemError>>) -> Vec<String> {
    results.into_iter().map(|r| String::from_utf8(r.unwrap().0.to_vec()).unwrap()).collect()
}

fn unseal(client: &Client, items: &[SealedItem]) -> Vec<String> {
    plaintexts(client.unseal(items.to_vec()).unwrap())
}

/// Unseal on one session's link (no reconnecting: the same connection throughout).
fn unseal_on(link: &mut Link, items: &[SealedItem]) -> Vec<String> {
    match link.call(&Request::UnsealBatch { items: items.to_vec() }).unwrap() {
        Response::Unsealed(results) => plaintexts(results),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_flood_of_junk_frames_from_an_unpaired_peer_stays_within_a_memory_bound_and_a_paired_host_is_served()
 {
    let dir = temp_dir("flood");
    let host = SessionKeys::new(&SecretKey::from_bytes(HOST), None);
    let (record_key, device) = initialise_and_pair(&dir, &host);
    let items: Vec<SealedItem> = (0..8)
        .map(|i| {
            let ctx = format!("cust_cards/{i}/card_number");
            let rec = record::seal(&record_key, ctx.as_bytes(), format!("4111 #{i}").as_bytes());
            SealedItem { record: rec.unwrap(), context: ctx.into_bytes() }
        })
        .collect();
    let want: Vec<String> = (0..8).map(|i| format!("4111 #{i}")).collect();

    // The same dongle as the LAN key server.
    let port = free_port();
    let fw = Firmware::start(&dir, &format!("tcp:127.0.0.1:{port}"));
    retry("the key server", || TcpStream::connect(("127.0.0.1", port)).ok());
    // The paired host, pinning the dongle's device key (as a bridge does).
    let paired = || {
        let keys = SessionKeys::new(&SecretKey::from_bytes(HOST), Some(&device));
        let opts = ConnectOptions { keys: Some(Arc::new(keys)), ..ConnectOptions::default() };
        Client::for_addr(&format!("tcp:127.0.0.1:{port}").parse().unwrap(), opts)
    };
    // The paired host's session, opened before the flood, on one connection throughout.
    let keys = SessionKeys::new(&SecretKey::from_bytes(HOST), Some(&device));
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut till = Link::open(Box::new(SocketIo::new(stream, "tcp")), Some(&keys)).unwrap();
    let unlock = Request::Unlock { pin: Pin::new(PIN), unlock_secret: Some(keys.unlock_secret()) };
    assert_eq!(till.call(&unlock).unwrap(), Response::Ok);
    assert_eq!(unseal_on(&mut till, &items), want);

    reset_peak(fw.pid());
    let before = status_kib(fw.pid(), "VmHWM:");
    let hold = Arc::new(Barrier::new(FLOOD + 1));
    let attackers: Vec<_> = (0..FLOOD)
        .map(|n| {
            let hold = Arc::clone(&hold);
            let from = Ipv4Addr::new(127, 0, 0, 2 + (n % 2) as u8);
            std::thread::spawn(move || flood_one(from, port, n, &hold))
        })
        .collect();
    hold.wait();
    // Every junk frame is in; the attacker still holds its connections open. The paired
    // host's open session is served, and so is a new one.
    assert_eq!(unseal_on(&mut till, &items), want);
    let second = paired();
    second.unlock(Pin::new(PIN)).unwrap();
    assert_eq!(unseal(&second, &items), want);
    let peak = status_kib(fw.pid(), "VmHWM:");
    let growth = peak.saturating_sub(before);
    eprintln!(
        "firmware VmHWM: {before} KiB before the flood, {peak} KiB at its peak (+{growth} KiB)"
    );

    let seen: Vec<Seen> = attackers.into_iter().map(|t| t.join().unwrap()).collect();
    for (n, s) in seen.iter().enumerate() {
        eprintln!("junk frame {n}: {s:?}");
        if n % 3 == 0 {
            // Plain: skipped unread, refused, then closed at the handshake deadline.
            assert_eq!(s.answer, Some(Response::Error(DongleError::PairingRequired)), "frame {n}");
            assert!(s.open_for >= DEADLINE - SLACK / 5, "frame {n}: closed before the deadline");
        } else {
            // Sealed without a session, or a handshake longer than any: closed unread.
            assert_eq!(s.answer, None, "frame {n}");
        }
        assert!(s.open_for < DEADLINE + SLACK, "junk connection {n} stayed open {:?}", s.open_for);
    }
    assert!(
        growth <= GROWTH_BOUND_KIB,
        "the flood raised the firmware's peak memory by {growth} KiB (bound {GROWTH_BOUND_KIB} KiB)"
    );
    // After the flood, past the handshake deadline, the same session is still served: the
    // deadline binds connections without a session only.
    assert_eq!(unseal_on(&mut till, &items), want);
    drop(fw);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_serial_longer_than_hosts_accept_in_hello_is_refused_at_start() {
    // Hosts decode `Hello` with bounded fields (`wire::MAX_DEVICE_TEXT`): a dongle whose serial
    // is longer would answer every `Hello` with a message no host accepts.
    let dir = temp_dir("serial");
    let serial = "S".repeat(wire::MAX_DEVICE_TEXT + 1);
    let out = Command::new(env!("CARGO_BIN_EXE_vbzkey-firmware"))
        .args(["serve", "--identity", &format!("dangerous-fixed:{serial}"), "--dangerous-weak-kdf"])
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(["--transport", &format!("unix:{}", dir.join("s.sock").display())])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78), "a configuration error: {out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("serial number is longer"), "{out:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
