//! The bridge's configuration file (TOML).
//!
//! ```toml
//! port = 7878
//! allowed_origins = ["https://shop.example"]
//!
//! [method]
//! kind = "dongle"            # dongle | lan | passphrase | keyfile
//! transport = "usb"          # "usb:SERIAL", or "unix:/run/vbzkey/dongle.sock" (emulated)
//! device_key = "vkpub1.…"    # or trust_on_first_use = "/PATH": the dongle must be known
//! # host_key = "/home/staff/.config/vbzkey/host.key"    # a paired workstation's share
//! # vid = 0x1209             # default: hardware/pi/usb-id.conf, built in
//! # pid = 0x0001
//! # serial = "00000000a1b2c3d4"
//!
//! [limits]                   # all optional
//! max_body_bytes = 1048576
//! max_batch = 256
//! per_origin_concurrency = 4
//! request_timeout_secs = 60
//! ```

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use vbzkey_client::usb::{DEFAULT_PID, DEFAULT_VID};
use vbzkey_client::{
    AddrError, Client, ConnectOptions, DevicePin, DongleAddr, HostKeyError, SessionKeys,
};
use vbzkey_protocol::PublicKey;
use vbzkey_protocol::endpoint::{Endpoint, EndpointError};
use vbzkey_protocol::wire::MAX_BATCH;

use crate::http::HttpConfig;
use crate::http::guard::{self, OriginError};
use crate::method::KeyMethod;
use crate::method::dongle::DongleMethod;
use crate::method::soft::{RateLimit, SoftMethod, Source};

/// Read a field through its type's `FromStr` (its error becomes the TOML error, with the line).
fn parsed<'de, D: Deserializer<'de>, T: FromStr<Err: Display>>(d: D) -> Result<T, D::Error> {
    String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
}

fn parsed_opt<'de, D: Deserializer<'de>, T: FromStr<Err: Display>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|s| s.parse().map_err(serde::de::Error::custom))
        .transpose()
}

/// A LAN key server's `HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort(Endpoint);

impl FromStr for HostPort {
    type Err = EndpointError;

    fn from_str(s: &str) -> Result<Self, EndpointError> {
        let (host, port) = Endpoint::parse_host_port(s)?;
        Ok(HostPort(Endpoint::Tcp { host, port }))
    }
}

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Port on 127.0.0.1 and ::1.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Exact origins of the store's admin pages.
    pub allowed_origins: Vec<String>,
    /// The key method.
    pub method: MethodConfig,
    /// Limits.
    #[serde(default)]
    pub limits: Limits,
}

fn default_port() -> u16 {
    7878
}

/// Which key method, and where its key is.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum MethodConfig {
    /// The hardware key: `usb` (or `usb:SERIAL`), or `unix:PATH` for the emulated dongle.
    Dongle {
        /// `usb`, `usb:SERIAL` or `unix:PATH`.
        #[serde(default = "default_transport", deserialize_with = "parsed")]
        transport: DongleAddr,
        /// USB vendor id.
        #[serde(default = "default_vid")]
        vid: u16,
        /// USB product id.
        #[serde(default = "default_pid")]
        pid: u16,
        /// Which dongle, when several are plugged in.
        #[serde(default)]
        serial: Option<String>,
        /// This workstation's host key (`vksec1.` file, from `vbzkey-admin pair`): a paired
        /// host's share of the dongle's keys. Without it the bridge makes a key for each run,
        /// which a dongle serves only while no host is paired.
        #[serde(default)]
        host_key: Option<PathBuf>,
        /// The dongle's device key (`vkpub1.`, printed by `vbzkey-admin pair`), pinned: another
        /// dongle (a rogue device on the same USB id) gets nothing, not even the PIN.
        #[serde(default, deserialize_with = "parsed_opt")]
        device_key: Option<PublicKey>,
        /// Instead of `device_key`: record the first dongle's device key in this file and pin
        /// it from then on (trust on first use).
        #[serde(default)]
        trust_on_first_use: Option<PathBuf>,
    },
    /// The same firmware as a LAN key server: always in an encrypted session, as a paired host.
    Lan {
        /// Its address, `HOST:PORT`.
        #[serde(deserialize_with = "parsed")]
        address: HostPort,
        /// This workstation's host key (`vksec1.` file).
        host_key: PathBuf,
        /// The dongle's device key (`vkpub1.`), pinned.
        #[serde(deserialize_with = "parsed")]
        device_key: PublicKey,
    },
    /// A key derived from a passphrase (descriptor file from `vbzkey passphrase-key`).
    Passphrase {
        /// The descriptor.
        descriptor: PathBuf,
        /// Idle seconds before the bridge forgets the key.
        #[serde(default = "default_idle")]
        idle_lock_secs: u64,
        /// Records per minute (as the dongle's token bucket).
        #[serde(default = "default_rate")]
        records_per_minute: u32,
        /// Burst size.
        #[serde(default = "default_burst")]
        burst: u32,
    },
    /// An encrypted key file (from `vbzkey keygen --encrypt`).
    Keyfile {
        /// The key file.
        path: PathBuf,
        /// Idle seconds before the bridge forgets the key.
        #[serde(default = "default_idle")]
        idle_lock_secs: u64,
        /// Records per minute (as the dongle's token bucket).
        #[serde(default = "default_rate")]
        records_per_minute: u32,
        /// Burst size.
        #[serde(default = "default_burst")]
        burst: u32,
    },
}

