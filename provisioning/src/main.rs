//! `vbzkey-admin`: set up and look after vbzkey dongles. `info` first, like ykman: what
//! device, what firmware, what state, before any change. Secrets (PINs, shares) come from
//! files or stdin, never from the command line.
#![forbid(unsafe_code)]

mod device;
mod input;
mod progress;
mod rewrap;
mod rewrap_db;
mod rewrap_mysql;

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::json;
use vbzkey_protocol::wire::{LockState, Pin, Request, Response};
use vbzkey_protocol::{KeyId, PublicKey};

use crate::device::{Dongle, Target, describe_key, fingerprint, unexpected};
use crate::input::{read_secret_line, read_shares};

#[derive(Parser)]
#[command(
    name = "vbzkey-admin",
    version,
    about = "Set up and look after vbzkey dongles: init, PINs, backup and restore, clone, rotation, audit.",
    after_help = "Examples:\n  vbzkey-admin info\n  vbzkey-admin --dongle unix:/tmp/dongle.sock info --json\n\
                  Secrets are read from files (`-` is stdin): --pin-file, --new-pin-file, --share-file."
)]
struct Cli {
    /// Which dongle: `usb` (the one plugged in, or --serial), `unix:PATH` (emulated) or
    /// `tcp:ADDR:PORT` (LAN key server).
    #[arg(long, default_value = "usb", global = true)]
    dongle: String,
    /// With several USB dongles plugged in: the one with this serial number.
    #[arg(long, global = true)]
    serial: Option<String>,
    /// This computer's host key (`vksec1.` file), for a dongle that serves paired hosts only.
    #[arg(long, global = true)]
    host_key: Option<PathBuf>,
    /// The dongle's device key (`vkpub1.`) to pin; without it, asked from the dongle.
    #[arg(long, global = true)]
    device_key: Option<String>,
    /// The admin PIN file, for dongles with an admin PIN (pair, backup, clone, rotate, retire,
    /// reset need it).
    #[arg(long, global = true)]
    admin_pin_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the dongle: serial, firmware, lock state, keys, limits.
    #[command(after_help = "Example:\n  vbzkey-admin info --json")]
    Info {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Generate the key on a new dongle and set its PIN.
    #[command(after_help = "Example:\n  vbzkey-admin init --pin-file -      # the PIN on stdin\n\
                            A dongle without a PIN serves whoever plugs it in: --dangerous-no-pin \
                            is for tests only.")]
    Init {
        /// File whose first line is the new PIN (4 to 128 characters).
        #[arg(long, required_unless_present = "dangerous_no_pin")]
        pin_file: Option<PathBuf>,
        /// Set no PIN at all.
        #[arg(long, conflicts_with = "pin_file")]
        dangerous_no_pin: bool,
        /// Also set an admin PIN (first line of this file), separate from the staff PIN: admin
        /// commands then need --admin-pin-file as well.
        #[arg(long = "new-admin-pin-file")]
        new_admin_pin_file: Option<PathBuf>,
    },
    /// Print the active public key (what the store seals to) and its fingerprint.
    #[command(after_help = "Example:\n  vbzkey-admin pubkey -o store-public-key.txt")]
    Pubkey {
        /// Also write it to this file.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Change, set or remove the PIN.
    #[command(
        after_help = "Example:\n  vbzkey-admin change-pin --pin-file old.txt --new-pin-file new.txt\n\
                            A wrong current PIN counts toward the lock-out."
    )]
    ChangePin {
        /// The current PIN (omit if none is set).
        #[arg(long)]
        pin_file: Option<PathBuf>,
        /// The new PIN.
        #[arg(long, required_unless_present = "dangerous_remove_pin")]
        new_pin_file: Option<PathBuf>,
        /// Remove the PIN.
        #[arg(long, conflicts_with = "new_pin_file")]
        dangerous_remove_pin: bool,
    },
    /// Wipe the dongle's keys (factory reset). The audit log is kept.
    #[command(
        after_help = "Example:\n  vbzkey-admin reset --pin-file pin.txt      # asks you to type the serial\n  \
                            vbzkey-admin reset --pin-file pin.txt --force\n\
                            Records sealed to the wiped keys open again only after a restore from \
                            a backup or a clone."
    )]
    Reset {
        /// The PIN (not needed for a locked-out dongle).
        #[arg(long)]
        pin_file: Option<PathBuf>,
        /// Do not ask for confirmation.
        #[arg(long)]
        force: bool,
    },
    /// Make a new key version; new records go to it, old versions stay for opening.
    #[command(after_help = "Example:\n  vbzkey-admin rotate --pin-file pin.txt\n\
                            Then give the store the new public key, re-wrap the old records \
                            (`rewrap`) and retire the old key (`retire`).")]
    Rotate {
        /// The PIN.
        #[arg(long)]
        pin_file: Option<PathBuf>,
    },
    /// Delete an old key version, after checking that no record uses it.
    #[command(
        after_help = "Example:\n  vbzkey-admin retire 38e1dedd14c44993 --pin-file pin.txt --records cards.jsonl\n\
                            Every file of sealed records (JSON lines with a \"record\" field) must be \
                            given: the retire is refused while any record is sealed to the key."
    )]
    Retire {
        /// The key id (16 hex digits, from `info`).
        key_id: String,
        /// The PIN.
        #[arg(long)]
        pin_file: Option<PathBuf>,
        /// Files of sealed records to check (JSON lines).
        #[arg(long = "records")]
        records: Vec<PathBuf>,
        /// The store's database to check (`sqlite:PATH` or `mysql://USER@localhost/DB?socket=PATH`),
        /// with --column.
        #[arg(long, requires = "columns")]
        db: Option<String>,
        /// A sealed column to check, as TABLE.COLUMN (repeat for every one).
        #[arg(long = "column", requires = "db")]
        columns: Vec<String>,
    },
    /// Split every key version into M-of-N recovery shares (printed as text).
    #[command(
        after_help = "Example:\n  vbzkey-admin backup --threshold 3 --shares 5 --pin-file pin.txt --out-dir shares/\n\
                            Give each share to a different person or safe. Any 3 restore the keys; \
                            2 reveal nothing."
    )]
    Backup {
        /// Shares needed to restore (M).
        #[arg(long)]
        threshold: u8,
        /// Shares to make (N, at most 16).
        #[arg(long)]
        shares: u8,
        /// The PIN.
        #[arg(long)]
        pin_file: Option<PathBuf>,
        /// Write share-1.txt … share-N.txt here (created, must not hold shares already)
        /// instead of printing them.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
    /// Rebuild the keys from recovery shares into a new (or reset) dongle.
    #[command(
        after_help = "Example:\n  vbzkey-admin restore --share-file s1.txt --share-file s4.txt --share-file s5.txt --new-pin-file pin.txt\n\
                            Shares are checked (checksum, count, same backup) before anything is sent."
    )]
    Restore {
        /// A file holding share lines (repeat; `-` reads stdin).
        #[arg(long = "share-file", required = true)]
        share_files: Vec<PathBuf>,
        /// The PIN for the restored dongle.
        #[arg(long)]
        new_pin_file: PathBuf,
    },
    /// Copy the keys from one dongle to another, wrapped to the target's transfer key.
    #[command(
        after_help = "Example:\n  vbzkey-admin clone --from usb --from-serial A1 --to usb --to-serial B2 --pin-file pin.txt --new-pin-file pin2.txt\n\
                            The target must be new or reset. The keys never exist in clear on this \
                            computer."
    )]
    Clone {
        /// Source dongle (usb, unix:PATH, tcp:ADDR:PORT).
        #[arg(long)]
        from: String,
        /// Source serial (USB).
        #[arg(long)]
        from_serial: Option<String>,
        /// Target dongle.
        #[arg(long)]
        to: String,
        /// Target serial (USB).
        #[arg(long)]
        to_serial: Option<String>,
        /// The source's PIN.
        #[arg(long)]
        pin_file: Option<PathBuf>,
        /// The PIN for the target.
        #[arg(long)]
        new_pin_file: PathBuf,
    },
    /// Re-seal records to the active key inside the dongle (a JSON-lines file, or a table of
    /// the store's SQLite or MariaDB/MySQL database in place); resumable.
    #[command(
        after_help = "Examples:\n  vbzkey-admin rewrap --pin-file pin.txt --in cards.jsonl --out cards-new.jsonl\n  \
                            vbzkey-admin rewrap --pin-file pin.txt --db sqlite:/var/lib/shop/store.db \
                            --table cust_cards --column card_number\n  \
                            vbzkey-admin rewrap --pin-file pin.txt --table cust_cards --column card_number \
                            --db 'mysql://vbzkey@localhost/shop?socket=/run/mysqld/mysqld.sock&password-file=/etc/vbzkey/db-password'\n\
                            JSON lines are objects with \"record\" and \"context\"; other fields are \
                            kept. A table is updated in place, one transaction per batch; contexts are \
                            <table>/<id>/<column>. Interrupted? Run the same command again: it resumes."
    )]
    Rewrap {
        /// The PIN.
        #[arg(long)]
        pin_file: Option<PathBuf>,
        /// Input JSON lines.
        #[arg(long = "in", requires = "output", conflicts_with = "db")]
        input: Option<PathBuf>,
        /// Output JSON lines (appended to when resuming).
        #[arg(long = "out", requires = "input")]
        output: Option<PathBuf>,
        /// The store's database: `sqlite:PATH`, or `mysql://USER@localhost/DB?socket=PATH&password-file=PATH`
        /// (MariaDB/MySQL on its Unix socket; the password's file, never the password itself).
        #[arg(long, requires_all = ["table", "column"], required_unless_present = "input")]
        db: Option<String>,
        /// The table (with --db).
        #[arg(long)]
        table: Option<String>,
        /// The sealed column (with --db).
        #[arg(long)]
        column: Option<String>,
        /// The table's primary key column (with --db).
        #[arg(long, default_value = "id")]
        id_column: String,
        /// Records per request (1 to 256).
        #[arg(long, default_value_t = 256)]
        batch: usize,
    },
    /// Pair a host (a workstation's bridge, or this admin tool): from then on the dongle
    /// serves paired hosts only, in encrypted sessions.
    #[command(
        after_help = "Example:\n  vbzkey-admin pair --new-host-key /etc/vbzkey/host.key --label till-2 --pin-file pin.txt\n\
                            Creates the host key file (0600) if it does not exist, pairs its public key \
                            and prints the dongle's device key for the bridge's configuration. After the \
                            first pairing, give --host-key to every vbzkey-admin command."
    )]
    Pair {
        /// The host key file to pair (created if missing).
        #[arg(long)]
        new_host_key: PathBuf,
        /// A name for the host, up to 64 characters.
        #[arg(long, default_value = "")]
        label: String,
        /// The PIN.
        #[arg(long)]
        pin_file: Option<PathBuf>,
    },
    /// List the paired hosts.
    #[command(after_help = "Example:\n  vbzkey-admin --host-key host.key pairings")]
    Pairings,
    /// Remove a paired host.
    #[command(
        after_help = "Example:\n  vbzkey-admin --host-key admin.key unpair vkpub1.… --pin-file pin.txt"
    )]
    Unpair {
        /// The host's public key (`vkpub1.`).
        host: String,
        /// The PIN.
        #[arg(long)]
        pin_file: Option<PathBuf>,
    },
    /// The dongle's audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Print the log (every line, oldest first).
    #[command(after_help = "Example:\n  vbzkey-admin audit export -o audit-2026-11.log")]
    Export {
        /// Write to this file.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Check the hash chain, of the dongle's log or of an exported file.
    #[command(
        after_help = "Example:\n  vbzkey-admin audit verify\n  vbzkey-admin audit verify audit-2026-11.log"
    )]
    Verify {
        /// An exported log; without it the dongle's own log is fetched and checked.
        file: Option<PathBuf>,
    },
}

