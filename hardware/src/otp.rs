//! The device secret in the SoC's one-time-programmable memory: the eight customer OTP rows
//! 36–43 of the BCM2835 (Pi Zero, Zero W) and BCM2710A1 (Zero 2 W).
//!
//! Rows are read with `vcgencmd otp_dump` and programmed with `vcmailbox` and the firmware's
//! `SET_CUSTOMER_OTP` mailbox tag (Raspberry Pi's "Industrial use" documentation). Both
//! tools talk to the VideoCore through `/dev/vcio`, which only root (and the `video` group)
//! may open; the dongle's firmware runs as neither, so the rows are read once at boot by a
//! root unit and handed over in a file under `/run` (a tmpfs, never the SD card).
//!
//! OTP bits only ever go from 0 to 1, so programming rows that already hold anything would
//! merge two secrets into a third one; [`program`] refuses unless all eight rows read as
//! zero, and reads them back afterwards.

use std::process::Command;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The first customer OTP row.
pub const FIRST_ROW: u32 = 36;
/// Eight rows of 32 bits: a 256-bit secret.
pub const ROWS: u32 = 8;
/// The `SET_CUSTOMER_OTP` mailbox tag.
const TAG_SET_CUSTOMER_OTP: u32 = 0x0003_8021;
/// The mailbox's "request successful" response code.
const MAILBOX_OK: u32 = 0x8000_0000;
/// Arguments to `SET_CUSTOMER_OTP` that lock the customer rows against further writes
/// (irreversible). Not to be confused with `0xaffebabe`, which makes them unreadable for good,
/// and so would make every key store sealed to them unopenable.
pub const LOCK_ARGS: [u32; 2] = [0xffff_ffff, 0xaffe_0000];

/// What the customer rows hold.
#[derive(Debug, PartialEq, Eq)]
pub enum OtpRows {
    /// All eight rows read as zero: never programmed.
    Unprogrammed,
    /// Every row holds something: the device secret.
    Programmed(Zeroizing<[u8; 32]>),
    /// Some rows are zero and some are not (an interrupted programming, or rows used for
    /// something else): usable as a secret, but weaker, and it can never be programmed cleanly.
    Partial {
        /// How many of the eight rows are non-zero.
        rows_set: u8,
        /// The rows as they are.
        secret: Zeroizing<[u8; 32]>,
    },
}

impl OtpRows {
    /// The secret the key store is sealed to, if there is one.
    pub fn secret(&self) -> Option<&[u8; 32]> {
        match self {
            OtpRows::Unprogrammed => None,
            OtpRows::Programmed(s) | OtpRows::Partial { secret: s, .. } => Some(s),
        }
    }
}

/// Why the OTP rows could not be read or programmed.
#[derive(Debug, thiserror::Error)]
pub enum OtpError {
    /// A tool could not be started or failed.
    #[error("{tool} failed: {detail}")]
    Tool {
        /// `vcgencmd` or `vcmailbox`.
        tool: &'static str,
        /// What happened (its exit status and first line of output; never the rows).
        detail: String,
    },
    /// The dump lacks some of rows 36–43: not a Raspberry Pi, or a firmware that does not
    /// report them.
    #[error(
        "the OTP dump has no customer rows {FIRST_ROW}-{last} (is this a Raspberry Pi Zero, Zero W or Zero 2 W?)",
        last = FIRST_ROW + ROWS - 1
    )]
    RowsMissing,
    /// Programming was refused because the rows already hold something.
    #[error(
        "the OTP rows already hold a value ({rows_set} of 8 rows set): OTP bits cannot be cleared, so they are never programmed twice"
    )]
    AlreadyProgrammed {
        /// Non-zero rows.
        rows_set: u8,
    },
    /// The rows read back differ from what was written.
    #[error(
        "the OTP rows read back differ from what was written: do not initialise this dongle; run `vbzkey-firmware otp status` and see docs/OPERATIONS.md"
    )]
    VerifyFailed,
}

/// Access to the board's OTP: the real tools on a Pi, a stand-in in tests (any program on
/// `PATH` that speaks the same command lines).
pub trait OtpAccess {
    /// The text `vcgencmd otp_dump` prints (`NN:xxxxxxxx` lines).
    fn dump(&self) -> Result<Zeroizing<String>, OtpError>;
    /// Run `vcmailbox` with these words; its printed response words.
    fn mailbox(&self, words: &[u32]) -> Result<Vec<u32>, OtpError>;
}

