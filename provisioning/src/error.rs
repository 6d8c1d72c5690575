//! The admin tool's one error type, its exit codes, and the dongle's refusals in words: what
//! is missing and what to do. Secrets never appear in a message (PIN files are named, never
//! quoted; shares and records are named by file and line).

use std::borrow::Cow;
use std::path::PathBuf;

use vbzkey_client::{AddrError, ClientError, HostKeyError, LinkError};
use vbzkey_protocol::KeyId;
use vbzkey_protocol::audit::AuditError;
use vbzkey_protocol::share::ShareError;
use vbzkey_protocol::wire::{
    DongleError, ItemError, MAX_BATCH, MAX_PIN_LEN, MIN_ADMIN_PIN_LEN, MIN_PIN_LEN,
};

use crate::rewrap::RewrapError;
use crate::rewrap_db::DbError;

/// Exit codes: one per class of failure, so a script can tell them apart. The codes are the
/// table every vbzkey tool shares ([`vbzkey_os::exit::Exit`], docs/CLI.md); these names are
/// the classes this tool uses.
pub(crate) mod exit {
    use vbzkey_os::exit::Exit;
    /// A file, the terminal or the database could not be read or written.
    pub(crate) const IO: u8 = Exit::Io.code();
    /// The command line is wrong or incomplete (clap uses 2 as well).
    pub(crate) const USAGE: u8 = Exit::Usage.code();
    /// What a file holds is wrong: a share, a key file, a record, a PIN of impossible length.
    pub(crate) const BAD_INPUT: u8 = Exit::BadInput.code();
    /// No dongle at the address, or no such key or paired host on it.
    pub(crate) const NOT_FOUND: u8 = Exit::NotFound.code();
    /// The dongle (or the tool, to protect data) refused in this state; the message says what
    /// is missing: a PIN, the admin PIN, a button press, a pairing, a re-wrap first.
    pub(crate) const REFUSED: u8 = Exit::Refused.code();
    /// A wrong PIN or admin PIN (it was counted).
    pub(crate) const WRONG_CREDENTIAL: u8 = Exit::WrongCredential.code();
    /// Too many wrong PINs or admin PINs: that credential is locked out.
    pub(crate) const LOCKED_OUT: u8 = Exit::LockedOut.code();
    /// The link broke mid-exchange, or the dongle failed or answered nonsense.
    pub(crate) const DONGLE_FAILED: u8 = Exit::DongleFailed.code();
    /// An audit log does not verify.
    pub(crate) const NOT_VERIFIED: u8 = Exit::NotVerified.code();
    /// A destructive command was not confirmed; nothing was changed.
    pub(crate) const ABORTED: u8 = Exit::Aborted.code();
}

/// A mistake on the command line the tool can see before asking the dongle.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Usage {
    /// A new PIN typed twice at the terminal, differently.
    #[error("the two {0}s typed differ; nothing was changed")]
    TypedPinsDiffer(String),
    /// `unpair LABEL` where several paired hosts share the label.
    #[error(
        "{count} paired hosts are labelled {label:?}; give the public key (vkpub1.…) of the one \
         to unpair, as `vbzkey-admin pairings` lists it"
    )]
    AmbiguousLabel {
        /// The label given.
        label: String,
        /// Hosts with it.
        count: usize,
    },
    /// An admin command without the admin PIN.
    #[error(
        "this needs the dongle's admin PIN: give it with --admin-pin-file FILE (backup, clone, \
         pairing, PIN changes and reset also ask for a press of the dongle's button)"
    )]
    NeedAdminPinFile,
    /// An admin command given the staff PIN.
    #[error(
        "the staff PIN does not authorise `{0}`: it opens records and nothing else. Give the admin \
         PIN with --admin-pin-file FILE (and press the dongle's button when asked)"
    )]
    StaffPinRefused(&'static str),
    /// `retire` without anything to check.
    #[error(
        "give the records to check: --records FILE, or --db sqlite:PATH (or \
         mysql://USER@localhost/DB?socket=PATH) --column TABLE.COLUMN"
    )]
    RetireNeedsRecords,
    /// `--column` not `TABLE.COLUMN`.
    #[error("--column {0:?}: write TABLE.COLUMN")]
    BadColumn(String),
    /// A destructive command with stdin not a terminal and no `--force`.
    #[error("this wipes the dongle's keys: run it in a terminal to confirm, or add --force")]
    ConfirmNeedsTerminal,
    /// A dongle address and a separate serial that do not fit together.
    #[error("{0}")]
    Addr(AddrError),
}

