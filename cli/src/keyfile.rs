//! Secret key files on disk: read under the project's one rule (`vbzkey_protocol::keyfile`),
//! written 0600, never clobbered.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use vbzkey_os::durable;
use vbzkey_protocol::keyfile::{self, MAX_KEY_FILE_LEN};
use vbzkey_protocol::{PublicKey, SecretKey};

use crate::error::CliError;
use crate::io::read_file;

/// Write a new key file; refuses to overwrite an existing file.
pub(crate) fn write_new(path: &Path, key: &SecretKey) -> Result<(), CliError> {
    write_new_file(path, keyfile::render(key).as_bytes())
}

/// Write `contents` to a new file (0600), crash-safely; an existing file is never replaced.
pub(crate) fn write_new_file(path: &Path, contents: &[u8]) -> Result<(), CliError> {
    durable::write(path, contents, 0o600, durable::Mode::CreateNew).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            CliError::Usage(format!(
                "{} already exists; refusing to overwrite a key",
                path.display()
            ))
        } else {
            CliError::io(format!("cannot write {}", path.display()), e)
        }
    })
}

/// Parse key file bytes (from a file or stdin).
pub(crate) fn parse(bytes: &[u8]) -> Result<SecretKey, CliError> {
    Ok(keyfile::parse(bytes)?)
}

/// Read a key file, warning (not failing) when others can read it, as ssh does for keys.
pub(crate) fn read(path: &Path) -> Result<SecretKey, CliError> {
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        eprintln!(
            "vbzkey: warning: {} is readable by other users; run `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
    parse(&read_file(path, MAX_KEY_FILE_LEN)?)
}

/// A recipient given on the command line: a `vkpub1.` key, or a file holding one (a public key
/// file, or a secret key file whose public key is derived).
pub(crate) fn recipient(arg: &str) -> Result<PublicKey, CliError> {
    if arg.starts_with(vbzkey_protocol::keys::PUBLIC_KEY_PREFIX) {
        return Ok(PublicKey::from_text(arg)?);
    }
    let path = Path::new(arg);
    if !path.exists() {
        return Err(CliError::Usage(format!(
            "--to must be a public key (vkpub1.…) or a file holding one; {arg:?} is neither"
        )));
    }
    let bytes = read_file(path, MAX_KEY_FILE_LEN)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| CliError::BadInput(format!("{} is not a text key file", path.display())))?;
    if text.trim_start().starts_with('{') {
        // An encrypted key file or a passphrase-key descriptor: both carry the public key.
        let public = vbzkey_softkey::KeyFile::from_json(text)
            .and_then(|f| f.public_key())
            .or_else(|_| {
                vbzkey_softkey::PassphraseKey::from_json(text).and_then(|d| d.public_key())
            })
            .map_err(|e| CliError::BadInput(format!("{}: {e}", path.display())))?;
        return Ok(public);
    }
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'));
    match lines.next() {
        Some(l) if l.starts_with(vbzkey_protocol::keys::SECRET_KEY_PREFIX) => {
            Ok(parse(&bytes)?.public_key().clone())
        }
        Some(l) => Ok(PublicKey::from_text(l)?),
        None => Err(CliError::BadInput(format!("{} holds no key", path.display()))),
    }
}