/// `vcgencmd` and `vcmailbox` from `PATH` (Raspberry Pi OS ships both in `raspi-utils`).
#[derive(Debug, Clone, Copy, Default)]
pub struct VcTools;

fn tool_failed(tool: &'static str, out: &std::process::Output) -> OtpError {
    let first = String::from_utf8_lossy(&out.stderr).lines().next().unwrap_or("").to_string();
    OtpError::Tool { tool, detail: format!("{}: {first}", out.status) }
}

impl OtpAccess for VcTools {
    fn dump(&self) -> Result<Zeroizing<String>, OtpError> {
        let mut out = Command::new("vcgencmd")
            .arg("otp_dump")
            .output()
            .map_err(|e| OtpError::Tool { tool: "vcgencmd", detail: e.to_string() })?;
        let text = Zeroizing::new(String::from_utf8_lossy(&out.stdout).into_owned());
        zeroize::Zeroize::zeroize(&mut out.stdout);
        if !out.status.success() {
            return Err(tool_failed("vcgencmd", &out));
        }
        Ok(text)
    }

    fn mailbox(&self, words: &[u32]) -> Result<Vec<u32>, OtpError> {
        // The words are arguments, so for the moment vcmailbox runs they are visible in
        // /proc/PID/cmdline to local processes on the Pi. The alternative is an ioctl on
        // /dev/vcio (unsafe code in this crate); programming happens once, at install time,
        // on a Pi with no other users and no network (docs/THREAT-MODEL.md).
        let args: Vec<Zeroizing<String>> =
            words.iter().map(|w| Zeroizing::new(format!("{w:#010x}"))).collect();
        let out = Command::new("vcmailbox")
            .args(args.iter().map(|a| a.as_str()))
            .output()
            .map_err(|e| OtpError::Tool { tool: "vcmailbox", detail: e.to_string() })?;
        if !out.status.success() {
            return Err(tool_failed("vcmailbox", &out));
        }
        let text = Zeroizing::new(String::from_utf8_lossy(&out.stdout).into_owned());
        text.split_whitespace()
            .map(|w| u32::from_str_radix(w.trim_start_matches("0x"), 16))
            .collect::<Result<Vec<u32>, _>>()
            .map_err(|_| OtpError::Tool {
                tool: "vcmailbox",
                detail: "its answer is not a list of hex words".into(),
            })
    }
}

/// Rows 36–43 of `vcgencmd otp_dump` output.
pub fn parse_rows(dump: &str) -> Result<OtpRows, OtpError> {
    let mut secret = Zeroizing::new([0u8; 32]);
    let mut seen = 0u8;
    let mut rows_set = 0u8;
    for line in dump.lines() {
        let Some((row, value)) = line.trim().split_once(':') else { continue };
        let (Ok(row), Ok(value)) = (row.parse::<u32>(), u32::from_str_radix(value.trim(), 16))
        else {
            continue;
        };
        if (FIRST_ROW..FIRST_ROW + ROWS).contains(&row) {
            let bit = 1u8 << (row - FIRST_ROW);
            if seen & bit != 0 {
                continue;
            }
            seen |= bit;
            let word = secret.chunks_exact_mut(4).nth((row - FIRST_ROW) as usize);
            if let Some(word) = word {
                word.copy_from_slice(&value.to_be_bytes());
            }
            rows_set += u8::from(value != 0);
        }
    }
    match (seen, rows_set) {
        (0xff, 0) => Ok(OtpRows::Unprogrammed),
        (0xff, 8) => Ok(OtpRows::Programmed(secret)),
        (0xff, n) => Ok(OtpRows::Partial { rows_set: n, secret }),
        _ => Err(OtpError::RowsMissing),
    }
}

/// Rows 36–43 as `vcgencmd otp_dump` prints them, and nothing else of the dump (the file the
/// boot unit hands to the firmware).
pub fn format_rows(secret: Option<&[u8; 32]>) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(12 * ROWS as usize));
    let zero = [0u8; 32];
    let words = secret.unwrap_or(&zero).as_chunks::<4>().0;
    for (r, word) in (0..ROWS).zip(words) {
        let word = u32::from_be_bytes(*word);
        out.push_str(&format!("{}:{word:08x}\n", FIRST_ROW + r));
    }
    out
}

