//! The bridge's log has colour codes only on a terminal, and not even there with `NO_COLOR`:
//! a log redirected to a file (or the journal) is plain text.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BRIDGE: &str = env!("CARGO_BIN_EXE_vbzkey-bridge");
const ESC: char = '\u{1b}';

/// A configuration whose key file is missing: the bridge starts and logs a warning about it.
fn config(name: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("vbzkey-bridge-log-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("bridge.toml");
    std::fs::write(
        &config,
        format!(
            "allowed_origins = []\n[method]\nkind = \"keyfile\"\npath = \"{}\"\n",
            dir.join("not-yet.json").display()
        ),
    )
    .unwrap();
    (dir, config)
}

#[test]
fn a_log_redirected_to_a_file_has_no_colour_codes() {
    let (dir, config) = config("file");
    let log = dir.join("stderr.log");
    let mut child = Command::new(BRIDGE)
        .arg("--config")
        .arg(&config)
        .args(["--port", "0"])
        .env_remove("NO_COLOR")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.contains("listening"), "{line}");
    child.kill().unwrap();
    child.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("does not exist (yet)"), "the warning is logged: {text:?}");
    assert!(!text.contains(ESC), "no colour codes in a file: {text:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The bridge on a pseudo-terminal (util-linux `script`) for two seconds: its log as printed.
fn on_a_terminal(config: &Path, no_color: Option<&str>) -> String {
    let cmd = format!("timeout 2 {BRIDGE} --config {} --port 0", config.display());
    let mut c = Command::new("script");
    c.args(["-qec", &cmd, "/dev/null"]).env("RUST_LOG", "info").env_remove("NO_COLOR");
    if let Some(v) = no_color {
        c.env("NO_COLOR", v);
    }
    let out = c.stdin(Stdio::null()).output().expect("run script(1) (util-linux)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("does not exist (yet)"), "the warning is logged: {text:?}");
    text
}

#[test]
fn a_terminal_gets_colours_unless_no_color_is_set() {
    let (dir, config) = config("tty");
    assert!(on_a_terminal(&config, None).contains(ESC), "a person at a terminal sees colours");
    assert!(!on_a_terminal(&config, Some("1")).contains(ESC), "NO_COLOR=1 turns them off");
    assert!(on_a_terminal(&config, Some("")).contains(ESC), "an empty NO_COLOR does not");
    std::fs::remove_dir_all(&dir).unwrap();
}
