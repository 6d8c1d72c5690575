//! docs/CLI.md against the four binaries: every command's `--help` lists exactly the options
//! and arguments of its table row, the exit-code table is the code's (`vbzkey_os::exit`) and
//! each tool's `--help` prints it, and a representative failure of each class exits with its
//! documented code and the `<tool>: error:` prefix.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Output};

use vbzkey_e2e::{TempDir, bin};
use vbzkey_os::exit::Exit;

const TOOLS: [&str; 4] = ["vbzkey", "vbzkey-admin", "vbzkey-bridge", "vbzkey-firmware"];

fn cli_md() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/CLI.md")).unwrap()
}

/// The cells of a Markdown table row, without the outer pipes.
fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    inner.split('|').map(|c| c.trim().to_string()).collect()
}

/// A cell's list of `code` items (`—`: none).
fn items(cell: &str) -> BTreeSet<String> {
    cell.split(',').map(|s| s.trim().trim_matches('`').to_string()).filter(|s| s != "—").collect()
}

/// What one command's `--help` lists.
#[derive(Debug, PartialEq, Eq)]
struct Listed {
    options: BTreeSet<String>,
    arguments: BTreeSet<String>,
}

/// docs/CLI.md's command rows: "tool sub…" → what it lists.
fn documented() -> BTreeMap<String, Listed> {
    let mut rows = BTreeMap::new();
    for line in cli_md().lines().filter(|l| l.starts_with("| `vbzkey")) {
        let c = cells(line);
        assert_eq!(c.len(), 3, "a command row has three cells: {line}");
        let name = c[0].trim_matches('`').to_string();
        let listed = Listed { options: items(&c[1]), arguments: items(&c[2]) };
        assert!(rows.insert(name.clone(), listed).is_none(), "{name} documented twice");
    }
    rows
}

fn help(tool: &str, path: &[String]) -> String {
    let out = Command::new(bin(tool)).args(path).arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{tool} {path:?} --help");
    String::from_utf8(out.stdout).unwrap()
}

/// The options (`-o/--output`, `--json`), arguments (`[INPUT]`) and subcommands in a long
/// `--help`: items start two spaces in (`  -o, --output`, `  [INPUT]`, `  info`) or six
/// (`      --json`); their descriptions are indented further.
fn parse_help(text: &str) -> (Listed, Vec<String>) {
    let (mut options, mut arguments, mut commands) = (BTreeSet::new(), BTreeSet::new(), vec![]);
    let mut section = "";
    for line in text.lines() {
        if !line.is_empty() && !line.starts_with(' ') {
            section = line.trim_end_matches(':');
            continue;
        }
        let at = |n: usize| line.len() > n && line[..n].trim().is_empty() && &line[n..n + 1] != " ";
        let first = line.split_whitespace().next().unwrap_or_default();
        match section {
            "Options" if at(2) && first.starts_with('-') => {
                let long = line.split_whitespace().nth(1).unwrap_or_default();
                options.insert(format!("{}/{long}", first.trim_end_matches(',')));
            }
            "Options" if at(6) && first.starts_with("--") => {
                options.insert(first.to_string());
            }
            "Arguments" if at(2) => {
                arguments.insert(first.to_string());
            }
            "Commands" if at(2) && first != "help" => commands.push(first.to_string()),
            _ => {}
        }
    }
    (Listed { options, arguments }, commands)
}

/// Every command of `tool` (leaves, and the tool itself), with what its help lists: options
/// of the tool's own row are left out of its commands' rows (they are global there), as are
/// `-h/--help` and `-V/--version` everywhere.
fn walk(
    tool: &str,
    path: Vec<String>,
    top: &BTreeSet<String>,
    found: &mut BTreeMap<String, Listed>,
) {
    let (mut listed, commands) = parse_help(&help(tool, &path));
    let global = |o: &String| !path.is_empty() && top.contains(o);
    listed.options.retain(|o| !global(o) && o != "-h/--help" && o != "-V/--version");
    if path.is_empty() || commands.is_empty() {
        let name = std::iter::once(tool.to_string()).chain(path.clone()).collect::<Vec<_>>();
        found.insert(name.join(" "), listed);
    }
    for c in commands {
        let mut sub = path.clone();
        sub.push(c);
        walk(tool, sub, top, found);
    }
}

