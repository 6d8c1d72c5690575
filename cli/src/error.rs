//! The CLI's error type and the class of exit code (the table all vbzkey tools share,
//! `vbzkey_os::exit`) each error has.

use vbzkey_os::exit::Exit;
use vbzkey_protocol::KeyError;
use vbzkey_protocol::keyfile::KeyFileError;
use vbzkey_protocol::record::RecordError;
use vbzkey_protocol::split::SplitError;

/// Everything a command can fail with. Messages never include secret or customer data.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("{0}")]
    BadInput(String),
    /// A wrong passphrase for an encrypted key file or a passphrase descriptor.
    #[error("wrong passphrase for {0}")]
    WrongPassphrase(String),
    #[error("bad key: {0}")]
    Key(#[from] KeyError),
    #[error("{0}")]
    KeyFile(#[from] KeyFileError),
    #[error("{0}")]
    Split(#[from] SplitError),
    #[error("{0}")]
    Record(RecordError),
}

impl From<RecordError> for CliError {
    fn from(e: RecordError) -> Self {
        CliError::Record(e)
    }
}

impl CliError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        CliError::Io { what: what.into(), source }
    }

    /// The class of this failure, in the table all vbzkey tools share.
    pub(crate) fn exit(&self) -> Exit {
        match self {
            CliError::Usage(_) => Exit::Usage,
            CliError::Io { .. } => Exit::Io,
            CliError::WrongPassphrase(_) => Exit::WrongCredential,
            CliError::BadInput(_)
            | CliError::Key(_)
            | CliError::KeyFile(_)
            | CliError::Split(_) => Exit::BadInput,
            CliError::Record(e) => match e {
                RecordError::UnknownKeyId { .. } => Exit::NotFound,
                RecordError::TagMismatch | RecordError::LowOrderPoint => Exit::NotVerified,
                RecordError::Rng => Exit::Io,
                _ => Exit::BadInput,
            },
        }
    }

    /// One line telling the user what to do next, where there is something useful to say.
    pub(crate) fn hint(&self) -> Option<&'static str> {
        match self {
            CliError::Record(RecordError::UnknownKeyId { .. }) => {
                Some("open it with the key whose id the record names (see `vbzkey inspect`)")
            }
            CliError::Record(RecordError::TagMismatch) => Some(
                "check that --context is exactly the one used when sealing (table/id/field); \
                 otherwise the stored record was altered",
            ),
            CliError::Record(RecordError::BadTextPrefix | RecordError::BadBase64) => {
                Some("pass the record as stored: `vk1.` text or the raw binary bytes")
            }
            CliError::Key(_) | CliError::KeyFile(_) => {
                Some("public keys start with `vkpub1.`; key files come from `vbzkey keygen`")
            }
            _ => None,
        }
    }
}
