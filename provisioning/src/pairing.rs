//! Which hosts the dongle serves: `pair` (after the first pairing, only paired hosts are
//! served, in encrypted sessions), `pairings`, `unpair`.

use std::path::{Path, PathBuf};

use vbzkey_client::read_host_key;
use vbzkey_protocol::wire::PairingInfo;
use vbzkey_protocol::{KeyId, PublicKey, SecretKey, keyfile};

use crate::dongle::{Dongle, NoStaffPin};
use crate::error::AdminError;
use crate::output::Output;

/// `pair`'s options.
#[derive(clap::Args)]
pub(crate) struct PairArgs {
    /// The host key file to pair (created, 0600, if missing).
    #[arg(long)]
    new_host_key: PathBuf,
    /// A name for the host, up to 64 characters.
    #[arg(long, default_value = "")]
    label: String,
    #[command(flatten)]
    staff: NoStaffPin,
    /// Print `host_key` (the file's absolute path), `host_public_key`, `device_key` and
    /// `serial` as JSON instead of the configuration lines.
    #[arg(long)]
    json: bool,
}

/// The host key in `path`, made first if there is none.
pub(crate) fn host_key(path: &Path) -> Result<SecretKey, AdminError> {
    if !path.exists() {
        let key = SecretKey::generate().map_err(|e| {
            AdminError::io("write", path, std::io::Error::other(format!("random numbers: {e}")))
        })?;
        let text = keyfile::render(&key);
        vbzkey_os::durable::write(
            path,
            text.as_bytes(),
            0o600,
            vbzkey_os::durable::Mode::CreateNew,
        )
        .map_err(|e| AdminError::io("write", path, e))?;
    }
    Ok(read_host_key(path)?)
}

/// Pair a host (admin PIN and a press of the dongle's button): the dongle wraps its half of
/// the master key under the host's unlock secret. Prints the lines the bridge's configuration
/// needs.
pub(crate) fn pair(d: &Dongle, args: &PairArgs) -> Result<Output, AdminError> {
    args.staff.check("pair")?;
    let key = host_key(&args.new_host_key)?;
    let host = key.public_key().clone();
    let unlock = vbzkey_protocol::wire::UnlockSecret(key.unlock_secret());
    let hello = d.admin()?;
    // Asked first: once the first host is paired, this process's own session (a host key
    // made for it alone, when none was given) is no longer served.
    let device = d.client().device_key()?;
    d.client().pair(&host, args.label.clone(), unlock)?;
    // An absolute path: the bridge may start from another directory.
    let file = std::path::absolute(&args.new_host_key)
        .map_err(|e| AdminError::io("read", &args.new_host_key, e))?;
    let usb = matches!(d.addr(), vbzkey_client::DongleAddr::Usb { .. });
    let out = paired(&host, &file, &device, &hello.serial, usb);
    Ok(if args.json { paired_json(out, &host, &file, &device, &hello.serial) } else { out })
}

/// What `pair` prints: the bridge's lines on stdout (TOML), the rest on stderr. The serial
/// picks the dongle among several on USB; a socket address names its dongle already.
fn paired(host: &PublicKey, file: &Path, device: &PublicKey, serial: &str, usb: bool) -> Output {
    let mut out = Output::default();
    out.note(format!(
        "Paired host {host} ({}): it holds a share of the dongle's keys now.",
        file.display()
    ));
    out.note("Paste into the bridge's [method] section (kind = \"dongle\"):");
    let toml_str = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    out.line(format!("host_key = \"{}\"", toml_str(&file.display().to_string())));
    out.line(format!("device_key = \"{device}\""));
    let serial = format!("serial = \"{}\"", toml_str(serial));
    out.line(if usb { serial } else { format!("# {serial} (on USB)") });
    out
}

/// `pair --json`: the same facts as one JSON object on stdout (the notes stay on stderr).
fn paired_json(
    mut out: Output,
    host: &PublicKey,
    file: &Path,
    device: &PublicKey,
    serial: &str,
) -> Output {
    let v = serde_json::json!({
        "host_key": file.display().to_string(),
        "host_public_key": host.to_text(),
        "device_key": device.to_text(),
        "serial": serial,
    });
    out.stdout = zeroize::Zeroizing::new(format!("{v}\n"));
    out.stderr =
        out.stderr.replace("Paste into the bridge's [method] section (kind = \"dongle\"):\n", "");
    out
}

/// `pairings`' options.
#[derive(clap::Args)]
pub(crate) struct PairingsArgs {
    /// One JSON array on stdout: `host_key`, `host_id` (as the audit log names the host),
    /// `label`, `paired_at` (RFC 3339, UTC) for each host.
    #[arg(long)]
    json: bool,
}

