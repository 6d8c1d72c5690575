//! Where a dongle is: `usb` (the one plugged in), `usb:SERIAL` (that one), `unix:PATH` (the
//! emulated dongle) or `tcp:HOST:PORT` (the LAN key server). Every tool takes this one form;
//! the socket part is `vbzkey_protocol::endpoint`, which the firmware listens on.

use std::fmt;
use std::str::FromStr;

use vbzkey_protocol::endpoint::{Endpoint, EndpointError};

/// Longest USB serial number: a string descriptor holds at most 126 UTF-16 units.
const MAX_SERIAL_LEN: usize = 126;

/// A dongle's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DongleAddr {
    /// A dongle on USB, found by VID:PID; with several plugged in, the one with this serial.
    Usb {
        /// Its serial number, if one was named.
        serial: Option<String>,
    },
    /// The emulated dongle (Unix socket) or the LAN key server (TCP).
    Socket(Endpoint),
}

/// Why text is not a dongle address. Says what the right form is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    /// No known kind.
    #[error("a dongle is usb, usb:SERIAL, unix:PATH or tcp:HOST:PORT")]
    UnknownKind,
    /// `usb:` with an empty or unprintable serial.
    #[error(
        "a USB serial is 1 to {MAX_SERIAL_LEN} printable ASCII characters (as `info` shows it)"
    )]
    BadSerial,
    /// A serial given twice, differently (`usb:A` and `--serial B`).
    #[error("two different serial numbers were given")]
    TwoSerials,
    /// A serial given for a socket dongle.
    #[error("a serial number only selects among USB dongles")]
    SerialForSocket,
    /// A malformed `unix:` or `tcp:` address.
    #[error(transparent)]
    Socket(#[from] EndpointError),
}

fn check_serial(serial: &str) -> Result<(), AddrError> {
    let ok = !serial.is_empty()
        && serial.len() <= MAX_SERIAL_LEN
        && serial.chars().all(|c| c.is_ascii_graphic());
    if ok { Ok(()) } else { Err(AddrError::BadSerial) }
}

impl DongleAddr {
    /// The first USB dongle found.
    pub const USB: DongleAddr = DongleAddr::Usb { serial: None };

    /// Add a serial given separately (`--serial`, the bridge's `serial =`): it must name a
    /// USB dongle, and agree with any serial already in the address.
    pub fn with_serial(self, serial: Option<String>) -> Result<Self, AddrError> {
        let Some(extra) = serial else { return Ok(self) };
        check_serial(&extra)?;
        match self {
            DongleAddr::Usb { serial: None } => Ok(DongleAddr::Usb { serial: Some(extra) }),
            DongleAddr::Usb { serial: Some(s) } if s == extra => {
                Ok(DongleAddr::Usb { serial: Some(s) })
            }
            DongleAddr::Usb { .. } => Err(AddrError::TwoSerials),
            DongleAddr::Socket(_) => Err(AddrError::SerialForSocket),
        }
    }
}

impl FromStr for DongleAddr {
    type Err = AddrError;

    fn from_str(text: &str) -> Result<Self, AddrError> {
        if text == "usb" {
            return Ok(DongleAddr::USB);
        }
        if let Some(serial) = text.strip_prefix("usb:") {
            check_serial(serial)?;
            return Ok(DongleAddr::Usb { serial: Some(serial.to_string()) });
        }
        match text.parse::<Endpoint>() {
            Ok(e) => Ok(DongleAddr::Socket(e)),
            Err(EndpointError::UnknownKind) => Err(AddrError::UnknownKind),
            Err(e) => Err(AddrError::Socket(e)),
        }
    }
}

impl fmt::Display for DongleAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DongleAddr::Usb { serial: None } => f.write_str("usb"),
            DongleAddr::Usb { serial: Some(s) } => write!(f, "usb:{s}"),
            DongleAddr::Socket(e) => e.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_parses_and_prints_back() {
        for (text, want) in [
            ("usb", DongleAddr::USB),
            ("usb:00000000a1b2c3d4", DongleAddr::Usb { serial: Some("00000000a1b2c3d4".into()) }),
            (
                "unix:/run/vbzkey/d.sock",
                DongleAddr::Socket(Endpoint::Unix("/run/vbzkey/d.sock".into())),
            ),
            (
                "tcp:192.0.2.7:7879",
                DongleAddr::Socket(Endpoint::Tcp { host: "192.0.2.7".into(), port: 7879 }),
            ),
            (
                "tcp:[2001:db8::7]:7879",
                DongleAddr::Socket(Endpoint::Tcp { host: "2001:db8::7".into(), port: 7879 }),
            ),
        ] {
            let addr: DongleAddr = text.parse().unwrap();
            assert_eq!(addr, want, "{text}");
            assert_eq!(addr.to_string(), text);
        }
    }

    #[test]
    fn malformed_addresses_say_what_is_wrong() {
        for (text, err) in [
            ("", AddrError::UnknownKind),
            ("serial:1", AddrError::UnknownKind),
            ("USB", AddrError::UnknownKind),
            ("usb:", AddrError::BadSerial),
            ("usb:a b", AddrError::BadSerial),
            ("usb:\u{e9}t\u{e9}", AddrError::BadSerial),
            ("usb:a\n", AddrError::BadSerial),
            ("unix:", AddrError::Socket(EndpointError::EmptyPath)),
            ("tcp:host", AddrError::Socket(EndpointError::BadPort)),
            ("tcp:h\u{f6}st:1", AddrError::Socket(EndpointError::BadHost)),
        ] {
            assert_eq!(text.parse::<DongleAddr>(), Err(err), "{text:?}");
        }
        let long = format!("usb:{}", "A".repeat(MAX_SERIAL_LEN + 1));
        assert_eq!(long.parse::<DongleAddr>(), Err(AddrError::BadSerial));
        assert!(
            AddrError::UnknownKind
                .to_string()
                .contains("usb, usb:SERIAL, unix:PATH or tcp:HOST:PORT")
        );
    }

    #[test]
    fn a_separate_serial_must_agree_and_name_a_usb_dongle() {
        let a = DongleAddr::USB.with_serial(Some("A1".into())).unwrap();
        assert_eq!(a, DongleAddr::Usb { serial: Some("A1".into()) });
        assert_eq!(a.clone().with_serial(Some("A1".into())), Ok(a.clone()));
        assert_eq!(a.clone().with_serial(None), Ok(a.clone()));
        assert_eq!(a.with_serial(Some("B2".into())), Err(AddrError::TwoSerials));
        let sock: DongleAddr = "unix:/x".parse().unwrap();
        assert_eq!(sock.with_serial(Some("A1".into())), Err(AddrError::SerialForSocket));
        assert_eq!(DongleAddr::USB.with_serial(Some(String::new())), Err(AddrError::BadSerial));
    }
}