fn default_transport() -> DongleAddr {
    DongleAddr::USB
}
fn default_vid() -> u16 {
    DEFAULT_VID
}
fn default_pid() -> u16 {
    DEFAULT_PID
}
fn default_idle() -> u64 {
    900
}
fn default_rate() -> u32 {
    RateLimit::default().records_per_minute
}
fn default_burst() -> u32 {
    RateLimit::default().burst
}

/// Request limits; the defaults suit one staff member's browser.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// 1 MiB: 256 records of typical size with room to spare.
    pub max_body_bytes: usize,
    /// Matches the dongle's batch limit.
    pub max_batch: usize,
    /// A page rarely needs more than a couple of calls at once.
    pub per_origin_concurrency: usize,
    /// Long enough for a dongle waiting 15 s for its button, plus USB retries.
    pub request_timeout_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1024 * 1024,
            max_batch: 256,
            per_origin_concurrency: 4,
            request_timeout_secs: 60,
        }
    }
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("{}: {source}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: ConfigProblem,
    },
    /// The host key it names cannot be used.
    #[error(transparent)]
    HostKey(#[from] HostKeyError),
    /// The key file or passphrase descriptor exists but is not one (a wrong kind of file, a
    /// damaged one, no permission to read it).
    #[error("method: {0}")]
    KeyUnusable(String),
    /// No randomness for a host key of this run.
    #[error("the random number generator failed: {0}")]
    Random(getrandom::Error),
}

/// What is wrong with a configuration's text.
#[derive(Debug, thiserror::Error)]
pub enum ConfigProblem {
    /// Not TOML, a wrong type, an unknown field, or a field that does not parse (its message
    /// names the line).
    #[error(transparent)]
    Toml(#[from] toml::de::Error),
    /// An allowed origin is not an exact origin.
    #[error("allowed_origins: {entry:?}: {problem}")]
    Origin {
        /// The entry.
        entry: String,
        /// What is wrong.
        problem: OriginError,
    },
    /// `limits.max_batch` out of range.
    #[error("limits.max_batch must be 1 to {MAX_BATCH}")]
    MaxBatch,
    /// A limit of zero.
    #[error("limits must be positive (max_body_bytes at least 1024)")]
    Limits,
    /// `kind = "dongle"` with a TCP address.
    #[error(
        "method.transport {0} is a LAN key server: use kind = \"lan\" with address = \"HOST:PORT\""
    )]
    TcpForDongle(DongleAddr),
    /// `serial` disagrees with the transport.
    #[error("method.serial: {0}")]
    Serial(AddrError),
    /// `kind = "dongle"` without a way to know the dongle.
    #[error(
        "kind = \"dongle\" needs the dongle's device key, so that a rogue USB device is never sent \
         the PIN: device_key = \"vkpub1…\" (printed by `vbzkey-admin pair`), or \
         trust_on_first_use = \"PATH\" to record the first dongle's key there"
    )]
    NoDeviceKey,
    /// Both ways at once.
    #[error("give device_key or trust_on_first_use, not both")]
    TwoDeviceKeys,
    /// A file path the bridge would read from wherever it was started.
    #[error(
        "method.{field} = {path:?}: {}",
        if path.starts_with('~') {
            "`~` is not expanded here; write the full path (e.g. /home/NAME/…)"
        } else {
            "write the full path: the bridge may start in another directory"
        }
    )]
    NotAbsolute {
        /// The setting.
        field: &'static str,
        /// As written.
        path: String,
    },
}

