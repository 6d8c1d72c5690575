//! Sessions (Noise IK): handshake messages from strangers, and transport frames after a real
//! handshake.
//!
//! Input: one mode byte, then:
//! - mode 0: a handshake message 1 from an unknown host, read by the dongle's side;
//! - mode 1: the dongle's answer to a real message 1, read by the host's side;
//! - mode 2: after a real handshake, a script of operations, each one byte of opcode and a
//!   length byte: seal and open a payload (must round-trip); deliver raw bytes (must fail, and
//!   every later frame too); alter one byte of a sealed frame; glue two sealed frames; cut a
//!   multi-chunk frame at a chunk boundary. The last three must fail to open.
//!
//! Heap use of each open stays within twice the frame plus one Noise message buffer.
//!
//! A script runs at most 64 operations and one two-chunk cut: longer scripts find nothing new
//! (a session's state is its two nonces) and cost 65 KB of ChaCha20-Poly1305 per cut.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vbzkey_fuzz::alloc_meter::{assert_bounded, peak_during};
use vbzkey_fuzz::{count_allocations, os_fill};
use vbzkey_protocol::session::{self, CHUNK_DATA, Responder, Transport};

count_allocations!();

const HOST: [u8; 32] = [0x11; 32];
const DEVICE: [u8; 32] = [0x22; 32];

fn pair() -> (Transport, Transport) {
    let (m1, init) = session::initiate(&HOST, &session::public_of(&DEVICE), os_fill).unwrap();
    let resp = Responder::read(&DEVICE, &m1, os_fill).unwrap();
    let (m2, dev) = resp.accept().unwrap();
    (init.finish(&m2).unwrap(), dev)
}

fn open_bounded(t: &mut Transport, sealed: &[u8]) -> Result<Vec<u8>, session::SessionError> {
    let (r, peak) = peak_during(|| t.open(sealed).map(|p| p.to_vec()));
    assert_bounded("session open", sealed.len(), peak, 3, 2 * 65_536 + 4096);
    r
}

fn script(ops: &[u8]) {
    let (mut host, mut dev) = pair();
    let mut broken = false;
    let mut cut_done = false;
    let mut rest = ops;
    let mut count = 0;
    while let Some((&[op, len], tail)) = rest.split_first_chunk::<2>() {
        count += 1;
        if count > 64 {
            break;
        }
        let op = if op % 5 == 4 && cut_done { 0 } else { op };
        cut_done |= op % 5 == 4;
        let n = usize::from(len).min(tail.len());
        let (arg, tail) = tail.split_at(n);
        rest = tail;
        let result = match op % 5 {
            0 => {
                let sealed = host.seal(arg).unwrap();
                let r = open_bounded(&mut dev, &sealed);
                if !broken {
                    assert_eq!(r.as_deref().unwrap(), arg);
                }
                r.map(|_| ())
            }
            1 => {
                let r = open_bounded(&mut dev, arg);
                assert!(r.is_err(), "raw bytes opened as a session frame");
                r.map(|_| ())
            }
            2 => {
                let mut sealed = host.seal(arg).unwrap();
                let i = usize::from(len) % sealed.len();
                sealed[i] ^= 0x01;
                open_bounded(&mut dev, &sealed).map(|_| ())
            }
            3 => {
                let a = host.seal(arg).unwrap();
                let b = host.seal(arg).unwrap();
                open_bounded(&mut dev, &[a, b].concat()).map(|_| ())
            }
            _ => {
                // A payload of two chunks, cut after the first.
                let big = vec![len; CHUNK_DATA + 1 + usize::from(len)];
                let sealed = host.seal(&big).unwrap();
                let first = 2 + usize::from(u16::from_be_bytes([sealed[0], sealed[1]]));
                let r = open_bounded(&mut dev, &sealed[..first]);
                assert!(r.is_err(), "a frame's first chunk opened alone");
                r.map(|_| ())
            }
        };
        assert!(op % 5 == 0 || result.is_err(), "op {op}: a bad frame opened");
        match result {
            Ok(()) => assert!(!broken, "a frame opened after the session failed"),
            Err(_) => {
                assert!(op % 5 != 0 || broken, "a real frame failed to open");
                broken = true;
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    match mode % 3 {
        0 => {
            if let Ok(r) = Responder::read(&DEVICE, rest, os_fill) {
                // Only a host that knows the device key gets this far; it has a static key.
                assert!(r.host_key().is_some());
            }
        }
        1 => {
            let (_, init) =
                session::initiate(&HOST, &session::public_of(&DEVICE), os_fill).unwrap();
            // Forging the dongle's answer needs the device key or the host's ephemeral key.
            assert!(init.finish(rest).is_err(), "a forged message 2 was accepted");
        }
        _ => script(rest),
    }
});
