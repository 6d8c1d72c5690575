//! Which hosts the dongle serves: `pair` (after the first pairing, only paired hosts are
//! served, in encrypted sessions), `pairings`, `unpair`.

use std::path::{Path, PathBuf};

use vbzkey_client::read_host_key;
use vbzkey_protocol::wire::PairingInfo;
use vbzkey_protocol::{KeyId, PublicKey, SecretKey, keyfile};

use crate::dongle::Dongle;
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
    /// The PIN.
    #[arg(long)]
    pin_file: Option<PathBuf>,
}

/// The host key in `path`, made first if there is none.
fn host_key(path: &Path) -> Result<SecretKey, AdminError> {
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

/// Pair a host; print the line the bridge's configuration needs.
pub(crate) fn pair(d: &Dongle, args: &PairArgs) -> Result<Output, AdminError> {
    let host = host_key(&args.new_host_key)?.public_key().clone();
    d.unlock(args.pin_file.as_deref())?;
    d.client().pair(&host, args.label.clone())?;
    let device = d.client().device_key()?;
    Ok(paired(&host, &args.new_host_key, &device))
}

fn paired(host: &PublicKey, file: &Path, device: &PublicKey) -> Output {
    let mut out = Output::default();
    out.note(format!("Paired host {host} ({}).", file.display()));
    out.note(format!("In the bridge's [method] section: host_key = \"{}\" and:", file.display()));
    out.line(format!("device_key = \"{device}\""));
    out
}

/// List the paired hosts.
pub(crate) fn pairings(d: &Dongle) -> Result<Output, AdminError> {
    Ok(listed(&d.client().pairings()?))
}

fn listed(hosts: &[PairingInfo]) -> Output {
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
            h.paired_at
        ));
    }
    out
}

/// `unpair`'s options.
#[derive(clap::Args)]
pub(crate) struct UnpairArgs {
    /// The host's public key (`vkpub1.`).
    host: PublicKey,
    /// The PIN.
    #[arg(long)]
    pin_file: Option<PathBuf>,
}

/// Remove a paired host.
pub(crate) fn unpair(d: &Dongle, args: &UnpairArgs) -> Result<Output, AdminError> {
    d.unlock(args.pin_file.as_deref())?;
    d.client().unpair(&args.host)?;
    Ok(unpaired(&args.host))
}

fn unpaired(host: &PublicKey) -> Output {
    let mut out = Output::default();
    out.note(format!("Host {host} unpaired: its open session ends at its next request."));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_prints_the_bridge_configuration_line() {
        let host = SecretKey::derive(&[1; 32]).public_key().clone();
        let device = SecretKey::derive(&[2; 32]).public_key().clone();
        let out = paired(&host, Path::new("/etc/vbzkey/host.key"), &device);
        assert_eq!(out.stdout.as_str(), format!("device_key = \"{device}\"\n"));
        assert!(out.stderr.contains("host_key = \"/etc/vbzkey/host.key\""));
    }

    #[test]
    fn pairings_are_listed_with_label_or_a_dash() {
        let key = *SecretKey::derive(&[1; 32]).public_key().as_bytes();
        let hosts = [
            PairingInfo { host_key: key, label: "till-1".into(), paired_at: 1_767_225_600 },
            PairingInfo { host_key: key, label: String::new(), paired_at: 7 },
        ];
        let out = listed(&hosts);
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert!(lines[0].contains("  till-1  paired at 1767225600"), "{}", lines[0]);
        assert!(lines[1].contains("  -  paired at 7"), "{}", lines[1]);
        assert!(listed(&[]).stdout.contains("no host is paired"));
        let out = unpaired(&PublicKey::from_bytes(key));
        assert!(out.stderr.starts_with(&format!("Host {} unpaired", PublicKey::from_bytes(key))));
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
