//! docs/PROTOCOL.md's table of requests is the firmware's policy table: every request, in
//! wire order, with the access, needs, button and broken-log rule the core applies. A request
//! added to the code and not to the document (or the reverse), a reordering, or a rule that
//! differs fails here.

use vbzkey_firmware::dongle::policy::{Access, Button, Needs, requirement};
use vbzkey_protocol::KeyId;
use vbzkey_protocol::wire::{self, Pin, Request, UnlockSecret};
use zeroize::Zeroizing;

/// One request of each kind, and its name as the document writes it.
fn requests() -> Vec<(&'static str, Request)> {
    let pin = || Pin::new(b"12345678");
    let secret = || UnlockSecret(Zeroizing::new([1; 32]));
    vec![
        ("Hello", Request::Hello),
        ("Init", Request::Init { pin: None, admin_pin: pin() }),
        ("AdminAuth", Request::AdminAuth { admin_pin: pin(), unlock_secret: None }),
        ("Unlock", Request::Unlock { pin: pin(), unlock_secret: None }),
        ("Lock", Request::Lock),
        ("PublicKeys", Request::PublicKeys),
        ("UnsealBatch", Request::UnsealBatch { items: vec![] }),
        ("Rewrap", Request::Rewrap { items: vec![], new_public_key: [0; 32] }),
        ("AuditTail", Request::AuditTail { max: 1 }),
        ("SetStaffPin", Request::SetStaffPin { new: None }),
        ("Rotate", Request::Rotate),
        ("Retire", Request::Retire { key_id: KeyId([0; 8]) }),
        ("FactoryReset", Request::FactoryReset),
        ("Backup", Request::Backup { threshold: 2, count: 3 }),
        ("Restore", Request::Restore { shares: vec![], pin: None, admin_pin: pin() }),
        ("CloneBegin", Request::CloneBegin),
        ("CloneExport", Request::CloneExport { to: [0; 32] }),
        ("DeviceKey", Request::DeviceKey),
        (
            "Pair",
            Request::Pair { host_key: [0; 32], label: String::new(), unlock_secret: secret() },
        ),
        ("Unpair", Request::Unpair { host_key: [0; 32] }),
        ("Pairings", Request::Pairings),
        ("CloneImport", Request::CloneImport { blob: vec![], pin: None, admin_pin: pin() }),
        ("ChangeAdminPin", Request::ChangeAdminPin { new: pin() }),
        ("EndAdmin", Request::EndAdmin),
        ("AuditRead", Request::AuditRead { from_seq: 0, max: 1 }),
    ]
}

/// The words the document's cells start with, for each rule.
fn access_word(a: Access) -> &'static str {
    match a {
        Access::Plain => "plain",
        Access::Session => "session",
        Access::OwnSession => "own session",
    }
}

fn needs_word(n: Needs) -> &'static str {
    match n {
        Needs::Nothing => "—",
        Needs::Uninitialised => "uninitialised",
        Needs::Initialised => "initialised",
        Needs::StaffCredential => "staff credential",
        Needs::AdminCredential => "admin credential",
        Needs::StaffUnlocked => "staff",
        Needs::Admin => "admin",
        Needs::AdminOrRecovery => "admin or recovery",
    }
}

fn button_word(b: Button) -> &'static str {
    match b {
        Button::Never => "—",
        Button::Always => "yes",
        Button::LargeBatch => "over `confirm_batch_over`",
    }
}

/// A cell's rule: what comes before a parenthesis or a comma.
fn head(cell: &str) -> &str {
    cell.split([',', '(']).next().unwrap_or("").trim()
}

#[test]
fn the_documented_request_table_is_the_policy_table_in_wire_order() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PROTOCOL.md"))
        .unwrap();
    let header = "| request | access | needs | button | broken log | answer |";
    let rows: Vec<Vec<&str>> = doc
        .lines()
        .skip_while(|l| *l != header)
        .skip(2)
        .take_while(|l| l.starts_with("| `"))
        .map(|l| l.trim_matches('|').split(" | ").map(str::trim).collect())
        .collect();
    let requests = requests();
    assert_eq!(rows.len(), requests.len(), "one row per request");
    for (i, ((name, req), row)) in requests.iter().zip(&rows).enumerate() {
        // The sample is the request at index i on the wire (version, id, then the index).
        assert_eq!(usize::from(wire::encode_payload(1, req)[2]), i, "{name} is request {i}");
        let documented = row[0].trim_start_matches('`').split([' ', '`']).next().unwrap();
        assert_eq!(documented, *name, "row {i} of the table");
        let rule = requirement(req);
        assert_eq!(row[1], access_word(rule.access), "{name}: access");
        assert_eq!(head(row[2]), needs_word(rule.needs), "{name}: needs");
        assert_eq!(head(row[3]), button_word(rule.button), "{name}: button");
        let broken = if rule.on_broken_log { "served" } else { "refused" };
        assert_eq!(head(row[4]), broken, "{name}: broken log");
    }
}
