use super::*;

fn binding(serial: &str) -> Binding {
    Binding { serial: serial.into(), device_secret: None }
}

const DEVICE: [u8; 32] = [0x5a; 32];
const HOST: [u8; 32] = [0xa5; 32];
const HOST_KEY: [u8; 32] = [7; 32];
const UNLOCK: [u8; 32] = [0x33; 32];

fn fresh(n: u8) -> SlotNonce {
    SlotNonce { salt: [n; 16], nonce: [n.wrapping_add(100); 12] }
}

fn halves() -> Halves {
    Halves::new(Zeroizing::new(DEVICE), Zeroizing::new(HOST))
}

/// Staff and admin slots, and the host half either open or wrapped for one paired host.
fn slots(b: &Binding, staff: Option<&[u8]>, split: bool) -> Vec<Slot> {
    let kdf = KdfParams::TEST_ONLY_WEAK;
    let h = halves();
    let staff = match staff {
        Some(pin) => Slot::device(SlotKind::StaffPin, kdf, fresh(1), b, pin, &h.device),
        None => Slot::device(SlotKind::StaffOpen, kdf, fresh(1), b, b"", &h.device),
    };
    let admin = Slot::device(SlotKind::Admin, kdf, fresh(2), b, b"admin-2468", &h.device);
    let host = if split {
        Slot::host(HOST_KEY, fresh(3), b, &Zeroizing::new(UNLOCK), &h.host).unwrap()
    } else {
        Slot::host_open(&h.host)
    };
    vec![staff.unwrap(), admin.unwrap(), host]
}

fn sample(b: &Binding, staff: Option<&[u8]>, split: bool) -> (Vec<u8>, Vec<(u32, SecretKey)>) {
    let keys = vec![
        (1, SecretKey::derive(b"key one seed for the store tests")),
        (2, SecretKey::derive(b"key two seed for the store tests")),
    ];
    let slots = slots(b, staff, split);
    let store = NewStore { keys: &keys, active: 2, slots: &slots, nonce: [4; 12] };
    (seal(&store, &halves().master_key()).unwrap(), keys)
}

fn open_with(
    store: &KeyStore,
    b: &Binding,
    who: Credential,
    pin: &[u8],
    host: Option<(&[u8; 32], &Secret32)>,
) -> Result<Keys, KeyStoreError> {
    let device = store.device_half(who, b, pin)?;
    let host = store.host_half(b, host)?;
    store.open(&Halves::new(device, host).master_key())
}

#[test]
fn both_credentials_open_the_same_keys() {
    for pin in [None, Some(&b"123456"[..])] {
        let b = binding("0000abcd");
        let (bytes, keys) = sample(&b, pin, false);
        let store = KeyStore::parse(&bytes).unwrap();
        assert_eq!(store.staff_pin_set(), pin.is_some());
        assert!(!store.split_custody());
        assert_eq!(store.public().len(), 2);
        assert!(store.public()[1].active && !store.public()[0].active);
        let staff = store.device_half(Credential::Staff, &b, pin.unwrap_or(b"ignored")).unwrap();
        let admin = store.device_half(Credential::Admin, &b, b"admin-2468").unwrap();
        assert_eq!(*staff, *admin);
        let opened = open_with(&store, &b, Credential::Admin, b"admin-2468", None).unwrap();
        assert_eq!(opened.keys.len(), 2);
        assert_eq!(opened.keys[1].1, keys[1].1);
    }
}

#[test]
fn the_staff_pin_does_not_open_the_admin_slot_nor_the_reverse() {
    let b = binding("0000abcd");
    let (bytes, _) = sample(&b, Some(b"123456"), false);
    let store = KeyStore::parse(&bytes).unwrap();
    assert_eq!(
        store.device_half(Credential::Admin, &b, b"123456").err(),
        Some(KeyStoreError::WrongKey)
    );
    assert_eq!(
        store.device_half(Credential::Staff, &b, b"admin-2468").err(),
        Some(KeyStoreError::WrongKey)
    );
}

#[test]
fn wrong_pin_or_other_board_is_wrong_key_not_damage() {
    let (bytes, _) = sample(&binding("0000abcd"), Some(b"123456"), false);
    let store = KeyStore::parse(&bytes).unwrap();
    for (who, pin, b) in [
        (Credential::Staff, &b"654321"[..], binding("0000abcd")),
        (Credential::Staff, b"123456", binding("0000abce")),
        (Credential::Admin, b"admin-2468", binding("0000abce")),
    ] {
        assert_eq!(store.device_half(who, &b, pin).err(), Some(KeyStoreError::WrongKey));
    }
}

