//! Keeping the keys safe from the loss of a dongle: `backup` (M-of-N recovery shares dealt on
//! the dongle), `restore` (from shares), and `clone` (dongle to dongle, wrapped to the
//! target's transfer key). The keys never exist in clear on this computer.

use std::path::{Path, PathBuf};

use vbzkey_client::ClientError;
use vbzkey_protocol::share::Share;
use vbzkey_protocol::wire::{DongleError, KeyInfo};
use zeroize::Zeroizing;

use crate::dongle::{Dongle, NoStaffPin, Target};
use crate::error::AdminError;
use crate::input::{read_new_pin, read_shares};
use crate::output::{Output, describe_key};

/// `backup`'s options.
#[derive(clap::Args)]
pub(crate) struct BackupArgs {
    /// Shares needed to restore (M).
    #[arg(long)]
    threshold: u8,
    /// Shares to make (N, at most 16).
    #[arg(long)]
    shares: u8,
    #[command(flatten)]
    staff: NoStaffPin,
    /// Write share-1.txt … share-N.txt in this directory (created, must not hold shares
    /// already) instead of printing them. (`--out-dir`, its old spelling, still works.)
    #[arg(short, long = "output", alias = "out-dir", value_name = "DIR")]
    out_dir: Option<PathBuf>,
}

/// Deal recovery shares (admin PIN, then a press of the dongle's button); print them or write
/// one file each.
pub(crate) fn backup(d: &Dongle, args: &BackupArgs) -> Result<Output, AdminError> {
    args.staff.check("backup")?;
    d.admin()?;
    let shares = d.client().backup(args.threshold, args.shares)?;
    match &args.out_dir {
        Some(dir) => write_shares(dir, &shares),
        None => Ok(printed(&shares)),
    }
}

/// The text of share file `i` (1-based).
fn share_file(i: usize, shares: &[Share]) -> Zeroizing<String> {
    let s = &shares[i - 1];
    let line = s.to_text();
    let mut text = Zeroizing::new(String::with_capacity(64 + line.len()));
    text.push_str(&format!(
        "# vbzkey recovery share {i} of {} ({} needed)\n",
        shares.len(),
        s.threshold
    ));
    text.push_str(&line);
    text.push('\n');
    text
}

fn printed(shares: &[Share]) -> Output {
    let lines: Vec<Zeroizing<String>> = shares.iter().map(Share::to_text).collect();
    let mut out = Output::default();
    // Reserved up front so the secret text is never left behind by a reallocation.
    out.stdout.reserve(lines.iter().map(|l| l.len() + 1).sum());
    for line in &lines {
        out.line(line.as_str());
    }
    if let Some(s) = shares.first() {
        out.note(format!(
            "{} shares: any {} restore the keys. Give each to a different person or safe.",
            shares.len(),
            s.threshold
        ));
    }
    out
}

fn write_shares(dir: &Path, shares: &[Share]) -> Result<Output, AdminError> {
    std::fs::create_dir_all(dir).map_err(|e| AdminError::io("write", dir, e))?;
    for i in 1..=shares.len() {
        let path = dir.join(format!("share-{i}.txt"));
        let text = share_file(i, shares);
        vbzkey_os::durable::write(
            &path,
            text.as_bytes(),
            0o600,
            vbzkey_os::durable::Mode::CreateNew,
        )
        .map_err(|e| AdminError::io("write", &path, e))?;
    }
    let mut out = Output::default();
    out.note(format!(
        "{} shares written to {}; any {} restore the keys.",
        shares.len(),
        dir.display(),
        shares.first().map_or(0, |s| s.threshold)
    ));
    Ok(out)
}

/// `restore`'s options.
#[derive(clap::Args)]
pub(crate) struct RestoreArgs {
    /// A file holding share lines (repeat; `-` reads stdin).
    #[arg(long = "share-file", required = true)]
    share_files: Vec<PathBuf>,
    /// The staff PIN for the restored dongle.
    #[arg(long)]
    new_pin_file: PathBuf,
    /// The admin PIN for the restored dongle.
    #[arg(long)]
    new_admin_pin_file: PathBuf,
    /// Print the restored keys as one JSON array (the fields `info --json` gives each key).
    #[arg(long)]
    json: bool,
}

/// Rebuild the keys from shares, checked here first.
pub(crate) fn restore(d: &Dongle, args: &RestoreArgs) -> Result<Output, AdminError> {
    let shares = read_shares(&args.share_files)?;
    let pin = Some(read_new_pin(&args.new_pin_file, "new staff PIN")?);
    let admin_pin = read_new_pin(&args.new_admin_pin_file, "new admin PIN")?;
    let keys = d.client().restore(shares, pin, admin_pin)?;
    Ok(installed(&keys, "Restored", args.json))
}