#[test]
fn every_binarys_help_lists_exactly_the_options_docs_cli_md_documents() {
    let documented = documented();
    let mut found = BTreeMap::new();
    for tool in TOOLS {
        let (top, _) = parse_help(&help(tool, &[]));
        walk(tool, vec![], &top.options, &mut found);
    }
    for (name, listed) in &found {
        assert_eq!(documented.get(name), Some(listed), "docs/CLI.md's row for `{name}`");
    }
    let extra: Vec<_> = documented.keys().filter(|k| !found.contains_key(*k)).collect();
    assert!(extra.is_empty(), "documented but not in any --help: {extra:?}");
    // Not vacuous: the walk saw the commands it must.
    for name in
        ["vbzkey open", "vbzkey-admin audit export", "vbzkey-bridge", "vbzkey-firmware otp save"]
    {
        assert!(found.contains_key(name), "{name} not found: {:?}", found.keys());
    }
}

#[test]
fn the_exit_code_table_is_the_codes_and_every_tools_help_prints_it() {
    let doc = cli_md();
    let table: Vec<(u8, String)> = doc
        .lines()
        .skip_while(|l| *l != "## Exit codes")
        .filter(|l| l.starts_with("| ") && l.as_bytes().get(2).is_some_and(u8::is_ascii_digit))
        .map(|l| {
            let c = cells(l);
            (c[0].parse().unwrap(), c[1].clone())
        })
        .collect();
    let code: Vec<(u8, String)> =
        Exit::ALL.iter().map(|e| (e.code(), e.meaning().to_string())).collect();
    assert_eq!(table, code, "docs/CLI.md's exit codes against vbzkey_os::exit::Exit");
    for tool in TOOLS {
        let text = help(tool, &[]);
        let printed: Vec<(u8, String)> = text
            .lines()
            .skip_while(|l| !l.starts_with("Exit codes"))
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .map(|l| {
                let (n, meaning) = l.trim().split_once("  ").unwrap();
                (n.parse().unwrap(), meaning.trim().to_string())
            })
            .collect();
        assert_eq!(printed, code, "{tool} --help's exit codes");
    }
}

fn code(e: Exit) -> i32 {
    e.code().into()
}

/// Run `tool args`; its exit code, after checking the `<tool>: error:` line says `says`.
fn fails(tool: &str, args: &[&str], stdin: &[u8], says: &str) -> i32 {
    use std::io::Write;
    let mut child = Command::new(bin(tool))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(stdin);
    let out: Output = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let prefix = format!("{tool}: error: ");
    let line = err.lines().find(|l| l.starts_with(&prefix));
    assert!(line.is_some(), "{tool} {args:?}: no `{prefix}` line in {err:?}");
    assert!(err.contains(says), "{tool} {args:?}: {says:?} not in {err:?}");
    out.status.code().expect("an exit code, not a signal")
}

