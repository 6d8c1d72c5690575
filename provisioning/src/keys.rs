//! The key commands: `init` (the key is generated on the device), `pubkey`, `rotate`,
//! `retire` (checked against the records first) and `reset`.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use vbzkey_protocol::wire::{KeyInfo, LockState};
use vbzkey_protocol::{KeyId, PublicKey};

use crate::dongle::{Dongle, NoStaffPin};
use crate::error::{AdminError, Usage};
use crate::input::read_new_pin;
use crate::output::{Output, describe_key};
use crate::{rewrap, rewrap_db, strength};

/// `init`'s options.
#[derive(clap::Args)]
pub(crate) struct InitArgs {
    /// File whose first line is the new staff PIN (6 to 128 characters): it opens records.
    #[arg(long, required_unless_present = "dangerous_no_pin")]
    pin_file: Option<PathBuf>,
    /// Set no staff PIN at all.
    #[arg(long, conflicts_with = "pin_file")]
    dangerous_no_pin: bool,
    /// The admin PIN to set (first line of this file, 8 to 128 characters, different from the
    /// staff PIN): backup, clone, pairing, PIN changes, rotation and reset need it.
    #[arg(long = "new-admin-pin-file")]
    new_admin_pin_file: PathBuf,
    /// Print the new key as JSON (`key_id`, `version`, `active`, `public_key`).
    #[arg(long)]
    json: bool,
}

/// Generate the key on the dongle and set both credentials. With `--host-key`, also pair this
/// computer (the admin PIN just set, and a press of the button): the dongle is then in split
/// custody from its first minute.
pub(crate) fn init(
    d: &Dongle,
    args: &InitArgs,
    host_key: Option<&std::path::Path>,
) -> Result<Output, AdminError> {
    let pin = args.pin_file.as_deref().map(|p| read_new_pin(p, "new staff PIN")).transpose()?;
    let admin_pin = read_new_pin(&args.new_admin_pin_file, "new admin PIN")?;
    let limits = d.client().hello()?.limits;
    let keys = d.client().init(pin.clone(), admin_pin.clone())?;
    let active =
        keys.into_iter().find(|k| k.active).ok_or(vbzkey_client::ClientError::NoActiveKey)?;
    let mut out = new_key(&active, "Key generated on the dongle.", args.json);
    out.note(strength::report(pin.as_ref(), &limits));
    let admin_file = args.new_admin_pin_file.display();
    match host_key {
        Some(path) => {
            let key = crate::pairing::host_key(path)?;
            d.client().admin_auth(admin_pin)?;
            let unlock = vbzkey_protocol::wire::UnlockSecret(key.unlock_secret());
            let paired = d.client().pair(key.public_key(), "admin".into(), unlock);
            let _ = d.client().end_admin();
            paired?;
            out.note(format!(
                "This computer is paired ({}): the dongle is in split custody. Pair each staff \
                 workstation's bridge with:\n  vbzkey-admin --host-key {} --admin-pin-file {admin_file} \
                 pair --new-host-key WORKSTATION.key --label NAME",
                path.display(),
                path.display()
            ));
        }
        None => {
            out.note(format!(
                "No host is paired yet: a stolen dongle is protected by its PIN only. Pair this \
                 computer and each staff workstation:\n  vbzkey-admin --admin-pin-file {admin_file} \
                 pair --new-host-key ~/.config/vbzkey/admin.key --label admin"
            ));
        }
    }
    out.note(
        "Make a backup now: vbzkey-admin --admin-pin-file ADMIN backup --threshold 2 --shares 3 \
         -o shares/",
    );
    Ok(out)
}

/// The active key's public key on stdout (or the key as JSON), its fingerprint on stderr.
fn new_key(k: &KeyInfo, what: &str, json: bool) -> Output {
    let mut out = Output::default();
    out.line(if json {
        crate::output::key_json(k).to_string()
    } else {
        PublicKey::from_bytes(k.public_key).to_text()
    });
    out.note(format!("{what} Fingerprint (key id): {}", k.key_id.grouped()));
    out
}

/// `pubkey`'s options.
#[derive(clap::Args)]
pub(crate) struct PubkeyArgs {
    /// Also write it to this file.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Print the key as JSON (`key_id`, `version`, `active`, `public_key`); the file still
    /// gets the `vkpub1.` line.
    #[arg(long)]
    json: bool,
}

