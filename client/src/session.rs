//! This host's identity for encrypted sessions (Noise IK) with paired dongles.

use std::io::Read;
use std::path::Path;

use vbzkey_protocol::keyfile::{self, MAX_KEY_FILE_LEN};
use vbzkey_protocol::session;
use vbzkey_protocol::wire::UnlockSecret;
use vbzkey_protocol::{PublicKey, SecretKey};
use zeroize::Zeroizing;

use crate::error::HostKeyError;

/// The host's static key and, when pinned, the dongle's device key.
pub struct SessionKeys {
    pub(crate) host_secret: Zeroizing<[u8; 32]>,
    /// `None` asks the dongle for its key (trust on first use, for local links the admin can
    /// see; the bridge's LAN method always pins it).
    pub(crate) device_public: Option<[u8; 32]>,
}

impl SessionKeys {
    /// From a host key and the dongle's device key, if pinned.
    pub fn new(host: &SecretKey, device: Option<&PublicKey>) -> Self {
        SessionKeys { host_secret: host.to_bytes(), device_public: device.map(|d| *d.as_bytes()) }
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

    fn temp(name: &str, contents: &[u8]) -> std::path::PathBuf {
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
