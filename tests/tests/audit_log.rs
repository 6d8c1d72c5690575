//! The audit log past 10,000 entries, across processes: the firmware keeps it in segments on
//! its card, `vbzkey-admin audit export` fetches all of it page by page and `audit verify`
//! checks it; a later part exported alone (`--from`) verifies from the head remembered before
//! it, and not from another.

use std::process::Output;

use vbzkey_e2e::{Firmware, TempDir, admin};
use vbzkey_protocol::PublicKey;
use vbzkey_protocol::record;
use vbzkey_protocol::wire::{Pin, SealedItem};

const PIN: &[u8] = b"24681357";
const ENTRIES: usize = 10_300;

fn ok(out: Output) -> (String, String) {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{err}");
    (String::from_utf8(out.stdout).unwrap(), err)
}

#[test]
fn a_log_past_ten_thousand_entries_exports_and_verifies_whole_and_from_a_remembered_head() {
    let dir = TempDir::new("audit-long");
    // Enough log lines and records a minute for the test to fill the log quickly; the
    // defaults are tested in the firmware's own tests.
    let limits = ["--log-lines-per-minute", "100000000", "--records-per-minute", "100000000"];
    let mut fw = Firmware::start(&dir.path("state"), &dir.path("d.sock"), &limits);
    let pk: PublicKey = fw.init(PIN);
    let client = fw.client();
    client.unlock(Pin::new(PIN)).unwrap();
    let rec = record::seal(&pk, b"cust_cards/1/card_number", b"4111111111111111").unwrap();
    let item = SealedItem { record: rec, context: b"cust_cards/1/card_number".to_vec() };
    // init, unlock, then one line per batch.
    for _ in 2..ENTRIES {
        client.unseal(vec![item.clone()]).unwrap();
    }
    drop(client);
    // Kept in segments on the card; a restart verifies them all.
    let state = dir.path("state");
    assert!(state.join("audit.1.log").exists() && state.join("audit.2.log").exists());
    fw.restart();
    let dongle = dir.path("d.sock");
    let (verified, _) = ok(admin(&dongle, &["audit", "verify"]));
    assert!(verified.contains(&format!("{ENTRIES} entries")), "{verified}");

    // The whole log, exported and checked again from the file.
    let whole = dir.path("whole.log");
    let (_, summary) = ok(admin(&dongle, &["audit", "export", "-o", whole.to_str().unwrap()]));
    assert!(summary.contains(&format!("{ENTRIES} entries")), "{summary}");
    let text = std::fs::read_to_string(&whole).unwrap();
    assert_eq!(text.lines().count(), ENTRIES, "entries only: headers are not exported");
    let (checked, _) = ok(admin(&dongle, &["audit", "verify", whole.to_str().unwrap()]));
    assert!(checked.contains(&format!("{ENTRIES} entries")), "{checked}");

    // A later part: the head after entry 4,999 was remembered (here, read from the export).
    let remembered = text.lines().nth(4_999).unwrap().rsplit(' ').next().unwrap().to_string();
    let part = dir.path("part.log");
    ok(admin(&dongle, &["audit", "export", "--from", "5000", "-o", part.to_str().unwrap()]));
    let part_s = part.to_str().unwrap();
    let (from_head, _) = ok(admin(&dongle, &["audit", "verify", part_s, "--after", &remembered]));
    assert!(from_head.contains(&format!("{} entries", ENTRIES - 5_000)), "{from_head}");
    // Alone, it verifies from its own header, and says so.
    let (_, note) = ok(admin(&dongle, &["audit", "verify", part_s]));
    assert!(note.contains("--after"), "{note}");
    // From another head, or with an entry edited, it does not.
    let other = text.lines().nth(4_998).unwrap().rsplit(' ').next().unwrap();
    let wrong = admin(&dongle, &["audit", "verify", part_s, "--after", other]);
    assert_eq!(wrong.status.code(), Some(9), "{}", String::from_utf8_lossy(&wrong.stderr));
    let part_text = std::fs::read_to_string(&part).unwrap();
    std::fs::write(&part, part_text.replacen(" unseal ", " unseaL ", 1)).unwrap();
    let edited = admin(&dongle, &["audit", "verify", part_s, "--after", &remembered]);
    assert_eq!(edited.status.code(), Some(9));
    assert!(String::from_utf8_lossy(&edited.stderr).contains("does NOT verify"));
    // Without a header or --after, a part that starts mid-chain is a usage error.
    let bare = dir.path("bare.log");
    std::fs::write(&bare, part_text.lines().skip(1).map(|l| format!("{l}\n")).collect::<String>())
        .unwrap();
    let unanchored = admin(&dongle, &["audit", "verify", bare.to_str().unwrap()]);
    assert_eq!(
        unanchored.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&unanchored.stderr)
    );
}