/// What is wrong with the recovery shares given to `restore`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SharesProblem {
    /// A line is not a share, or fails its checksum.
    #[error("{} line {line}: {source}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// Why.
        source: ShareError,
    },
    /// A file that is not text.
    #[error("{} is not text; a share line starts with vkshare1.", path.display())]
    NotText {
        /// The file.
        path: PathBuf,
    },
    /// No share at all.
    #[error("no recovery share was given (a share line starts with vkshare1.)")]
    None,
    /// Fewer different shares than the backup needs.
    #[error("{need} different shares are needed to restore this backup, and only {got} were given")]
    TooFew {
        /// The threshold.
        need: u8,
        /// Different shares given.
        got: usize,
    },
    /// Shares of different backups.
    #[error(
        "the shares come from different backups (their set ids differ): give shares of one backup"
    )]
    Mixed,
}

/// Why an audit log was not accepted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AuditProblem {
    /// The chain breaks.
    #[error("audit log does NOT verify: {0}")]
    Broken(AuditError),
    /// The chain holds, but its head is not the dongle's.
    #[error("audit log does NOT verify: the dongle's head hash differs from the chain")]
    HeadMismatch,
    /// The dongle gave fewer lines than its log holds.
    #[error("the dongle's log has {total} entries but only {fetched} came: run the command again")]
    Incomplete {
        /// Entries fetched.
        fetched: u64,
        /// Entries in the log.
        total: u64,
    },
    /// A file that starts after entry 0, with no header and no remembered head to start from.
    #[error(
        "the file starts at entry {first}, not at the log's start: give --after HEAD, the head \
         you remembered before it (an export made with --from starts with a header that has it)"
    )]
    Unanchored {
        /// The first entry in the file.
        first: String,
    },
    /// `--after` or `--head` is not a head hash.
    #[error("{0:?} is not a head hash (64 lower-case hex digits, as `audit export` prints)")]
    BadHead(String),
}

/// Everything a command can fail with.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AdminError {
    /// The command line, as the tool sees it.
    #[error(transparent)]
    Usage(#[from] Usage),
    /// A file (or stdin, `-`) could not be read or written.
    #[error("cannot {action} {}: {source}", shown(path, action))]
    Io {
        /// `read` or `write`.
        action: &'static str,
        /// The file (`-`: stdin).
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A host key file cannot be used.
    #[error(transparent)]
    HostKey(#[from] HostKeyError),
    /// The system's random number generator failed (a host key for this process only).
    #[error("the system's random number generator failed: {0}")]
    Random(getrandom::Error),
    /// The recovery shares.
    #[error(transparent)]
    Shares(#[from] SharesProblem),
    /// The dongle refused or could not be reached (its typed refusal inside).
    #[error("{}", explain(.0))]
    Dongle(ClientError),
    /// `unpair LABEL` where no paired host has the label.
    #[error(
        "no paired host is labelled {0:?}; give a label or a public key (vkpub1.…) that \
         `vbzkey-admin pairings` lists"
    )]
    NoSuchHost(String),
    /// `retire` of the active key: new records are sealed to it, so re-wrapping cannot help.
    #[error(
        "key {} is the active key (new records are sealed to it): rotate first \
         (`vbzkey-admin rotate`), re-wrap the records to the new key, then retire this one",
        .0.grouped()
    )]
    RetireActive(KeyId),
    /// `retire` of a key that records are still sealed to.
    #[error(
        "{count} record(s) in what was given are still sealed to key {key_id}: re-wrap them first (`vbzkey-admin rewrap`)"
    )]
    StillInUse {
        /// The key.
        key_id: KeyId,
        /// Records found.
        count: usize,
    },
    /// An audit log was not accepted.
    #[error(transparent)]
    Audit(#[from] AuditProblem),
    /// A re-wrap of a file failed.
    #[error(transparent)]
    Rewrap(#[from] RewrapError),
    /// A database re-wrap or check failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The admin did not confirm a destructive command.
    #[error("not confirmed; nothing was changed")]
    NotConfirmed,
}

/// A path as the message shows it: `-` is the standard stream of the action.
fn shown(path: &std::path::Path, action: &str) -> String {
    match (path.as_os_str() == "-", action) {
        (true, "read") => "standard input".into(),
        (true, _) => "standard output".into(),
        (false, _) => path.display().to_string(),
    }
}

impl From<ClientError> for AdminError {
    fn from(error: ClientError) -> Self {
        AdminError::Dongle(error)
    }
}

impl AdminError {
    /// A file error.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        AdminError::Io { action, path: path.into(), source }
    }

    /// The exit code of this failure's class.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            AdminError::Usage(_) => exit::USAGE,
            AdminError::Io { .. } => exit::IO,
            AdminError::HostKey(HostKeyError::Read { .. }) => exit::IO,
            AdminError::HostKey(HostKeyError::Format { .. }) => exit::BAD_INPUT,
            AdminError::Random(_) => exit::IO,
            AdminError::Shares(_) => exit::BAD_INPUT,
            AdminError::Dongle(error) => client_class(error),
            AdminError::StillInUse { .. } | AdminError::RetireActive(_) => exit::REFUSED,
            AdminError::NoSuchHost(_) => exit::NOT_FOUND,
            AdminError::Audit(AuditProblem::Unanchored { .. } | AuditProblem::BadHead(_)) => {
                exit::USAGE
            }
            AdminError::Audit(AuditProblem::Incomplete { .. }) => exit::DONGLE_FAILED,
            AdminError::Audit(_) => exit::NOT_VERIFIED,
            AdminError::Rewrap(e) => e.exit_code(),
            AdminError::Db(e) => e.exit_code(),
            AdminError::NotConfirmed => exit::ABORTED,
        }
    }
}

