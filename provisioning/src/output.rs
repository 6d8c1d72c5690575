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

/// One key as JSON: the fields `info --json` gives each key.
pub(crate) fn key_json(k: &KeyInfo) -> serde_json::Value {
    serde_json::json!({
        "key_id": k.key_id.to_string(),
        "version": k.version,
        "active": k.active,
        "public_key": PublicKey::from_bytes(k.public_key).to_text(),
    })
}

/// Unix seconds as RFC 3339 in UTC (`2026-01-01T00:00:00Z`): the form JSON output gives
/// (docs/CLI.md). The date is Howard Hinnant's `civil_from_days` (proleptic
/// Gregorian calendar), exact for every `u64` second count.
pub(crate) fn utc_time(unix_secs: u64) -> String {
    let days = i128::from(unix_secs / 86_400);
    let secs = unix_secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i128::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Unix seconds as people read them: the time in the zone `tz` (callers pass the system's,
/// `TZ` included) with the zone's name, e.g. `2026-11-30 14:02:11 CET` (docs/CLI.md).
pub(crate) fn time_in(unix_secs: u64, tz: &jiff::tz::TimeZone) -> String {
    match i64::try_from(unix_secs).ok().and_then(|s| jiff::Timestamp::from_second(s).ok()) {
        Some(t) => t.to_zoned_datetime(tz.clone()).strftime("%Y-%m-%d %H:%M:%S %Z").to_string(),
        // Beyond jiff's range (year 9999): the exact UTC form.
        None => utc_time(unix_secs),
    }
}

/// The zone people's times are shown in: the system's (`TZ` included), as jiff finds it,
/// except when `TZ` leads jiff to a file that is not a small regular file (`TZ=/dev/zero`,
/// `TZ=../../../dev/urandom`, a FIFO): jiff reads such a file to its end, so the command would
/// hang and grow without bound. Then UTC, as jiff falls back for a zone it cannot read.
pub(crate) fn system_zone() -> jiff::tz::TimeZone {
    let tz = std::env::var_os("TZ");
    let tzdir = std::env::var_os("TZDIR");
    if tz.as_deref().is_some_and(|v| !zone_files_are_sane(v, tzdir.as_deref())) {
        return jiff::tz::TimeZone::UTC;
    }
    jiff::tz::TimeZone::system()
}

/// The largest time zone file read (the biggest TZif files are under 5 KiB).
const MAX_ZONE_FILE: u64 = 64 * 1024;

/// Whether every file `TZ` may name (a path, or a name in a zoneinfo directory: `TZDIR`'s or
/// the usual ones) is, where it exists, a regular file of at most [`MAX_ZONE_FILE`] bytes.
fn zone_files_are_sane(tz: &std::ffi::OsStr, tzdir: Option<&std::ffi::OsStr>) -> bool {
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;
    let name = Path::new(std::ffi::OsStr::from_bytes(
        tz.as_bytes().strip_prefix(b":").unwrap_or(tz.as_bytes()),
    ));
    if name.as_os_str().is_empty() {
        return true; // `TZ=` is UTC to jiff, as to the C library: nothing is read.
    }
    let dirs = tzdir
        .map(Path::new)
        .into_iter()
        .chain(["/usr/share/zoneinfo", "/etc/zoneinfo", "/usr/share/lib/zoneinfo"].map(Path::new));
    std::iter::once(name.to_path_buf()).chain(dirs.map(|d| d.join(name))).all(|p| {
        match std::fs::metadata(&p) {
            Ok(m) => m.is_file() && m.len() <= MAX_ZONE_FILE,
            Err(_) => true,
        }
    })
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

    #[test]
    fn unix_seconds_read_as_rfc3339_utc() {
        for (secs, text) in [
            (0, "1970-01-01T00:00:00Z"),
            (7, "1970-01-01T00:00:07Z"),
            (951_782_399, "2000-02-28T23:59:59Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_767_225_600, "2026-01-01T00:00:00Z"),
            (4_107_542_400, "2100-03-01T00:00:00Z"),
            (4_107_456_000, "2100-02-28T00:00:00Z"),
            (253_402_300_799, "9999-12-31T23:59:59Z"),
        ] {
            assert_eq!(utc_time(secs), text, "{secs}");
        }
        assert!(utc_time(u64::MAX).ends_with('Z'), "no overflow");
    }

    #[test]
    fn people_read_local_time_with_the_zone() {
        let cet = jiff::tz::TimeZone::fixed(jiff::tz::offset(1));
        assert_eq!(time_in(1_767_225_600, &cet), "2026-01-01 01:00:00 +01");
        assert_eq!(time_in(1_767_225_600, &jiff::tz::TimeZone::UTC), "2026-01-01 00:00:00 UTC");
        assert_eq!(time_in(u64::MAX, &cet), utc_time(u64::MAX), "out of range: no panic");
    }
    /// A hostile `TZ` (a device, a FIFO, a directory, by path or through a zoneinfo name)
    /// gets UTC: jiff would read `/dev/zero` without end (measured: 8 GB in 6 s).
    #[test]
    fn a_tz_naming_a_device_or_directory_is_not_read() {
        use std::ffi::OsStr;
        for tz in ["/dev/zero", ":/dev/zero", "../../../../../dev/urandom", "/tmp", "/dev/stdin"] {
            assert!(!zone_files_are_sane(OsStr::new(tz), None), "{tz}");
        }
        assert!(!zone_files_are_sane(OsStr::new("zero"), Some(OsStr::new("/dev"))));
        for tz in ["Europe/Berlin", "UTC", "EST5EDT,M3.2.0,M11.1.0", "", "no/such/zone"] {
            assert!(zone_files_are_sane(OsStr::new(tz), None), "{tz}");
        }
    }
}
