//! Support for the end-to-end tests: start the real binaries (built by `cargo test
//! --workspace` or `cargo build`), talk raw HTTP/1.1 to the bridge so every header is under
//! the test's control, and clean up on drop. Every wait is bounded.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod mariadb;
pub mod store;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use vbzkey_protocol::PublicKey;
use vbzkey_protocol::stream::call;
use vbzkey_protocol::wire::{Pin, Request, Response, SealedItem};

/// The longest any test waits for a process to come up.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A workspace binary next to the running test (target/<profile>/NAME).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps/..");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (scripts/test does)",
        path.display()
    );
    path
}

/// A temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh, empty directory.
    pub fn new(name: &str) -> Self {
        let d = std::env::temp_dir().join(format!("vbzkey-e2e-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("temp dir");
        TempDir(d)
    }

    /// A path inside it.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn wait_until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The emulated dongle: the real firmware binary on a Unix socket.
pub struct Firmware {
    child: Child,
    state: PathBuf,
    /// The socket path.
    pub socket: PathBuf,
    extra: Vec<String>,
}

impl Firmware {
    /// Start the firmware with its state in `state` and its socket at `socket`.
    pub fn start(state: &Path, socket: &Path, extra: &[&str]) -> Self {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let child = Self::spawn(state, socket, &extra);
        let fw = Firmware { child, state: state.into(), socket: socket.into(), extra };
        wait_until("the firmware's socket", || UnixStream::connect(&fw.socket).ok());
        fw
    }

    fn spawn(state: &Path, socket: &Path, extra: &[String]) -> Child {
        let _ = std::fs::remove_file(socket);
        Command::new(bin("vbzkey-firmware"))
            .args([
                "serve",
                "--identity",
                "dangerous-fixed:E2E00001",
                "--dangerous-weak-kdf",
                "--state-dir",
            ])
            .arg(state)
            .arg("--transport")
            .arg(format!("unix:{}", socket.display()))
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start vbzkey-firmware")
    }

    /// Kill it (like pulling the dongle out).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }

    /// Start it again on the same state and socket (plugging the dongle back in).
    pub fn restart(&mut self) {
        self.kill();
        self.child = Self::spawn(&self.state, &self.socket, &self.extra);
        wait_until("the firmware's socket", || UnixStream::connect(&self.socket).ok());
    }

    /// Send one wire request directly (as an admin tool would).
    pub fn request(&self, req: &Request) -> Response {
        let mut s = UnixStream::connect(&self.socket).expect("connect to the firmware");
        s.set_read_timeout(Some(START_TIMEOUT)).expect("timeout");
        call(&mut s, 1, req).expect("wire call")
    }

    /// Open `(context, record text)` pairs on the dongle, a full batch at a time (it must be
    /// unlocked): each value, or the error code.
    pub fn unseal_all(&self, items: &[(String, String)]) -> Vec<Result<String, String>> {
        let mut out = Vec::with_capacity(items.len());
        for chunk in items.chunks(vbzkey_protocol::wire::MAX_BATCH) {
            let items = chunk
                .iter()
                .map(|(context, text)| SealedItem {
                    record: vbzkey_protocol::record::from_text(text).expect("a vk1. record"),
                    context: context.as_bytes().to_vec(),
                })
                .collect();
            match self.request(&Request::UnsealBatch { items }) {
                Response::Unsealed(results) => out.extend(results.into_iter().map(|r| {
                    r.map(|p| String::from_utf8_lossy(&p.0).into_owned())
                        .map_err(|e| e.code().to_string())
                })),
                other => panic!("unseal failed: {other:?}"),
            }
        }
        out
    }

    /// Initialise with a PIN; returns the public key.
    pub fn init(&self, pin: &[u8]) -> PublicKey {
        match self.request(&Request::Init { pin: Some(Pin::new(pin)), admin_pin: None }) {
            Response::PublicKeys(keys) => PublicKey::from_bytes(keys[0].public_key),
            other => panic!("init failed: {other:?}"),
        }
    }
}

/// Run `vbzkey-admin --dongle unix:DONGLE ARGS` (stdin empty): how every test reaches a
/// dongle through the admin tool, so a change of its credentials is made here once.
pub fn admin(dongle: &Path, args: &[&str]) -> Output {
    Command::new(bin("vbzkey-admin"))
        .arg("--dongle")
        .arg(format!("unix:{}", dongle.display()))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run vbzkey-admin")
}

/// The stdout of a command that must have succeeded.
pub fn ok(out: Output) -> String {
    assert!(out.status.success(), "vbzkey-admin failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Assert that a command failed and said `says` on stderr.
pub fn refused(out: Output, says: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected a refusal saying {says:?}");
    assert!(err.contains(says), "expected {says:?} in: {err}");
}

/// An emulated dongle set up as an admin would: `vbzkey-admin init` with a staff PIN.
pub struct AdminDongle {
    /// The firmware process.
    pub fw: Firmware,
    /// The file holding the staff PIN (first line), for `--pin-file`.
    pub pin_file: PathBuf,
    /// The public key `init` printed (what the store seals to).
    pub public_key: PublicKey,
}

impl AdminDongle {
    /// Start the firmware in `dir` (with `extra` serve options) and initialise it with `pin`.
    pub fn init(dir: &TempDir, pin: &str, extra: &[&str]) -> Self {
        let fw = Firmware::start(&dir.path("dongle-state"), &dir.path("dongle.sock"), extra);
        let pin_file = dir.path("pin.txt");
        std::fs::write(&pin_file, format!("{pin}\n")).expect("write the PIN file");
        let out = ok(admin(&fw.socket, &["init", "--pin-file", path_str(&pin_file)]));
        let public_key = PublicKey::from_text(out.trim()).expect("init prints the public key");
        AdminDongle { fw, pin_file, public_key }
    }

    /// `vbzkey-admin ARGS` against this dongle.
    pub fn admin(&self, args: &[&str]) -> Output {
        admin(&self.fw.socket, args)
    }

    /// The `--pin-file` argument.
    pub fn pin_arg(&self) -> &str {
        path_str(&self.pin_file)
    }
}

/// A path as a command-line argument (test paths are UTF-8).
pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

impl Drop for Firmware {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The real bridge binary.
pub struct Bridge {
    child: Child,
    /// The port it listens on (127.0.0.1 and ::1).
    pub port: u16,
}

impl Bridge {
    /// Start the bridge with this configuration (its `port` is overridden with a free one).
    pub fn start(dir: &TempDir, config: &str) -> Self {
        let path = dir.path("bridge.toml");
        std::fs::write(&path, config).expect("write config");
        let mut child = Command::new(bin("vbzkey-bridge"))
            .arg("--config")
            .arg(&path)
            .args(["--port", "0"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("start vbzkey-bridge");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("first line");
        let port = line
            .split("http://127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the bridge did not say its port: {line:?}"));
        Bridge { child, port }
    }

    /// The bridge's own origin.
    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A request with the usual headers of a page on `origin`; `body` is JSON.
    pub fn post(&self, path: &str, origin: &str, body: &str) -> HttpResponse {
        let host = format!("127.0.0.1:{}", self.port);
        http(
            self.port,
            "POST",
            path,
            &[("Host", &host), ("Origin", origin), ("Content-Type", "application/json")],
            body.as_bytes(),
        )
    }

    /// `GET /v1/status` as JSON.
    pub fn status(&self) -> serde_json::Value {
        let host = format!("127.0.0.1:{}", self.port);
        let r = http(self.port, "GET", "/v1/status", &[("Host", &host)], b"");
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// One raw HTTP/1.1 request to 127.0.0.1:`port` (`Connection: close`); headers exactly as
/// given (so a test can send a wrong Host or none at all).
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the bridge");
    s.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    let mut req = format!("{method} {path} HTTP/1.1\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", body.len()));
    s.write_all(req.as_bytes()).expect("write request");
    // A server may answer (413) and close before reading a large body; that is fine.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    HttpResponse { status, headers, body: raw[split + 4..].to_vec() }
}

/// Run the `vbzkey` CLI with `stdin`; returns stdout, panicking on failure.
pub fn cli(args: &[&str], stdin: &[u8]) -> String {
    let mut child = Command::new(bin("vbzkey"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vbzkey");
    child.stdin.take().expect("stdin").write_all(stdin).expect("write stdin");
    let out = child.wait_with_output().expect("vbzkey output");
    assert!(
        out.status.success(),
        "vbzkey {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}