#[test]
fn representative_failures_of_each_class_exit_with_their_code_and_the_prefix() {
    let dir = TempDir::new("cli-conventions");
    let p = |name: &str| dir.path(name).to_str().unwrap().to_string();
    let usage = code(Exit::Usage);

    // vbzkey: usage, I/O, bad input, not found (another key), wrong credential, not verified.
    let key = p("key.txt");
    assert!(
        Command::new(bin("vbzkey")).args(["keygen", "-o", &key]).output().unwrap().status.success()
    );
    let other = p("other.txt");
    assert!(
        Command::new(bin("vbzkey"))
            .args(["keygen", "-o", &other])
            .output()
            .unwrap()
            .status
            .success()
    );
    let public = Command::new(bin("vbzkey")).args(["pubkey", "-k", &key]).output().unwrap();
    let public = String::from_utf8(public.stdout).unwrap();
    let sealed = Command::new(bin("vbzkey"))
        .args(["seal", "--to", public.trim(), "--context", "t/1/f", "-o", &p("rec.txt")])
        .arg(&key)
        .status()
        .unwrap();
    assert!(sealed.success());
    let rec = p("rec.txt");
    assert_eq!(fails("vbzkey", &["seal", "--no-such-flag"], b"", "unexpected argument"), usage);
    assert_eq!(fails("vbzkey", &["inspect", &p("missing")], b"", "cannot read"), code(Exit::Io));
    assert_eq!(fails("vbzkey", &["inspect"], b"not a record", "record"), code(Exit::BadInput));
    let wrong_key =
        fails("vbzkey", &["open", "-k", &other, "--context", "t/1/f", &rec], b"", "key");
    assert_eq!(wrong_key, code(Exit::NotFound));
    let wrong_ctx = fails("vbzkey", &["open", "-k", &key, "--context", "t/2/f", &rec], b"", "");
    assert_eq!(wrong_ctx, code(Exit::NotVerified));
    let (enc, pass, wrong) = (p("enc.json"), p("pass.txt"), p("wrong.txt"));
    std::fs::write(&pass, "a passphrase long enough\n").unwrap();
    std::fs::write(&wrong, "another long passphrase\n").unwrap();
    let made = Command::new(bin("vbzkey"))
        .args(["keygen", "--encrypt", "--passphrase-file", &pass, "-o", &enc])
        .output()
        .unwrap();
    assert!(made.status.success());
    let open_enc = ["open", "-k", &enc, "--passphrase-file", &wrong, "--context", "t/1/f", &rec];
    let wrong_pass = fails("vbzkey", &open_enc, b"", "wrong passphrase");
    assert_eq!(wrong_pass, code(Exit::WrongCredential));

    // vbzkey-admin without a dongle: usage, bad input, not found (the classes that need a
    // dongle are in admin_exit_codes.rs and audit_log.rs, with the same prefix).
    let nowhere = format!("unix:{}", p("nobody.sock"));
    assert_eq!(fails("vbzkey-admin", &["info", "--no-such-flag"], b"", "unexpected"), usage);
    let junk = p("junk.key");
    std::fs::write(&junk, "not a key\n").unwrap();
    let bad = fails("vbzkey-admin", &["--dongle", &nowhere, "--host-key", &junk, "info"], b"", "");
    assert_eq!(bad, code(Exit::BadInput));
    let absent = fails("vbzkey-admin", &["--dongle", &nowhere, "info"], b"", "no dongle found");
    assert_eq!(absent, code(Exit::NotFound));
    let io = fails(
        "vbzkey-admin",
        &["--dongle", &nowhere, "--host-key", &p("none.key"), "info"],
        b"",
        "",
    );
    assert_eq!(io, code(Exit::Io));

    // vbzkey-bridge: usage, and a configuration it cannot use (not retried by systemd).
    assert_eq!(fails("vbzkey-bridge", &[], b"", "--config"), usage);
    let config = fails("vbzkey-bridge", &["--config", &p("missing.toml")], b"", "missing.toml");
    assert_eq!(config, code(Exit::Config));

    // vbzkey-firmware: usage, a configuration it cannot use, an OTP it cannot read (no
    // vcgencmd here: the board failed).
    assert_eq!(fails("vbzkey-firmware", &["serve"], b"", "--state-dir"), usage);
    let serve = [
        "serve",
        "--state-dir",
        &p("state"),
        "--transport",
        "carrier-pigeon:1",
        "--identity",
        "dangerous-fixed:CONV0001",
    ];
    assert_eq!(fails("vbzkey-firmware", &serve, b"", "transport"), code(Exit::Config));
    let save = ["otp", "save", "-o", &p("otp-dump")];
    assert_eq!(fails("vbzkey-firmware", &save, b"", ""), code(Exit::DongleFailed));
}

/// The firmware's two commands that print facts take `--json` (docs/CLI.md); `otp status`'s
/// is tested with a simulated board in `firmware/tests/device_secret.rs`.
#[test]
fn the_firmware_self_test_reports_as_json() {
    let out = Command::new(bin("vbzkey-firmware"))
        .args(["self-test", "--loops", "2", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["ok"].as_bool(), v["loops"].as_u64()), (Some(true), Some(2)));
    assert!(v["open_ns"].as_u64().is_some_and(|n| n > 0), "{v}");
    assert!(v["x25519"].is_string() && v["argon2id"].is_null(), "{v}");
}
