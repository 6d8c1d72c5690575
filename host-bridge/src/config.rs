//! The bridge's configuration file (TOML).
//!
//! ```toml
//! port = 7878
//! allowed_origins = ["https://shop.example"]
//!
//! [method]
//! kind = "dongle"            # dongle | lan | passphrase | keyfile
//! transport = "usb"          # or "unix:/run/vbzkey/dongle.sock" for the emulated dongle
//! # vid = 0x1209, pid = 0x0001     default: hardware/pi/usb-id.conf, built in
//! # serial = "00000000a1b2c3d4"
//!
//! [limits]                   # all optional
//! max_body_bytes = 1048576
//! max_batch = 256
//! per_origin_concurrency = 4
//! request_timeout_secs = 60
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::http::{HttpConfig, guard};
use std::sync::Arc;

use crate::link::socket::{SocketConnector, SocketTarget};
use crate::link::usb::{DEFAULT_PID, DEFAULT_VID, UsbConnector};
use crate::link::{Connector, SessionKeys};
use crate::method::KeyMethod;
use crate::method::dongle::DongleMethod;
use crate::method::soft::{SoftMethod, Source};

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
    /// The hardware key: `usb`, or `unix:PATH` for the emulated dongle.
    Dongle {
        /// `usb` or `unix:PATH`.
        #[serde(default = "default_transport")]
        transport: String,
        /// USB vendor id.
        #[serde(default = "default_vid")]
        vid: u16,
        /// USB product id.
        #[serde(default = "default_pid")]
        pid: u16,
        /// Which dongle, when several are plugged in.
        #[serde(default)]
        serial: Option<String>,
        /// This workstation's host key (`vksec1.` file), for a paired dongle's encrypted session.
        #[serde(default)]
        host_key: Option<PathBuf>,
        /// The dongle's device key (`vkpub1.`, from `vbzkey-admin pair`), pinned.
        #[serde(default)]
        device_key: Option<String>,
    },
    /// The same firmware as a LAN key server: always in an encrypted session, as a paired host.
    Lan {
        /// Its address.
        address: SocketAddr,
        /// This workstation's host key (`vksec1.` file).
        host_key: PathBuf,
        /// The dongle's device key (`vkpub1.`), pinned.
        device_key: String,
    },
    /// A key derived from a passphrase (descriptor file from `vbzkey passphrase-key`).
    Passphrase {
        /// The descriptor.
        descriptor: PathBuf,
        /// Idle seconds before the bridge forgets the key.
        #[serde(default = "default_idle")]
        idle_lock_secs: u64,
    },
    /// An encrypted key file (from `vbzkey keygen --encrypt`).
    Keyfile {
        /// The key file.
        path: PathBuf,
        /// Idle seconds before the bridge forgets the key.
        #[serde(default = "default_idle")]
        idle_lock_secs: u64,
    },
}

fn default_transport() -> String {
    "usb".into()
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
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Read and check a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        Self::parse(&text).map_err(|e| ConfigError::Invalid(format!("{}: {e}", path.display())))
    }

    /// Parse and check configuration text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let cfg: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        for o in &cfg.allowed_origins {
            guard::check_origin_entry(o)?;
        }
        let l = &cfg.limits;
        if l.max_batch == 0 || l.max_batch > vbzkey_protocol::wire::MAX_BATCH {
            return Err(format!(
                "limits.max_batch must be 1 to {}",
                vbzkey_protocol::wire::MAX_BATCH
            ));
        }
        if l.per_origin_concurrency == 0 || l.request_timeout_secs == 0 || l.max_body_bytes < 1024 {
            return Err("limits must be positive (max_body_bytes at least 1024)".into());
        }
        if let MethodConfig::Dongle { transport, .. } = &cfg.method
            && transport != "usb"
            && !transport.starts_with("unix:")
        {
            return Err(format!(
                "method.transport must be \"usb\" or \"unix:PATH\", not {transport:?}"
            ));
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
    pub fn key_method(&self) -> Result<Box<dyn KeyMethod>, String> {
        let keys = |host_key: &Option<PathBuf>, device_key: &Option<String>| {
            host_key
                .as_deref()
                .map(|h| SessionKeys::load(h, device_key.as_deref()).map(Arc::new))
                .transpose()
        };
        Ok(match &self.method {
            MethodConfig::Dongle { transport, vid, pid, serial, host_key, device_key } => {
                let keys = keys(host_key, device_key)?;
                let connector: Box<dyn Connector> = match transport.strip_prefix("unix:") {
                    Some(path) => {
                        Box::new(SocketConnector::new(SocketTarget::Unix(path.into()), keys))
                    }
                    None => Box::new(UsbConnector::new(*vid, *pid, serial.clone(), keys)),
                };
                Box::new(DongleMethod::new("dongle", connector))
            }
            MethodConfig::Lan { address, host_key, device_key } => {
                let keys = keys(&Some(host_key.clone()), &Some(device_key.clone()))?;
                Box::new(DongleMethod::new(
                    "lan",
                    Box::new(SocketConnector::new(SocketTarget::Tcp(*address), keys)),
                ))
            }
            MethodConfig::Passphrase { descriptor, idle_lock_secs } => Box::new(SoftMethod::new(
                Source::Passphrase(descriptor.clone()),
                Duration::from_secs(*idle_lock_secs),
            )),
            MethodConfig::Keyfile { path, idle_lock_secs } => Box::new(SoftMethod::new(
                Source::KeyFile(path.clone()),
                Duration::from_secs(*idle_lock_secs),
            )),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_and_bad_configs() {
        let ok = "allowed_origins = [\"https://shop.example\"]\n[method]\nkind = \"dongle\"\n";
        let c = Config::parse(ok).unwrap();
        assert_eq!(c.port, 7878);
        assert!(matches!(c.method, MethodConfig::Dongle { ref transport, vid, pid, .. }
                if transport == "usb" && vid == DEFAULT_VID && pid == DEFAULT_PID));
        for bad in [
            "allowed_origins = [\"*\"]\n[method]\nkind = \"dongle\"\n",
            "allowed_origins = [\"https://shop.example/\"]\n[method]\nkind = \"dongle\"\n",
            "allowed_origins = []\n[method]\nkind = \"magic\"\n",
            "allowed_origins = []\n[method]\nkind = \"dongle\"\ntransport = \"tcp:1.2.3.4:5\"\n",
            "allowed_origins = []\nport = 70000\n[method]\nkind = \"dongle\"\n",
            "allowed_origins = []\ntypo = 1\n[method]\nkind = \"dongle\"\n",
            "allowed_origins = []\n[method]\nkind = \"dongle\"\n[limits]\nmax_batch = 1000\n",
            "not toml",
        ] {
            assert!(Config::parse(bad).is_err(), "{bad}");
        }
    }
}
