//! Writes the seed corpus of every fuzz target into `fuzz/corpus/<target>/`: records from the
//! test kit, key files, share lines with valid checksums, recorded frames and sessions,
//! SD-card files as the firmware writes them, customer JSON from the split kit and bridge
//! requests. Run once after a format change and commit the result:
//!
//!     cd fuzz && cargo run --release --example seeds
//!
//! Names are content hashes (as libFuzzer names its own finds), so re-running only adds.

use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};
use vbzkey_firmware::audit::{AuditLog, Event, Record};
use vbzkey_firmware::backup::{PlatformRng, deal};
use vbzkey_firmware::dongle::{Config, Dongle, Outcome, Peer, Platform, Press, RngFailed};
use vbzkey_firmware::keystore::{Binding, Credential, KdfParams};
use vbzkey_firmware::storage::{File, MemStorage, Storage};
use vbzkey_firmware::{pairing, pin_counter};
use vbzkey_fuzz::{kit_key, os_fill};
use vbzkey_protocol::record;
use vbzkey_protocol::session::{self, Responder};
use vbzkey_protocol::share::Share;
use vbzkey_protocol::wire::{
    self, FrameKind, PairingInfo, Pin, Request, Response, SealedItem, UnlockSecret,
};
use vbzkey_softkey::{Kdf, KeyFile, PassphraseKey};
use zeroize::Zeroizing;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn put(target: &str, bytes: &[u8]) {
    let dir = root().join("corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    let name: String = Sha256::digest(bytes).iter().take(10).map(|b| format!("{b:02x}")).collect();
    std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
}

fn with_mode(mode: u8, bytes: &[u8]) -> Vec<u8> {
    [&[mode][..], bytes].concat()
}

fn kit(name: &str) -> Value {
    let p = root().join("../protocol/tests/vectors").join(name);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn records() {
    let k = kit("records-v1.json");
    for r in k["good"].as_array().unwrap().iter().chain(k["bad"].as_array().unwrap()) {
        let text = r["record"].as_str().unwrap();
        let context = r["context"].as_str().unwrap().as_bytes();
        put("record", &with_mode(2, text.as_bytes()));
        if let Ok(bin) = record::from_text(text) {
            put("record", &with_mode(0, &bin));
            if let Ok(n) = u8::try_from(context.len()) {
                put("record", &[&[1, n][..], context, &bin].concat());
            }
            put(
                "stream_frames",
                &wire::encode(
                    1,
                    &Request::UnsealBatch {
                        items: vec![SealedItem { record: bin, context: context.to_vec() }],
                    },
                ),
            );
        }
    }
    put("record", &with_mode(3, &[7, b'4', b'1', b'1', b'1']));
    put("record", &with_mode(3, "Grüße aus Köln".as_bytes()));
}

fn keys() {
    let sk = kit_key();
    put("key_text", &with_mode(0, sk.public_key().to_text().as_bytes()));
    put("key_text", &with_mode(1, sk.to_text().as_bytes()));
    let file = KeyFile::seal(&sk, b"a key file passphrase", Kdf::TEST_ONLY_WEAK).unwrap();
    put("key_text", &with_mode(2, file.to_json().as_bytes()));
    let (desc, _) =
        PassphraseKey::create(b"correct horse battery staple", Kdf::TEST_ONLY_WEAK).unwrap();
    put("key_text", &with_mode(3, desc.to_json().as_bytes()));
}

fn shares() {
    let secret = b"every key version of a dongle, postcard-encoded".to_vec();
    let mut fill = |b: &mut [u8]| os_fill(b);
    let mut rng = PlatformRng::new(&mut fill);
    for (m, n) in [(2, 3), (3, 5), (16, 16)] {
        for s in deal(&secret, m, n, &mut rng).iter().take(2) {
            put("share_text", s.to_text().as_bytes());
        }
    }
    put("share_text", "  vkshare1.deadbeef.3.5.2.AQID-g.00000000\n".as_bytes());
}

/// A share as `Backup` deals it (its numbers checked, its data not a real secret's).
fn share() -> Share {
    Share::checked([1, 2, 3, 4], 2, 3, 1, Zeroizing::new(vec![7; 40])).unwrap()
}

fn frames() {
    let reqs = [
        Request::Hello,
        Request::Init { pin: Some(Pin::new(b"123456")), admin_pin: Pin::new(b"admin-2468") },
        Request::Unlock { pin: Pin::new(b"123456"), unlock_secret: None },
        Request::Unlock {
            pin: Pin::new(b"123456"),
            unlock_secret: Some(UnlockSecret(Zeroizing::new([4; 32]))),
        },
        Request::AdminAuth { admin_pin: Pin::new(b"admin-2468"), unlock_secret: None },
        Request::SetStaffPin { new: Some(Pin::new(b"654321")) },
        Request::ChangeAdminPin { new: Pin::new(b"admin-8642") },
        Request::EndAdmin,
        Request::Rewrap { items: vec![], new_public_key: [7; 32] },
        Request::AuditTail { max: 1000 },
        Request::Backup { threshold: 3, count: 5 },
        Request::Restore { shares: vec![share()], pin: None, admin_pin: Pin::new(b"admin-2468") },
        Request::Pair {
            host_key: [1; 32],
            label: "till 1".into(),
            unlock_secret: UnlockSecret(Zeroizing::new([3; 32])),
        },
        Request::CloneImport { blob: vec![1, 2, 3], pin: None, admin_pin: Pin::new(b"admin-2468") },
    ];
    for (i, r) in reqs.iter().enumerate() {
        put("stream_frames", &wire::encode(i as u32, r));
    }
    let resps = [
        Response::Ok,
        Response::Error(wire::DongleError::WrongPin { tries_left: 3 }),
        Response::Shares(vec![share()]),
        Response::PresenceNeeded { timeout_secs: 30 },
        Response::Pairings(vec![PairingInfo {
            host_key: [2; 32],
            label: "x".into(),
            paired_at: 9,
        }]),
    ];
    for r in &resps {
        put("stream_frames", &wire::encode(77, r));
    }
    // Two frames on one stream, and a session handshake and sealed frame.
    put(
        "stream_frames",
        &[wire::encode(1, &Request::Hello), wire::encode(2, &Request::Lock)].concat(),
    );
    let host = [0x11; 32];
    let device = [0x22; 32];
    let (m1, init) = session::initiate(&host, &session::public_of(&device), os_fill).unwrap();
    let (m2, _) = Responder::read(&device, &m1, os_fill).unwrap().accept().unwrap();
    let mut t = init.finish(&m2).unwrap();
    let sealed = t.seal(&wire::encode_payload(3, &Request::Hello)).unwrap();
    put(
        "stream_frames",
        &[wire::frame(FrameKind::Handshake, &m1), wire::frame(FrameKind::Sealed, &sealed)].concat(),
    );
    put("session", &with_mode(0, &m1));
    put("session", &with_mode(1, &m2));
    // Scripts: seal/open, raw, altered, glued, cut.
    for script in [
        &[0u8, 5, b'h', b'e', b'l', b'l', b'o'][..],
        &[0, 0, 2, 3, 1, 2, 3],
        &[3, 1, 9, 4, 2],
        &[1, 4, 0, 4, 1, 1],
    ] {
        put("session", &with_mode(2, script));
    }
}

struct OsPlatform;

impl Platform for OsPlatform {
    fn fill_random(&mut self, buf: &mut [u8]) -> Result<(), RngFailed> {
        if os_fill(buf) { Ok(()) } else { Err(RngFailed) }
    }
    fn show(&mut self, _: bool) {}
}

fn sd_card() {
    for (staff, admin) in [(0, 0), (1, 0), (7, 8), (8, 3)] {
        let c = pin_counter::Counters::default()
            .with(Credential::Staff, staff)
            .with(Credential::Admin, admin);
        put("sd_card_files", &with_mode(0, &c.encode()));
    }
    let mut s = MemStorage::default();
    let hosts =
        [PairingInfo { host_key: [5; 32], label: "till 2".into(), paired_at: 1_700_000_000 }];
    pairing::store(&mut s, &hosts).unwrap();
    let file = s.files[&File::Pairings].clone();
    // Mode 1 takes the body after the checksum (the target recomputes it) or the whole file.
    put("sd_card_files", &[&[1, 0][..], &file[32..]].concat());
    put("sd_card_files", &[&[1, 1][..], &file].concat());
    let mut s = MemStorage::default();
    let mut log = AuditLog::open(&mut s, 1_700_000_000, &mut |_| {}).unwrap();
    for (e, host) in
        [(Event::Init, "unix"), (Event::Unseal, "host:00aa"), (Event::Backup, "tcp:1.2.3.4")]
    {
        log.append(
            &mut s,
            1_700_000_001,
            &Record { event: e, keys: "38e1dedd14c44993", ok: 2, failed: 1, host },
        )
        .unwrap();
    }
    let text = s.files[&File::AuditLog].clone();
    put("sd_card_files", &with_mode(2, &text));
    put("sd_card_files", &with_mode(2, &text[..text.len() - 5]));

    // A real key store, with and without a PIN, from a dongle's `Init`.
    for pin in [None, Some(Pin::new(b"246810"))] {
        let cfg = Config { kdf: KdfParams::TEST_ONLY_WEAK, ..Config::default() };
        let binding = Binding { serial: "00000000fuzz0001".into(), device_secret: None };
        let now = vbzkey_firmware::dongle::Now { mono_ms: 0, unix_secs: 1_700_000_000 };
        let mut d = Dongle::start(cfg, MemStorage::default(), OsPlatform, binding, now).unwrap();
        let peer = Peer { id: 1, label: "seed".into(), session: None, network: false };
        let init = Request::Init { pin, admin_pin: Pin::new(b"admin-2468") };
        let r = d.handle(init, now, &peer, Press::NotAsked);
        assert!(matches!(r, Outcome::Answer(Response::PublicKeys(_))), "{r:?}");
        let storage = d.into_storage();
        let store = storage.load(File::KeyStore).unwrap().unwrap();
        let (body, _) = store.split_at(store.len() - 32);
        put("keystore", &[&[0][..], body].concat());
        put("keystore", &[&[1][..], &store].concat());
    }
}

fn split_json() {
    for case in kit("split-v1.json")["cases"].as_array().unwrap() {
        put("split_json", serde_json::to_string(&case["input"]).unwrap().as_bytes());
    }
}

fn bridge() {
    let rec = kit("records-v1.json")["good"][0].clone();
    let unseal =
        serde_json::json!({ "items": [ { "record": rec["record"], "context": rec["context"] } ] });
    let bodies: [(u8, Vec<u8>); 5] = [
        (0, serde_json::to_vec(&unseal).unwrap()),
        (1, br#"{"pin":"fuzzing key file passphrase"}"#.to_vec()),
        (1, br#"{"passphrase":"wrong"}"#.to_vec()),
        (2, b"{}".to_vec()),
        (3, Vec::new()),
    ];
    for (route, body) in bodies {
        for heads in [0u8, 1, 2, 3, 0x0c, 0x10] {
            put("bridge_http", &[&[route, heads][..], &body].concat());
        }
    }
}

fn dongle() {
    // The dongle target's input is an `arbitrary` script: random bytes are as good a start
    // as any, and a few fixed patterns help it find long scripts early.
    for seed in [&[0u8; 64][..], &[1; 64], &[0x55; 256], &(0..=255).collect::<Vec<u8>>()] {
        put("dongle", seed);
    }
}

fn main() {
    records();
    keys();
    shares();
    frames();
    sd_card();
    split_json();
    bridge();
    dongle();
    println!("seeds written under {}", Path::new("fuzz/corpus").display());
}
