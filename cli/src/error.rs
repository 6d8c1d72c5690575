//! The CLI's error type and the exit codes it maps to.

use std::process::ExitCode;

use vbzkey_protocol::KeyError;
use vbzkey_protocol::keyfile::KeyFileError;
use vbzkey_protocol::record::RecordError;
use vbzkey_protocol::split::SplitError;

/// Exit codes, documented in `vbzkey --help` and the README.
pub(crate) mod exit {
    /// Files or streams could not be read or written.
    pub(crate) const IO: u8 = 1;
    /// The command line is wrong (clap uses 2 as well).
    pub(crate) const USAGE: u8 = 2;
    /// The input (record, key, JSON, value) is malformed.
    pub(crate) const BAD_INPUT: u8 = 3;
    /// A well-formed record does not open: wrong key, wrong context or tampered.
    pub(crate) const CRYPTO: u8 = 4;
}

/// Everything a command can fail with. Messages never include secret or customer data.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("{0}")]
    BadInput(String),
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

    pub(crate) fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            CliError::Usage(_) => exit::USAGE,
            CliError::Io { .. } => exit::IO,
            CliError::BadInput(_)
            | CliError::Key(_)
            | CliError::KeyFile(_)
            | CliError::Split(_) => exit::BAD_INPUT,
            CliError::Record(e) => match e {
                RecordError::UnknownKeyId { .. }
                | RecordError::TagMismatch
                | RecordError::LowOrderPoint => exit::CRYPTO,
                RecordError::Rng => exit::IO,
                _ => exit::BAD_INPUT,
            },
        })
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