pub(crate) fn pairings(d: &Dongle, args: &PairingsArgs) -> Result<Output, AdminError> {
    let hosts = d.client().pairings()?;
    Ok(if args.json { listed_json(&hosts) } else { listed(&hosts, &crate::output::system_zone()) })
}

fn listed_json(hosts: &[PairingInfo]) -> Output {
    let list: Vec<serde_json::Value> = hosts
        .iter()
        .map(|h| {
            serde_json::json!({
                "host_key": PublicKey::from_bytes(h.host_key).to_text(),
                "host_id": format!("host:{}", KeyId::of(&h.host_key)),
                "label": h.label,
                "paired_at": crate::output::utc_time(h.paired_at),
            })
        })
        .collect();
    let mut out = Output::default();
    out.line(serde_json::Value::Array(list).to_string());
    out
}

/// For people: the pairing time in local time (`tz`), no raw Unix seconds.
fn listed(hosts: &[PairingInfo], tz: &jiff::tz::TimeZone) -> Output {
    let mut out = Output::default();
    if hosts.is_empty() {
        out.line("no host is paired: any host on USB or the local socket is served");
    }
    for h in hosts {
        let key = PublicKey::from_bytes(h.host_key);
        // `host:ID` is how the audit log names the host's sessions.
        out.line(format!(
            "{key}  host:{}  {}  paired at {}",
            KeyId::of(&h.host_key),
            if h.label.is_empty() { "-" } else { &h.label },
            crate::output::time_in(h.paired_at, tz),
        ));
    }
    out
}

/// `unpair`'s options.
#[derive(clap::Args)]
pub(crate) struct UnpairArgs {
    /// The host: its public key (`vkpub1.…`) or its label, as `pairings` lists them.
    #[arg(value_parser = parse_host)]
    host: HostRef,
    #[command(flatten)]
    staff: NoStaffPin,
}

/// How `unpair` names a host.
#[derive(Debug, Clone)]
pub(crate) enum HostRef {
    /// By its public key.
    Key(PublicKey),
    /// By the label it was paired with (resolved through the dongle's list).
    Label(String),
}

/// A `vkpub1.` argument must be a whole public key (a damaged one is an error, never taken
/// for a label); anything else is a label.
fn parse_host(arg: &str) -> Result<HostRef, String> {
    if arg.starts_with(vbzkey_protocol::keys::PUBLIC_KEY_PREFIX) {
        return arg.parse().map(HostRef::Key).map_err(|e: vbzkey_protocol::KeyError| e.to_string());
    }
    Ok(HostRef::Label(arg.to_string()))
}

/// The public key of the host `host` names: a label must name exactly one paired host.
fn resolve(hosts: &[PairingInfo], host: &HostRef) -> Result<PublicKey, AdminError> {
    let label = match host {
        HostRef::Key(k) => return Ok(k.clone()),
        HostRef::Label(l) => l,
    };
    let mut found = hosts.iter().filter(|h| &h.label == label);
    match (found.next(), found.count()) {
        (None, _) => Err(AdminError::NoSuchHost(label.clone())),
        (Some(h), 0) => Ok(PublicKey::from_bytes(h.host_key)),
        (Some(_), more) => {
            Err(crate::error::Usage::AmbiguousLabel { label: label.clone(), count: more + 1 }
                .into())
        }
    }
}

/// Remove a paired host (admin PIN and a press): its share of the keys is deleted.
pub(crate) fn unpair(d: &Dongle, args: &UnpairArgs) -> Result<Output, AdminError> {
    args.staff.check("unpair")?;
    let host = match &args.host {
        HostRef::Key(k) => k.clone(),
        label => resolve(&d.client().pairings()?, label)?,
    };
    d.admin()?;
    d.client().unpair(&host)?;
    Ok(unpaired(&host))
}

