//! `vbzkey-firmware otp status|program|lock|save`: the OTP device secret, done safely.
//!
//! Programming refuses once the state directory holds anything sealed (a key store sealed
//! without the secret would not gain it, and the admin would believe it had), refuses rows
//! that already hold a value (OTP bits never clear), and reads the rows back. `save` is what
//! the boot unit runs as root: it hands rows 36–43, and nothing else of the OTP, to the
//! unprivileged firmware in a file on `/run`, and fails loudly when they cannot be read.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use vbzkey_hardware::otp::{self, OtpAccess, OtpError, OtpRows, VcTools};
use vbzkey_os::durable;
use vbzkey_os::exit::Exit;
use zeroize::Zeroizing;

/// Exit code when the OTP cannot be read or written: the board's hardware failed (the table
/// all vbzkey tools share, docs/CLI.md).
const EXIT_OTP: u8 = Exit::DongleFailed.code();
/// Exit code when a request is refused to protect the dongle.
const EXIT_REFUSED: u8 = Exit::Refused.code();
/// The files that are sealed to the board: once one exists, programming OTP is refused.
const SEALED_FILES: [&str; 2] = ["keystore.v1", "device-key.v1"];

#[derive(Subcommand)]
pub(crate) enum OtpCommand {
    /// Show whether OTP rows 36-43 hold a device secret, and what the state directory is
    /// sealed to. Never prints the secret.
    #[command(
        after_help = "Example:\n  sudo vbzkey-firmware otp status --state-dir /var/lib/vbzkey"
    )]
    Status {
        /// The firmware's state directory.
        #[arg(long, default_value = "/var/lib/vbzkey")]
        state_dir: PathBuf,
        /// Print `{"otp": "unprogrammed"|"programmed"|"partial", "rows_set", "sealed": [{"file",
        /// "to_otp"}]}` as JSON (never the secret).
        #[arg(long)]
        json: bool,
    },
    /// Program 32 random bytes into OTP rows 36-43 and read them back. IRREVERSIBLE. Refused
    /// once the state directory holds a key store or device key, and when the rows already
    /// hold a value.
    #[command(after_help = "Example (before the firmware first starts):\n  \
        sudo vbzkey-firmware otp program --state-dir /var/lib/vbzkey")]
    Program {
        /// The firmware's state directory.
        #[arg(long, default_value = "/var/lib/vbzkey")]
        state_dir: PathBuf,
        /// Do not ask for confirmation (scripts).
        #[arg(long)]
        yes: bool,
    },
    /// Lock OTP rows 36-43 against any further write. IRREVERSIBLE; optional.
    #[command(after_help = "Example:\n  sudo vbzkey-firmware otp lock")]
    Lock {
        /// Do not ask for confirmation (scripts).
        #[arg(long)]
        yes: bool,
    },
    /// Save rows 36-43 for the firmware (run as root at boot by vbzkey-otp.service). Fails
    /// when the rows cannot be read, so the failure shows in `systemctl --failed`.
    #[command(after_help = "Example:\n  vbzkey-firmware otp save --output /run/vbzkey/otp-dump")]
    Save {
        /// Where to write the rows (mode 0400; put it on a tmpfs such as /run). (`--out`, its
        /// old spelling, still works.)
        #[arg(short, long = "output", alias = "out")]
        out: PathBuf,
    },
}

/// Why an OTP command stopped: a message for the admin and the exit code.
struct Stop(u8, String);

impl From<OtpError> for Stop {
    fn from(e: OtpError) -> Self {
        let code = match e {
            OtpError::AlreadyProgrammed { .. } => EXIT_REFUSED,
            _ => EXIT_OTP,
        };
        Stop(code, e.to_string())
    }
}

pub(crate) fn run(cmd: OtpCommand) -> ExitCode {
    let result = match cmd {
        OtpCommand::Status { state_dir, json } => status(&VcTools, &state_dir, json),
        OtpCommand::Program { state_dir, yes } => program(&VcTools, &state_dir, yes),
        OtpCommand::Lock { yes } => lock(&VcTools, yes),
        OtpCommand::Save { out } => save(&VcTools, &out),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Stop(code, msg)) => {
            vbzkey_os::exit::error("vbzkey-firmware", msg);
            ExitCode::from(code)
        }
    }
}

fn describe(rows: &OtpRows) -> String {
    match rows {
        OtpRows::Unprogrammed => {
            "not programmed (a copied SD card is protected by the PIN alone)".into()
        }
        OtpRows::Programmed(_) => "programmed: this board has a device secret".into(),
        OtpRows::Partial { rows_set, .. } => format!(
            "partly programmed ({rows_set} of 8 rows hold a value): used as the device secret, \
             but weaker, and it can never be completed"
        ),
    }
}

/// The sealed files present in `state_dir`, and whether each is sealed to the OTP secret.
fn sealed_files(state_dir: &Path) -> Result<Vec<(&'static str, Option<bool>)>, Stop> {
    let mut found = Vec::new();
    for name in SEALED_FILES {
        let path = state_dir.join(name);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let otp =
                    vbzkey_firmware::keystore::KeyStore::parse(&bytes).ok().map(|s| s.otp_used());
                found.push((name, otp));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Stop(
                    EXIT_OTP,
                    format!("cannot read {}: {e} (run as root)", path.display()),
                ));
            }
        }
    }
    Ok(found)
}

