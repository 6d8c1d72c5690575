//! One owner per dongle: a second `vbzkey-firmware serve` on the same state directory or on a
//! socket a live firmware answers on is refused (and the first keeps serving); a socket file
//! left by a killed firmware is reused.

use std::io::Read;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vbzkey_client::Link;
use vbzkey_client::socket::SocketIo;
use vbzkey_protocol::wire::{LockState, Request, Response};

/// Exit code of a refused start (EX_CONFIG).
const EXIT_CONFIG: i32 = 78;

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vbzkey-fw-owner-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A firmware process, killed when dropped.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(state: &Path, sock: &Path) -> Serve {
    let child = Command::new(env!("CARGO_BIN_EXE_vbzkey-firmware"))
        .args(["serve", "--identity", "dangerous-fixed:OWNER0001", "--dangerous-weak-kdf"])
        .arg("--state-dir")
        .arg(state)
        .arg("--transport")
        .arg(format!("unix:{}", sock.display()))
        .env("RUST_LOG", "warn")
        .env_remove("NO_COLOR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Serve(child)
}

/// The dongle behind `sock` answers `Hello` (waiting for it to start listening).
fn answers(sock: &Path) -> LockState {
    let deadline = Instant::now() + Duration::from_secs(30);
    let s = loop {
        if let Ok(s) = UnixStream::connect(sock) {
            break s;
        }
        assert!(Instant::now() < deadline, "the firmware did not start listening");
        std::thread::sleep(Duration::from_millis(20));
    };
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    match Link::open(Box::new(SocketIo::new(s, "test")), None).unwrap().call(&Request::Hello) {
        Ok(Response::Hello(h)) => h.state,
        other => panic!("{other:?}"),
    }
}

/// Wait for a process that must exit on its own; its exit code and stderr.
fn refused(mut p: Serve) -> (i32, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = p.0.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "the second firmware kept running");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    p.0.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    (status.code().unwrap_or(-1), err)
}

#[test]
fn a_second_serve_on_the_same_state_dir_is_refused_naming_the_first() {
    let dir = temp_dir("state");
    let (state, first_sock) = (dir.join("state"), dir.join("first.sock"));
    let first = serve(&state, &first_sock);
    assert_eq!(answers(&first_sock), LockState::Uninitialised);

    let (code, err) = refused(serve(&state, &dir.join("second.sock")));
    assert_eq!(code, EXIT_CONFIG, "{err}");
    assert!(err.contains(&state.display().to_string()), "names the directory: {err}");
    assert!(err.contains(&format!("pid {}", first.0.id())), "names the owner: {err}");
    assert!(!err.contains('\u{1b}'), "no colour codes in a log that is not a terminal: {err:?}");
    assert!(!dir.join("second.sock").exists(), "the refused one never listened");
    assert_eq!(answers(&first_sock), LockState::Uninitialised, "the first still serves");

    // Once the owner is gone (however it ended) the directory is free again.
    drop(first);
    let again = serve(&state, &first_sock);
    assert_eq!(answers(&first_sock), LockState::Uninitialised);
    drop(again);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_second_serve_on_a_live_socket_is_refused_and_the_first_keeps_it() {
    let dir = temp_dir("live");
    let sock = dir.join("dongle.sock");
    let first = serve(&dir.join("state-a"), &sock);
    assert_eq!(answers(&sock), LockState::Uninitialised);

    let (code, err) = refused(serve(&dir.join("state-b"), &sock));
    assert_eq!(code, EXIT_CONFIG, "{err}");
    assert!(err.contains("another process is serving on"), "{err}");
    assert!(err.contains(&sock.display().to_string()), "{err}");
    assert_eq!(answers(&sock), LockState::Uninitialised, "the first still owns the socket");
    drop(first);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_stale_socket_file_is_replaced_but_a_regular_file_is_not() {
    let dir = temp_dir("stale");
    let sock = dir.join("dongle.sock");
    // A listener that is gone leaves its socket file behind, as a killed firmware does.
    drop(UnixListener::bind(&sock).unwrap());
    assert!(sock.exists());
    let fw = serve(&dir.join("state"), &sock);
    assert_eq!(answers(&sock), LockState::Uninitialised);
    drop(fw);

    let file = dir.join("notes.txt");
    std::fs::write(&file, "not a socket").unwrap();
    let (code, err) = refused(serve(&dir.join("state"), &file));
    assert_eq!(code, EXIT_CONFIG, "{err}");
    assert!(err.contains("is not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a socket");
    std::fs::remove_dir_all(&dir).unwrap();
}
