//! `vbzkey-admin audit export` printed the dongle's raw Unix seconds to a person (issue 18
//! item 14). Against the real firmware: to a terminal a listing in local time, with `--json`
//! RFC 3339, and to a pipe or a file the log's own lines, which still verify.

use vbzkey_e2e::terminal::typed_session;
use vbzkey_e2e::{Firmware, TempDir, admin, bin};

#[test]
fn audit_export_shows_local_time_at_a_terminal_rfc3339_as_json_and_verifiable_lines_to_a_pipe() {
    let dir = TempDir::new("audit-times");
    let fw = Firmware::start(&dir.path("state"), &dir.path("d.sock"), &[]);
    fw.init(b"24681357");
    let dongle = dir.path("d.sock");

    // To a pipe: the log's lines (`1 <seq> <unix> …`), which `audit verify FILE` checks.
    let piped = admin(&dongle, &["audit", "export"]);
    assert!(piped.status.success(), "{}", String::from_utf8_lossy(&piped.stderr));
    let raw = String::from_utf8(piped.stdout).unwrap();
    let first = raw.lines().next().expect("init logged a line");
    let unix: u64 = first.split(' ').nth(2).unwrap().parse().unwrap();
    let file = dir.path("audit.log");
    std::fs::write(&file, &raw).unwrap();
    let verify = admin(&dongle, &["audit", "verify", "--json", file.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(v["verified"], true);
    assert_eq!(v["entries"].as_u64(), Some(raw.lines().count() as u64));

    // As JSON: RFC 3339 in UTC, and the same hash as the line.
    let json = admin(&dongle, &["audit", "export", "--json"]);
    let line = String::from_utf8(json.stdout).unwrap();
    let entry: serde_json::Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    let time = entry["time"].as_str().unwrap();
    assert!(time.len() == 20 && time.ends_with('Z') && &time[10..11] == "T", "{time}");
    assert_eq!(entry["hash"].as_str(), first.rsplit(' ').next());
    assert_eq!(entry["event"].as_str(), first.split(' ').nth(3));

    // To a terminal (a pseudo-terminal): local time with the zone's name, in the zone `TZ`
    // names, and no raw Unix seconds.
    let at_terminal = |tz: &str| {
        let cmd = format!(
            "TZ={tz} {} --dongle unix:{} audit export",
            bin("vbzkey-admin").display(),
            dongle.display()
        );
        let (seen, code) = typed_session(std::path::Path::new("env"), &cmd, &[]);
        assert_eq!(code, Some(0), "{seen}");
        assert!(!seen.contains(&format!(" {unix} ")), "raw Unix seconds in {seen:?}");
        seen
    };
    let utc = format!("{} {} UTC", &time[..10], &time[11..19]);
    let seen = at_terminal("UTC0");
    assert!(seen.contains(&utc), "{utc:?} not in {seen:?}");
    let seen = at_terminal("CET-1");
    assert!(seen.contains(" CET ") && !seen.contains(&utc), "{seen:?}");
    // A `TZ` naming a device: jiff would read /dev/zero without end (gigabytes a second, the
    // listing never printed); the listing is in UTC instead.
    let seen = at_terminal("/dev/zero");
    assert!(seen.contains(&utc), "{utc:?} not in {seen:?}");
}
