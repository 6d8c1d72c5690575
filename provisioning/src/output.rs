//! What a command prints: its result on stdout (what a script reads), notes for the admin on
//! stderr. Commands build an [`Output`] so that what they print is tested without a dongle.

use std::io::Write;

use vbzkey_protocol::PublicKey;
use vbzkey_protocol::wire::KeyInfo;
use zeroize::Zeroizing;

use crate::error::AdminError;

/// A command's printed result.
#[derive(Debug, Default)]
pub(crate) struct Output {
    /// For stdout; wiped on drop (shares are printed there).
    pub(crate) stdout: Zeroizing<String>,
    /// For stderr.
    pub(crate) stderr: String,
}

impl Output {
    /// A line on stdout.
    pub(crate) fn line(&mut self, text: impl AsRef<str>) -> &mut Self {
        self.stdout.push_str(text.as_ref());
        self.stdout.push('\n');
        self
    }

    /// A line on stderr.
    pub(crate) fn note(&mut self, text: impl AsRef<str>) -> &mut Self {
        self.stderr.push_str(text.as_ref());
        self.stderr.push('\n');
        self
    }

    /// Write both. A reader that went away (`| head`) is not an error.
    pub(crate) fn print(&self) -> Result<(), AdminError> {
        let write = |mut w: Box<dyn Write>, text: &str| match w.write_all(text.as_bytes()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e),
            _ => Ok(()),
        };
        write(Box::new(std::io::stderr()), &self.stderr)
            .and_then(|()| write(Box::new(std::io::stdout()), &self.stdout))
            .map_err(|e| AdminError::io("write", "-", e))
    }
}

/// One key, as `info` and the key commands list it.
pub(crate) fn describe_key(k: &KeyInfo) -> String {
    format!(
        "key v{}{}  {}  {}",
        k.version,
        if k.active { " (active)" } else { "         " },
        k.key_id.grouped(),
        PublicKey::from_bytes(k.public_key)
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A key as a dongle reports it.
    pub(crate) fn key(version: u32, active: bool) -> KeyInfo {
        let public =
            *vbzkey_protocol::SecretKey::derive(&[version as u8; 32]).public_key().as_bytes();
        KeyInfo { key_id: vbzkey_protocol::KeyId::of(&public), version, public_key: public, active }
    }

    #[test]
    fn keys_are_listed_with_their_grouped_id_and_public_key() {
        let k = key(2, true);
        let line = describe_key(&k);
        assert!(line.starts_with("key v2 (active)  "), "{line}");
        assert!(line.contains(&k.key_id.grouped()));
        assert!(line.ends_with(&PublicKey::from_bytes(k.public_key).to_text()));
        assert!(describe_key(&key(1, false)).starts_with("key v1           "));
    }
}
