//! The whole dongle: `Dongle` over `MemStorage`, behind the transports' session gate
//! (`transport::Shared::on_frame`), driven by a structured mix of operations derived with
//! `arbitrary`, so that the deep paths are reached: records really sealed to the dongle's
//! keys, share lines with valid checksums from its own backups, clone keys and blobs, and
//! Noise sessions of paired and unpaired hosts with their unlock secrets, and a button the
//! script presses or not.
//!
//! Checked beyond "no panic": every answer is a frame that decodes as one `Response` (and,
//! in a session, opens); a value the harness sealed to a key the dongle holds, unaltered,
//! opens to exactly that value or fails only with `NoSuchKey` (its key was retired or reset);
//! an altered record never opens; a stranger's handshake never opens a session; a request
//! that waits for the button says so first (`PresenceNeeded`, under its own request id).
#![no_main]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use vbzkey_firmware::dongle::{Config, Dongle, Platform, RngFailed};
use vbzkey_firmware::keystore::{Binding, KdfParams};
use vbzkey_firmware::platform::PresenceGate;
use vbzkey_firmware::storage::MemStorage;
use vbzkey_firmware::transport::{Clock, Reply, Shared};
use vbzkey_fuzz::os_fill;
use vbzkey_hardware::presence::{Indicator, PresenceInput};
use vbzkey_protocol::session::{self, Transport};
use vbzkey_protocol::share::Share;
use vbzkey_protocol::wire::{
    self, FrameKind, ItemError, KeyInfo, Pin, Request, Response, SealedItem, UnlockSecret,
};
use vbzkey_protocol::{PublicKey, record};
use zeroize::Zeroizing;

const PIN: &[u8] = b"246810";
const ADMIN_PIN: &[u8] = b"13579111";
const PAIRED_HOST: [u8; 32] = [0x31; 32];
const STRANGER: [u8; 32] = [0x32; 32];
/// The unlock secrets the two hosts give when paired (a bridge derives its own from its key).
const PAIRED_SECRET: [u8; 32] = [0x41; 32];
const STRANGER_SECRET: [u8; 32] = [0x42; 32];

/// The board: the OS RNG, no LED.
struct FuzzPlatform;

impl Platform for FuzzPlatform {
    fn fill_random(&mut self, buf: &mut [u8]) -> Result<(), RngFailed> {
        if os_fill(buf) { Ok(()) } else { Err(RngFailed) }
    }
    fn show(&mut self, _unlocked: bool) {}
}

/// The button: pressed or not as the script last said (`Op::Button`). The gate's timeout is
/// zero, so an unpressed wait ends at once.
struct FuzzButton(Arc<AtomicBool>);

impl PresenceInput for FuzzButton {
    fn arm(&mut self) {}
    fn pressed(&mut self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Arbitrary, Debug)]
enum SecretPick {
    None,
    Paired,
    Stranger,
    Raw([u8; 32]),
}

impl SecretPick {
    fn secret(&self) -> Option<UnlockSecret> {
        let bytes = match self {
            SecretPick::None => return None,
            SecretPick::Paired => PAIRED_SECRET,
            SecretPick::Stranger => STRANGER_SECRET,
            SecretPick::Raw(b) => *b,
        };
        Some(UnlockSecret(Zeroizing::new(bytes)))
    }
}

#[derive(Arbitrary, Debug)]
enum PinPick {
    Right,
    Admin,
    Other(Vec<u8>),
}

