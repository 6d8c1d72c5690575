//! `vbzkey-admin`: look at and set up vbzkey dongles. `info` first, like ykman: what device,
//! what firmware, what state, before any change.
#![forbid(unsafe_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::json;
use vbzkey_host_bridge::link::socket::{SocketConnector, SocketTarget};
use vbzkey_host_bridge::link::usb::{DEFAULT_PID, DEFAULT_VID, UsbConnector};
use vbzkey_host_bridge::link::{Connector, Link};
use vbzkey_protocol::PublicKey;
use vbzkey_protocol::wire::{DongleError, HelloInfo, KeyInfo, Pin, Request, Response};
use zeroize::Zeroizing;

#[derive(Parser)]
#[command(name = "vbzkey-admin", version, about = "Set up and inspect vbzkey dongles.")]
struct Cli {
    /// Which dongle: `usb` (the one plugged in, or --serial), `unix:PATH` (emulated) or
    /// `tcp:ADDR:PORT` (LAN key server).
    #[arg(long, default_value = "usb", global = true)]
    dongle: String,
    /// With several USB dongles plugged in: the one with this serial number.
    #[arg(long, global = true)]
    serial: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the dongle: serial, firmware, lock state, keys, limits.
    #[command(
        after_help = "Example:\n  vbzkey-admin info\n  vbzkey-admin --dongle unix:/tmp/dongle.sock info --json"
    )]
    Info {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Generate the key on a new dongle and set its PIN.
    #[command(
        after_help = "Example:\n  vbzkey-admin init --pin-file -      # reads the PIN from stdin\n\
                            A dongle without a PIN serves whoever plugs it in: use --dangerous-no-pin \
                            only for tests."
    )]
    Init {
        /// File whose first line is the new PIN (`-` for stdin), 4 to 128 characters.
        #[arg(long, required_unless_present = "dangerous_no_pin")]
        pin_file: Option<PathBuf>,
        /// Set no PIN at all.
        #[arg(long, conflicts_with = "pin_file")]
        dangerous_no_pin: bool,
    },
    /// Print the active public key (what the store seals to) and its fingerprint.
    #[command(after_help = "Example:\n  vbzkey-admin pubkey -o store-public-key.txt")]
    Pubkey {
        /// Also write the public key to this file.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

fn connector(cli: &Cli) -> Result<Box<dyn Connector>, String> {
    let d = cli.dongle.as_str();
    if d == "usb" {
        return Ok(Box::new(UsbConnector::new(DEFAULT_VID, DEFAULT_PID, cli.serial.clone())));
    }
    if let Some(p) = d.strip_prefix("unix:") {
        return Ok(Box::new(SocketConnector(SocketTarget::Unix(p.into()))));
    }
    if let Some(a) = d.strip_prefix("tcp:") {
        let addr = a.parse().map_err(|_| format!("{a:?} is not ADDR:PORT"))?;
        return Ok(Box::new(SocketConnector(SocketTarget::Tcp(addr))));
    }
    Err(format!("--dongle must be usb, unix:PATH or tcp:ADDR:PORT, not {d:?}"))
}

fn ask(link: &mut dyn Link, req: &Request) -> Result<Response, String> {
    match link.call(req).map_err(|e| e.to_string())? {
        Response::Error(e) => Err(explain(&e)),
        r => Ok(r),
    }
}

fn explain(e: &DongleError) -> String {
    match e {
        DongleError::AlreadyInitialised => {
            "the dongle already has a key; `vbzkey-admin info` shows it (a factory reset starts over)".into()
        }
        other => other.to_string(),
    }
}

fn read_pin(path: &Path) -> Result<Zeroizing<Vec<u8>>, String> {
    let mut raw = Zeroizing::new(Vec::new());
    let limit = 1024;
    if path == Path::new("-") {
        std::io::stdin()
            .take(limit)
            .read_to_end(&mut raw)
            .map_err(|e| format!("cannot read the PIN: {e}"))?;
    } else {
        std::fs::File::open(path)
            .and_then(|f| f.take(limit).read_to_end(&mut raw))
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    }
    let line = raw.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Ok(Zeroizing::new(line.to_vec()))
}

fn fingerprint(k: &KeyInfo) -> String {
    let hex = k.key_id.to_string();
    hex.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn print_info(h: &HelloInfo, json: bool) {
    if json {
        let keys: Vec<_> = h
            .keys
            .iter()
            .map(|k| {
                json!({ "key_id": k.key_id.to_string(), "version": k.version, "active": k.active,
                        "public_key": PublicKey::from_bytes(k.public_key).to_text() })
            })
            .collect();
        let out = json!({
            "serial": h.serial, "firmware_version": h.firmware_version, "protocol_version": h.protocol_version,
            "state": format!("{:?}", h.state).to_lowercase(), "pin_set": h.pin_set, "pin_tries_left": h.pin_tries_left,
            "audit_intact": h.audit_intact, "keys": keys,
            "limits": { "max_batch": h.limits.max_batch, "records_per_minute": h.limits.records_per_minute,
                        "max_pin_tries": h.limits.max_pin_tries, "idle_lock_secs": h.limits.idle_lock_secs },
        });
        println!("{out}");
        return;
    }
    println!("serial:          {}", h.serial);
    println!("firmware:        {} (protocol {})", h.firmware_version, h.protocol_version);
    println!("state:           {:?}", h.state);
    println!(
        "PIN:             {}",
        if h.pin_set { format!("set, {} tries left", h.pin_tries_left) } else { "NOT SET".into() }
    );
    println!("audit log:       {}", if h.audit_intact { "intact" } else { "FAILS VERIFICATION" });
    for k in &h.keys {
        println!(
            "key v{}{}:  {}  ({})",
            k.version,
            if k.active { " active" } else { "       " },
            fingerprint(k),
            PublicKey::from_bytes(k.public_key)
        );
    }
    println!(
        "limits:          {} records/min, batches of {}, {} PIN tries, idle lock {} s",
        h.limits.records_per_minute,
        h.limits.max_batch,
        h.limits.max_pin_tries,
        h.limits.idle_lock_secs
    );
}

fn run(cli: &Cli) -> Result<(), String> {
    let mut link = connector(cli)?.connect().map_err(|e| e.to_string())?;
    match &cli.command {
        Command::Info { json } => match ask(link.as_mut(), &Request::Hello)? {
            Response::Hello(h) => print_info(&h, *json),
            other => return Err(format!("unexpected answer: {other:?}")),
        },
        Command::Init { pin_file, dangerous_no_pin } => {
            let pin = match (pin_file, dangerous_no_pin) {
                (Some(f), _) => Some(Pin(read_pin(f)?)),
                (None, true) => None,
                (None, false) => return Err("give --pin-file".into()),
            };
            match ask(link.as_mut(), &Request::Init { pin })? {
                Response::PublicKeys(keys) => {
                    let k = keys
                        .iter()
                        .find(|k| k.active)
                        .ok_or("the dongle reported no active key")?;
                    println!("{}", PublicKey::from_bytes(k.public_key));
                    eprintln!("Key generated on the dongle. Fingerprint: {}", fingerprint(k));
                }
                other => return Err(format!("unexpected answer: {other:?}")),
            }
        }
        Command::Pubkey { output } => match ask(link.as_mut(), &Request::PublicKeys)? {
            Response::PublicKeys(keys) => {
                let k =
                    keys.iter().find(|k| k.active).ok_or("the dongle reported no active key")?;
                let text = PublicKey::from_bytes(k.public_key).to_text();
                if let Some(path) = output {
                    vbzkey_os::durable::write(
                        path,
                        format!("{text}\n").as_bytes(),
                        0o644,
                        vbzkey_os::durable::Mode::Replace,
                    )
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                }
                println!("{text}");
                eprintln!("Fingerprint (key id): {}", fingerprint(k));
            }
            other => return Err(format!("unexpected answer: {other:?}")),
        },
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vbzkey-admin: {e}");
            ExitCode::from(1)
        }
    }
}