/// The class of a record the dongle did not open (`rewrap`), as `vbzkey open` classes one
/// (docs/CLI.md): sealed to a key it does not hold is "not found", altered or under another
/// context "does not verify", malformed "bad input".
pub(crate) fn item_class(e: &ItemError) -> u8 {
    use vbzkey_protocol::record::RecordErrorCode as C;
    match e {
        ItemError::NoSuchKey | ItemError::Record(C::UnknownKeyId) => exit::NOT_FOUND,
        ItemError::Record(C::TagMismatch | C::LowOrderPoint) => exit::NOT_VERIFIED,
        ItemError::Record(C::Rng | C::KeyTransfer) => exit::DONGLE_FAILED,
        ItemError::Record(_) => exit::BAD_INPUT,
    }
}

fn client_class(e: &ClientError) -> u8 {
    match e {
        ClientError::Dongle(d) => refusal(d).0,
        ClientError::Link(l) => link_class(l),
        ClientError::Unexpected { .. } | ClientError::NoActiveKey => exit::DONGLE_FAILED,
    }
}

fn link_class(e: &LinkError) -> u8 {
    match e {
        e if e.is_absent() => exit::NOT_FOUND,
        LinkError::Refused(d) => refusal(d).0,
        LinkError::HandshakeRejected => exit::REFUSED,
        LinkError::UsbOpen { .. } => exit::IO,
        _ => exit::DONGLE_FAILED,
    }
}

/// The words for a client error.
fn explain(e: &ClientError) -> Cow<'static, str> {
    match e {
        ClientError::Dongle(d) => refusal(d).1,
        ClientError::Link(LinkError::Refused(d)) => refusal(d).1,
        other => other.to_string().into(),
    }
}

