//! Where a socket dongle is, written the one way every tool reads it: `unix:PATH` (the
//! emulated dongle) or `tcp:HOST:PORT` (the LAN key server; an IPv6 host goes in brackets).
//! The firmware listens on one; clients (`vbzkey-client`'s `DongleAddr`, which adds `usb`)
//! connect to one.

use std::fmt;
use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::str::FromStr;

/// Longest host name accepted (RFC 1035).
const MAX_HOST_LEN: usize = 253;

/// A socket a dongle listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A Unix socket.
    Unix(PathBuf),
    /// A TCP address: a host name, IPv4 address or IPv6 address, and a port.
    Tcp {
        /// The host, without brackets.
        host: String,
        /// The port (never 0).
        port: u16,
    },
}

/// Why text is not an endpoint. Says what the right form is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// Neither `unix:` nor `tcp:`.
    #[error("a socket is unix:PATH or tcp:HOST:PORT")]
    UnknownKind,
    /// `unix:` with nothing after it.
    #[error("unix: needs a path (unix:/run/vbzkey/dongle.sock)")]
    EmptyPath,
    /// The host is missing or holds characters no host name or address has.
    #[error(
        "tcp: needs HOST:PORT with a host name or address (tcp:192.0.2.7:7879, tcp:[2001:db8::7]:7879)"
    )]
    BadHost,
    /// The port is missing, not a number, or 0.
    #[error("the port must be a number from 1 to 65535")]
    BadPort,
}

impl Endpoint {
    /// Parse `HOST:PORT` (the part after `tcp:`).
    pub fn parse_host_port(text: &str) -> Result<(String, u16), EndpointError> {
        let (host, port) = match text.strip_prefix('[') {
            Some(rest) => {
                let (v6, port) = rest.split_once("]:").ok_or(EndpointError::BadHost)?;
                v6.parse::<Ipv6Addr>().map_err(|_| EndpointError::BadHost)?;
                (v6, port)
            }
            None => {
                let (host, port) = text.rsplit_once(':').ok_or(EndpointError::BadPort)?;
                let plain = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '-';
                if host.is_empty() || host.len() > MAX_HOST_LEN || !host.chars().all(plain) {
                    return Err(EndpointError::BadHost);
                }
                (host, port)
            }
        };
        match port.parse::<u16>() {
            Ok(p) if p != 0 && port.chars().all(|c| c.is_ascii_digit()) => Ok((host.into(), p)),
            _ => Err(EndpointError::BadPort),
        }
    }
}

impl FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(text: &str) -> Result<Self, EndpointError> {
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(EndpointError::EmptyPath);
            }
            return Ok(Endpoint::Unix(path.into()));
        }
        if let Some(rest) = text.strip_prefix("tcp:") {
            let (host, port) = Self::parse_host_port(rest)?;
            return Ok(Endpoint::Tcp { host, port });
        }
        Err(EndpointError::UnknownKind)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "unix:{}", path.display()),
            Endpoint::Tcp { host, port } if host.contains(':') => write!(f, "tcp:[{host}]:{port}"),
            Endpoint::Tcp { host, port } => write!(f, "tcp:{host}:{port}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_endpoints_parse_and_print_back() {
        for (text, want) in [
            ("unix:/tmp/d.sock", Endpoint::Unix("/tmp/d.sock".into())),
            ("unix:rel/d.sock", Endpoint::Unix("rel/d.sock".into())),
            ("tcp:127.0.0.1:7879", Endpoint::Tcp { host: "127.0.0.1".into(), port: 7879 }),
            ("tcp:keys.shop.lan:1", Endpoint::Tcp { host: "keys.shop.lan".into(), port: 1 }),
            ("tcp:[::1]:65535", Endpoint::Tcp { host: "::1".into(), port: 65535 }),
        ] {
            let parsed: Endpoint = text.parse().unwrap();
            assert_eq!(parsed, want, "{text}");
            assert_eq!(parsed.to_string(), text);
        }
    }

    #[test]
    fn bad_endpoints_say_what_is_wrong() {
        for (text, err) in [
            ("", EndpointError::UnknownKind),
            ("usb", EndpointError::UnknownKind),
            ("UNIX:/x", EndpointError::UnknownKind),
            ("unix:", EndpointError::EmptyPath),
            ("tcp:", EndpointError::BadPort),
            ("tcp:host", EndpointError::BadPort),
            ("tcp::7879", EndpointError::BadHost),
            ("tcp:host:", EndpointError::BadPort),
            ("tcp:host:0", EndpointError::BadPort),
            ("tcp:host:65536", EndpointError::BadPort),
            ("tcp:host:+80", EndpointError::BadPort),
            ("tcp:host:80x", EndpointError::BadPort),
            ("tcp:::1:80", EndpointError::BadHost),
            ("tcp:[::1:80", EndpointError::BadHost),
            ("tcp:[nothex]:80", EndpointError::BadHost),
            ("tcp:h\u{e9}st:80", EndpointError::BadHost),
            ("tcp:a b:80", EndpointError::BadHost),
            ("tcp:host/x:80", EndpointError::BadHost),
        ] {
            assert_eq!(text.parse::<Endpoint>(), Err(err), "{text:?}");
        }
        let long = format!("tcp:{}:80", "a".repeat(MAX_HOST_LEN + 1));
        assert_eq!(long.parse::<Endpoint>(), Err(EndpointError::BadHost));
    }
}
