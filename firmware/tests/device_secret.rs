//! The OTP device secret end to end, through the firmware binary: the boot-time save, the
//! `otp` commands against a stand-in for the Pi's `vcgencmd`/`vcmailbox` (fuses in a file
//! that only ever gain bits, `tests/fake-vc/`), and the dongle's answers when the secret its
//! key store needs is missing: its own state, and never a counted PIN try.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use vbzkey_client::socket::SocketIo;
use vbzkey_client::{DevicePin, Link, LinkError, SessionKeys};
use vbzkey_protocol::wire::{DongleError, HelloInfo, LockState, Pin, Request, Response};

const FW: &str = env!("CARGO_BIN_EXE_vbzkey-firmware");
const PIN: &[u8] = b"246810";
const ADMIN: &[u8] = b"admin-13579";

/// One test's directory: the dongle's state, its socket, the fake fuses and their log.
struct Board {
    dir: PathBuf,
}

impl Board {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("vbzkey-otp-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("fuses"), "0x00000000\n".repeat(8)).unwrap();
        Board { dir }
    }

    fn state(&self) -> PathBuf {
        self.dir.join("state")
    }

    fn fuses(&self) -> String {
        std::fs::read_to_string(self.dir.join("fuses")).unwrap()
    }

    fn tool_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("tool.log")).unwrap_or_default()
    }

    /// `vbzkey-firmware otp ...` with the fake tools first on PATH.
    fn otp(&self, args: &[&str], fail_dump: bool) -> Output {
        let fake = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake-vc");
        let path = format!("{}:{}", fake.display(), std::env::var("PATH").unwrap_or_default());
        Command::new(FW)
            .arg("otp")
            .args(args)
            .env("PATH", path)
            .env("VBZKEY_FAKE_OTP", self.dir.join("fuses"))
            .env("VBZKEY_FAKE_OTP_LOG", self.dir.join("tool.log"))
            .env("VBZKEY_FAKE_OTP_FAIL", if fail_dump { "1" } else { "0" })
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// The firmware on a Unix socket, with a button (a FIFO nobody presses: a request the
    /// policy let through to the button would end `NotConfirmed`, not be refused up front).
    fn serve(&self, otp_file: Option<&Path>) -> Dongle {
        let sock = self.dir.join("dongle.sock");
        let _ = std::fs::remove_file(&sock);
        let button = self.dir.join("button");
        if !button.exists() {
            assert!(Command::new("mkfifo").arg(&button).status().unwrap().success());
        }
        let mut cmd = Command::new(FW);
        cmd.args(["serve", "--identity", "dangerous-fixed:OTPTEST1", "--dangerous-weak-kdf"])
            .args(["--presence-timeout-secs", "2", "--presence-fifo"])
            .arg(&button)
            .arg("--state-dir")
            .arg(self.state())
            .arg("--transport")
            .arg(format!("unix:{}", sock.display()))
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(f) = otp_file {
            cmd.arg("--otp-dump").arg(f);
        }
        let child = cmd.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let stream = loop {
            if let Ok(s) = UnixStream::connect(&sock) {
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                break s;
            }
            assert!(Instant::now() < deadline, "the firmware did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        Dongle { child, stream, sock, admin: None }
    }
}

impl Drop for Board {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Dongle {
    child: Child,
    stream: UnixStream,
    sock: PathBuf,
    /// The admin's connection: an admin window opens only inside a session.
    admin: Option<Link>,
}

impl Dongle {
    /// One request on this connection (the admin window is the connection's).
    fn ask(&mut self, r: Request) -> Response {
        let io = SocketIo::new(self.stream.try_clone().unwrap(), "test");
        Link::open(Box::new(io), None).unwrap().call(&r).unwrap()
    }

    fn init(&mut self) {
        let init = Request::Init { pin: Some(Pin::new(PIN)), admin_pin: Pin::new(ADMIN) };
        assert!(matches!(self.ask(init), Response::PublicKeys(_)));
    }

    /// `AdminAuth` in a session of a host key made for it, as the admin tool does: the
    /// refusal of the session itself (no device key) is the answer when there is one.
    fn admin_auth(&mut self) -> Response {
        let stream = UnixStream::connect(&self.sock).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let keys = SessionKeys::ephemeral(DevicePin::Ask).unwrap();
        let mut link = match Link::open(Box::new(SocketIo::new(stream, "admin")), Some(&keys)) {
            Ok(link) => link,
            Err(LinkError::Refused(e)) => return Response::Error(e),
            Err(e) => panic!("{e}"),
        };
        let r = link
            .call(&Request::AdminAuth { admin_pin: Pin::new(ADMIN), unlock_secret: None })
            .unwrap();
        self.admin = Some(link);
        r
    }

    /// One request in the admin's session.
    fn admin_ask(&mut self, r: Request) -> Response {
        self.admin.as_mut().expect("admin_auth first").call(&r).unwrap()
    }

    fn hello(&mut self) -> HelloInfo {
        match self.ask(Request::Hello) {
            Response::Hello(h) => h,
            other => panic!("{other:?}"),
        }
    }

    fn unlock(&mut self, pin: &[u8]) -> Response {
        self.ask(Request::Unlock { pin: Pin::new(pin), unlock_secret: None })
    }

    /// Stop it and return what it logged.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let out = std::mem::replace(&mut self.child, Command::new("true").spawn().unwrap());
        let out = out.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

impl Drop for Dongle {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Program the fake fuses and save the rows as the boot unit does; the saved file's path.
fn programmed_board(b: &Board) -> PathBuf {
    let o = b.otp(&["program", "--yes", "--state-dir", b.state().to_str().unwrap()], false);
    assert!(o.status.success(), "{}", stderr(&o));
    let saved = b.dir.join("otp-dump");
    let o = b.otp(&["save", "--output", saved.to_str().unwrap()], false);
    assert!(o.status.success(), "{}", stderr(&o));
    saved
}

#[test]
fn otp_program_writes_the_rows_reads_them_back_and_never_programs_twice() {
    let b = Board::new("program");
    let state = b.state();
    let before = b.otp(&["status", "--state-dir", state.to_str().unwrap()], false);
    assert!(String::from_utf8_lossy(&before.stdout).contains("not programmed"));

    let o = b.otp(&["program", "--yes", "--state-dir", state.to_str().unwrap()], false);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("read back: they match"), "{out}");
    assert!(out.contains("otp lock") && out.contains("0xaffebabe"), "the lock is explained: {out}");
    let fuses = b.fuses();
    assert_eq!(fuses.lines().count(), 8);
    assert!(fuses.lines().all(|w| w != "0x00000000"), "every row holds a value: {fuses}");
    assert!(!stderr(&o).contains(&fuses.lines().next().unwrap()[2..]), "no secret in messages");

    let again = b.otp(&["program", "--yes", "--state-dir", state.to_str().unwrap()], false);
    assert_eq!(again.status.code(), Some(5), "{}", stderr(&again));
    assert!(stderr(&again).contains("refusing"), "{}", stderr(&again));
    assert_eq!(b.fuses(), fuses, "the fuses did not change");
    assert_eq!(b.tool_log().matches("vcmailbox").count(), 1, "one write, ever");

    let status = b.otp(&["status", "--state-dir", state.to_str().unwrap()], false);
    assert!(String::from_utf8_lossy(&status.stdout).contains("programmed: this board has"));
    // docs/CLI.md: a command that prints facts takes --json.
    let status = b.otp(&["status", "--json", "--state-dir", state.to_str().unwrap()], false);
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!((v["otp"].as_str(), v["rows_set"].as_u64()), (Some("programmed"), Some(8)));
    assert!(!String::from_utf8_lossy(&status.stdout).contains(&fuses.lines().next().unwrap()[2..]));
}

#[test]
fn otp_program_refuses_on_an_initialised_dongle() {
    let b = Board::new("refuse");
    let mut d = b.serve(None);
    d.init();
    d.stop();

    let o = b.otp(&["program", "--yes", "--state-dir", b.state().to_str().unwrap()], false);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let msg = stderr(&o);
    assert!(msg.contains("keystore.v1 exists") || msg.contains("device-key.v1 exists"), "{msg}");
    assert!(!b.tool_log().contains("vcmailbox"), "nothing was written: {}", b.tool_log());
    assert_eq!(b.fuses(), "0x00000000\n".repeat(8));
}

#[test]
fn otp_program_and_lock_need_confirmation() {
    let b = Board::new("confirm");
    let o = b.otp(&["program", "--state-dir", b.state().to_str().unwrap()], false);
    assert_eq!(o.status.code(), Some(2), "no terminal to confirm at: a usage error");
    assert!(stderr(&o).contains("--yes"), "{}", stderr(&o));
    let o = b.otp(&["lock"], false);
    assert_eq!(o.status.code(), Some(5), "unprogrammed rows are never locked");
    assert!(!b.tool_log().contains("vcmailbox"));

    programmed_board(&b);
    let o = b.otp(&["lock", "--yes"], false);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(b.dir.join("fuses.locked").exists());
}

#[test]
fn otp_save_fails_loudly_when_the_rows_cannot_be_read() {
    let b = Board::new("save-fails");
    let out = b.dir.join("otp-dump");
    std::fs::write(&out, "36:00000001\n").unwrap();
    let o = b.otp(&["save", "--output", out.to_str().unwrap()], true);
    assert_eq!(o.status.code(), Some(8), "a failure the boot unit cannot swallow");
    let msg = stderr(&o);
    assert!(msg.contains("vcgencmd failed") && msg.contains("device secret missing"), "{msg}");
    assert!(!out.exists(), "an earlier run's file does not stand in for unreadable rows");
}

#[test]
fn otp_save_keeps_only_the_customer_rows_readable_by_its_owner_alone() {
    let b = Board::new("save");
    let saved = programmed_board(&b);
    let text = std::fs::read_to_string(&saved).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 8);
    assert!(rows[0].starts_with("36:") && rows[7].starts_with("43:"), "{text}");
    assert!(!text.contains("28:"), "the serial row and the rest of the OTP stay out");
    assert_eq!(std::fs::metadata(&saved).unwrap().permissions().mode() & 0o777, 0o400);
}

#[test]
fn a_missing_otp_secret_is_its_own_state_and_never_counts_a_pin_try() {
    let b = Board::new("missing");
    let saved = programmed_board(&b);
    let mut d = b.serve(Some(&saved));
    d.init();
    d.stop();
    let status = b.otp(&["status", "--state-dir", b.state().to_str().unwrap()], false);
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("keystore.v1 sealed to the OTP"),
        "{}",
        String::from_utf8_lossy(&status.stdout)
    );
    let counter = std::fs::read(b.state().join("pin-counter.v1")).unwrap();

    // The boot unit failed (no file), then the rows read as zero (the card in another Pi).
    let zeros = b.dir.join("zeros");
    std::fs::write(&zeros, (36..44).map(|r| format!("{r}:00000000\n")).collect::<String>())
        .unwrap();
    for otp_file in [b.dir.join("not-saved"), zeros] {
        let mut d = b.serve(Some(&otp_file));
        let h = d.hello();
        assert_eq!(h.state, LockState::DeviceSecretMissing);
        assert_eq!(h.pin_tries_left, 8);
        for pin in [PIN, b"000000", b"111111"] {
            assert_eq!(d.unlock(pin), Response::Error(DongleError::DeviceSecretMissing));
        }
        for _ in 0..10 {
            assert_eq!(d.unlock(b"999999"), Response::Error(DongleError::DeviceSecretMissing));
            assert_eq!(d.admin_auth(), Response::Error(DongleError::DeviceSecretMissing));
        }
        assert_eq!(
            d.ask(Request::DeviceKey),
            Response::Error(DongleError::DeviceSecretMissing),
            "no session either, and the host is told why (not \"storage failed\")"
        );
        assert_eq!(
            d.ask(Request::FactoryReset),
            Response::Error(DongleError::DeviceSecretMissing),
            "not damage: nobody is led to wipe it, not even with the button"
        );
        let h = d.hello();
        assert_eq!(
            (h.state, h.pin_tries_left, h.admin_tries_left),
            (LockState::DeviceSecretMissing, 8, 8)
        );
        let log = d.stop();
        assert!(log.contains("OTP device secret"), "the firmware says why: {log}");
        assert_eq!(std::fs::read(b.state().join("pin-counter.v1")).unwrap(), counter);
    }

    // The secret is back: the PIN works and no try was lost.
    let mut d = b.serve(Some(&saved));
    let h = d.hello();
    assert_eq!((h.state, h.pin_tries_left, h.admin_tries_left), (LockState::Locked, 8, 8));
    assert_eq!(d.unlock(PIN), Response::Ok);
    assert_eq!(d.admin_auth(), Response::Ok);
}

#[test]
fn otp_programmed_after_init_keeps_the_right_pin_right() {
    let b = Board::new("after-init");
    let mut d = b.serve(None);
    d.init();
    d.stop();
    // Programmed behind the tool's back (vcmailbox by hand), then saved at boot.
    std::fs::write(b.dir.join("fuses"), "0x5a5a5a5a\n".repeat(8)).unwrap();
    let saved = b.dir.join("otp-dump");
    assert!(b.otp(&["save", "--output", saved.to_str().unwrap()], false).status.success());

    let mut d = b.serve(Some(&saved));
    let h = d.hello();
    assert_eq!((h.state, h.pin_tries_left), (LockState::Locked, 8));
    assert_eq!(d.unlock(PIN), Response::Ok, "the right PIN does not look wrong");
    assert_eq!(d.admin_auth(), Response::Ok, "the right admin PIN neither");
    // A re-seal with the same slots (rotation) keeps each slot's binding as it was.
    assert!(matches!(d.admin_ask(Request::Rotate), Response::PublicKeys(_)));
    d.stop();
    let mut d = b.serve(Some(&saved));
    assert_eq!(d.unlock(PIN), Response::Ok, "it still opens after the re-seal");
    assert_eq!(d.admin_auth(), Response::Ok);
    d.stop();
    // The secret gone again: nothing of the store was sealed to it, so nothing is missing.
    let mut d = b.serve(Some(&b.dir.join("not-saved")));
    assert_eq!(d.hello().state, LockState::Locked);
    assert_eq!(d.unlock(PIN), Response::Ok);
}