/// The card, the board (serial, OTP) and the right PINs, offline: with the host half held only
/// by a paired host, nothing opens without that host's unlock secret.
#[test]
fn split_custody_needs_a_paired_hosts_secret_on_top_of_the_pin() {
    let b = Binding { serial: "0000abcd".into(), device_secret: Some(Zeroizing::new([9; 32])) };
    let (bytes, keys) = sample(&b, Some(b"123456"), true);
    let store = KeyStore::parse(&bytes).unwrap();
    assert!(store.split_custody());
    // The device half alone, taken as the master key or with a guessed host half.
    let device = store.device_half(Credential::Staff, &b, b"123456").unwrap();
    for guess in [[0u8; 32], *device, [0xff; 32]] {
        let mk = Halves::new(device.clone(), Zeroizing::new(guess)).master_key();
        assert!(store.open(&mk).is_err());
        assert!(store.open(&device).is_err());
    }
    // Each stored wrap: without a secret, with the device half, with the other PIN.
    assert_eq!(store.host_half(&b, None).err(), Some(KeyStoreError::NoSlot));
    for wrong in
        [*device, [0u8; 32], *store.device_half(Credential::Admin, &b, b"admin-2468").unwrap()]
    {
        let got = store.host_half(&b, Some((&HOST_KEY, &Zeroizing::new(wrong))));
        assert_eq!(got.err(), Some(KeyStoreError::WrongKey));
    }
    assert_eq!(
        store.host_half(&b, Some((&[8; 32], &Zeroizing::new(UNLOCK)))).err(),
        Some(KeyStoreError::NoSlot)
    );
    // With the paired host's secret it opens, for either credential.
    for (who, pin) in [(Credential::Staff, &b"123456"[..]), (Credential::Admin, b"admin-2468")] {
        let opened =
            open_with(&store, &b, who, pin, Some((&HOST_KEY, &Zeroizing::new(UNLOCK)))).unwrap();
        assert_eq!(opened.keys[0].1, keys[0].1);
    }
}

#[test]
fn any_flipped_byte_is_detected_as_damage() {
    let (bytes, _) = sample(&binding("0000abcd"), None, true);
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x10;
        assert!(matches!(KeyStore::parse(&b), Err(KeyStoreError::Damaged(_))), "byte {i}");
    }
    for len in [0, 10, FIXED_LEN, bytes.len() - 1] {
        assert!(KeyStore::parse(&bytes[..len]).is_err());
    }
}

fn recompute_checksum(bytes: &mut [u8]) {
    let n = bytes.len();
    let sum = Sha256::digest(&bytes[..n - CHECKSUM_LEN]);
    bytes[n - CHECKSUM_LEN..].copy_from_slice(&sum);
}

#[test]
fn tampering_with_a_valid_checksum_fails_an_aead() {
    // An attacker who edits any byte after the header and recomputes the checksum: the edit
    // fails to parse, or fails the AEAD of whatever it touched (a slot: that credential; the
    // public part or the keys: both). Nothing opens to different keys.
    let b = binding("0000abcd");
    let (bytes, keys) = sample(&b, Some(b"123456"), true);
    let unlock = Zeroizing::new(UNLOCK);
    for i in 8..bytes.len() - CHECKSUM_LEN {
        let mut t = bytes.clone();
        t[i] ^= 1;
        recompute_checksum(&mut t);
        let Ok(store) = KeyStore::parse(&t) else { continue };
        let mut failed = 0;
        for (who, pin) in [(Credential::Staff, &b"123456"[..]), (Credential::Admin, b"admin-2468")]
        {
            match open_with(&store, &b, who, pin, Some((&HOST_KEY, &unlock))) {
                Ok(opened) => assert!(
                    opened.keys.iter().zip(&keys).all(|(a, b)| a == b),
                    "byte {i}: {who:?} opens other keys"
                ),
                Err(_) => failed += 1,
            }
        }
        assert!(failed > 0, "byte {i} edited and every credential still opens");
    }
}

#[test]
fn a_doctored_argon2_cost_is_damage_not_an_out_of_memory() {
    let b = binding("0000abcd");
    let (mut bytes, _) = sample(&b, Some(b"123456"), false);
    let first_slot = KeyStore::parse(&bytes).unwrap().aad.len() + 1;
    // The first slot's memory field: 4 GiB.
    bytes[first_slot + 2..first_slot + 6].copy_from_slice(&u32::MAX.to_be_bytes());
    recompute_checksum(&mut bytes);
    assert!(matches!(KeyStore::parse(&bytes), Err(KeyStoreError::Damaged(_))));
}

#[test]
fn the_device_secret_is_required_where_used_and_ignored_where_not() {
    let with_otp = Binding { serial: "x".into(), device_secret: Some(Zeroizing::new([9; 32])) };
    let (bytes, _) = sample(&with_otp, None, false);
    let store = KeyStore::parse(&bytes).unwrap();
    assert!(store.otp_used());
    assert_eq!(
        store.device_half(Credential::Staff, &binding("x"), b"").err(),
        Some(KeyStoreError::MissingDeviceSecret)
    );
    let other_otp = Binding { serial: "x".into(), device_secret: Some(Zeroizing::new([8; 32])) };
    assert_eq!(
        store.device_half(Credential::Admin, &other_otp, b"admin-2468").err(),
        Some(KeyStoreError::WrongKey)
    );
    assert!(open_with(&store, &with_otp, Credential::Staff, b"", None).is_ok());
    // Sealed before the OTP rows were programmed: programming them later changes nothing.
    let (bytes, _) = sample(&binding("x"), Some(b"123456"), false);
    let store = KeyStore::parse(&bytes).unwrap();
    assert!(!store.otp_used());
    assert!(open_with(&store, &with_otp, Credential::Staff, b"123456", None).is_ok());
}
