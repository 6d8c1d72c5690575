//! The stream framing every transport uses (`stream::read_frame_kind`) and the message
//! decoder behind it (`wire::decode`), for requests (what the dongle reads) and answers (what
//! hosts read).
//!
//! Input: the bytes a peer sends on a connection; up to eight frames are read from it.
//! Checked: every decoded message re-encodes and decodes to itself; a payload decodes only if
//! it is exactly one message (no bytes after it); heap use per input stays within a bound
//! proportional to its size plus one maximal frame buffer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vbzkey_fuzz::alloc_meter::{assert_bounded, peak_during};
use vbzkey_fuzz::count_allocations;
use vbzkey_protocol::stream::read_frame_kind;
use vbzkey_protocol::wire::{self, MAX_FRAME_PAYLOAD, Request, Response};

count_allocations!();

fn round_trip<T>(payload: &[u8])
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let Ok((id, msg)) = wire::decode::<T>(payload) else { return };
    let again = wire::encode_payload(id, &msg);
    assert_eq!(wire::decode::<T>(&again).unwrap(), (id, msg));
    let mut longer = payload.to_vec();
    longer.push(0);
    assert!(wire::decode::<T>(&longer).is_err(), "a byte after a whole message");
}

fuzz_target!(|data: &[u8]| {
    let ((), peak) = peak_during(|| {
        let mut r = data;
        for _ in 0..8 {
            match read_frame_kind(&mut r) {
                Ok(Some((_, payload))) => {
                    assert!(payload.len() <= MAX_FRAME_PAYLOAD);
                    round_trip::<Request>(&payload);
                    round_trip::<Response>(&payload);
                }
                Ok(None) | Err(_) => break,
            }
        }
    });
    // The fixed part: one frame buffer (a header may announce up to 2 MiB before its bytes
    // arrive), serde's capped pre-allocation for a sequence (1 MiB), the copies above. The
    // per-byte part: postcard turns a 2-byte empty item into a 48-byte `SealedItem` (or a
    // 1-byte empty string into 24 bytes), and a growing Vec briefly holds old and new buffers.
    assert_bounded("frame decode", data.len(), peak, 160, 2 * MAX_FRAME_PAYLOAD + (2 << 20));
});
