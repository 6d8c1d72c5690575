//! Frames on a byte stream (`std` only): read and write whole frames with the size limit
//! enforced before any allocation. This is framing only: the client (request ids, sessions,
//! reconnecting) is the `vbzkey-client` crate, the server is the firmware's transports.

use std::io::{self, Read, Write};

use zeroize::Zeroizing;

use crate::wire::{self, FRAME_HEADER_LEN, FrameKind, WireError};

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The stream failed or ended mid-frame.
    #[error("I/O: {0}")]
    Io(#[from] io::Error),
    /// The header is invalid; the stream cannot be trusted to be in sync any more.
    #[error("bad frame: {0}")]
    Wire(#[from] WireError),
}

/// A received frame: its kind and its payload (wiped on drop).
pub type Frame = (FrameKind, Zeroizing<Vec<u8>>);

/// Read one frame: its kind and payload. `Ok(None)` on a clean end of stream before a header.
/// The buffer is zeroized on drop: payloads carry PINs one way and plaintext the other.
pub fn read_frame_kind(r: &mut impl Read) -> Result<Option<Frame>, FrameError> {
    let Some((kind, len)) = read_header(r)? else { return Ok(None) };
    let mut payload = Zeroizing::new(vec![0u8; len]);
    r.read_exact(&mut payload)?;
    Ok(Some((kind, payload)))
}

/// Read one frame header only: the kind and the payload length (at most
/// `MAX_FRAME_PAYLOAD`), none of the payload. `Ok(None)` on a clean end of stream before a
/// header. For a reader that decides from the header whether to read the payload at all (the
/// dongle's limits before a session, docs/PROTOCOL.md).
pub fn read_header(r: &mut impl Read) -> Result<Option<(FrameKind, usize)>, FrameError> {
    let mut header = [0u8; FRAME_HEADER_LEN];
    let mut got = 0;
    while let Some(rest @ [_, ..]) = header.get_mut(got..) {
        match r.read(rest) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(FrameError::Io(io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = wire::parse_header(&header)?;
    let kind = wire::frame_kind(&header)?;
    Ok(Some((kind, len)))
}

/// Write a full frame (header ‖ payload) and flush.
pub fn write_frame(w: &mut impl Write, frame: &[u8]) -> io::Result<()> {
    w.write_all(frame)?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{MAX_FRAME_PAYLOAD, Request};
    use proptest::prelude::*;

    fn read_frame(r: &mut impl Read) -> Result<Option<Zeroizing<Vec<u8>>>, FrameError> {
        Ok(read_frame_kind(r)?.map(|(_, payload)| payload))
    }

    #[test]
    fn frames_and_eof() {
        let frame = wire::encode(3, &Request::Hello);
        let mut two = frame.clone();
        two.extend_from_slice(&frame);
        let mut r = &two[..];
        assert!(read_frame(&mut r).unwrap().is_some());
        assert!(read_frame(&mut r).unwrap().is_some());
        assert!(read_frame(&mut r).unwrap().is_none());
        let mut truncated = &frame[..frame.len() - 1];
        assert!(matches!(read_frame(&mut truncated), Err(FrameError::Io(_))));
        let mut half_header = &frame[..3];
        assert!(matches!(read_frame(&mut half_header), Err(FrameError::Io(_))));
    }

    #[test]
    fn a_header_is_read_without_its_payload() {
        let frame = wire::encode(3, &Request::Hello);
        let mut r = &frame[..];
        let (kind, len) = read_header(&mut r).unwrap().unwrap();
        assert_eq!((kind, len), (FrameKind::Plain, frame.len() - FRAME_HEADER_LEN));
        assert_eq!(r, &frame[FRAME_HEADER_LEN..], "the payload is still unread");
        assert!(read_header(&mut &[][..]).unwrap().is_none());
        let big = wire::header_for_kind(MAX_FRAME_PAYLOAD, FrameKind::Sealed);
        assert_eq!(
            read_header(&mut &big[..]).unwrap(),
            Some((FrameKind::Sealed, MAX_FRAME_PAYLOAD)),
            "a 2 MiB header alone: nothing is allocated for its payload"
        );
    }

    #[test]
    fn oversized_frames_are_refused_before_allocating() {
        let mut h = wire::header_for(MAX_FRAME_PAYLOAD + 1).to_vec();
        h.extend_from_slice(&[0; 16]);
        assert!(matches!(
            read_frame(&mut &h[..]),
            Err(FrameError::Wire(WireError::FrameTooLarge(_)))
        ));
        let big = wire::header_for(u32::MAX as usize);
        assert!(matches!(read_frame(&mut &big[..]), Err(FrameError::Wire(_))));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let mut r = &bytes[..];
            for _ in 0..4 {
                match read_frame(&mut r) {
                    Ok(Some(p)) => { let _ = wire::decode::<Request>(&p); }
                    _ => break,
                }
            }
        }

        #[test]
        fn random_payloads_in_valid_frames_never_panic(payload in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut f = wire::header_for(payload.len()).to_vec();
            f.extend_from_slice(&payload);
            let p = read_frame(&mut &f[..]).unwrap().unwrap();
            let _ = wire::decode::<Request>(&p);
        }
    }
}