impl PinPick {
    fn pin(&self) -> Pin {
        match self {
            PinPick::Right => Pin::new(PIN),
            PinPick::Admin => Pin::new(ADMIN_PIN),
            PinPick::Other(b) => Pin::new(b),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum ItemPick {
    /// A value sealed now to the n-th key the dongle reported, maybe altered.
    Sealed { value: String, context: String, key: u8, flip: Option<(u16, u8)> },
    /// Anything.
    Raw { record: Vec<u8>, context: Vec<u8> },
}

#[derive(Arbitrary, Debug)]
enum SharePick {
    /// The n-th share of the last backup, maybe with one bit of its data changed.
    Dealt { index: u8, typo: Option<(u16, u8)> },
    /// A share line, as an admin would type it.
    Text(String),
}

#[derive(Arbitrary, Debug)]
enum Req {
    Hello,
    Init {
        pin: bool,
        admin: PinPick,
    },
    AdminAuth(PinPick, SecretPick),
    Unlock(PinPick, SecretPick),
    EndAdmin,
    Lock,
    PublicKeys,
    Unseal(Vec<ItemPick>),
    Rewrap {
        items: Vec<ItemPick>,
        to: u8,
        foreign: bool,
    },
    AuditTail(u16),
    SetStaffPin(Option<PinPick>),
    ChangeAdminPin(PinPick),
    Rotate,
    Retire(u8),
    FactoryReset,
    Backup {
        threshold: u8,
        count: u8,
    },
    Restore {
        shares: Vec<SharePick>,
        pin: bool,
        admin: PinPick,
    },
    CloneBegin,
    /// To the transfer key of the last `CloneBegin`, or to one of the dongle's own keys.
    CloneExport {
        own_key: Option<u8>,
    },
    CloneImport {
        pin: bool,
        admin: PinPick,
        flip: Option<(u16, u8)>,
    },
    DeviceKey,
    Pair {
        stranger: bool,
        label: String,
    },
    Unpair {
        stranger: bool,
    },
    Pairings,
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// Whether the button is pressed when the dongle next asks.
    Button(bool),
    /// A request on a local connection (plain frames, like the Unix socket or USB).
    Local(Req),
    /// A raw payload in a plain frame on the local connection.
    LocalRaw(Vec<u8>),
    /// Open a session on the LAN connection, as the paired host or a stranger.
    Handshake { stranger: bool },
    /// A request in the LAN connection's session (or plain, if none is open).
    Remote(Req),
    /// A raw frame of any kind on the LAN connection.
    RemoteRaw { kind: u8, payload: Vec<u8> },
}

#[derive(Arbitrary, Debug)]
struct Script {
    ops: Vec<Op>,
}

/// What the harness learned from the dongle's answers.
#[derive(Default)]
struct Known {
    keys: Vec<KeyInfo>,
    shares: Vec<Share>,
    clone_key: Option<[u8; 32]>,
    blob: Option<Vec<u8>>,
    device_key: Option<[u8; 32]>,
}

/// A value the harness sealed: what must come back, if anything.
enum Expect {
    Value(Vec<u8>),
    Fails,
    Unknown,
}

fn pick<T: Clone>(v: &[T], n: u8) -> Option<T> {
    (!v.is_empty()).then(|| v[usize::from(n) % v.len()].clone())
}

fn flip(bytes: &mut Vec<u8>, (at, bit): (u16, u8)) {
    if !bytes.is_empty() {
        let i = usize::from(at) % bytes.len();
        bytes[i] ^= 1 << (bit % 8);
    }
}

fn items(picks: &[ItemPick], known: &Known) -> (Vec<SealedItem>, Vec<Expect>) {
    picks
        .iter()
        .take(16)
        .map(|p| match p {
            ItemPick::Sealed { value, context, key, flip: f } => {
                let Some(k) = pick(&known.keys, *key) else {
                    return (SealedItem { record: vec![], context: vec![] }, Expect::Unknown);
                };
                let pk = PublicKey::from_bytes(k.public_key);
                match record::seal(&pk, context.as_bytes(), value.as_bytes()) {
                    Ok(mut rec) => {
                        let expect = match f {
                            Some(f) => {
                                flip(&mut rec, *f);
                                Expect::Fails
                            }
                            None => Expect::Value(value.as_bytes().to_vec()),
                        };
                        (SealedItem { record: rec, context: context.as_bytes().to_vec() }, expect)
                    }
                    Err(_) => (SealedItem { record: vec![], context: vec![] }, Expect::Unknown),
                }
            }
            ItemPick::Raw { record, context } => {
                (SealedItem { record: record.clone(), context: context.clone() }, Expect::Unknown)
            }
        })
        .unzip()
}

fn build(req: &Req, known: &Known) -> (Request, Vec<Expect>) {
    let none = Vec::new;
    let r = match req {
        Req::Hello => Request::Hello,
        Req::Init { pin, admin } => {
            Request::Init { pin: pin.then(|| Pin::new(PIN)), admin_pin: admin.pin() }
        }
        Req::AdminAuth(p, s) => {
            Request::AdminAuth { admin_pin: p.pin(), unlock_secret: s.secret() }
        }
        Req::Unlock(p, s) => Request::Unlock { pin: p.pin(), unlock_secret: s.secret() },
        Req::EndAdmin => Request::EndAdmin,
        Req::Lock => Request::Lock,
        Req::PublicKeys => Request::PublicKeys,
        Req::Unseal(picks) => {
            let (items, expect) = items(picks, known);
            return (Request::UnsealBatch { items }, expect);
        }
        Req::Rewrap { items: picks, to, foreign } => {
            let (items, _) = items(picks, known);
            let new_public_key = match pick(&known.keys, *to) {
                Some(k) if !foreign => k.public_key,
                _ => [u8::from(*to); 32],
            };
            return (Request::Rewrap { items, new_public_key }, none());
        }
        Req::AuditTail(max) => Request::AuditTail { max: *max },
        Req::SetStaffPin(new) => Request::SetStaffPin { new: new.as_ref().map(PinPick::pin) },
        Req::ChangeAdminPin(new) => Request::ChangeAdminPin { new: new.pin() },
        Req::Rotate => Request::Rotate,
        Req::Retire(n) => Request::Retire {
            key_id: pick(&known.keys, *n).map_or(vbzkey_protocol::KeyId([*n; 8]), |k| k.key_id),
        },
        Req::FactoryReset => Request::FactoryReset,
        Req::Backup { threshold, count } => {
            Request::Backup { threshold: threshold % 6, count: count % 8 }
        }
        Req::Restore { shares, pin, admin } => Request::Restore {
            shares: shares
                .iter()
                .take(20)
                .filter_map(|s| match s {
                    SharePick::Dealt { index, typo } => {
                        let mut share = pick(&known.shares, *index)?;
                        if let Some(t) = typo {
                            let mut data = share.data.to_vec();
                            flip(&mut data, *t);
                            share.data = Zeroizing::new(data);
                        }
                        Some(share)
                    }
                    SharePick::Text(t) => Share::from_text(t).ok(),
                })
                .collect(),
            pin: pin.then(|| Pin::new(PIN)),
            admin_pin: admin.pin(),
        },
        Req::CloneBegin => Request::CloneBegin,
        Req::CloneExport { own_key } => Request::CloneExport {
            to: match own_key.and_then(|n| pick(&known.keys, n)) {
                Some(k) => k.public_key,
                None => known.clone_key.unwrap_or([9; 32]),
            },
        },
        Req::CloneImport { pin, admin, flip: f } => {
            let mut blob = known.blob.clone().unwrap_or_default();
            if let Some(f) = f {
                flip(&mut blob, *f);
            }
            Request::CloneImport { blob, pin: pin.then(|| Pin::new(PIN)), admin_pin: admin.pin() }
        }
        Req::DeviceKey => Request::DeviceKey,
        Req::Pair { stranger, label } => Request::Pair {
            host_key: session::public_of(if *stranger { &STRANGER } else { &PAIRED_HOST }),
            label: label.chars().take(80).collect(),
            unlock_secret: UnlockSecret(Zeroizing::new(if *stranger {
                STRANGER_SECRET
            } else {
                PAIRED_SECRET
            })),
        },
        Req::Unpair { stranger } => Request::Unpair {
            host_key: session::public_of(if *stranger { &STRANGER } else { &PAIRED_HOST }),
        },
        Req::Pairings => Request::Pairings,
    };
    (r, none())
}

/// Learn from an answer and check what was expected of it (`None`: the request was raw bytes,
/// nothing is expected).
fn learn(resp: &Response, expect: Option<&[Expect]>, known: &mut Known) {
    match resp {
        Response::PublicKeys(k) => known.keys = k.clone(),
        Response::Hello(h) => known.keys = h.keys.clone(),
        Response::Shares(s) => known.shares = s.clone(),
        Response::CloneKey(k) => known.clone_key = Some(*k),
        Response::CloneBlob(b) => known.blob = Some(b.clone()),
        Response::DeviceKey(k) => known.device_key = Some(*k),
        Response::Unsealed(results) => {
            let Some(expect) = expect else { return };
            assert_eq!(results.len(), expect.len(), "one result per item");
            for (r, e) in results.iter().zip(expect) {
                match (r, e) {
                    (Ok(v), Expect::Value(want)) => assert_eq!(&v.0[..], &want[..]),
                    (Err(ItemError::NoSuchKey), Expect::Value(_)) => {}
                    (Err(err), Expect::Value(_)) => panic!("a sealed value failed: {err:?}"),
                    (Ok(_), Expect::Fails) => panic!("an altered record opened"),
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

/// Check and decode a plain answer frame.
fn plain_answer(frame: &[u8]) -> Response {
    let header: &[u8; wire::FRAME_HEADER_LEN] = frame[..8].try_into().unwrap();
    assert_eq!(wire::parse_header(header).unwrap(), frame.len() - 8);
    assert_eq!(wire::frame_kind(header).unwrap(), FrameKind::Plain);
    wire::decode::<Response>(&frame[8..]).expect("the dongle's answer decodes").1
}

fn reply_frame(reply: Reply) -> Option<(Vec<u8>, bool)> {
    match reply {
        Reply::Send(f) => Some((f, false)),
        Reply::SendAndClose(f) => Some((f, true)),
        Reply::Close => None,
    }
}

/// Frames sent before the answer: each must be the dongle asking for the button, under the
/// request's id (sealed in a session).
fn check_interim(interim: &[Vec<u8>], id: u32, session: Option<&mut Transport>) {
    let mut session = session;
    for frame in interim {
        let payload = &frame[wire::FRAME_HEADER_LEN..];
        let plain = match session.as_deref_mut() {
            Some(t) => {
                assert_eq!(frame[3], FrameKind::Sealed as u8);
                t.open(payload).expect("the interim frame opens")
            }
            None => {
                assert_eq!(frame[3], FrameKind::Plain as u8);
                Zeroizing::new(payload.to_vec())
            }
        };
        let (got, resp) = wire::decode::<Response>(&plain).expect("the interim frame decodes");
        assert_eq!(got, id);
        assert!(matches!(resp, Response::PresenceNeeded { .. }), "{resp:?}");
    }
}

fuzz_target!(|script: Script| {
    let cfg = Config { kdf: KdfParams::TEST_ONLY_WEAK, ..Config::default() };
    let binding = Binding { serial: "00000000f0220001".into(), device_secret: None };
    let clock = Clock::default();
    let Ok(dongle) = Dongle::start(cfg, MemStorage::default(), FuzzPlatform, binding, clock.now())
    else {
        return;
    };
    let pressed = Arc::new(AtomicBool::new(false));
    let button = FuzzButton(Arc::clone(&pressed));
    let gate = PresenceGate::new(Some(Box::new(button)), Indicator::default(), Duration::ZERO);
    let shared = Shared::new(dongle, clock, gate);
    let mut local = shared.connect("fuzz-local", false);
    let mut lan = shared.connect("tcp:fuzz", true);
    let mut session: Option<Transport> = None;
    let mut known = Known::default();
    let mut id = 0u32;

    for op in script.ops.iter().take(48) {
        id = id.wrapping_add(1);
        let mut interim = Vec::new();
        let mut send = |f: &[u8]| interim.push(f.to_vec());
        match op {
            Op::Button(on) => pressed.store(*on, Ordering::Relaxed),
            Op::Local(req) => {
                let (req, expect) = build(req, &known);
                let payload = wire::encode_payload(id, &req);
                let reply = shared.on_frame(&mut local, FrameKind::Plain, &payload, &mut send);
                let Some((frame, _)) = reply_frame(reply) else {
                    panic!("a plain local request closed the connection")
                };
                check_interim(&interim, id, None);
                let resp = plain_answer(&frame);
                learn(&resp, Some(&expect), &mut known);
            }
            Op::LocalRaw(payload) => {
                if let Some((frame, _)) =
                    reply_frame(shared.on_frame(&mut local, FrameKind::Plain, payload, &mut send))
                {
                    learn(&plain_answer(&frame), None, &mut known);
                }
            }
            Op::Handshake { stranger } => {
                let Some(device) = known.device_key else { continue };
                shared.disconnect(&lan);
                lan = shared.connect("tcp:fuzz", true);
                session = None;
                let secret = if *stranger { &STRANGER } else { &PAIRED_HOST };
                let (m1, init) = session::initiate(secret, &device, os_fill).unwrap();
                match reply_frame(shared.on_frame(&mut lan, FrameKind::Handshake, &m1, &mut send)) {
                    Some((frame, false)) => {
                        let (kind, m2) = (frame[3], &frame[8..]);
                        assert_eq!(kind, FrameKind::Handshake as u8);
                        session = Some(init.finish(m2).expect("the dongle's message 2 verifies"));
                    }
                    Some((frame, true)) => {
                        assert!(matches!(plain_answer(&frame), Response::Error(_)));
                    }
                    None => {}
                }
            }
            Op::Remote(req) => {
                let (req, expect) = build(req, &known);
                let payload = wire::encode_payload(id, &req);
                match session.as_mut() {
                    Some(t) => {
                        let sealed = t.seal(&payload).unwrap();
                        let reply =
                            shared.on_frame(&mut lan, FrameKind::Sealed, &sealed, &mut send);
                        match reply_frame(reply) {
                            Some((frame, _)) => {
                                check_interim(&interim, id, Some(t));
                                assert_eq!(frame[3], FrameKind::Sealed as u8);
                                let plain = t.open(&frame[8..]).expect("the answer opens");
                                let (got, resp) = wire::decode::<Response>(&plain).unwrap();
                                assert_eq!(got, id);
                                learn(&resp, Some(&expect), &mut known);
                            }
                            // Unpaired meanwhile: the session ends.
                            None => session = None,
                        }
                    }
                    None => {
                        if let Some((frame, _)) = reply_frame(shared.on_frame(
                            &mut lan,
                            FrameKind::Plain,
                            &payload,
                            &mut send,
                        )) {
                            let resp = plain_answer(&frame);
                            assert!(
                                matches!(
                                    (&req, &resp),
                                    (Request::Hello, Response::Hello(_))
                                        | (
                                            Request::DeviceKey,
                                            Response::DeviceKey(_) | Response::Error(_)
                                        )
                                        | (_, Response::Error(_))
                                ),
                                "the LAN served {req:?} outside a session: {resp:?}"
                            );
                            learn(&resp, None, &mut known);
                        }
                    }
                }
            }
            Op::RemoteRaw { kind, payload } => {
                let kind = match kind % 3 {
                    0 => FrameKind::Plain,
                    1 => FrameKind::Handshake,
                    _ => FrameKind::Sealed,
                };
                match reply_frame(shared.on_frame(&mut lan, kind, payload, &mut send)) {
                    Some((frame, close)) if frame[3] == FrameKind::Plain as u8 => {
                        let _ = plain_answer(&frame);
                        if close {
                            shared.disconnect(&lan);
                            lan = shared.connect("tcp:fuzz", true);
                            session = None;
                        }
                    }
                    Some(_) => panic!("raw bytes opened a session or a sealed answer"),
                    None => {
                        shared.disconnect(&lan);
                        lan = shared.connect("tcp:fuzz", true);
                        session = None;
                    }
                }
            }
        }
    }
});