fn print_info(d: &mut Dongle, json: bool) -> Result<(), String> {
    let h = d.hello()?;
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
        return Ok(());
    }
    println!("serial:     {}", h.serial);
    println!("firmware:   {} (protocol {})", h.firmware_version, h.protocol_version);
    println!("state:      {:?}", h.state);
    println!(
        "PIN:        {}",
        if h.pin_set { format!("set, {} tries left", h.pin_tries_left) } else { "NOT SET".into() }
    );
    println!("audit log:  {}", if h.audit_intact { "intact" } else { "FAILS VERIFICATION" });
    for k in &h.keys {
        println!("{}", describe_key(k));
    }
    println!(
        "limits:     {} records/min, batches of {}, {} PIN tries, idle lock {} s",
        h.limits.records_per_minute,
        h.limits.max_batch,
        h.limits.max_pin_tries,
        h.limits.idle_lock_secs
    );
    Ok(())
}

fn pin(path: &Path) -> Result<Pin, String> {
    Ok(Pin(read_secret_line(path)?))
}

fn expect_ok(r: Response) -> Result<(), String> {
    match r {
        Response::Ok => Ok(()),
        other => Err(unexpected(&other)),
    }
}

/// Ask for the serial to be typed, unless --force.
fn confirm(serial: &str, force: bool) -> Result<(), String> {
    if force {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(
            "this wipes the dongle's keys: run it in a terminal to confirm, or add --force".into(),
        );
    }
    eprint!("This wipes every key on dongle {serial}. Type its serial to confirm: ");
    let mut line = String::new();
    std::io::stdin().take(256).read_to_string(&mut line).map_err(|e| e.to_string())?;
    if line.lines().next().unwrap_or_default().trim() != serial {
        return Err("not confirmed; nothing was changed".into());
    }
    Ok(())
}