/// A path setting must be absolute (which also rules out `~`, which TOML does not expand).
fn absolute(field: &'static str, path: &Path) -> Result<(), ConfigProblem> {
    if path.is_absolute() {
        return Ok(());
    }
    Err(ConfigProblem::NotAbsolute { field, path: path.display().to_string() })
}

impl Config {
    /// Read and check a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        Self::parse(&text)
            .map_err(|source| ConfigError::Invalid { path: path.to_path_buf(), source })
    }

    /// Parse and check configuration text.
    pub fn parse(text: &str) -> Result<Self, ConfigProblem> {
        let mut cfg: Config = toml::from_str(text)?;
        for o in &cfg.allowed_origins {
            guard::check_origin_entry(o)
                .map_err(|problem| ConfigProblem::Origin { entry: o.clone(), problem })?;
        }
        let l = &cfg.limits;
        if l.max_batch == 0 || l.max_batch > MAX_BATCH {
            return Err(ConfigProblem::MaxBatch);
        }
        if l.per_origin_concurrency == 0 || l.request_timeout_secs == 0 || l.max_body_bytes < 1024 {
            return Err(ConfigProblem::Limits);
        }
        let paths: Vec<(&'static str, &Path)> = match &cfg.method {
            MethodConfig::Dongle { host_key, trust_on_first_use, .. } => [
                host_key.as_deref().map(|p| ("host_key", p)),
                trust_on_first_use.as_deref().map(|p| ("trust_on_first_use", p)),
            ]
            .into_iter()
            .flatten()
            .collect(),
            MethodConfig::Lan { host_key, .. } => vec![("host_key", host_key)],
            MethodConfig::Passphrase { descriptor, .. } => vec![("descriptor", descriptor)],
            MethodConfig::Keyfile { path, .. } => vec![("path", path)],
        };
        for (field, path) in paths {
            absolute(field, path)?;
        }
        if let MethodConfig::Dongle { transport, serial, device_key, trust_on_first_use, .. } =
            &mut cfg.method
        {
            if let DongleAddr::Socket(Endpoint::Tcp { .. }) = transport {
                return Err(ConfigProblem::TcpForDongle(transport.clone()));
            }
            match (&device_key, &trust_on_first_use) {
                (None, None) => return Err(ConfigProblem::NoDeviceKey),
                (Some(_), Some(_)) => return Err(ConfigProblem::TwoDeviceKeys),
                _ => {}
            }
            // One place for the serial: `usb:SERIAL` and `serial = "…"` are the same thing.
            *transport =
                transport.clone().with_serial(serial.take()).map_err(ConfigProblem::Serial)?;
        }
        Ok(cfg)
    }

    /// The HTTP settings.
    pub fn http(&self) -> HttpConfig {
        HttpConfig {
            port: self.port,
            allowed_origins: self.allowed_origins.clone(),
            max_body_bytes: self.limits.max_body_bytes,
            max_batch: self.limits.max_batch,
            per_origin_concurrency: self.limits.per_origin_concurrency,
            request_timeout: Duration::from_secs(self.limits.request_timeout_secs),
        }
    }

    /// The key method (reading the host key, for sessions with paired dongles).
    pub fn key_method(&self) -> Result<Box<dyn KeyMethod>, ConfigError> {
        let keys = |host_key: &Path, device_key: Option<&PublicKey>| {
            SessionKeys::load(host_key, device_key).map(Arc::new)
        };
        Ok(match &self.method {
            MethodConfig::Dongle {
                transport,
                vid,
                pid,
                serial: _,
                host_key,
                device_key,
                trust_on_first_use,
            } => {
                // Always a session: it is what proves the dongle is the one pinned.
                let pin = match (device_key, trust_on_first_use) {
                    (Some(k), _) => DevicePin::Key(k.clone()),
                    (None, Some(path)) => DevicePin::FirstUse(path.clone()),
                    (None, None) => DevicePin::Ask,
                };
                let keys = match host_key {
                    Some(h) => SessionKeys::with_pin(&vbzkey_client::read_host_key(h)?, pin),
                    None => SessionKeys::ephemeral(pin).map_err(ConfigError::Random)?,
                };
                let opts = ConnectOptions { vid: *vid, pid: *pid, keys: Some(Arc::new(keys)) };
                let client = Client::for_addr(transport, opts);
                Box::new(DongleMethod::new("dongle", client, host_key.clone()))
            }
            MethodConfig::Lan { address, host_key, device_key } => {
                let keys = Some(keys(host_key, Some(device_key))?);
                let opts = ConnectOptions { keys, ..ConnectOptions::default() };
                let addr = DongleAddr::Socket(address.0.clone());
                let client = Client::for_addr(&addr, opts);
                Box::new(DongleMethod::new("lan", client, Some(host_key.clone())))
            }
            MethodConfig::Passphrase { descriptor, idle_lock_secs, records_per_minute, burst } => {
                soft(
                    Source::Passphrase(descriptor.clone()),
                    descriptor,
                    Duration::from_secs(*idle_lock_secs),
                    RateLimit { records_per_minute: *records_per_minute, burst: *burst },
                )?
            }
            MethodConfig::Keyfile { path, idle_lock_secs, records_per_minute, burst } => soft(
                Source::KeyFile(path.clone()),
                path,
                Duration::from_secs(*idle_lock_secs),
                RateLimit { records_per_minute: *records_per_minute, burst: *burst },
            )?,
        })
    }
}

