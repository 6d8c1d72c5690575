//! Support for the end-to-end tests: start the real binaries (built by `cargo test
//! --workspace` or `cargo build`), talk raw HTTP/1.1 to the bridge so every header is under
//! the test's control, and clean up on drop. Every wait is bounded.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod mariadb;
pub mod store;
pub mod terminal;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use vbzkey_client::{Client, ConnectOptions, DongleAddr};
use vbzkey_protocol::PublicKey;
use vbzkey_protocol::endpoint::Endpoint;
use vbzkey_protocol::wire::{Pin, Request, Response, SealedItem};

/// The admin credential the tests' dongles are initialised with.
pub const ADMIN_PIN: &[u8] = b"admin-e2e-2468";

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

/// The emulated dongle: the real firmware binary on a Unix socket, with its button on a FIFO
/// (`--presence-fifo`) that tests press the way a person presses the real one: after the
/// dongle asks.
pub struct Firmware {
    child: Child,
    state: PathBuf,
    /// The socket path.
    pub socket: PathBuf,
    /// The button: a line written here is a press.
    pub button: PathBuf,
    extra: Vec<String>,
}

/// Make a FIFO at `path` (the emulated dongle's button).
pub fn make_fifo(path: &Path) {
    let _ = std::fs::remove_file(path);
    let made = Command::new("mkfifo").arg(path).status().expect("run mkfifo");
    assert!(made.success(), "mkfifo {}", path.display());
}

impl Firmware {
    /// Start the firmware with its state in `state`, its socket at `socket` and its button
    /// beside the socket.
    pub fn start(state: &Path, socket: &Path, extra: &[&str]) -> Self {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let button = socket.with_extension("button");
        make_fifo(&button);
        let child = Self::spawn(state, socket, &button, &extra);
        let fw = Firmware { child, state: state.into(), socket: socket.into(), button, extra };
        wait_until("the firmware's socket", || UnixStream::connect(&fw.socket).ok());
        fw
    }

    /// `--dongle` for the admin tool.
    pub fn target(&self) -> String {
        format!("unix:{}", self.socket.display())
    }

    fn spawn(state: &Path, socket: &Path, button: &Path, extra: &[String]) -> Child {
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
            .arg("--presence-fifo")
            .arg(button)
            // A test that does not press should not wait the real 30 s.
            .args(["--presence-timeout-secs", "3"])
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
        self.child = Self::spawn(&self.state, &self.socket, &self.button, &self.extra);
        wait_until("the firmware's socket", || UnixStream::connect(&self.socket).ok());
    }

    /// A client of this dongle, as the admin tool and the bridge have.
    pub fn client(&self) -> Client {
        let addr = DongleAddr::Socket(Endpoint::Unix(self.socket.clone()));
        // Tests run bursts of requests a person never would: wait out the dongle's rate
        // limits as the admin tool does. `request` gives the dongle's raw answer instead.
        Client::for_addr(&addr, ConnectOptions::default())
            .waiting_on_rate_limit(Duration::from_secs(120))
    }

    /// Send one wire request on a connection of its own; the dongle's answer, whatever it is.
    pub fn request(&self, req: &Request) -> Response {
        self.client().exchange(req).expect("the dongle answers")
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
            let results = self.client().unseal(items).expect("unseal");
            out.extend(results.into_iter().map(|r| {
                r.map(|p| String::from_utf8_lossy(&p.0).into_owned())
                    .map_err(|e| e.code().to_string())
            }));
        }
        out
    }

    /// Initialise with a staff PIN and [`ADMIN_PIN`]; returns the public key. The dongle is
    /// left locked (unlock it through the bridge, as staff do).
    pub fn init(&self, pin: &[u8]) -> PublicKey {
        let keys = self.client().init(Some(Pin::new(pin)), Pin::new(ADMIN_PIN)).expect("init");
        PublicKey::from_bytes(keys[0].public_key)
    }
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

/// An emulated dongle set up as an admin would: `vbzkey-admin init` with a staff PIN and
/// [`ADMIN_PIN`] (both in files, as the tool takes them). Not paired: the keys open with the
/// PIN alone (split custody has its own tests).
pub struct AdminDongle {
    /// The firmware process.
    pub fw: Firmware,
    /// The staff PIN.
    pub pin: String,
    /// The file holding [`ADMIN_PIN`] (first line), for `--admin-pin-file`.
    pub admin_pin_file: PathBuf,
    /// The public key `init` printed (what the store seals to).
    pub public_key: PublicKey,
}

