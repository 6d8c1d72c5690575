//! What `vbzkey-admin rewrap` shows while it works: plain progress lines (count, percent,
//! rate, ETA, then `done`) when stderr is a pipe or a file, with no terminal escape codes; a
//! bar with rate and ETA when stderr is a terminal (a pseudo-terminal from util-linux's
//! `script`, part of every Debian system).

use std::process::{Command, Stdio};

use vbzkey_e2e::{AdminDongle, TempDir, bin, ok, path_str};
use vbzkey_protocol::PublicKey;
use vbzkey_protocol::record;

const N: usize = 2_000;

fn records(dir: &TempDir, pk: &PublicKey) -> std::path::PathBuf {
    let path = dir.path("records.jsonl");
    let text: String = (0..N)
        .map(|i| {
            let ctx = format!("cust_phones/{i}/phone");
            let rec =
                record::seal(pk, ctx.as_bytes(), format!("+4420794{i:05}").as_bytes()).unwrap();
            format!("{}\n", serde_json::json!({ "context": ctx, "record": record::to_text(&rec) }))
        })
        .collect();
    std::fs::write(&path, text).unwrap();
    path
}

/// `rewrap: D/T records (P%), R records/s, ETA …` or `…, done`.
fn is_progress_line(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("rewrap: ") else { return false };
    let Some((counts, rest)) = rest.split_once(" records (") else { return false };
    let Some((done, total)) = counts.split_once('/') else { return false };
    let Some((percent, rest)) = rest.split_once("%), ") else { return false };
    let Some((rate, tail)) = rest.split_once(" records/s, ") else { return false };
    [done, total, percent, rate]
        .iter()
        .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        && (tail == "done" || tail.starts_with("ETA "))
}

#[test]
fn rewrap_writes_plain_progress_lines_when_stderr_is_not_a_terminal() {
    let dir = TempDir::new("progress-plain");
    let dongle = AdminDongle::init(&dir, "246813", &["--records-per-minute", "1000000000"]);
    let input = records(&dir, &dongle.public_key);
    ok(dongle.admin(&["rotate"]));
    let out = dongle.admin(&[
        "rewrap",
        "--in",
        path_str(&input),
        "-o",
        path_str(&dir.path("out.jsonl")),
        "--batch",
        "50",
    ]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{err}");
    assert!(!err.contains('\x1b') && !err.contains('\r'), "no terminal control in a log: {err:?}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("rewrap: ")).collect();
    assert!(lines.iter().all(|l| is_progress_line(l)), "{lines:#?}");
    assert!(
        lines.len() >= 5 && lines.len() <= 12,
        "a line each tenth, not one per batch: {lines:#?}"
    );
    assert!(lines[..lines.len() - 1].iter().all(|l| l.contains(", ETA ")), "{lines:#?}");
    assert!(lines.last().unwrap().starts_with(&format!("rewrap: {N}/{N} records (100%), ")));
    assert!(lines.last().unwrap().ends_with(", done"));
    let done: Vec<usize> =
        lines.iter().map(|l| l[8..].split('/').next().unwrap().parse().unwrap()).collect();
    assert!(done.windows(2).all(|w| w[0] < w[1]), "progress only goes forward: {done:?}");
}

#[test]
fn rewrap_draws_a_bar_with_rate_and_eta_on_a_terminal() {
    let dir = TempDir::new("progress-tty");
    let dongle = AdminDongle::init(&dir, "246813", &["--records-per-minute", "1000000000"]);
    let input = records(&dir, &dongle.public_key);
    ok(dongle.admin(&["rotate"]));
    // `script` runs the command on a pseudo-terminal and copies what it draws to its stdout.
    let command = format!(
        "'{}' --dongle 'unix:{}' --admin-pin-file '{}' rewrap --in '{}' -o '{}' --batch 50",
        bin("vbzkey-admin").display(),
        dongle.fw.socket.display(),
        dongle.admin_pin_file.display(),
        input.display(),
        dir.path("out.jsonl").display()
    );
    let out = Command::new("script")
        .args(["--quiet", "--return", "--command", &command, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux)");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(screen.contains("rewrap: [") && screen.contains('#'), "a bar is drawn: {screen:?}");
    assert!(screen.contains(&format!("{N}/{N} records (100%)")), "{screen:?}");
    assert!(screen.contains("/s, ETA "), "rate and ETA beside the bar: {screen:?}");
    assert!(!screen.lines().any(is_progress_line), "no plain lines on a terminal: {screen:?}");
}
