//! `info`: what device, what firmware, what state, before any change (ykman's first command):
//! lock state, PINs, pairing, who may take keys out, the audit log, keys and limits.

use serde::Serialize;
use vbzkey_protocol::PublicKey;
use vbzkey_protocol::wire::{HelloInfo, LockState};

use crate::dongle::Dongle;
use crate::error::AdminError;
use crate::output::{Output, describe_key};

/// `info`'s options.
#[derive(clap::Args)]
pub(crate) struct InfoArgs {
    /// Machine-readable output (one JSON object).
    #[arg(long)]
    json: bool,
}

/// Show the dongle.
pub(crate) fn run(d: &Dongle, args: &InfoArgs) -> Result<Output, AdminError> {
    let h = d.client().hello()?;
    Ok(if args.json { json(&h) } else { text(&h) })
}

/// The lock state, as `--json` names it (the bridge's `/v1/status` uses the same words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum State {
    Uninitialised,
    Locked,
    Unlocked,
    LockedOut,
    DeviceSecretMissing,
}

impl From<LockState> for State {
    fn from(s: LockState) -> Self {
        match s {
            LockState::Uninitialised => State::Uninitialised,
            LockState::Locked => State::Locked,
            LockState::Unlocked => State::Unlocked,
            LockState::LockedOut => State::LockedOut,
            LockState::DeviceSecretMissing => State::DeviceSecretMissing,
        }
    }
}

impl State {
    fn words(self) -> &'static str {
        match self {
            State::Uninitialised => "Uninitialised (no key yet: `init`, `restore` or `clone`)",
            State::Locked => "Locked",
            State::Unlocked => "Unlocked",
            State::LockedOut => {
                "Locked out (too many wrong staff PINs: an admin sets a new one with `set-pin`)"
            }
            State::DeviceSecretMissing => {
                "Device secret missing (the dongle could not read its OTP secret at boot: \
                 `systemctl status vbzkey-otp` on it; no PIN is asked or counted; do not reset)"
            }
        }
    }
}

/// Which hosts the dongle serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Serves {
    /// No host is paired: any host on USB or the local socket is served (TCP never).
    AnyLocalHost,
    /// Only paired hosts, in encrypted sessions.
    PairedHostsOnly,
}

/// What a thief holding the dongle (board and card) needs besides the staff PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum StolenDongle {
    /// Nothing: the PIN alone (guessable offline, docs/THREAT-MODEL.md row 3c).
    PinOnly,
    /// A paired workstation's secret as well (split custody).
    PinAndPairedHost,
}

/// Who may use the dongle, and what guards it.
#[derive(Debug, Serialize)]
struct Custody {
    serves: Serves,
    paired_hosts: u16,
    stolen_dongle_needs: StolenDongle,
    /// Wrong admin PINs left (0: admin commands are refused until a factory reset).
    admin_tries_left: u8,
    /// Whether the dongle has a button to confirm key export and custody changes with.
    button: bool,
}

impl Custody {
    fn of(h: &HelloInfo) -> Self {
        Custody {
            serves: if h.paired_hosts == 0 {
                Serves::AnyLocalHost
            } else {
                Serves::PairedHostsOnly
            },
            paired_hosts: h.paired_hosts,
            stolen_dongle_needs: if h.split_custody {
                StolenDongle::PinAndPairedHost
            } else {
                StolenDongle::PinOnly
            },
            admin_tries_left: h.admin_tries_left,
            button: h.presence_input,
        }
    }
}

#[derive(Debug, Serialize)]
struct KeyJson {
    key_id: String,
    version: u32,
    active: bool,
    public_key: String,
}

#[derive(Debug, Serialize)]
struct LimitsJson {
    max_batch: u16,
    records_per_minute: u32,
    max_pin_tries: u8,
    idle_lock_secs: u32,
}

/// `info --json`: every field typed, none derived from `Debug`.
#[derive(Debug, Serialize)]
struct InfoJson {
    serial: String,
    firmware_version: String,
    protocol_version: u16,
    state: State,
    pin_set: bool,
    pin_tries_left: u8,
    custody: Custody,
    audit_intact: bool,
    keys: Vec<KeyJson>,
    limits: LimitsJson,
}

fn json(h: &HelloInfo) -> Output {
    let info = InfoJson {
        serial: h.serial.clone(),
        firmware_version: h.firmware_version.clone(),
        protocol_version: h.protocol_version,
        state: h.state.into(),
        pin_set: h.pin_set,
        pin_tries_left: h.pin_tries_left,
        custody: Custody::of(h),
        audit_intact: h.audit_intact,
        keys: h
            .keys
            .iter()
            .map(|k| KeyJson {
                key_id: k.key_id.to_string(),
                version: k.version,
                active: k.active,
                public_key: PublicKey::from_bytes(k.public_key).to_text(),
            })
            .collect(),
        limits: LimitsJson {
            max_batch: h.limits.max_batch,
            records_per_minute: h.limits.records_per_minute,
            max_pin_tries: h.limits.max_pin_tries,
            idle_lock_secs: h.limits.idle_lock_secs,
        },
    };
    let mut out = Output::default();
    out.line(serde_json::to_string(&info).expect("plain data"));
    out
}