/// Read the rows now.
pub fn read(access: &dyn OtpAccess) -> Result<OtpRows, OtpError> {
    parse_rows(&access.dump()?)
}

fn check_answer(answer: &[u32], tag: u32) -> Result<(), OtpError> {
    // [buffer size, response code, tag, ...]
    if answer.get(1) == Some(&MAILBOX_OK) && answer.get(2) == Some(&tag) {
        Ok(())
    } else {
        Err(OtpError::Tool {
            tool: "vcmailbox",
            detail: format!(
                "the firmware did not accept the request (response code {:#010x})",
                answer.get(1).copied().unwrap_or(0)
            ),
        })
    }
}

/// Program `secret` into rows 36–43, which must all read as zero, then read them back.
pub fn program(access: &dyn OtpAccess, secret: &[u8; 32]) -> Result<(), OtpError> {
    match read(access)? {
        OtpRows::Unprogrammed => {}
        OtpRows::Programmed(_) => return Err(OtpError::AlreadyProgrammed { rows_set: 8 }),
        OtpRows::Partial { rows_set, .. } => return Err(OtpError::AlreadyProgrammed { rows_set }),
    }
    // SET_CUSTOMER_OTP: tag, request size, response size, first row (0-7), row count, rows.
    let size = 8 + 4 * ROWS;
    let mut words = Zeroizing::new(vec![TAG_SET_CUSTOMER_OTP, size, size, 0, ROWS]);
    words.extend(secret.as_chunks::<4>().0.iter().map(|c| u32::from_be_bytes(*c)));
    let mut answer = access.mailbox(&words)?;
    let accepted = check_answer(&answer, TAG_SET_CUSTOMER_OTP);
    zeroize::Zeroize::zeroize(&mut answer);
    accepted?;
    match read(access)? {
        OtpRows::Programmed(back) if bool::from(back.ct_eq(secret)) => Ok(()),
        _ => Err(OtpError::VerifyFailed),
    }
}

