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

/// A key file of any of the project's kinds, as read from disk.
pub(crate) enum Loaded {
    /// A `vksec1.` secret key file.
    Secret(SecretKey),
    /// A passphrase-encrypted key file (`vbzkey keygen --encrypt`).
    Encrypted(vbzkey_softkey::KeyFile),
    /// A passphrase-key descriptor (`vbzkey passphrase-key`): the key is the passphrase.
    Passphrase(vbzkey_softkey::PassphraseKey),
    /// A `vkpub1.` public key file.
    Public(PublicKey),
}

impl Loaded {
    /// The public key, which every kind carries without a passphrase.
    pub(crate) fn public_key(&self, path: &Path) -> Result<PublicKey, CliError> {
        let soft = |e: vbzkey_softkey::SoftKeyError| {
            CliError::BadInput(format!("{}: {e}", path.display()))
        };
        match self {
            Loaded::Secret(k) => Ok(k.public_key().clone()),
            Loaded::Encrypted(f) => f.public_key().map_err(soft),
            Loaded::Passphrase(d) => d.public_key().map_err(soft),
            Loaded::Public(p) => Ok(p.clone()),
        }
    }
}

/// Read a key file of any kind. Files that hold a secret (a plain key, or an encrypted one
/// open to offline guessing) get a warning, not a failure, when others can read them, as
/// ssh does; public keys and passphrase descriptors are not secret.
pub(crate) fn load(path: &Path) -> Result<Loaded, CliError> {
    let bytes = read_file(path, MAX_KEY_FILE_LEN)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| CliError::BadInput(format!("{} is not a text key file", path.display())))?;
    let loaded = if text.trim_start().starts_with('{') {
        if let Ok(f) = vbzkey_softkey::KeyFile::from_json(text) {
            Loaded::Encrypted(f)
        } else {
            vbzkey_softkey::PassphraseKey::from_json(text)
                .map(Loaded::Passphrase)
                .map_err(|e| CliError::BadInput(format!("{}: {e}", path.display())))?
        }
    } else {
        let mut lines =
            text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'));
        match lines.next() {
            Some(l) if l.starts_with(vbzkey_protocol::keys::SECRET_KEY_PREFIX) => {
                Loaded::Secret(parse(&bytes)?)
            }
            Some(l) => Loaded::Public(PublicKey::from_text(l)?),
            None => return Err(CliError::BadInput(format!("{} holds no key", path.display()))),
        }
    };
    if matches!(loaded, Loaded::Secret(_) | Loaded::Encrypted(_))
        && let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        eprintln!(
            "vbzkey: warning: {} is readable by other users; run `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
    Ok(loaded)
}

/// The secret key in a key file: a plain one as it is; an encrypted key file or a passphrase
/// descriptor with `passphrase` (read from `--passphrase-file`).
pub(crate) fn secret(path: &Path, passphrase: Option<&[u8]>) -> Result<SecretKey, CliError> {
    let loaded = load(path)?;
    let needs = || {
        CliError::Usage(format!(
            "{} is protected by a passphrase; give it with --passphrase-file FILE",
            path.display()
        ))
    };
    let wrong = |e: vbzkey_softkey::SoftKeyError| match e {
        vbzkey_softkey::SoftKeyError::WrongPassphrase => {
            CliError::WrongPassphrase(path.display().to_string())
        }
        e => CliError::BadInput(format!("{}: {e}", path.display())),
    };
    match loaded {
        Loaded::Secret(k) => Ok(k),
        Loaded::Encrypted(f) => f.open(passphrase.ok_or_else(needs)?).map_err(wrong),
        Loaded::Passphrase(d) => d.unlock(passphrase.ok_or_else(needs)?).map_err(wrong),
        Loaded::Public(_) => Err(CliError::BadInput(format!(
            "{} holds a public key; opening needs the secret key file",
            path.display()
        ))),
    }
}

/// A recipient given on the command line: a `vkpub1.` key, or a file holding one (a public key
/// file, a secret key file, an encrypted key file or a passphrase descriptor).
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
    load(path)?.public_key(path)
}
