//! The dongle's USB identity (VID:PID), read at compile time from its one place,
//! `hardware/pi/usb-id.conf`, which the Pi's gadget script and the udev rule are made from
//! too. A different file means a rebuild, never a second place to edit.

const CONF: &str = include_str!("../../hardware/pi/usb-id.conf");

/// USB vendor id.
// Evaluated at compile time: a usb-id.conf without the line fails the build, never a run.
#[allow(clippy::panic)]
pub const VID: u16 = match hex_field(CONF.as_bytes(), b"VBZKEY_VID=0x") {
    Some(v) => v,
    None => panic!("usb-id.conf: a line VBZKEY_VID=0xNNNN (four hex digits) is required"),
};
/// USB product id.
// As for `VID`.
#[allow(clippy::panic)]
pub const PID: u16 = match hex_field(CONF.as_bytes(), b"VBZKEY_PID=0x") {
    Some(v) => v,
    None => panic!("usb-id.conf: a line VBZKEY_PID=0xNNNN (four hex digits) is required"),
};
/// Whether this is pid.codes' shared test PID (1209:0001), for tests and demos only.
pub const IS_TEST_ID: bool = VID == 0x1209 && PID == 0x0001;

/// The four hex digits after `key` at the start of a line, if any line has them.
const fn hex_field(conf: &[u8], key: &[u8]) -> Option<u16> {
    let mut rest = conf;
    let mut line_start = true;
    while let [c, tail @ ..] = rest {
        if line_start && let Some(v) = hex_after(rest, key) {
            return Some(v);
        }
        line_start = *c == b'\n';
        rest = tail;
    }
    None
}

/// The four hex digits right after `key` at the start of `s`.
const fn hex_after(s: &[u8], key: &[u8]) -> Option<u16> {
    let (mut s, mut k) = (s, key);
    while let [kc, k_tail @ ..] = k {
        match s {
            [c, tail @ ..] if *c == *kc => {
                s = tail;
                k = k_tail;
            }
            _ => return None,
        }
    }
    match s {
        [a, b, c, d, ..] => match (digit(*a), digit(*b), digit(*c), digit(*d)) {
            (Some(a), Some(b), Some(c), Some(d)) => Some(a << 12 | b << 8 | c << 4 | d),
            _ => None,
        },
        _ => None,
    }
}

const fn digit(c: u8) -> Option<u16> {
    match c {
        b'0'..=b'9' => Some((c - b'0') as u16),
        b'a'..=b'f' => Some((c - b'a' + 10) as u16),
        b'A'..=b'F' => Some((c - b'A' + 10) as u16),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_from_line_starts_only() {
        let conf = b"# VBZKEY_VID=0xdead in a comment\nVBZKEY_VID=0x1d50\nVBZKEY_PID=0x61Fa\n";
        assert_eq!(hex_field(conf, b"VBZKEY_VID=0x"), Some(0x1d50));
        assert_eq!(hex_field(conf, b"VBZKEY_PID=0x"), Some(0x61fa));
    }

    #[test]
    fn missing_short_or_non_hex_values_are_none() {
        for conf in [&b""[..], b"VBZKEY_VID=0x12", b"VBZKEY_VID=0x12g4\n", b" VBZKEY_VID=0x1234"] {
            assert_eq!(hex_field(conf, b"VBZKEY_VID=0x"), None, "{conf:?}");
        }
    }

    #[test]
    fn the_shipped_file_parses() {
        assert_ne!(VID, 0);
        assert_ne!(PID, 0);
    }
}