/// Lock the customer rows against any further write. Irreversible; refused unless the rows
/// hold a complete secret (locking empty rows would leave a board that can never have one).
pub fn lock(access: &dyn OtpAccess) -> Result<(), OtpError> {
    match read(access)? {
        OtpRows::Programmed(_) => {}
        OtpRows::Unprogrammed => return Err(OtpError::RowsMissing),
        OtpRows::Partial { rows_set, .. } => return Err(OtpError::AlreadyProgrammed { rows_set }),
    }
    let words = [TAG_SET_CUSTOMER_OTP, 8, 8, LOCK_ARGS[0], LOCK_ARGS[1]];
    check_answer(&access.mailbox(&words)?, TAG_SET_CUSTOMER_OTP)
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    /// OTP fuses in memory: a write ORs bits in, like the real thing.
    struct Fuses {
        rows: RefCell<[u32; 8]>,
        accept: bool,
        calls: RefCell<Vec<Vec<u32>>>,
    }

    impl Fuses {
        fn new(rows: [u32; 8]) -> Self {
            Fuses { rows: RefCell::new(rows), accept: true, calls: RefCell::new(Vec::new()) }
        }
    }

    impl OtpAccess for Fuses {
        fn dump(&self) -> Result<Zeroizing<String>, OtpError> {
            let mut s = String::from("08:1020000a\n28:a1b2c3d4\n");
            for (i, v) in self.rows.borrow().iter().enumerate() {
                s.push_str(&format!("{}:{v:08x}\n", 36 + i));
            }
            Ok(Zeroizing::new(s))
        }
        fn mailbox(&self, words: &[u32]) -> Result<Vec<u32>, OtpError> {
            self.calls.borrow_mut().push(words.to_vec());
            if self.accept && words[3] != 0xffff_ffff {
                let mut rows = self.rows.borrow_mut();
                for (i, w) in words[5..].iter().enumerate() {
                    rows[words[3] as usize + i] |= w;
                }
            }
            let code = if self.accept { MAILBOX_OK } else { 0x8000_0001 };
            Ok([&[words.len() as u32 * 4 + 12, code][..], words].concat())
        }
    }

    #[test]
    fn rows_are_read_in_order_and_classified() {
        let f = Fuses::new([0; 8]);
        assert_eq!(read(&f).unwrap(), OtpRows::Unprogrammed);
        let f = Fuses::new([1, 2, 3, 4, 5, 6, 7, 0x0a0b_0c0d]);
        let OtpRows::Programmed(s) = read(&f).unwrap() else { panic!() };
        assert_eq!(&s[..4], &[0, 0, 0, 1]);
        assert_eq!(&s[28..], &[0x0a, 0x0b, 0x0c, 0x0d]);
        let f = Fuses::new([1, 0, 0, 0, 0, 0, 0, 0]);
        assert!(matches!(read(&f).unwrap(), OtpRows::Partial { rows_set: 1, .. }));
        assert!(matches!(parse_rows("36:00000001\n"), Err(OtpError::RowsMissing)));
        assert!(matches!(parse_rows(""), Err(OtpError::RowsMissing)));
    }

    #[test]
    fn programming_writes_verifies_and_never_runs_twice() {
        let f = Fuses::new([0; 8]);
        let secret: [u8; 32] = std::array::from_fn(|i| i as u8 + 1);
        program(&f, &secret).unwrap();
        assert_eq!(read(&f).unwrap().secret(), Some(&secret));
        assert_eq!(f.calls.borrow()[0][..5], [TAG_SET_CUSTOMER_OTP, 40, 40, 0, 8]);
        let again = program(&f, &[0xff; 32]);
        assert!(matches!(again, Err(OtpError::AlreadyProgrammed { rows_set: 8 })), "{again:?}");
        assert_eq!(f.calls.borrow().len(), 1, "no second write reached the fuses");
        assert_eq!(read(&f).unwrap().secret(), Some(&secret));
    }

    #[test]
    fn partly_programmed_rows_are_never_written() {
        let f = Fuses::new([0, 0, 0, 9, 0, 0, 0, 0]);
        assert!(matches!(program(&f, &[1; 32]), Err(OtpError::AlreadyProgrammed { rows_set: 1 })));
        assert!(f.calls.borrow().is_empty());
    }

    #[test]
    fn a_write_that_does_not_stick_fails_verification() {
        let mut f = Fuses::new([0; 8]);
        f.accept = false;
        assert!(matches!(program(&f, &[7; 32]), Err(OtpError::Tool { tool: "vcmailbox", .. })));
        // The mailbox says yes but the rows do not change (a board that ignores the tag).
        struct Deaf(Fuses);
        impl OtpAccess for Deaf {
            fn dump(&self) -> Result<Zeroizing<String>, OtpError> {
                self.0.dump()
            }
            fn mailbox(&self, words: &[u32]) -> Result<Vec<u32>, OtpError> {
                Ok([&[0, MAILBOX_OK][..], words].concat())
            }
        }
        assert!(matches!(
            program(&Deaf(Fuses::new([0; 8])), &[7; 32]),
            Err(OtpError::VerifyFailed)
        ));
    }

    #[test]
    fn lock_needs_programmed_rows_and_uses_the_lock_code_not_the_unreadable_one() {
        let f = Fuses::new([0; 8]);
        assert!(lock(&f).is_err());
        assert!(f.calls.borrow().is_empty());
        let f = Fuses::new([1; 8]);
        lock(&f).unwrap();
        assert_eq!(f.calls.borrow()[0], vec![TAG_SET_CUSTOMER_OTP, 8, 8, 0xffff_ffff, 0xaffe_0000]);
    }

    #[test]
    fn the_saved_file_holds_only_the_customer_rows_and_parses_back() {
        let secret: [u8; 32] = std::array::from_fn(|i| 0xa0 ^ i as u8);
        let text = format_rows(Some(&secret));
        assert_eq!(text.lines().count(), 8);
        assert!(text.starts_with("36:a0a1a2a3\n"));
        assert_eq!(parse_rows(&text).unwrap().secret(), Some(&secret));
        assert_eq!(parse_rows(&format_rows(None)).unwrap(), OtpRows::Unprogrammed);
    }
}