fn audit_lines(d: &mut Dongle) -> Result<(Vec<String>, String, u64), String> {
    match d.ask(&Request::AuditTail { max: u16::MAX })? {
        Response::AuditTail { entries, head, total } => {
            Ok((entries.into_iter().map(|e| e.line).collect(), head, total))
        }
        other => Err(unexpected(&other)),
    }
}

fn run(cli: Cli) -> Result<(), String> {
    let keys = cli
        .host_key
        .as_deref()
        .map(|h| {
            vbzkey_host_bridge::link::SessionKeys::load(h, cli.device_key.as_deref())
                .map(std::sync::Arc::new)
        })
        .transpose()?;
    let target = Target {
        spec: cli.dongle.clone(),
        serial: cli.serial.clone(),
        keys,
        admin_pin: cli.admin_pin_file.clone(),
    };
    let open = || Dongle::open(&target);
    match cli.command {
        Command::Info { json } => print_info(&mut open()?, json)?,
        Command::Init { pin_file, dangerous_no_pin: _, new_admin_pin_file } => {
            let pin = pin_file.as_deref().map(pin).transpose()?;
            let admin_pin = new_admin_pin_file.as_deref().map(self::pin).transpose()?;
            let mut d = open()?;
            match d.ask(&Request::Init { pin, admin_pin })? {
                Response::PublicKeys(keys) => {
                    let k = keys
                        .iter()
                        .find(|k| k.active)
                        .ok_or("the dongle reported no active key")?;
                    println!("{}", PublicKey::from_bytes(k.public_key));
                    eprintln!("Key generated on the dongle. Fingerprint: {}", fingerprint(k));
                }
                other => return Err(unexpected(&other)),
            }
        }
        Command::Pubkey { output } => {
            let k = open()?.active_key()?;
            let text = PublicKey::from_bytes(k.public_key).to_text();
            if let Some(path) = output {
                vbzkey_os::durable::write(
                    &path,
                    format!("{text}\n").as_bytes(),
                    0o644,
                    vbzkey_os::durable::Mode::Replace,
                )
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            }
            println!("{text}");
            eprintln!("Fingerprint (key id): {}", fingerprint(&k));
        }
        Command::ChangePin { pin_file, new_pin_file, dangerous_remove_pin: _ } => {
            let old = pin_file.as_deref().map(pin).transpose()?;
            let new = new_pin_file.as_deref().map(pin).transpose()?;
            expect_ok(open()?.ask(&Request::ChangePin { old, new })?)?;
            eprintln!("PIN changed.");
        }
        Command::Reset { pin_file, force } => {
            let mut d = open()?;
            let h = d.hello()?;
            if h.state != LockState::LockedOut && h.state != LockState::Uninitialised {
                d.unlock(pin_file.as_deref())?;
            }
            confirm(&h.serial, force)?;
            expect_ok(d.ask(&Request::FactoryReset)?)?;
            eprintln!(
                "Dongle {} wiped. Restore it from a backup, clone into it, or init it.",
                h.serial
            );
        }
        Command::Rotate { pin_file } => {
            let mut d = open()?;
            d.unlock(pin_file.as_deref())?;
            match d.ask(&Request::Rotate)? {
                Response::PublicKeys(keys) => {
                    for k in &keys {
                        eprintln!("{}", describe_key(k));
                    }
                    let k = keys.iter().find(|k| k.active).ok_or("no active key after rotation")?;
                    println!("{}", PublicKey::from_bytes(k.public_key));
                }
                other => return Err(unexpected(&other)),
            }
        }
        Command::Retire { key_id, pin_file, records, db, columns } => {
            let id = parse_key_id(&key_id)?;
            if records.is_empty() && db.is_none() {
                return Err("give the records to check: --records FILE or --db sqlite:PATH --column TABLE.COLUMN".into());
            }
            let mut using = rewrap::count_using(&records, id)?;
            if let Some(db) = &db {
                for c in &columns {
                    let (table, column) =
                        c.split_once('.').ok_or_else(|| format!("{c:?}: write TABLE.COLUMN"))?;
                    using += rewrap_db::count_using(db, table, column, id)?;
                }
            }
            if using > 0 {
                return Err(format!(
                    "{using} record(s) in the given files are still sealed to key {id}: re-wrap them first"
                ));
            }
            let mut d = open()?;
            d.unlock(pin_file.as_deref())?;
            expect_ok(d.ask(&Request::Retire { key_id: id })?)?;
            eprintln!("Key {id} retired: the dongle no longer holds it.");
        }
        Command::Backup { threshold, shares, pin_file, out_dir } => {
            let mut d = open()?;
            d.unlock(pin_file.as_deref())?;
            let lines = match d.ask(&Request::Backup { threshold, count: shares })? {
                Response::Shares(s) => s,
                other => return Err(unexpected(&other)),
            };
            match out_dir {
                Some(dir) => {
                    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                    for (i, line) in lines.iter().enumerate() {
                        let path = dir.join(format!("share-{}.txt", i + 1));
                        let text = format!(
                            "# vbzkey recovery share {} of {} ({threshold} needed)\n{line}\n",
                            i + 1,
                            lines.len()
                        );
                        vbzkey_os::durable::write(
                            &path,
                            text.as_bytes(),
                            0o600,
                            vbzkey_os::durable::Mode::CreateNew,
                        )
                        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                    }
                    eprintln!(
                        "{} shares written to {}; any {threshold} restore the keys.",
                        lines.len(),
                        dir.display()
                    );
                }
                None => {
                    for line in &lines {
                        println!("{line}");
                    }
                }
            }
        }
        Command::Restore { share_files, new_pin_file } => {
            let shares = read_shares(&share_files)?;
            let pin = Some(pin(&new_pin_file)?);
            match open()?.ask(&Request::Restore { shares, pin })? {
                Response::PublicKeys(keys) => {
                    for k in &keys {
                        println!("{}", describe_key(k));
                    }
                    eprintln!("Restored {} key version(s).", keys.len());
                }
                other => return Err(unexpected(&other)),
            }
        }
        Command::Clone { from, from_serial, to, to_serial, pin_file, new_pin_file } => {
            let new_pin = Some(pin(&new_pin_file)?);
            let mut dst = Dongle::open(&Target {
                spec: to,
                serial: to_serial,
                keys: target.keys.clone(),
                admin_pin: None,
            })?;
            let transfer = match dst.ask(&Request::CloneBegin)? {
                Response::CloneKey(k) => k,
                other => return Err(unexpected(&other)),
            };
            let mut src = Dongle::open(&Target {
                spec: from,
                serial: from_serial,
                keys: None,
                admin_pin: target.admin_pin.clone(),
            })?;
            src.unlock(pin_file.as_deref())?;
            let blob = match src.ask(&Request::CloneExport { to: transfer })? {
                Response::CloneBlob(b) => b,
                other => return Err(unexpected(&other)),
            };
            match dst.ask(&Request::CloneImport { blob, pin: new_pin })? {
                Response::PublicKeys(keys) => {
                    for k in &keys {
                        println!("{}", describe_key(k));
                    }
                    eprintln!("Cloned {} key version(s).", keys.len());
                }
                other => return Err(unexpected(&other)),
            }
        }
        Command::Rewrap { pin_file, input, output, db, table, column, id_column, batch } => {
            let mut d = open()?;
            d.unlock(pin_file.as_deref())?;
            let target = d.active_key()?;
            if let Some(db) = db {
                let (table, column) = (table.unwrap_or_default(), column.unwrap_or_default());
                let s = rewrap_db::run(&mut d, &target, &db, &table, &column, &id_column, batch)?;
                eprintln!(
                    "{table}.{column}: {} rows, {} re-wrapped to key {}{}",
                    s.rows,
                    s.rewrapped,
                    target.key_id,
                    if s.changed_meanwhile > 0 {
                        format!(
                            ", {} changed by the store meanwhile (run again to re-wrap them)",
                            s.changed_meanwhile
                        )
                    } else {
                        String::new()
                    }
                );
                return Ok(());
            }
            let (input, output) =
                (input.expect("clap requires --in"), output.expect("clap requires --out"));
            let s = rewrap::run(&mut d, &target, &input, &output, batch)?;
            eprintln!(
                "{} records: {} re-wrapped to key {} and {} already on it{}, in {:.1} s ({:.0} records/s)",
                s.total,
                s.rewrapped,
                target.key_id,
                s.already,
                if s.resumed_at > 0 {
                    format!(", resumed after {}", s.resumed_at)
                } else {
                    String::new()
                },
                s.seconds,
                (s.rewrapped + s.already) as f64 / s.seconds.max(1e-3)
            );
        }
        Command::Pair { new_host_key, label, pin_file } => {
            if !new_host_key.exists() {
                let key = vbzkey_protocol::SecretKey::generate()
                    .map_err(|e| format!("random number generator: {e}"))?;
                let text = format!("# vbzkey host key: keep private\n{}\n", key.to_text().as_str());
                vbzkey_os::durable::write(
                    &new_host_key,
                    text.as_bytes(),
                    0o600,
                    vbzkey_os::durable::Mode::CreateNew,
                )
                .map_err(|e| format!("cannot write {}: {e}", new_host_key.display()))?;
            }
            let host =
                vbzkey_host_bridge::link::SessionKeys::load(&new_host_key, None)?.host_public();
            let mut d = open()?;
            d.unlock(pin_file.as_deref())?;
            expect_ok(d.ask(&Request::Pair { host_key: host, label })?)?;
            let device = match d.ask(&Request::DeviceKey)? {
                Response::DeviceKey(k) => PublicKey::from_bytes(k),
                other => return Err(unexpected(&other)),
            };
            eprintln!("Paired host {} ({}).", PublicKey::from_bytes(host), new_host_key.display());
            eprintln!(
                "In the bridge's [method] section: host_key = \"{}\" and:",
                new_host_key.display()
            );
            println!("device_key = \"{device}\"");
        }
        Command::Pairings => match open()?.ask(&Request::Pairings)? {
            Response::Pairings(hosts) => {
                if hosts.is_empty() {
                    println!("no host is paired: any host on USB or the local socket is served");
                }
                for h in hosts {
                    println!(
                        "{}  {}  paired at {}",
                        PublicKey::from_bytes(h.host_key),
                        h.label,
                        h.paired_at
                    );
                }
            }
            other => return Err(unexpected(&other)),
        },
        Command::Unpair { host, pin_file } => {
            let host = PublicKey::from_text(&host).map_err(|e| format!("host: {e}"))?;
            let mut d = open()?;
            d.unlock(pin_file.as_deref())?;
            expect_ok(d.ask(&Request::Unpair { host_key: *host.as_bytes() })?)?;
            eprintln!("Host {host} unpaired.");
        }
        Command::Audit(AuditCommand::Export { output }) => {
            let (lines, _, _) = audit_lines(&mut open()?)?;
            let text = lines.iter().map(|l| format!("{l}\n")).collect::<String>();
            match output {
                Some(path) => vbzkey_os::durable::write(
                    &path,
                    text.as_bytes(),
                    0o600,
                    vbzkey_os::durable::Mode::Replace,
                )
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
                None => print!("{text}"),
            }
        }
        Command::Audit(AuditCommand::Verify { file }) => {
            let (text, head) = match file {
                Some(path) => (
                    std::fs::read_to_string(&path)
                        .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
                    None,
                ),
                None => {
                    let (lines, head, total) = audit_lines(&mut open()?)?;
                    if lines.len() as u64 != total {
                        return Err(format!(
                            "the log has {total} lines; only the last {} could be fetched",
                            lines.len()
                        ));
                    }
                    (lines.join("\n"), Some(head))
                }
            };
            let (computed, n) = vbzkey_firmware::audit::verify(&text)
                .map_err(|e| format!("audit log does NOT verify: {e}"))?;
            let computed: String = computed.iter().map(|b| format!("{b:02x}")).collect();
            if let Some(head) = head
                && n > 0
                && head != computed
            {
                return Err(
                    "audit log does NOT verify: the dongle's head hash differs from the chain"
                        .into(),
                );
            }
            println!("audit log verifies: {n} entries, head {computed}");
        }
    }
    Ok(())
}

fn parse_key_id(s: &str) -> Result<KeyId, String> {
    let s = s.trim();
    let bad = || format!("{s:?} is not a key id: 16 hex digits, as `info` shows them");
    if s.len() != 16 {
        return Err(bad());
    }
    let mut id = [0u8; 8];
    for (i, b) in id.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(KeyId(id))
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vbzkey-admin: {e}");
            ExitCode::from(1)
        }
    }
}
