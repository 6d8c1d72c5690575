//! Who this board is: the serial number (not secret) and the OTP device secret (where the
//! board has one programmed). The key store is sealed to both, so a copied SD card does not
//! open in another Pi.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::HwError;
use crate::otp;

/// The board's identity, as the key store needs it.
pub trait DeviceIdentity {
    /// The serial number, as printed by the board.
    fn serial(&self) -> Result<String, HwError>;
    /// 32 bytes of one-time-programmable device secret, if the board has them.
    fn device_secret(&self) -> Result<Option<Zeroizing<[u8; 32]>>, HwError>;
}

/// A Raspberry Pi: serial from the device tree (or `/proc/cpuinfo`), OTP from the output of
/// `vcgencmd otp_dump` saved to a file at boot by the systemd unit (reading the mailbox needs
/// root and the firmware itself runs unprivileged).
#[derive(Debug, Clone)]
pub struct PiIdentity {
    /// Filesystem root, `/` on a real board (tests point it elsewhere).
    pub root: PathBuf,
    /// Where `vcgencmd otp_dump` output was saved, if anywhere.
    pub otp_dump: Option<PathBuf>,
}

fn read(path: &Path) -> Result<Option<String>, HwError> {
    // The OTP file passes through here: the raw bytes are wiped when dropped.
    match std::fs::read(path).map(Zeroizing::new) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(HwError::Read { path: path.display().to_string(), source: e }),
    }
}

/// The `Serial` line of `/proc/cpuinfo`, without leading zeros kept or dropped: as printed.
pub fn parse_cpuinfo_serial(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim() == "Serial")
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The device secret in a saved `vcgencmd otp_dump` (rows 36–43, see [`otp`]); `None` when
/// the rows are missing or all zero (never programmed).
pub fn parse_otp_dump(dump: &str) -> Option<Zeroizing<[u8; 32]>> {
    otp::parse_rows(dump).ok()?.secret().map(|s| Zeroizing::new(*s))
}

/// The secret in the OTP file `path`, if one is configured. A configured file that does not
/// exist is no secret (the boot unit failed, or this board has none); the key store then
/// reports it if it needs one.
fn secret_from(path: Option<&Path>) -> Result<Option<Zeroizing<[u8; 32]>>, HwError> {
    match path {
        None => Ok(None),
        Some(p) => Ok(read(p)?.map(Zeroizing::new).as_deref().and_then(|d| parse_otp_dump(d))),
    }
}

impl DeviceIdentity for PiIdentity {
    fn serial(&self) -> Result<String, HwError> {
        let dt = self.root.join("proc/device-tree/serial-number");
        if let Some(s) = read(&dt)? {
            let s = s.trim_end_matches('\0').trim().to_string();
            if !s.is_empty() {
                return Ok(s);
            }
        }
        let cpuinfo = self.root.join("proc/cpuinfo");
        read(&cpuinfo)?
            .as_deref()
            .and_then(parse_cpuinfo_serial)
            .ok_or_else(|| HwError::NoSerial(format!("{} and {}", dt.display(), cpuinfo.display())))
    }

    fn device_secret(&self) -> Result<Option<Zeroizing<[u8; 32]>>, HwError> {
        secret_from(self.otp_dump.as_deref())
    }
}

/// A fixed identity, for the emulated dongle in development and tests. A key store sealed
/// to it is only as safe as its PIN; never use it on a real dongle.
#[derive(Debug, Clone)]
pub struct FixedIdentity {
    /// The serial to report.
    pub serial: String,
    /// An OTP file in the format of the boot unit's, standing in for the board's fuses (tests of
    /// the device-secret paths).
    pub otp_dump: Option<PathBuf>,
}

impl DeviceIdentity for FixedIdentity {
    fn serial(&self) -> Result<String, HwError> {
        Ok(self.serial.clone())
    }

    fn device_secret(&self) -> Result<Option<Zeroizing<[u8; 32]>>, HwError> {
        secret_from(self.otp_dump.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_from_cpuinfo() {
        let cpuinfo = "processor\t: 0\nmodel name\t: ARMv6-compatible processor rev 7 (v6l)\n\
                       Hardware\t: BCM2835\nRevision\t: 9000c1\nSerial\t\t: 00000000a1b2c3d4\n\
                       Model\t\t: Raspberry Pi Zero W Rev 1.1\n";
        assert_eq!(parse_cpuinfo_serial(cpuinfo).as_deref(), Some("00000000a1b2c3d4"));
        assert_eq!(parse_cpuinfo_serial("Serial : zz\n"), None);
        assert_eq!(parse_cpuinfo_serial(""), None);
    }

    #[test]
    fn serial_prefers_the_device_tree() {
        let root = std::env::temp_dir().join(format!("vbzkey-hw-{}", std::process::id()));
        std::fs::create_dir_all(root.join("proc/device-tree")).unwrap();
        std::fs::write(root.join("proc/cpuinfo"), "Serial : 00000000deadbeef\n").unwrap();
        let pi = PiIdentity { root: root.clone(), otp_dump: None };
        assert_eq!(pi.serial().unwrap(), "00000000deadbeef");
        std::fs::write(root.join("proc/device-tree/serial-number"), "00000000a1b2c3d4\0").unwrap();
        assert_eq!(pi.serial().unwrap(), "00000000a1b2c3d4");
        std::fs::remove_dir_all(&root).unwrap();
        assert!(matches!(pi.serial(), Err(HwError::NoSerial(_))));
    }

    #[test]
    fn otp_rows_36_to_43() {
        let mut dump = String::from("08:1020000a\n17:000000b2\n");
        for row in 36..44 {
            dump.push_str(&format!("{row}:{:08x}\n", 0x0102_0304u32 * (row - 35)));
        }
        let secret = parse_otp_dump(&dump).unwrap();
        assert_eq!(&secret[..4], &[1, 2, 3, 4]);
        assert_eq!(&secret[28..], &0x0102_0304u32.wrapping_mul(8).to_be_bytes());
        let zeros: String = (36..44).map(|r| format!("{r}:00000000\n")).collect();
        assert!(parse_otp_dump(&zeros).is_none(), "unprogrammed OTP is no secret");
        assert!(parse_otp_dump("36:ffffffff\n").is_none(), "all eight rows are required");
    }
}