/// A software-key method, checked at start: a file that exists but is not of its kind stops
/// the bridge with its path and what is wrong; a missing one is only warned about (it may be
/// on a drive not mounted yet), and the unlock page names it until it appears.
fn soft(
    source: Source,
    path: &Path,
    idle_lock: Duration,
    limit: RateLimit,
) -> Result<Box<dyn KeyMethod>, ConfigError> {
    let method = SoftMethod::new(source, idle_lock, limit);
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(
                "{} does not exist (yet): nothing can be unlocked until it does",
                path.display()
            );
        }
        _ => {
            let status = method.status();
            if status.state == crate::method::State::Absent {
                return Err(ConfigError::KeyUnusable(status.detail.unwrap_or_default()));
            }
        }
    }
    Ok(Box::new(method))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_and_bad_configs() {
        let ok = "allowed_origins = [\"https://shop.example\"]\n[method]\nkind = \"dongle\"\n\
                  trust_on_first_use = \"/var/lib/vbzkey/dongle.pub\"\n";
        let c = Config::parse(ok).unwrap();
        assert_eq!(c.port, 7878);
        assert!(matches!(
            c.method,
            MethodConfig::Dongle {
                transport: DongleAddr::Usb { serial: None },
                vid,
                pid,
                ..
            } if vid == DEFAULT_VID && pid == DEFAULT_PID
        ));
        for bad in [
            "allowed_origins = [\"*\"]\n[method]\nkind = \"dongle\"\n",
            "allowed_origins = [\"https://shop.example/\"]\n[method]\nkind = \"dongle\"\n",
            "allowed_origins = []\n[method]\nkind = \"magic\"\n",
            "allowed_origins = []\n[method]\nkind = \"dongle\"\ntransport = \"tcp:1.2.3.4:5\"\n",
            "allowed_origins = []\n[method]\nkind = \"dongle\"\ntransport = \"serial:1\"\n",
            "allowed_origins = []\nport = 70000\n[method]\nkind = \"dongle\"\n",
            "allowed_origins = []\ntypo = 1\n[method]\nkind = \"dongle\"\n",
            "allowed_origins = []\n[method]\nkind = \"dongle\"\n[limits]\nmax_batch = 1000\n",
            "allowed_origins = []\n[method]\nkind = \"dongle\"\ndevice_key = \"vkpub1.short\"\n",
            "allowed_origins = []\n[method]\nkind = \"lan\"\naddress = \"nowhere\"\nhost_key = \"h\"\ndevice_key = \"vkpub1.x\"\n",
            "not toml",
        ] {
            assert!(Config::parse(bad).is_err(), "{bad}");
        }
        // A dongle must be known: by its pinned key, or recorded on first use; not both.
        let no_key = "allowed_origins = []\n[method]\nkind = \"dongle\"\n";
        assert!(matches!(Config::parse(no_key), Err(ConfigProblem::NoDeviceKey)));
        let device = vbzkey_protocol::SecretKey::derive(&[3; 32]).public_key().to_text();
        let both = format!("{no_key}device_key = \"{device}\"\ntrust_on_first_use = \"/x\"\n");
        assert!(matches!(Config::parse(&both), Err(ConfigProblem::TwoDeviceKeys)));
        assert!(Config::parse(&format!("{no_key}device_key = \"{device}\"\n")).is_ok());
    }

    #[test]
    fn key_paths_must_be_absolute_and_a_wrong_kind_of_file_stops_the_start() {
        let with =
            |method: &str| Config::parse(&format!("allowed_origins = []\n[method]\n{method}\n"));
        for (method, field) in [
            ("kind = \"keyfile\"\npath = \"~/key.json\"", "path"),
            ("kind = \"keyfile\"\npath = \"key.json\"", "path"),
            ("kind = \"passphrase\"\ndescriptor = \"etc/p.json\"", "descriptor"),
            ("kind = \"dongle\"\ntrust_on_first_use = \"dongle.pub\"", "trust_on_first_use"),
            (
                "kind = \"dongle\"\nhost_key = \"host.key\"\ntrust_on_first_use = \"/d.pub\"",
                "host_key",
            ),
        ] {
            let e = with(method).unwrap_err();
            assert!(
                matches!(&e, ConfigProblem::NotAbsolute { field: f, .. } if *f == field),
                "{e}"
            );
            assert!(e.to_string().contains("full path"), "{e}");
        }
        assert!(
            with("kind = \"keyfile\"\npath = \"~/k\"").unwrap_err().to_string().contains("`~`")
        );

        // A secret key text file given as an encrypted key file: refused at start, by path.
        let dir = std::env::temp_dir().join(format!("vbzkey-bridge-kind-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let wrong = dir.join("key.txt");
        std::fs::write(&wrong, "vksec1.not-json\n").unwrap();
        let cfg = with(&format!("kind = \"keyfile\"\npath = \"{}\"", wrong.display())).unwrap();
        let e = cfg.key_method().err().expect("refused");
        assert!(e.to_string().contains(&wrong.display().to_string()), "{e}");
        // A missing one may appear later (a drive not mounted yet): the bridge starts.
        let later = dir.join("later.json");
        let cfg = with(&format!("kind = \"keyfile\"\npath = \"{}\"", later.display())).unwrap();
        assert!(cfg.key_method().is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_serial_is_one_setting_in_two_spellings() {
        let cfg = |method: &str| {
            Config::parse(&format!(
                "allowed_origins = []\n[method]\nkind = \"dongle\"\ntrust_on_first_use = \"/k\"\n{method}"
            ))
        };
        let want = DongleAddr::Usb { serial: Some("A1".into()) };
        for method in [
            "transport = \"usb:A1\"\n",
            "serial = \"A1\"\n",
            "transport = \"usb:A1\"\nserial = \"A1\"\n",
        ] {
            match cfg(method).unwrap().method {
                MethodConfig::Dongle { transport, serial: None, .. } => assert_eq!(transport, want),
                other => panic!("{other:?}"),
            }
        }
        let two = cfg("transport = \"usb:A1\"\nserial = \"B2\"\n").unwrap_err();
        assert!(matches!(two, ConfigProblem::Serial(AddrError::TwoSerials)), "{two}");
        let unix = cfg("transport = \"unix:/x\"\nserial = \"B2\"\n").unwrap_err();
        assert!(matches!(unix, ConfigProblem::Serial(AddrError::SerialForSocket)), "{unix}");
    }

    #[test]
    fn a_bad_address_is_reported_with_what_to_write() {
        let e = Config::parse(
            "allowed_origins = []\n[method]\nkind = \"dongle\"\ntransport = \"serial:1\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("usb, usb:SERIAL, unix:PATH or tcp:HOST:PORT"), "{e}");
        let e = Config::parse(
            "allowed_origins = []\n[method]\nkind = \"dongle\"\ntransport = \"tcp:10.0.0.2:7879\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("kind = \"lan\""), "{e}");
    }
}