/// Print the active public key (and write it to a file).
pub(crate) fn pubkey(d: &Dongle, args: &PubkeyArgs) -> Result<Output, AdminError> {
    let k = d.client().active_key()?;
    let out = new_key(&k, "What the store seals to.", args.json);
    if let Some(path) = &args.output {
        let line = format!("{}\n", PublicKey::from_bytes(k.public_key));
        vbzkey_os::durable::write(path, line.as_bytes(), 0o644, vbzkey_os::durable::Mode::Replace)
            .map_err(|e| AdminError::io("write", path, e))?;
    }
    Ok(out)
}

/// `rotate`'s options.
#[derive(clap::Args)]
pub(crate) struct RotateArgs {
    #[command(flatten)]
    staff: NoStaffPin,
    /// Print the new active key as JSON (`key_id`, `version`, `active`, `public_key`).
    #[arg(long)]
    json: bool,
}

/// Make a new key version active.
pub(crate) fn rotate(d: &Dongle, args: &RotateArgs) -> Result<Output, AdminError> {
    args.staff.check("rotate")?;
    d.admin()?;
    let keys = d.client().rotate()?;
    Ok(rotated(&keys, args.json)?)
}

fn rotated(keys: &[KeyInfo], json: bool) -> Result<Output, vbzkey_client::ClientError> {
    let active = keys.iter().find(|k| k.active).ok_or(vbzkey_client::ClientError::NoActiveKey)?;
    let mut out =
        new_key(active, "New records go to the new key; give the store its public key.", json);
    for k in keys {
        out.note(describe_key(k));
    }
    out.note(
        "Then re-wrap the old records (`rewrap`), retire the old key (`retire`), and make a new \
         backup: shares made before this rotation do not hold the new key.",
    );
    Ok(out)
}

/// `retire`'s options.
#[derive(clap::Args)]
pub(crate) struct RetireArgs {
    /// The key id, as `info` shows it (16 hex digits, grouped or not).
    key_id: KeyId,
    #[command(flatten)]
    staff: NoStaffPin,
    /// Files of sealed records to check (JSON lines).
    #[arg(long = "records")]
    records: Vec<PathBuf>,
    /// The store's database to check (`sqlite:PATH` or `mysql://USER@localhost/DB?socket=PATH`),
    /// with --column.
    #[arg(long, requires = "columns")]
    db: Option<String>,
    /// A sealed column to check, as TABLE.COLUMN (repeat for every one).
    #[arg(long = "column", requires = "db")]
    columns: Vec<String>,
}

/// Delete an old key version, once no given record is sealed to it.
pub(crate) fn retire(d: &Dongle, args: &RetireArgs) -> Result<Output, AdminError> {
    args.staff.check("retire")?;
    let id = args.key_id;
    if args.records.is_empty() && args.db.is_none() {
        return Err(Usage::RetireNeedsRecords.into());
    }
    refuse_active(&d.client().public_keys()?, id)?;
    let mut using = rewrap::count_using(&args.records, id)?;
    if let Some(db) = &args.db {
        for c in &args.columns {
            let (table, column) = c.split_once('.').ok_or_else(|| Usage::BadColumn(c.clone()))?;
            using += rewrap_db::count_using(db, table, column, id)?;
        }
    }
    if using > 0 {
        return Err(AdminError::StillInUse { key_id: id, count: using });
    }
    d.admin()?;
    d.client().retire(id)?;
    Ok(retired(id))
}

/// The active key is never retired: the way out is a rotation, which the "re-wrap first" of
/// records still using it would not say.
fn refuse_active(keys: &[KeyInfo], id: KeyId) -> Result<(), AdminError> {
    if keys.iter().any(|k| k.active && k.key_id == id) {
        return Err(AdminError::RetireActive(id));
    }
    Ok(())
}

fn retired(id: KeyId) -> Output {
    let mut out = Output::default();
    out.note(format!("Key {} retired: the dongle no longer holds it.", id.grouped()));
    out
}

/// `reset`'s options.
#[derive(clap::Args)]
pub(crate) struct ResetArgs {
    #[command(flatten)]
    staff: NoStaffPin,
    /// Do not ask for confirmation.
    #[arg(long)]
    force: bool,
}

