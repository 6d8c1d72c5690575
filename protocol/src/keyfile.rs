//! Secret key files, one rule for every reader: `#` comment lines, blank lines, and exactly one
//! `vksec1.` line. The CLI's key files (`vbzkey keygen`) and the hosts' session keys
//! (`vbzkey-admin pair`, the bridge's `host_key`) are the same format.
//!
//! ```text
//! # vbzkey secret key (format v1): keep this file private.
//! # public key: vkpub1.…
//! # key id: 5b97724a44961ff0
//! vksec1.…
//! ```
//!
//! Reading is the caller's (this crate does no I/O); a reader reads at most
//! [`MAX_KEY_FILE_LEN`] + 1 bytes and hands them to [`parse`], which refuses anything longer.

use alloc::format;
use alloc::string::String;

use zeroize::Zeroizing;

use crate::keys::{KeyError, SecretKey};

/// A key file is a few short lines; anything larger is not one (and is not read further).
pub const MAX_KEY_FILE_LEN: usize = 4096;

/// Why bytes are not a key file. Never quotes the file: it may hold a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFileError {
    /// Longer than [`MAX_KEY_FILE_LEN`].
    #[error("the key file is larger than {MAX_KEY_FILE_LEN} bytes; is it a vbzkey key file?")]
    TooLarge,
    /// Not UTF-8 text.
    #[error("the key file is not text; is it a vbzkey key file?")]
    NotText,
    /// Only comments and blank lines.
    #[error("the key file holds no key (a `vksec1.` line)")]
    NoKey,
    /// More than one non-comment line: which one is meant is not guessed.
    #[error("the key file holds more than one key line")]
    SeveralKeys,
    /// The key line is not a valid secret key.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// Parse key file bytes under the one rule: at most [`MAX_KEY_FILE_LEN`] bytes of UTF-8, and a
/// single non-comment line, which is the `vksec1.` key.
pub fn parse(bytes: &[u8]) -> Result<SecretKey, KeyFileError> {
    if bytes.len() > MAX_KEY_FILE_LEN {
        return Err(KeyFileError::TooLarge);
    }
    let text = core::str::from_utf8(bytes).map_err(|_| KeyFileError::NotText)?;
    let mut keys = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'));
    let line = keys.next().ok_or(KeyFileError::NoKey)?;
    if keys.next().is_some() {
        return Err(KeyFileError::SeveralKeys);
    }
    Ok(SecretKey::from_text(line)?)
}

/// The text of a key file for `key`: comments naming its public key and key id, then the key.
pub fn render(key: &SecretKey) -> Zeroizing<String> {
    let mut s = Zeroizing::new(String::new());
    s.push_str("# vbzkey secret key (format v1): keep this file private.\n");
    s.push_str(&format!("# public key: {}\n", key.public_key()));
    s.push_str(&format!("# key id: {}\n", key.key_id()));
    s.push_str(&key.to_text());
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn rendered_files_parse_back() {
        let key = SecretKey::derive(&[9u8; 32]);
        let text = render(&key);
        assert_eq!(parse(text.as_bytes()), Ok(key.clone()));
        let crlf = text.replace('\n', "\r\n");
        assert_eq!(parse(crlf.as_bytes()), Ok(key));
    }

    #[test]
    fn anything_but_one_key_line_is_refused() {
        let key = SecretKey::derive(&[9u8; 32]);
        let line = key.to_text();
        assert_eq!(parse(b"# only a comment\n\n"), Err(KeyFileError::NoKey));
        assert_eq!(parse(b""), Err(KeyFileError::NoKey));
        let two = format!("{}\n{}\n", line.as_str(), line.as_str());
        assert_eq!(parse(two.as_bytes()), Err(KeyFileError::SeveralKeys));
        let trailing = format!("{}\nsomething else\n", line.as_str());
        assert_eq!(parse(trailing.as_bytes()), Err(KeyFileError::SeveralKeys));
        assert_eq!(parse(&[0xff, 0xfe, b'v']), Err(KeyFileError::NotText));
        assert!(matches!(parse(b"vkpub1.abc\n"), Err(KeyFileError::Key(_))));
        assert!(matches!(parse("vksec1.\u{e9}\u{e9}\n".as_bytes()), Err(KeyFileError::Key(_))));
    }

    #[test]
    fn oversized_files_are_refused_even_with_a_valid_key() {
        let key = SecretKey::derive(&[9u8; 32]);
        let mut big = render(&key).as_bytes().to_vec();
        big.extend(vec![b'#'; MAX_KEY_FILE_LEN]);
        assert_eq!(parse(&big), Err(KeyFileError::TooLarge));
    }

    #[test]
    fn errors_never_quote_the_file() {
        let key = SecretKey::derive(&[9u8; 32]);
        let line = key.to_text();
        let damaged = format!("{}x\n", line.as_str());
        let msg = parse(damaged.as_bytes()).unwrap_err().to_string();
        assert!(!msg.contains(&line[7..20]), "{msg}");
    }
}
