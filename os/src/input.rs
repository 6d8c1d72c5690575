//! Secrets and plaintexts from standard input, read without std's `stdin()`: its 8 KiB
//! buffer takes every byte first (a PIN piped to `--admin-pin-file -`, a card number piped to
//! `vbzkey seal`) and keeps it, never wiped, for the life of the program.

use std::io;
use std::os::fd::BorrowedFd;

use zeroize::Zeroizing;

/// Read `fd` to its end straight into one buffer, allocated once (no reallocation leaves a
/// copy behind) and wiped on drop. At most `limit + 1` bytes are read, so that the caller can
/// tell, and refuse, input longer than `limit`.
pub fn read_to_end_wiped(fd: BorrowedFd<'_>, limit: usize) -> io::Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(vec![0u8; limit + 1]);
    let mut len = 0;
    while len < buf.len() {
        match rustix::io::read(fd, &mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    buf.truncate(len);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;

    #[test]
    fn reads_to_the_end_and_at_most_one_byte_past_the_limit() {
        let (r, mut w) = io::pipe().unwrap();
        w.write_all(b"2468\nrest").unwrap();
        drop(w);
        assert_eq!(read_to_end_wiped(r.as_fd(), 64).unwrap().as_slice(), b"2468\nrest");
        let (r, mut w) = io::pipe().unwrap();
        w.write_all(&[7u8; 100]).unwrap();
        drop(w);
        assert_eq!(read_to_end_wiped(r.as_fd(), 10).unwrap().len(), 11);
    }
}
