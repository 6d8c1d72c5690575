//! This host's identity for encrypted sessions (Noise IK) with paired dongles.

use std::io::Read;
use std::path::{Path, PathBuf};

use vbzkey_protocol::keyfile::{self, MAX_KEY_FILE_LEN};
use vbzkey_protocol::session;
use vbzkey_protocol::wire::UnlockSecret;
use vbzkey_protocol::{PublicKey, SecretKey};
use zeroize::Zeroizing;

use crate::error::HostKeyError;

/// How a host knows the dongle it opens a session to is the right one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevicePin {
    /// Asked from the dongle at each connection: the admin tool on a link the admin can see,
    /// where the admin checks what `info` and `pair` print.
    Ask,
    /// Pinned: a dongle with another device key gets nothing (no PIN) and is reported.
    Key(PublicKey),
    /// Trust on first use: the first dongle that completes a session has its device key
    /// recorded in this file (0600); from then on it is pinned from there.
    FirstUse(PathBuf),
}

/// The host's static key and how it knows the dongle's device key.
pub struct SessionKeys {
    pub(crate) host_secret: Zeroizing<[u8; 32]>,
    pub(crate) device: DevicePin,
}

impl SessionKeys {
    /// From a host key and the dongle's device key, if pinned (else asked each time).
    pub fn new(host: &SecretKey, device: Option<&PublicKey>) -> Self {
        let device = device.map_or(DevicePin::Ask, |d| DevicePin::Key(d.clone()));
        SessionKeys { host_secret: host.to_bytes(), device }
    }

    /// From a host key, knowing the dongle by `device`.
    pub fn with_pin(host: &SecretKey, device: DevicePin) -> Self {
        SessionKeys { host_secret: host.to_bytes(), device }
    }

    /// A host key made for this process only: the session still authenticates the dongle and
    /// encrypts the link, but the dongle serves it only while no host is paired.
    pub fn ephemeral(device: DevicePin) -> Result<Self, getrandom::Error> {
        let mut secret = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut secret[..])?;
        Ok(SessionKeys { host_secret: secret, device })
    }

    /// From a host key file (`vbzkey_protocol::keyfile`'s rule: one `vksec1.` line, at most
    /// 4 KiB) and the dongle's device key, if pinned.
    pub fn load(host_key_file: &Path, device: Option<&PublicKey>) -> Result<Self, HostKeyError> {
        Ok(Self::new(&read_host_key(host_key_file)?, device))
    }

    /// The host's public key (what the dongle pairs).
    pub fn host_public(&self) -> [u8; 32] {
        session::public_of(&self.host_secret)
    }

    /// The host's unlock secret (split custody): sent with a PIN, inside the session only.
    pub fn unlock_secret(&self) -> UnlockSecret {
        UnlockSecret(SecretKey::from_bytes(*self.host_secret).unlock_secret())
    }
}

/// The device key recorded in a trust-on-first-use file, if there is one yet.
pub(crate) fn read_known_dongle(path: &Path) -> Result<Option<PublicKey>, std::io::Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let line = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#'));
            let key = line
                .and_then(|l| PublicKey::from_text(l).ok())
                .ok_or_else(|| std::io::Error::other("it holds no vkpub1. device key"))?;
            Ok(Some(key))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Record `key` as the known dongle (never replacing one already there).
pub(crate) fn record_known_dongle(path: &Path, key: &PublicKey, at: &str) -> std::io::Result<()> {
    let text =
        format!("# vbzkey: the dongle this computer trusts, recorded on first use ({at})\n{key}\n");
    vbzkey_os::durable::write(path, text.as_bytes(), 0o600, vbzkey_os::durable::Mode::CreateNew)
}

/// Read a host key file, never more than one byte past the size limit.
pub fn read_host_key(path: &Path) -> Result<SecretKey, HostKeyError> {
    let read_err = |source| HostKeyError::Read { path: path.to_path_buf(), source };
    let mut bytes = Zeroizing::new(Vec::new());
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_KEY_FILE_LEN as u64 + 1).read_to_end(&mut bytes))
        .map_err(read_err)?;
    keyfile::parse(&bytes)
        .map_err(|source| HostKeyError::Format { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use vbzkey_protocol::keyfile::KeyFileError;

    fn temp(name: &str, contents: &[u8]) -> PathBuf {
        let p = std::env::temp_dir().join(format!("vbzkey-client-{name}-{}", std::process::id()));
        std::fs::write(&p, contents).unwrap();
        p
    }

    #[test]
    fn host_keys_load_under_the_key_file_rule() {
        let key = SecretKey::derive(&[5u8; 32]);
        let good = temp("good", keyfile::render(&key).as_bytes());
        let keys = SessionKeys::load(&good, None).unwrap();
        assert_eq!(keys.host_public(), *key.public_key().as_bytes());
        // A second key line is refused, not silently skipped (the bridge used to take the first).
        let two = format!("{}\n{}\n", key.to_text().as_str(), key.to_text().as_str());
        let two = temp("two", two.as_bytes());
        assert!(matches!(
            SessionKeys::load(&two, None),
            Err(HostKeyError::Format { source: KeyFileError::SeveralKeys, .. })
        ));
        let huge = temp("huge", &vec![b'#'; MAX_KEY_FILE_LEN * 4]);
        assert!(matches!(
            SessionKeys::load(&huge, None),
            Err(HostKeyError::Format { source: KeyFileError::TooLarge, .. })
        ));
        let missing = std::env::temp_dir().join("vbzkey-client-no-such-key");
        let err = SessionKeys::load(&missing, None).err().unwrap();
        assert!(matches!(err, HostKeyError::Read { .. }));
        assert!(err.to_string().contains("vbzkey-client-no-such-key"), "{err}");
        for p in [good, two, huge] {
            let _ = std::fs::remove_file(p);
        }
    }
}