impl AdminDongle {
    /// Start the firmware in `dir` (with `extra` serve options) and initialise it with the
    /// staff PIN `pin` and [`ADMIN_PIN`]. The dongle is left locked.
    pub fn init(dir: &TempDir, pin: &str, extra: &[&str]) -> Self {
        let fw = Firmware::start(&dir.path("dongle-state"), &dir.path("dongle.sock"), extra);
        let (pin_file, admin_pin_file) = (dir.path("pin.txt"), dir.path("admin-pin.txt"));
        std::fs::write(&pin_file, format!("{pin}\n")).expect("write the PIN file");
        let mut admin_pin = ADMIN_PIN.to_vec();
        admin_pin.push(b'\n');
        std::fs::write(&admin_pin_file, admin_pin).expect("write the admin PIN file");
        let out = ok(admin(
            &fw.socket,
            &[
                "init",
                "--pin-file",
                path_str(&pin_file),
                "--new-admin-pin-file",
                path_str(&admin_pin_file),
            ],
        ));
        std::fs::remove_file(&pin_file).expect("remove the PIN file");
        let public_key = PublicKey::from_text(out.trim()).expect("init prints the public key");
        AdminDongle { fw, pin: pin.into(), admin_pin_file, public_key }
    }

    /// The global options of an admin command on this dongle: `--dongle unix:SOCKET
    /// --admin-pin-file FILE`.
    pub fn admin_options(&self) -> [String; 4] {
        [
            "--dongle".into(),
            self.fw.target(),
            "--admin-pin-file".into(),
            path_str(&self.admin_pin_file).into(),
        ]
    }

    /// `vbzkey-admin --admin-pin-file FILE ARGS` against this dongle, pressing its button
    /// when asked (see [`admin`]).
    pub fn admin(&self, args: &[&str]) -> Output {
        let mut all = vec!["--admin-pin-file", path_str(&self.admin_pin_file)];
        all.extend(args);
        admin(&self.fw.socket, &all)
    }

    /// Unlock for staff with the staff PIN, straight on the dongle (the bridge's `Unlock`),
    /// waiting out the dongle's limit on audit lines after the tests' bursts of admin commands.
    pub fn unlock(&self) {
        self.fw.client().unlock(Pin::new(self.pin.as_bytes())).expect("staff unlock");
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
        let r = http(
            self.port,
            "GET",
            "/v1/status",
            &[("Host", &host), ("Sec-Fetch-Site", "none")],
            b"",
        );
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

/// What `vbzkey-admin` prints when the dongle asks for its button.
pub const PRESS_PROMPT: &str = "Press the dongle's button";

/// Run `vbzkey-admin` with `args`; whenever it tells the user to press the dongle's button,
/// press `button` (if given) the way a person would: after the prompt. Returns its output;
/// `Output::stderr` holds everything it printed there.
pub fn admin_pressing(args: &[&str], button: Option<&Path>) -> Output {
    let mut child = Command::new(bin("vbzkey-admin"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run vbzkey-admin");
    let stderr = child.stderr.take().expect("stderr");
    let button = button.map(Path::to_path_buf);
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        for line in BufReader::new(stderr).split(b'\n') {
            let Ok(line) = line else { break };
            if let Some(b) = &button
                && String::from_utf8_lossy(&line).contains(PRESS_PROMPT)
            {
                std::fs::write(b, b"press\n").expect("press the button");
            }
            all.extend_from_slice(&line);
            all.push(b'\n');
        }
        all
    });
    let mut stdout = Vec::new();
    child.stdout.take().expect("stdout").read_to_end(&mut stdout).expect("read stdout");
    let status = child.wait().expect("wait for vbzkey-admin");
    let stderr = reader.join().expect("stderr reader");
    Output { status, stdout, stderr }
}

/// Run `vbzkey-admin --dongle unix:DONGLE ARGS…` with no stdin, pressing the emulated
/// dongle's button (the FIFO beside its socket, as [`Firmware`] makes it) whenever the tool
/// asks: an admin who presses when told.
pub fn admin(dongle: &Path, args: &[&str]) -> Output {
    let target = format!("unix:{}", dongle.display());
    let mut all = vec!["--dongle", target.as_str()];
    all.extend(args);
    let button = dongle.with_extension("button");
    admin_pressing(&all, button.exists().then_some(button.as_path()))
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