fn text(h: &HelloInfo) -> Output {
    let custody = Custody::of(h);
    let mut out = Output::default();
    out.line(format!("serial:     {}", h.serial));
    out.line(format!("firmware:   {} (protocol {})", h.firmware_version, h.protocol_version));
    out.line(format!("state:      {}", State::from(h.state).words()));
    out.line(if h.pin_set {
        format!("PIN:        set, {} tries left", h.pin_tries_left)
    } else {
        "PIN:        NOT SET: whoever holds the dongle can use it (`set-pin`)".into()
    });
    out.line(match h.admin_tries_left {
        0 => "admin PIN:  LOCKED OUT: admin commands are refused until a factory reset".into(),
        n => format!("admin PIN:  set, {n} tries left (admin commands need --admin-pin-file)"),
    });
    out.line(match custody.serves {
        Serves::AnyLocalHost => {
            "pairing:    no host paired: any host on USB or the local socket is served".to_string()
        }
        Serves::PairedHostsOnly => format!(
            "pairing:    {} host(s) paired: only they are served, in encrypted sessions",
            custody.paired_hosts
        ),
    });
    out.line(match custody.stolen_dongle_needs {
        StolenDongle::PinOnly => {
            "custody:    a stolen dongle is protected by its PIN only \
             (pair this computer and the workstations: `vbzkey-admin pair`)"
        }
        StolenDongle::PinAndPairedHost => {
            "custody:    split: unlocking needs the PIN and a paired workstation's secret"
        }
    });
    out.line(if custody.button {
        "button:     yes: key export and custody changes are confirmed on the dongle"
    } else {
        "button:     NONE: backup, clone, pairing, PIN changes and reset cannot be confirmed"
    });
    out.line(format!(
        "audit log:  {}",
        if h.audit_intact { "intact" } else { "FAILS VERIFICATION: unsealing is refused" }
    ));
    for k in &h.keys {
        out.line(describe_key(k));
    }
    out.line(format!(
        "limits:     {} records/min, batches of {}, {} PIN tries, idle lock {} s",
        h.limits.records_per_minute,
        h.limits.max_batch,
        h.limits.max_pin_tries,
        h.limits.idle_lock_secs
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::tests::key;
    use vbzkey_protocol::wire::Limits;

    fn hello() -> HelloInfo {
        HelloInfo {
            firmware_version: "0.1.0".into(),
            protocol_version: 1,
            serial: "E2E00001".into(),
            state: LockState::LockedOut,
            pin_set: true,
            pin_tries_left: 0,
            admin_tries_left: 8,
            keys: vec![key(1, false), key(2, true)],
            limits: Limits {
                max_frame_payload: 1,
                max_batch: 256,
                records_per_minute: 600,
                burst: 300,
                max_pin_tries: 8,
                idle_lock_secs: 900,
                confirm_batch_over: None,
                max_admin_tries: 8,
                admin_idle_secs: 300,
                kdf_m_kib: 65536,
                kdf_t: 3,
            },
            audit_intact: true,
            paired_hosts: 2,
            presence_input: true,
            admin_window: false,
            split_custody: true,
        }
    }

    #[test]
    fn text_shows_pairing_admin_pin_and_custody() {
        let out = text(&hello());
        let s = out.stdout.as_str();
        for want in [
            "serial:     E2E00001",
            "state:      Locked out",
            "admin PIN:  set, 8 tries left",
            "pairing:    2 host(s) paired",
            "custody:    split",
            "button:     yes",
            "key v2 (active)",
            "600 records/min",
        ] {
            assert!(s.contains(want), "{want:?} not in:\n{s}");
        }
        let open = HelloInfo {
            paired_hosts: 0,
            split_custody: false,
            pin_set: false,
            admin_tries_left: 0,
            presence_input: false,
            state: LockState::Uninitialised,
            ..hello()
        };
        let s = text(&open).stdout.to_string();
        assert!(s.contains("Uninitialised") && s.contains("PIN:        NOT SET"), "{s}");
        assert!(s.contains("no host paired") && s.contains("protected by its PIN only"), "{s}");
        assert!(s.contains("admin PIN:  LOCKED OUT") && s.contains("button:     NONE"), "{s}");
    }

    #[test]
    fn json_is_built_from_typed_fields() {
        let out = json(&hello());
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(v["state"], "locked_out");
        assert_eq!(v["custody"]["serves"], "paired_hosts_only");
        assert_eq!(v["custody"]["paired_hosts"], 2);
        assert_eq!(v["custody"]["stolen_dongle_needs"], "pin_and_paired_host");
        assert_eq!(v["custody"]["admin_tries_left"], 8);
        assert_eq!(v["custody"]["button"], true);
        assert_eq!(v["keys"][1]["active"], true);
        assert_eq!(v["keys"][1]["key_id"], key(2, true).key_id.to_string());
        assert_eq!(v["limits"]["max_pin_tries"], 8);
        let states: Vec<_> = [
            LockState::Uninitialised,
            LockState::Locked,
            LockState::Unlocked,
            LockState::LockedOut,
            LockState::DeviceSecretMissing,
        ]
        .into_iter()
        .map(|s| serde_json::to_value(State::from(s)).unwrap())
        .collect();
        assert_eq!(
            states,
            ["uninitialised", "locked", "unlocked", "locked_out", "device_secret_missing"]
        );
        assert!(out.stderr.is_empty());
    }
}
