use super::*;

fn os(b: &mut [u8]) -> bool {
    getrandom::fill(b).is_ok()
}

const HOST: [u8; 32] = [1u8; 32];
const DEVICE: [u8; 32] = [2u8; 32];

/// An established session: (host side, dongle side).
fn session() -> (Transport, Transport) {
    let (m1, init) = initiate(&HOST, &public_of(&DEVICE), os).unwrap();
    let resp = Responder::read(&DEVICE, &m1, os).unwrap();
    assert_eq!(resp.host_key(), Some(public_of(&HOST)));
    let (m2, dev) = resp.accept().unwrap();
    (init.finish(&m2).unwrap(), dev)
}

/// The `u16 length ‖ message` pieces of a sealed payload.
fn chunks(sealed: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = sealed;
    while !rest.is_empty() {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        out.push(&rest[..2 + len]);
        rest = &rest[2 + len..];
    }
    out
}

#[test]
fn handshake_and_transport_both_ways() {
    let (mut h, mut dev) = session();
    for len in [0, 1, 5, CHUNK_DATA - 1, CHUNK_DATA, CHUNK_DATA + 1, 3 * CHUNK_DATA, 200_000] {
        let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let sealed = h.seal(&payload).unwrap();
        assert_eq!(chunks(&sealed).len(), len.div_ceil(CHUNK_DATA).max(1), "{len}");
        assert_eq!(&dev.open(&sealed).unwrap()[..], &payload[..], "{len}");
        let back = dev.seal(&payload).unwrap();
        assert_eq!(&h.open(&back).unwrap()[..], &payload[..], "{len}");
    }
}

#[test]
fn the_wrong_device_key_or_tampering_fails_and_closes_the_session() {
    let (m1, _) = initiate(&HOST, &public_of(&[3u8; 32]), os).unwrap();
    assert!(Responder::read(&DEVICE, &m1, os).is_err(), "message 1 for another device");
    for junk in [&b""[..], b"\x00", &[0, 200, 1, 2], &[0, 17, 0]] {
        let (_, mut dev) = session();
        assert_eq!(dev.open(junk).unwrap_err(), SessionError::Malformed, "{junk:?}");
    }
    let (mut h, mut dev) = session();
    let mut sealed = h.seal(b"unseal these").unwrap();
    let last = sealed.len() - 1;
    sealed[last] ^= 1;
    assert_eq!(dev.open(&sealed).unwrap_err(), SessionError::Crypto);
    // The session is over, even for a good message.
    let good = h.seal(b"hello").unwrap();
    assert_eq!(dev.open(&good).unwrap_err(), SessionError::Closed);
    assert_eq!(dev.seal(b"x").unwrap_err(), SessionError::Closed);
}

#[test]
fn a_frame_cut_into_two_frames_opens_neither_half() {
    let (mut h, mut dev) = session();
    let sealed = h.seal(&vec![7u8; 2 * CHUNK_DATA + 10]).unwrap();
    let parts = chunks(&sealed);
    assert_eq!(parts.len(), 3);
    // Every message verifies on its own (the nonces are in order), but the first half ends
    // without its last chunk.
    assert_eq!(dev.open(parts[0]).unwrap_err(), SessionError::Malformed);
    assert_eq!(dev.open(&parts[1..].concat()).unwrap_err(), SessionError::Closed);

    // Even a receiver that did not close after the first half (its nonce now right for the
    // second) refuses the second half: it does not start with a first chunk.
    let (mut h, mut dev) = session();
    let sealed = h.seal(&vec![7u8; 2 * CHUNK_DATA + 10]).unwrap();
    let parts = chunks(&sealed);
    let mut buf = vec![0u8; MAX_NOISE_MESSAGE];
    dev.state.read_message(&parts[0][2..], &mut buf).unwrap();
    assert_eq!(dev.open(&parts[1..].concat()).unwrap_err(), SessionError::Malformed);
}

#[test]
fn a_dropped_chunk_does_not_open() {
    let (mut h, mut dev) = session();
    let sealed = h.seal(&vec![1u8; CHUNK_DATA + 1]).unwrap();
    let parts = chunks(&sealed);
    assert_eq!(parts.len(), 2);
    assert_eq!(dev.open(parts[1]).unwrap_err(), SessionError::Crypto, "wrong nonce");
}

#[test]
fn two_frames_glued_together_do_not_open() {
    let (mut h, mut dev) = session();
    let a = h.seal(b"first request").unwrap();
    let b = h.seal(b"second request").unwrap();
    assert_eq!(dev.open(&[a, b].concat()).unwrap_err(), SessionError::Malformed);
}

#[test]
fn bytes_after_the_last_chunk_or_a_short_chunk_do_not_open() {
    let (mut h, mut dev) = session();
    let mut sealed = h.seal(b"hello").unwrap();
    sealed.push(0);
    assert_eq!(dev.open(&sealed).unwrap_err(), SessionError::Malformed);
    let (mut h, mut dev) = session();
    let sealed = h.seal(b"hello").unwrap();
    assert_eq!(dev.open(&sealed[..sealed.len() - 1]).unwrap_err(), SessionError::Malformed);
}

#[test]
fn a_peer_of_another_version_is_told_which_version_it_speaks() {
    let next = PROTOCOL_VERSION + 1;
    // A newer host to this dongle.
    let (m1, _) = initiate_as(next, &HOST, &public_of(&DEVICE), os).unwrap();
    let err = Responder::read(&DEVICE, &m1, os).err().unwrap();
    assert_eq!(err, SessionError::UnsupportedVersion { peer: next });
    let text = err.to_string();
    assert!(
        text.contains(&format!("version {next}"))
            && text.contains(&format!("version {PROTOCOL_VERSION}")),
        "{text}"
    );
    // This host to a newer dongle (which answers in its own version).
    let (m1, init) = initiate_as(next, &HOST, &public_of(&DEVICE), os).unwrap();
    let (m2, _) = Responder::read_as(next, &DEVICE, &m1, os).unwrap().accept().unwrap();
    let (_, ours) = initiate(&HOST, &public_of(&DEVICE), os).unwrap();
    assert_eq!(ours.finish(&m2).err(), Some(SessionError::UnsupportedVersion { peer: next }));
    assert!(init.finish(&m2).is_ok(), "two peers of the same (newer) version agree");
}

#[test]
fn a_version_altered_on_the_way_fails_the_handshake() {
    // A peer of another version whose clear version was rewritten to ours: the prologues
    // still differ, so message 1 does not verify.
    let (mut m1, _) = initiate_as(PROTOCOL_VERSION + 1, &HOST, &public_of(&DEVICE), os).unwrap();
    m1[..2].copy_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    assert_eq!(Responder::read(&DEVICE, &m1, os).err(), Some(SessionError::Crypto));
    // Our message 1 relabelled as another version, read by a dongle of that version.
    let (mut m1, _) = initiate(&HOST, &public_of(&DEVICE), os).unwrap();
    m1[..2].copy_from_slice(&(PROTOCOL_VERSION + 1).to_be_bytes());
    assert_eq!(
        Responder::read_as(PROTOCOL_VERSION + 1, &DEVICE, &m1, os).err(),
        Some(SessionError::Crypto)
    );
    assert_eq!(Responder::read(&DEVICE, b"\x00", os).err(), Some(SessionError::Malformed));
}