fn status(access: &dyn OtpAccess, state_dir: &Path, json: bool) -> Result<(), Stop> {
    let rows = otp::read(access)?;
    let files = sealed_files(state_dir)?;
    if json {
        let (otp, rows_set) = match &rows {
            OtpRows::Unprogrammed => ("unprogrammed", 0),
            OtpRows::Programmed(_) => ("programmed", otp::ROWS),
            OtpRows::Partial { rows_set, .. } => ("partial", u32::from(*rows_set)),
        };
        let sealed: Vec<_> = files
            .iter()
            .map(|(name, to_otp)| serde_json::json!({ "file": name, "to_otp": to_otp }))
            .collect();
        let v = serde_json::json!({ "otp": otp, "rows_set": rows_set, "sealed": sealed });
        println!("{v}");
        return Ok(());
    }
    println!("OTP rows {}-{}: {}", otp::FIRST_ROW, otp::FIRST_ROW + otp::ROWS - 1, describe(&rows));
    if files.is_empty() {
        println!("state {}: nothing sealed yet", state_dir.display());
    }
    for (name, otp) in files {
        let how = match otp {
            Some(true) => "sealed to the OTP device secret",
            Some(false) => "sealed without the OTP device secret",
            None => "does not parse (see the firmware's log)",
        };
        println!("state {}: {name} {how}", state_dir.join(name).display());
    }
    Ok(())
}

fn confirm(what: &str, yes: bool) -> Result<(), Stop> {
    if yes {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        // As `vbzkey-admin reset` without a terminal: a usage error, nothing done.
        return Err(Stop(
            Exit::Usage.code(),
            format!("{what} is irreversible: add --yes to confirm"),
        ));
    }
    eprint!("{what} is IRREVERSIBLE. Type YES to go on: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    stdin.lock().read_line(&mut line).map_err(|e| Stop(Exit::Io.code(), e.to_string()))?;
    if line.trim() == "YES" {
        Ok(())
    } else {
        Err(Stop(Exit::Aborted.code(), "not confirmed; nothing was changed".into()))
    }
}

fn program(access: &dyn OtpAccess, state_dir: &Path, yes: bool) -> Result<(), Stop> {
    if let Some((name, _)) = sealed_files(state_dir)?.first() {
        return Err(Stop(
            EXIT_REFUSED,
            format!(
                "refusing: {} exists, and it is sealed without the OTP secret, so programming \
                 OTP now would not protect it (and an admin would believe it did). Program OTP \
                 before the firmware first starts; for an initialised dongle: back it up, \
                 factory-reset it, stop vbzkey-firmware, remove {}, program OTP, then restore",
                state_dir.join(name).display(),
                state_dir.display(),
            ),
        ));
    }
    // Checked before asking, so nobody confirms an operation that is then refused.
    let rows = otp::read(access)?;
    if !matches!(rows, OtpRows::Unprogrammed) {
        return Err(Stop(EXIT_REFUSED, format!("refusing: the rows are {}", describe(&rows))));
    }
    confirm("Programming the OTP rows 36-43 of this board", yes)?;
    // A row of zero bits would read as unprogrammed; draw again (chance 8 in 2^32).
    let secret = loop {
        let mut s = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut s[..]).map_err(|e| Stop(EXIT_OTP, format!("the RNG failed: {e}")))?;
        if s.chunks(4).all(|row| row != [0; 4]) {
            break s;
        }
    };
    otp::program(access, &secret)?;
    println!(
        "OTP rows {}-{} programmed with a fresh 256-bit device secret and read back: they match.",
        otp::FIRST_ROW,
        otp::FIRST_ROW + otp::ROWS - 1
    );
    println!(
        "The key store made at `vbzkey-admin init` will be sealed to it: a copy of this SD card \
         does not open in any other Pi.\n\
         Optional, also irreversible: `sudo vbzkey-firmware otp lock` stops any further write to \
         these rows (nobody can then change the secret and so destroy the key store). Never run \
         `vcmailbox 0x00038021 8 8 0xffffffff 0xaffebabe`: it makes the rows unreadable for \
         good, and this dongle's key store with them."
    );
    Ok(())
}

fn lock(access: &dyn OtpAccess, yes: bool) -> Result<(), Stop> {
    match otp::read(access)? {
        OtpRows::Programmed(_) => {}
        other => {
            return Err(Stop(
                EXIT_REFUSED,
                format!("refusing to lock: the rows are {}", describe(&other)),
            ));
        }
    }
    confirm("Locking the OTP rows 36-43 of this board", yes)?;
    otp::lock(access)?;
    println!("OTP rows locked: they can no longer be written. They stay readable.");
    Ok(())
}

fn save(access: &dyn OtpAccess, out: &Path) -> Result<(), Stop> {
    let rows = otp::read(access).map_err(|e| {
        // A file from an earlier run must not stand in for rows that cannot be read now.
        let _ = std::fs::remove_file(out);
        Stop(
            EXIT_OTP,
            format!(
                "{e}. The firmware starts without the device secret: a key store sealed to it \
                 stays closed (the dongle reports `device secret missing`, and counts no PIN)"
            ),
        )
    })?;
    let text = otp::format_rows(rows.secret());
    durable::write(out, text.as_bytes(), 0o400, durable::Mode::Replace)
        .map_err(|e| Stop(Exit::Io.code(), format!("cannot write {}: {e}", out.display())))?;
    eprintln!(
        "OTP rows {}-{}: {}",
        otp::FIRST_ROW,
        otp::FIRST_ROW + otp::ROWS - 1,
        describe(&rows)
    );
    Ok(())
}