/// Wipe the keys, after the serial is typed back (or `--force`).
/// Needs the admin PIN and a press, or the press alone when nobody can be admin (the admin
/// PIN locked out, a damaged key store, a blank dongle).
pub(crate) fn reset(d: &Dongle, args: &ResetArgs) -> Result<Output, AdminError> {
    args.staff.check("reset")?;
    let h = d.client().hello()?;
    let administrable = h.admin_tries_left > 0 && h.state != LockState::Uninitialised;
    if administrable && !h.keys.is_empty() {
        d.admin()?;
    }
    if !args.force {
        confirm(&h.serial)?;
    }
    d.client().factory_reset()?;
    Ok(wiped(&h.serial))
}

fn wiped(serial: &str) -> Output {
    let mut out = Output::default();
    out.note(format!(
        "Dongle {serial} wiped: its keys, PINs and pairings are gone (the audit log stays). \
         Restore it from a backup, clone into it, or init it; then pair the workstations again."
    ));
    out
}

/// Ask for the serial to be typed.
fn confirm(serial: &str) -> Result<(), AdminError> {
    if !std::io::stdin().is_terminal() {
        return Err(Usage::ConfirmNeedsTerminal.into());
    }
    eprint!("This wipes every key on dongle {serial}. Type its serial to confirm: ");
    let mut line = String::new();
    std::io::stdin()
        .take(256)
        .read_to_string(&mut line)
        .map_err(|e| AdminError::io("read", "-", e))?;
    if line.lines().next().unwrap_or_default().trim() != serial {
        return Err(AdminError::NotConfirmed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::tests::key;

    #[test]
    fn a_new_key_prints_its_public_key_for_scripts_and_its_fingerprint_for_people() {
        let k = key(1, true);
        let out = new_key(&k, "Key generated on the dongle.", false);
        assert_eq!(out.stdout.as_str(), format!("{}\n", PublicKey::from_bytes(k.public_key)));
        assert!(out.stderr.contains(&k.key_id.grouped()), "{}", out.stderr);
    }

    /// `pubkey`, `init` and `rotate` print data, so they take `--json` (docs/CLI.md).
    #[test]
    fn a_new_key_as_json_has_the_fields_info_gives_each_key() {
        let k = key(3, true);
        let out = new_key(&k, "What the store seals to.", true);
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(v["public_key"], PublicKey::from_bytes(k.public_key).to_text());
        assert_eq!(v["key_id"], k.key_id.to_string());
        assert_eq!((v["version"].as_u64(), v["active"].as_bool()), (Some(3), Some(true)));
        assert_eq!(out.stdout.lines().count(), 1);
    }

    #[test]
    fn rotate_prints_the_new_active_key_and_lists_all() {
        let keys = [key(1, false), key(2, true)];
        let out = rotated(&keys, false).unwrap();
        assert_eq!(out.stdout.as_str(), format!("{}\n", PublicKey::from_bytes(keys[1].public_key)));
        assert!(out.stderr.contains("key v1 ") && out.stderr.contains("key v2 (active)"));
        assert!(out.stderr.contains("rewrap") && out.stderr.contains("retire"));
        assert!(out.stderr.contains("make a new backup"), "{}", out.stderr);
        assert!(matches!(
            rotated(&[key(1, false)], false),
            Err(vbzkey_client::ClientError::NoActiveKey)
        ));
    }

    #[test]
    fn retiring_the_active_key_says_rotate_first() {
        let keys = [key(1, false), key(2, true)];
        let e = refuse_active(&keys, keys[1].key_id).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("rotate first") && msg.contains(&keys[1].key_id.grouped()), "{msg}");
        assert!(!msg.contains("re-wrap them first"), "{msg}");
        assert!(refuse_active(&keys, keys[0].key_id).is_ok(), "an old key may be retired");
    }

    #[test]
    fn reset_says_the_pairings_are_wiped_as_the_factory_reset_does() {
        // FactoryReset removes the pairings file (firmware/src/dongle/credentials.rs; tested in
        // firmware/src/dongle/tests.rs: `paired_hosts` 0 after a reset): the note must say so.
        let out = wiped("EMU0001");
        assert!(out.stderr.contains("pairings are gone"), "{}", out.stderr);
        assert!(out.stderr.contains("pair the workstations again"), "{}", out.stderr);
        assert_eq!(out.stdout.as_str(), "");
    }
}