fn unpaired(host: &PublicKey) -> Output {
    let mut out = Output::default();
    out.note(format!(
        "Host {host} unpaired: its share of the keys is deleted and its open session ends at \
         its next request."
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_prints_the_bridge_configuration_line() {
        let host = SecretKey::derive(&[1; 32]).public_key().clone();
        let device = SecretKey::derive(&[2; 32]).public_key().clone();
        let out = paired(&host, Path::new("/etc/vbzkey/host.key"), &device, "00ab\"c", true);
        assert_eq!(
            out.stdout.as_str(),
            format!(
                "host_key = \"/etc/vbzkey/host.key\"\ndevice_key = \"{device}\"\nserial = \"00ab\\\"c\"\n"
            )
        );
        let toml: toml::Value = toml::from_str(&out.stdout).unwrap();
        assert_eq!(toml["serial"].as_str(), Some("00ab\"c"));
        let socket = paired(&host, Path::new("/h.key"), &device, "E2E1", false);
        let toml: toml::Table = toml::from_str(&socket.stdout).unwrap();
        assert!(!toml.contains_key("serial") && socket.stdout.contains("# serial = \"E2E1\""));
        let json = paired_json(socket, &host, Path::new("/h.key"), &device, "E2E1");
        let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
        assert_eq!((v["host_key"].as_str(), v["serial"].as_str()), (Some("/h.key"), Some("E2E1")));
        assert_eq!(v["device_key"], device.to_text());
        assert!(!json.stderr.contains("Paste"), "{}", json.stderr);
    }

    #[test]
    fn pairings_as_json_are_typed_fields() {
        let key = *SecretKey::derive(&[1; 32]).public_key().as_bytes();
        let label = "till \"1\"\n\u{e9}";
        let hosts = [PairingInfo { host_key: key, label: label.into(), paired_at: 7 }];
        let out = listed_json(&hosts);
        let v: serde_json::Value = serde_json::from_str(out.stdout.trim_end()).unwrap();
        assert_eq!(v[0]["host_key"], PublicKey::from_bytes(key).to_text());
        assert_eq!(v[0]["host_id"], format!("host:{}", KeyId::of(&key)));
        assert_eq!(
            (v[0]["label"].as_str(), v[0]["paired_at"].as_str()),
            (Some(label), Some("1970-01-01T00:00:07Z")),
            "RFC 3339 in JSON, not Unix seconds"
        );
        assert_eq!(out.stdout.lines().count(), 1, "one line, the label's newline escaped");
        assert_eq!(listed_json(&[]).stdout.as_str(), "[]\n");
    }

    #[test]
    fn pairings_are_listed_with_label_or_a_dash_and_a_local_time_not_unix_seconds() {
        let key = *SecretKey::derive(&[1; 32]).public_key().as_bytes();
        let hosts = [
            PairingInfo { host_key: key, label: "till-1".into(), paired_at: 1_767_225_600 },
            PairingInfo { host_key: key, label: String::new(), paired_at: 7 },
        ];
        let cet = jiff::tz::TimeZone::fixed(jiff::tz::offset(1));
        let out = listed(&hosts, &cet);
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert!(lines[0].ends_with("  till-1  paired at 2026-01-01 01:00:00 +01"), "{}", lines[0]);
        assert!(lines[1].ends_with("  -  paired at 1970-01-01 01:00:07 +01"), "{}", lines[1]);
        assert!(!out.stdout.contains("1767225600"), "no raw Unix seconds");
        assert!(listed(&[], &cet).stdout.contains("no host is paired"));
        let out = unpaired(&PublicKey::from_bytes(key));
        assert!(out.stderr.starts_with(&format!("Host {} unpaired", PublicKey::from_bytes(key))));
    }

    #[test]
    fn unpair_takes_a_label_that_names_exactly_one_host() {
        let key = |n: u8| *SecretKey::derive(&[n; 32]).public_key().as_bytes();
        let host = |n: u8, label: &str| PairingInfo {
            host_key: key(n),
            label: label.into(),
            paired_at: 0,
        };
        let hosts = [host(1, "till-1"), host(2, "office"), host(3, "office")];
        let by = |arg: &str| resolve(&hosts, &parse_host(arg).unwrap());
        assert_eq!(by("till-1").unwrap(), PublicKey::from_bytes(key(1)));
        let pk3 = PublicKey::from_bytes(key(3)).to_text();
        assert_eq!(by(&pk3).unwrap().to_text(), pk3, "a key is taken as given");
        let e = by("office").unwrap_err();
        assert!(e.to_string().contains("2 paired hosts are labelled \"office\""), "{e}");
        assert_eq!(e.exit_code(), crate::error::exit::USAGE);
        let e = by("till-9").unwrap_err();
        assert!(e.to_string().contains("no paired host is labelled \"till-9\""), "{e}");
        assert!(e.to_string().contains("vkpub1."), "says the key form too: {e}");
        assert_eq!(e.exit_code(), crate::error::exit::NOT_FOUND);
        assert!(parse_host("vkpub1.short").unwrap_err().contains("damaged"));
    }

    #[test]
    fn a_host_key_is_made_once_and_then_reused() {
        let path =
            std::env::temp_dir().join(format!("vbzkey-admin-host-{}.key", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let first = host_key(&path).unwrap();
        assert_eq!(host_key(&path).unwrap(), first);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let _ = std::fs::remove_file(&path);
    }
}