/// The exit code and the words for each refusal of the dongle: one arm per `DongleError`, so a
/// new refusal is one new arm here.
fn refusal(e: &DongleError) -> (u8, Cow<'static, str>) {
    use DongleError as D;
    use exit::*;
    let s = |code, text: &'static str| (code, Cow::Borrowed(text));
    match e {
        D::NotInitialised => s(
            REFUSED,
            "the dongle has no key yet: set it up with `vbzkey-admin init` (or `restore` it from \
             recovery shares, or `clone` into it)",
        ),
        D::AlreadyInitialised => s(
            REFUSED,
            "the dongle already has a key (`vbzkey-admin info` shows it); `vbzkey-admin reset` \
             starts over, once you hold a backup",
        ),
        D::Locked => s(REFUSED, "the dongle is locked: give its PIN with --pin-file FILE"),
        D::WrongPin { tries_left } => (
            WRONG_CREDENTIAL,
            format!(
                "wrong staff PIN (--pin-file): {tries_left} tries left before unsealing is locked; \
                 check the file (its first line is the PIN)"
            )
            .into(),
        ),
        D::WrongAdminPin { tries_left } => (
            WRONG_CREDENTIAL,
            format!(
                "wrong admin PIN (--admin-pin-file): {tries_left} tries left before admin \
                 commands are refused for good; check the file (its first line is the PIN)"
            )
            .into(),
        ),
        D::LockedOut => s(
            LOCKED_OUT,
            "the staff PIN is locked out after too many wrong tries: an admin sets a new one \
             with `vbzkey-admin --admin-pin-file ADMIN set-pin --new-pin-file NEW` (and a press \
             of the dongle's button)",
        ),
        D::AdminLockedOut => s(
            LOCKED_OUT,
            "the admin PIN is locked out after too many wrong tries: admin commands are refused \
             for good (unsealing still works). Make sure you hold recovery shares, then wipe it \
             with `vbzkey-admin reset --force` (a press of the button) and restore the shares",
        ),
        D::BadPin => (
            BAD_INPUT,
            format!(
                "a staff PIN must be {MIN_PIN_LEN} to {MAX_PIN_LEN} bytes, an admin PIN \
                 {MIN_ADMIN_PIN_LEN} to {MAX_PIN_LEN}: check the PIN file (its first line is the PIN)"
            )
            .into(),
        ),
        D::SamePin => s(
            BAD_INPUT,
            "the admin PIN must differ from the staff PIN: choose another one",
        ),
        D::DeviceSecretMissing => s(
            REFUSED,
            "the dongle could not read its OTP device secret at boot, so its key store stays \
             closed; no PIN was checked or counted. On the dongle: `systemctl status vbzkey-otp`. \
             Do not reset it: the keys come back with the secret",
        ),
        D::HostNotTrusted => s(
            REFUSED,
            "this computer holds no share of the dongle's keys: use --host-key with a host key \
             paired with `vbzkey-admin pair`, or pair this one from a paired computer",
        ),
        D::RateLimited { retry_after_ms } => (
            REFUSED,
            format!(
                "the dongle's rate limit is reached: wait {} s and run the command again",
                retry_after_ms.div_ceil(1000).max(1)
            )
            .into(),
        ),
        D::BadBatchSize => (
            USAGE,
            format!("a batch holds 1 to {MAX_BATCH} records: use --batch 1 to {MAX_BATCH}").into(),
        ),
        D::NotConfirmed => s(
            ABORTED,
            "this needs a press of the dongle's button, and none came in time: run the command \
             again and press the button while its light blinks (a dongle without a button cannot \
             confirm)",
        ),
        D::NoSuchKey => {
            s(NOT_FOUND, "the dongle holds no key with that id (`vbzkey-admin info` lists them)")
        }
        D::KeyIsActive => s(
            REFUSED,
            "that is the active key, which new records are sealed to: `vbzkey-admin rotate` \
             first, re-wrap the records, then retire it",
        ),
        D::BadPublicKey => s(REFUSED, "the dongle re-seals only to its own keys"),
        D::Storage => s(
            DONGLE_FAILED,
            "the dongle could not read or write its storage: look at its log (journalctl -u \
             vbzkey-firmware); its SD card may be failing",
        ),
        D::KeyStoreDamaged => s(
            DONGLE_FAILED,
            "the dongle's key store is damaged or belongs to another board (it was left \
             untouched): restore your recovery shares onto a reset dongle",
        ),
        D::AuditBroken => s(
            NOT_VERIFIED,
            "the dongle's audit log fails verification, so it refuses everything that uses or \
             changes keys, PINs or pairings. Look at its last lines (`vbzkey-admin audit \
             export`), keep the SD card's audit files as evidence, then `vbzkey-admin reset` \
             (a press of the button; the broken log is set aside on the card, not deleted) and \
             restore from the recovery shares",
        ),
        D::AuditBeyond { total } => (
            BAD_INPUT,
            format!("the dongle's audit log has {total} entries: start from a lower one").into(),
        ),
        D::Malformed | D::UnsupportedVersion => s(
            DONGLE_FAILED,
            "the dongle could not read the request: are its firmware and this tool the same \
             version (`vbzkey-admin info`)?",
        ),
        D::NotAllowed => {
            s(REFUSED, "the dongle does not allow this in its current state, or from this host")
        }
        D::Rng => {
            s(DONGLE_FAILED, "the dongle's random number generator failed; nothing was changed")
        }
        D::BadBackupParameters => s(
            USAGE,
            "a backup needs --threshold of at least 2 and --shares of at most 16, with the \
             threshold no larger than the number of shares",
        ),
        D::SharesMixed => s(
            BAD_INPUT,
            "the recovery shares come from different backups: give shares of one backup",
        ),
        D::TooFewShares { need, got } => (
            BAD_INPUT,
            format!("{need} different recovery shares are needed, {got} were given").into(),
        ),
        D::WrongShare => s(
            BAD_INPUT,
            "the recovery shares do not rebuild the keys: one of them is wrong (altered, or from \
             another backup)",
        ),
        D::NoCloneInProgress => s(
            REFUSED,
            "the target dongle has no clone in progress (was it restarted?): run `vbzkey-admin \
             clone` again",
        ),
        D::BadCloneBlob => s(
            REFUSED,
            "the clone data is not for this target dongle, or was altered on the way: run \
             `vbzkey-admin clone` again",
        ),
        D::AdminRequired => s(
            REFUSED,
            "this needs the dongle's admin PIN: give it with --admin-pin-file FILE (the admin PIN \
             set at `init`); backup, clone, pairing, PIN changes and reset also ask for a press of \
             the dongle's button",
        ),
        D::PairingRequired => s(
            REFUSED,
            "the dongle serves paired hosts only: give --host-key FILE (a host key paired with \
             `vbzkey-admin pair`)",
        ),
        D::NotPaired => s(
            REFUSED,
            "this host key is not paired with the dongle: pair it from a paired host \
             (`vbzkey-admin --host-key PAIRED.key pair --new-host-key THIS.key`)",
        ),
        D::BadPairing => s(
            NOT_FOUND,
            "no such paired host (`vbzkey-admin pairings` lists them), or a label longer than 64 \
             bytes",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vbzkey_protocol::record::RecordErrorCode;

    fn dongle(e: DongleError) -> AdminError {
        ClientError::Dongle(e).into()
    }

    #[test]
    fn each_class_of_failure_has_its_own_exit_code() {
        let cases: Vec<(AdminError, u8)> = vec![
            (Usage::NeedAdminPinFile.into(), exit::USAGE),
            (Usage::StaffPinRefused("backup").into(), exit::USAGE),
            (AdminError::io("read", "/x", std::io::ErrorKind::NotFound.into()), exit::IO),
            (SharesProblem::Mixed.into(), exit::BAD_INPUT),
            (
                ClientError::Link(LinkError::NoUsbDongle { vid: 1, pid: 2, serial: None }).into(),
                exit::NOT_FOUND,
            ),
            (dongle(DongleError::NoSuchKey), exit::NOT_FOUND),
            (dongle(DongleError::AdminRequired), exit::REFUSED),
            (dongle(DongleError::NotConfirmed), exit::ABORTED),
            (dongle(DongleError::HostNotTrusted), exit::REFUSED),
            (dongle(DongleError::DeviceSecretMissing), exit::REFUSED),
            (dongle(DongleError::PairingRequired), exit::REFUSED),
            (ClientError::Link(LinkError::Refused(DongleError::NotPaired)).into(), exit::REFUSED),
            (dongle(DongleError::WrongPin { tries_left: 3 }), exit::WRONG_CREDENTIAL),
            (dongle(DongleError::LockedOut), exit::LOCKED_OUT),
            (dongle(DongleError::AdminLockedOut), exit::LOCKED_OUT),
            (dongle(DongleError::WrongAdminPin { tries_left: 2 }), exit::WRONG_CREDENTIAL),
            (
                ClientError::Link(LinkError::Recv(vbzkey_client::TransportError::Closed)).into(),
                exit::DONGLE_FAILED,
            ),
            (
                ClientError::Unexpected { request: "Hello", answer: "Ok" }.into(),
                exit::DONGLE_FAILED,
            ),
            (AuditProblem::HeadMismatch.into(), exit::NOT_VERIFIED),
            (DbError::BadUrl("postgres://x".into()).into(), exit::USAGE),
            (DbError::from(crate::rewrap_mysql::UrlProblem::PasswordInUrl).into(), exit::USAGE),
            (
                DbError::NotARecord { db: "shop@store".into(), at: "cust_cards row 7".into() }
                    .into(),
                exit::BAD_INPUT,
            ),
            (
                DbError::PasswordFile {
                    path: "/etc/pw".into(),
                    source: std::io::ErrorKind::NotFound.into(),
                }
                .into(),
                exit::IO,
            ),
            (AdminError::NotConfirmed, exit::ABORTED),
            // A record that does not open in `rewrap`: as `vbzkey open` (docs/CLI.md).
            (
                DbError::DoesNotOpen {
                    table: "cust_cards".into(),
                    id: "7".into(),
                    error: ItemError::Record(RecordErrorCode::TagMismatch),
                }
                .into(),
                exit::NOT_VERIFIED,
            ),
            (
                RewrapError::Line {
                    path: "cards.jsonl".into(),
                    line: 3,
                    problem: crate::rewrap::LineProblem::DoesNotOpen(ItemError::NoSuchKey),
                }
                .into(),
                exit::NOT_FOUND,
            ),
            (
                RewrapError::Line {
                    path: "cards.jsonl".into(),
                    line: 3,
                    problem: crate::rewrap::LineProblem::NoRecord,
                }
                .into(),
                exit::BAD_INPUT,
            ),
        ];
        for (e, code) in cases {
            assert_eq!(e.exit_code(), code, "{e}");
        }
        let codes = [
            exit::IO,
            exit::USAGE,
            exit::BAD_INPUT,
            exit::NOT_FOUND,
            exit::REFUSED,
            exit::WRONG_CREDENTIAL,
            exit::LOCKED_OUT,
            exit::DONGLE_FAILED,
            exit::NOT_VERIFIED,
            exit::ABORTED,
        ];
        let mut distinct = codes.to_vec();
        distinct.dedup();
        assert_eq!(distinct.len(), codes.len());
        let help = vbzkey_os::exit::Exit::help();
        for c in codes {
            assert!(help.contains(&format!("{c:>2}  ")), "exit code {c} is not in --help");
        }
    }

    #[test]
    fn refusals_say_what_is_missing_and_what_to_do() {
        let says = |e: DongleError, words: &[&str]| {
            let msg = dongle(e).to_string();
            for w in words {
                assert!(msg.contains(w), "{w:?} not in {msg:?}");
            }
        };
        says(DongleError::LockedOut, &["locked out", "set-pin", "admin"]);
        says(DongleError::AdminLockedOut, &["admin PIN", "locked out", "reset --force", "restore"]);
        says(DongleError::AdminRequired, &["admin PIN", "--admin-pin-file", "button"]);
        says(DongleError::NotConfirmed, &["button", "run the command again"]);
        says(DongleError::HostNotTrusted, &["--host-key", "pair"]);
        says(
            DongleError::DeviceSecretMissing,
            &["vbzkey-otp", "checked or counted", "Do not reset"],
        );
        let staff = AdminError::from(Usage::StaffPinRefused("backup")).to_string();
        assert!(
            staff.contains("staff PIN does not authorise `backup`")
                && staff.contains("--admin-pin-file")
        );
        says(DongleError::Locked, &["--pin-file"]);
        says(DongleError::PairingRequired, &["--host-key", "pair"]);
        says(DongleError::KeyIsActive, &["rotate"]);
        says(DongleError::RateLimited { retry_after_ms: 1500 }, &["wait 2 s"]);
    }

    #[test]
    fn a_dash_names_the_standard_stream() {
        let e = |action| AdminError::io(action, "-", std::io::ErrorKind::BrokenPipe.into());
        assert!(e("read").to_string().starts_with("cannot read standard input: "));
        assert!(e("write").to_string().starts_with("cannot write standard output: "));
        let f = AdminError::io("read", "/etc/pin", std::io::ErrorKind::NotFound.into());
        assert!(f.to_string().starts_with("cannot read /etc/pin: "));
    }

    #[test]
    fn a_wrong_credential_is_named() {
        let staff = dongle(DongleError::WrongPin { tries_left: 4 }).to_string();
        assert!(staff.starts_with("wrong staff PIN (--pin-file): 4 tries left"), "{staff}");
        let admin = dongle(DongleError::WrongAdminPin { tries_left: 3 }).to_string();
        assert!(admin.starts_with("wrong admin PIN (--admin-pin-file): 3 tries left"), "{admin}");
    }
}