fn installed(keys: &[KeyInfo], what: &str, json: bool) -> Output {
    let mut out = Output::default();
    if json {
        let list: Vec<_> = keys.iter().map(crate::output::key_json).collect();
        out.line(serde_json::Value::Array(list).to_string());
    }
    for k in keys.iter().filter(|_| !json) {
        out.line(describe_key(k));
    }
    out.note(format!("{what} {} key version(s).", keys.len()));
    out.note("Pair the workstations with this dongle again (`vbzkey-admin pair`).");
    out
}

/// `clone`'s options.
#[derive(clap::Args)]
pub(crate) struct CloneArgs {
    /// Source dongle (usb, usb:SERIAL, unix:PATH, tcp:HOST:PORT).
    #[arg(long)]
    from: vbzkey_client::DongleAddr,
    /// Source serial (USB).
    #[arg(long)]
    from_serial: Option<String>,
    /// Target dongle.
    #[arg(long)]
    to: vbzkey_client::DongleAddr,
    /// Target serial (USB).
    #[arg(long)]
    to_serial: Option<String>,
    #[command(flatten)]
    staff: NoStaffPin,
    /// The staff PIN for the target.
    #[arg(long)]
    new_pin_file: PathBuf,
    /// The admin PIN for the target.
    #[arg(long)]
    new_admin_pin_file: PathBuf,
    /// Print the copied keys as one JSON array (the fields `info --json` gives each key).
    #[arg(long)]
    json: bool,
}

/// Copy the keys from one dongle to a new (or reset) one. The source is the dongle in
/// service, so it gets this host's session keys (`--host-key`) and admin PIN; the target is
/// asked plainly first (a new dongle has no pairings), and in a session only if it answers
/// that it serves paired hosts only (a reset dongle keeps its pairings).
pub(crate) fn clone(global: &Target, args: &CloneArgs) -> Result<Output, AdminError> {
    let with_serial = |addr: &vbzkey_client::DongleAddr, serial: &Option<String>| {
        addr.clone().with_serial(serial.clone()).map_err(crate::error::Usage::Addr)
    };
    args.staff.check("clone")?;
    let new_pin = Some(read_new_pin(&args.new_pin_file, "new staff PIN")?);
    let new_admin_pin = read_new_pin(&args.new_admin_pin_file, "new admin PIN")?;
    let to = with_serial(&args.to, &args.to_serial)?;
    let src = Dongle::open(&Target {
        addr: with_serial(&args.from, &args.from_serial)?,
        keys: global.keys.clone(),
        admin_pin: global.admin_pin.clone(),
    });
    let mut dst = Dongle::open(&Target { addr: to.clone(), keys: None, admin_pin: None });
    let transfer = match dst.client().clone_begin() {
        Err(ClientError::Dongle(DongleError::PairingRequired)) if global.keys.is_some() => {
            dst = Dongle::open(&Target { addr: to, keys: global.keys.clone(), admin_pin: None });
            dst.client().clone_begin()?
        }
        other => other?,
    };
    src.admin()?;
    let blob = src.client().clone_export(&transfer)?;
    src.end_admin();
    let keys = dst.client().clone_import(blob, new_pin, new_admin_pin)?;
    Ok(installed(&keys, "Cloned", args.json))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::tests::key;

    fn shares() -> Vec<Share> {
        (1..=3)
            .map(|i| Share::checked([7; 4], 2, 3, i, Zeroizing::new(vec![i; 16])).unwrap())
            .collect()
    }

    #[test]
    fn each_share_file_says_which_share_it_is_and_parses_back() {
        let s = shares();
        let text = share_file(2, &s);
        assert!(
            text.starts_with("# vbzkey recovery share 2 of 3 (2 needed)\nvkshare1.07070707.2.3.2.")
        );
        let line = text.lines().nth(1).unwrap();
        assert_eq!(Share::from_text(line).unwrap(), s[1]);
    }

    #[test]
    fn printed_shares_are_one_per_line_on_stdout() {
        let out = printed(&shares());
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines.iter().all(|l| l.starts_with("vkshare1.")));
        assert!(out.stderr.contains("any 2 restore the keys"));
    }

    #[test]
    fn restored_keys_are_listed() {
        let keys = [key(1, false), key(2, true)];
        let out = installed(&keys, "Restored", false);
        assert_eq!(out.stdout.lines().count(), 2);
        assert!(out.stderr.starts_with("Restored 2 key version(s).\n"), "{}", out.stderr);
        let json = installed(&keys, "Restored", true);
        let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
        assert_eq!(v[1], crate::output::key_json(&keys[1]));
        assert_eq!(json.stderr, out.stderr);
    }
}
