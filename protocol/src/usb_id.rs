//! The dongle's USB identity (VID:PID), read at compile time from its one place,
//! `hardware/pi/usb-id.conf`, which the Pi's gadget script and the udev rule are made from
//! too. A different file means a rebuild, never a second place to edit.

const CONF: &str = include_str!("../../hardware/pi/usb-id.conf");

/// USB vendor id.
pub const VID: u16 = hex_field(CONF.as_bytes(), b"VBZKEY_VID=0x");
/// USB product id.
pub const PID: u16 = hex_field(CONF.as_bytes(), b"VBZKEY_PID=0x");
/// Whether this is pid.codes' shared test PID (1209:0001), for tests and demos only.
pub const IS_TEST_ID: bool = VID == 0x1209 && PID == 0x0001;

/// The four hex digits after `key` at the start of a line; a build error if absent.
const fn hex_field(conf: &[u8], key: &[u8]) -> u16 {
    let mut i = 0;
    while i + key.len() + 4 <= conf.len() {
        let line_start = i == 0 || conf[i - 1] == b'\n';
        let mut j = 0;
        while line_start && j < key.len() && conf[i + j] == key[j] {
            j += 1;
        }
        if line_start && j == key.len() {
            let mut value = 0u16;
            let mut k = 0;
            while k < 4 {
                let c = conf[i + j + k];
                let digit = match c {
                    b'0'..=b'9' => c - b'0',
                    b'a'..=b'f' => c - b'a' + 10,
                    b'A'..=b'F' => c - b'A' + 10,
                    _ => panic!("usb-id.conf: a VID or PID is not four hex digits"),
                };
                value = value * 16 + digit as u16;
                k += 1;
            }
            return value;
        }
        i += 1;
    }
    panic!("usb-id.conf: VBZKEY_VID=0xNNNN and VBZKEY_PID=0xNNNN lines are required")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_from_line_starts_only() {
        let conf = b"# VBZKEY_VID=0xdead in a comment\nVBZKEY_VID=0x1d50\nVBZKEY_PID=0x61Fa\n";
        assert_eq!(hex_field(conf, b"VBZKEY_VID=0x"), 0x1d50);
        assert_eq!(hex_field(conf, b"VBZKEY_PID=0x"), 0x61fa);
    }

    #[test]
    fn the_shipped_file_parses() {
        assert_ne!(VID, 0);
        assert_ne!(PID, 0);
    }
}
