//! `vbzkey-admin`: set up and look after vbzkey dongles. `info` first, like ykman: what
//! device, what firmware, what state, before any change. Secrets (PINs, shares) come from
//! files or stdin, never from the command line.
//!
//! One module per command group, each with its options, its dongle requests and what it
//! prints ([`output::Output`], tested without a dongle): `info`, `keys` (init, pubkey, rotate,
//! retire, reset), `pin`, `backup` (backup, restore, clone), `pairing`, `audit`, `rewrap`.
//! Every failure is one [`error::AdminError`] with a documented exit code per class.
#![forbid(unsafe_code)]

mod audit;
mod backup;
mod dongle;
mod error;
mod info;
mod input;
mod keys;
mod output;
mod pairing;
mod pin;
mod progress;
mod rewrap;
mod rewrap_db;
mod rewrap_mysql;
mod staff;
mod strength;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use vbzkey_client::{DevicePin, DongleAddr, SessionKeys};
use vbzkey_protocol::PublicKey;

use crate::dongle::{Dongle, Target};
use crate::error::{AdminError, Usage};
use crate::output::Output;

#[derive(Parser)]
#[command(
    name = "vbzkey-admin",
    version,
    about = "Set up and look after vbzkey dongles: init, PINs, backup and restore, clone, rotation, audit.",
    after_help = format!(
        "Examples:\n  vbzkey-admin info\n  vbzkey-admin --dongle unix:/tmp/dongle.sock info --json\n\
         Secrets are read from files (`-` is stdin): --pin-file, --new-pin-file, --share-file.\n\n\
         {}",
        vbzkey_os::exit::Exit::help()
    )
)]
struct Cli {
    /// Which dongle: `usb` (the one plugged in), `usb:SERIAL`, `unix:PATH` (emulated) or
    /// `tcp:HOST:PORT` (LAN key server).
    #[arg(long, default_value = "usb", global = true)]
    dongle: DongleAddr,
    /// With several USB dongles plugged in: the one with this serial number.
    #[arg(long, global = true)]
    serial: Option<String>,
    /// This computer's host key (`vksec1.` file), for a dongle that serves paired hosts only.
    #[arg(long, global = true)]
    host_key: Option<PathBuf>,
    /// The dongle's device key (`vkpub1.`) to pin; without it, asked from the dongle.
    #[arg(long, global = true)]
    device_key: Option<PublicKey>,
    /// The admin PIN file: pair, unpair, backup, clone, rotate, retire, rewrap, set-pin,
    /// change-admin-pin and reset need it (and most of them a press of the dongle's button).
    #[arg(long, global = true)]
    admin_pin_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the dongle: serial, firmware, lock state, PINs, pairing, custody, keys, limits.
    #[command(after_help = "Example:\n  vbzkey-admin info --json")]
    Info(info::InfoArgs),
    /// Generate the key on a new dongle and set its staff PIN and admin PIN.
    #[command(
        after_help = "Example:\n  vbzkey-admin init --pin-file - --new-admin-pin-file admin.txt   # the staff PIN on stdin\n\
                            A dongle without a staff PIN serves whoever plugs it in: --dangerous-no-pin \
                            is for tests only."
    )]
    Init(keys::InitArgs),
    /// Print the active public key (what the store seals to) and its fingerprint.
    #[command(after_help = "Example:\n  vbzkey-admin pubkey -o store-public-key.txt")]
    Pubkey(keys::PubkeyArgs),
    /// Set a new staff PIN (forgotten, or locked out), or remove it. Admin PIN and a press.
    #[command(
        after_help = "Example:\n  vbzkey-admin --admin-pin-file admin.txt set-pin --new-pin-file new.txt\n\
                            Staff cannot change their own PIN: the staff PIN opens records and nothing else."
    )]
    SetPin(pin::SetPinArgs),
    /// Change the admin PIN. Admin PIN and a press.
    #[command(
        after_help = "Example:\n  vbzkey-admin --admin-pin-file old.txt change-admin-pin --new-admin-pin-file new.txt"
    )]
    ChangeAdminPin(pin::ChangeAdminPinArgs),
    /// Wipe the dongle's keys, PINs and pairings (factory reset). The audit log is kept.
    #[command(
        after_help = "Example:\n  vbzkey-admin --admin-pin-file admin.txt reset      # asks you to type the serial\n  \
                            vbzkey-admin --admin-pin-file admin.txt reset --force\n\
                            Needs a press of the dongle's button; the admin PIN too, unless nobody can \
                            give it (admin PIN locked out, damaged or blank dongle). Records sealed to \
                            the wiped keys open again only after a restore from a backup or a clone."
    )]
    Reset(keys::ResetArgs),
    /// Make a new key version; new records go to it, old versions stay for opening.
    #[command(after_help = "Example:\n  vbzkey-admin --admin-pin-file admin.txt rotate\n\
                            Then give the store the new public key, re-wrap the old records \
                            (`rewrap`), retire the old key (`retire`) and make a new backup.")]
    Rotate(keys::RotateArgs),
    /// Delete an old key version, after checking that no record uses it.
    #[command(
        after_help = "Example:\n  vbzkey-admin --admin-pin-file admin.txt retire \"38e1 dedd 14c4 4993\" --records cards.jsonl\n\
                            Every file of sealed records (JSON lines with a \"record\" field) must be \
                            given: the retire is refused while any record is sealed to the key."
    )]
    Retire(keys::RetireArgs),
    /// Split every key version into M-of-N recovery shares (printed as text). Admin PIN and a
    /// press.
    #[command(
        after_help = "Example:\n  vbzkey-admin --admin-pin-file admin.txt backup --threshold 3 --shares 5 -o shares/\n\
                            Press the dongle's button when asked. Give each share to a different person \
                            or safe. Any 3 restore the keys; 2 reveal nothing."
    )]
    Backup(backup::BackupArgs),
    /// Rebuild the keys from recovery shares into a new (or reset) dongle.
    #[command(
        after_help = "Example:\n  vbzkey-admin restore --share-file s1.txt --share-file s4.txt --share-file s5.txt \
                            --new-pin-file pin.txt --new-admin-pin-file admin.txt\n\
                            Shares are checked (checksum, count, same backup) before anything is sent."
    )]
    Restore(backup::RestoreArgs),
    /// Copy the keys from one dongle to another, wrapped to the target's transfer key.
    #[command(
        after_help = "Example:\n  vbzkey-admin --admin-pin-file admin.txt clone --from usb:A1 --to usb:B2 \
                            --new-pin-file pin2.txt --new-admin-pin-file admin2.txt\n\
                            The target must be new or reset. The keys never exist in clear on this \
                            computer. --host-key and --admin-pin-file apply to the source, whose button \
                            must be pressed."
    )]
    Clone(backup::CloneArgs),
    /// Re-seal records to the active key inside the dongle (a JSON-lines file, or a table of
    /// the store's SQLite or MariaDB/MySQL database in place); resumable.
    #[command(
        after_help = "Examples:\n  vbzkey-admin --admin-pin-file admin.txt rewrap --in cards.jsonl -o cards-new.jsonl\n  \
                            vbzkey-admin --admin-pin-file admin.txt rewrap --db sqlite:/var/lib/shop/store.db \
                            --table cust_cards --column card_number\n  \
                            vbzkey-admin --admin-pin-file admin.txt rewrap --table cust_cards --column card_number \
                            --db 'mysql://vbzkey@localhost/shop?socket=/run/mysqld/mysqld.sock&password-file=/etc/vbzkey/db-password'\n\
                            JSON lines are objects with \"record\" and \"context\"; other fields are \
                            kept. A table is updated in place, one transaction per batch; contexts are \
                            <table>/<id>/<column>. Interrupted? Run the same command again: it resumes."
    )]
    Rewrap(rewrap::RewrapArgs),
    /// Pair a host (a workstation's bridge, or this admin tool): from then on the dongle
    /// serves paired hosts only, in encrypted sessions, and unlocking needs a paired host's
    /// share of the keys as well as the PIN. Admin PIN and a press.
    #[command(
        after_help = "Example:\n  vbzkey-admin --admin-pin-file admin.txt pair --new-host-key /etc/vbzkey/host.key --label till-2\n\
                            Creates the host key file (0600) if it does not exist, pairs it, and prints the \
                            lines for the bridge's configuration (host_key, device_key, serial). After the \
                            first pairing, give --host-key to every vbzkey-admin command."
    )]
    Pair(pairing::PairArgs),
    /// List the paired hosts.
    #[command(after_help = "Example:\n  vbzkey-admin --host-key host.key pairings --json")]
    Pairings(pairing::PairingsArgs),
    /// Remove a paired host.
    #[command(
        after_help = "Example:\n  vbzkey-admin --host-key admin.key --admin-pin-file admin.txt unpair vkpub1.…\n  \
                      vbzkey-admin --host-key admin.key --admin-pin-file admin.txt unpair till-1\n\
                      A label must name exactly one paired host (`pairings` lists them)."
    )]
    Unpair(pairing::UnpairArgs),
    /// Unlock for staff with the staff PIN, as the staff page does (admin commands never do).
    #[command(after_help = "Example:\n  vbzkey-admin --host-key host.key unlock --pin-file -\n\
                      Records then open for every host the dongle serves until `vbzkey-admin lock`, \
                      a Lock from the staff page, or the dongle's idle time. A wrong PIN is counted.")]
    Unlock(staff::UnlockArgs),
    /// Lock the dongle: no record opens until staff unlock again.
    #[command(after_help = "Example:\n  vbzkey-admin lock")]
    Lock(staff::LockArgs),
    /// The dongle's audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Print a completion script for a shell (no dongle needed).
    #[command(
        after_help = "Example:\n  vbzkey-admin completions bash > /etc/bash_completion.d/vbzkey-admin"
    )]
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page, in roff (no dongle needed).
    #[command(after_help = "Example:\n  vbzkey-admin man > vbzkey-admin.1 && man ./vbzkey-admin.1")]
    Man,
}

/// `completions`: generated from the definitions above, so it lists exactly the commands and
/// options this build has.
fn completions(shell: clap_complete::Shell) -> Output {
    use clap::CommandFactory;
    let mut bytes = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "vbzkey-admin", &mut bytes);
    let mut out = Output::default();
    out.stdout.push_str(&String::from_utf8_lossy(&bytes));
    out
}

/// `man`: the manual page, from the same definitions.
fn man() -> Result<Output, AdminError> {
    use clap::CommandFactory;
    let mut bytes = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut bytes)
        .map_err(|e| AdminError::io("write", "-", e))?;
    let mut out = Output::default();
    out.stdout.push_str(&String::from_utf8_lossy(&bytes));
    Ok(out)
}

/// The dongle the global options name, as whom.
fn target(cli: &Cli) -> Result<Target, AdminError> {
    let addr = cli.dongle.clone().with_serial(cli.serial.clone()).map_err(Usage::Addr)?;
    let keys = match (&cli.host_key, &cli.admin_pin_file) {
        (Some(h), _) => Some(SessionKeys::load(h, cli.device_key.as_ref())?),
        // An admin window opens only inside a session: on USB nothing else ties it to this
        // process, so the next program on the link cannot inherit it. Without a host key
        // (no host paired yet), one made for this process alone.
        (None, Some(_)) if opens_admin_window(&cli.command) => {
            let device = cli.device_key.clone().map_or(DevicePin::Ask, DevicePin::Key);
            Some(SessionKeys::ephemeral(device).map_err(AdminError::Random)?)
        }
        (None, _) => None,
    };
    Ok(Target { addr, keys: keys.map(Arc::new), admin_pin: cli.admin_pin_file.clone() })
}

/// Whether the command proves the admin PIN (`AdminAuth`) on the dongle it names.
fn opens_admin_window(command: &Command) -> bool {
    match command {
        Command::SetPin(_)
        | Command::ChangeAdminPin(_)
        | Command::Reset(_)
        | Command::Rotate(_)
        | Command::Retire(_)
        | Command::Backup(_)
        | Command::Clone(_)
        | Command::Rewrap(_)
        | Command::Pair(_)
        | Command::Unpair(_) => true,
        Command::Info(_)
        | Command::Init(_)
        | Command::Pubkey(_)
        | Command::Restore(_)
        | Command::Pairings(_)
        | Command::Unlock(_)
        | Command::Lock(_)
        | Command::Audit(_)
        | Command::Completions { .. }
        | Command::Man => false,
    }
}

fn run(cli: &Cli) -> Result<Output, AdminError> {
    // `init --host-key FILE` makes this computer's host key if it has none, to pair it.
    if let (Command::Init(_), Some(h)) = (&cli.command, &cli.host_key) {
        pairing::host_key(h)?;
    }
    let target = target(cli)?;
    let d = Dongle::open(&target);
    match &cli.command {
        Command::Info(a) => info::run(&d, a),
        Command::Init(a) => keys::init(&d, a, cli.host_key.as_deref()),
        Command::Pubkey(a) => keys::pubkey(&d, a),
        Command::SetPin(a) => pin::set_pin(&d, a),
        Command::ChangeAdminPin(a) => pin::change_admin_pin(&d, a),
        Command::Reset(a) => keys::reset(&d, a),
        Command::Rotate(a) => keys::rotate(&d, a),
        Command::Retire(a) => keys::retire(&d, a),
        Command::Backup(a) => backup::backup(&d, a),
        Command::Restore(a) => backup::restore(&d, a),
        Command::Clone(a) => backup::clone(&target, a),
        Command::Rewrap(a) => rewrap::command(&d, a),
        Command::Pair(a) => pairing::pair(&d, a),
        Command::Pairings(a) => pairing::pairings(&d, a),
        Command::Unpair(a) => pairing::unpair(&d, a),
        Command::Unlock(a) => staff::unlock(&d, a),
        Command::Lock(a) => staff::lock(&d, a),
        Command::Audit(a) => audit::run(&d, a),
        Command::Completions { shell } => Ok(completions(*shell)),
        Command::Man => man(),
    }
}

/// This tool's name in its error lines.
const TOOL: &str = "vbzkey-admin";

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            return vbzkey_os::exit::command_line(TOOL, &e.render().to_string(), e.use_stderr());
        }
    };
    match run(&cli).and_then(|out| out.print()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            vbzkey_os::exit::error(TOOL, &e);
            ExitCode::from(e.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_help_lists_every_exit_code() {
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains(&vbzkey_os::exit::Exit::help()), "{help}");
    }

    #[test]
    fn every_command_has_an_example() {
        let cli = Cli::command();
        for sub in cli.get_subcommands() {
            let mut subs: Vec<_> = sub.get_subcommands().cloned().collect();
            if subs.is_empty() {
                subs.push(sub.clone());
            }
            for mut c in subs {
                let help = c.render_long_help().to_string();
                assert!(help.contains("Example"), "{} has no example", c.get_name());
            }
        }
    }

    #[test]
    fn bad_addresses_key_ids_and_keys_are_usage_errors_that_say_the_form() {
        for (args, says) in [
            (vec!["--dongle", "serial:1", "info"], "usb, usb:SERIAL, unix:PATH or tcp:HOST:PORT"),
            (vec!["retire", "5b97 724a 4496 1ff", "--records", "r"], "16 hex digits"),
            (
                vec![
                    "retire",
                    "\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}",
                    "--records",
                    "r",
                ],
                "hex digits only",
            ),
            (vec!["unpair", "vkpub1.short"], "damaged"),
            (vec!["--device-key", "nope", "info"], "vkpub1."),
            (vec!["rewrap", "--in", "a", "--out", "b", "--batch", "0"], "--batch"),
        ] {
            let err = Cli::try_parse_from(std::iter::once("vbzkey-admin").chain(args.clone()))
                .err()
                .unwrap_or_else(|| panic!("{args:?} parsed"));
            assert!(err.use_stderr());
            let text = err.to_string();
            assert!(text.contains(says), "{says:?} not in {text}");
        }
        // Anything not starting with `vkpub1.` is a label (resolved, and refused naming the
        // `vkpub1.` form if no host has it: `pairing::tests`).
        assert!(Cli::try_parse_from(["a", "unpair", "ssh-ed25519 AAAA"]).is_ok());
        let grouped = Cli::try_parse_from(["a", "retire", "5b97 724a 4496 1ff0", "--records", "r"]);
        assert!(grouped.is_ok(), "the grouped form `info` prints is accepted");
    }

    /// The generated completion script is valid bash that knows every command and the global
    /// options; the man page is roff naming the tool and its commands.
    #[test]
    fn completions_and_the_man_page_describe_this_build() {
        let bash = completions(clap_complete::Shell::Bash);
        for word in ["rewrap", "change-admin-pin", "--admin-pin-file", "--host-key", "verify"] {
            assert!(bash.stdout.contains(word), "{word} missing from the bash completions");
        }
        let dir = std::env::temp_dir().join(format!("vbzkey-admin-compl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("vbzkey-admin.bash");
        std::fs::write(&script, bash.stdout.as_bytes()).unwrap();
        let check = std::process::Command::new("bash").arg("-n").arg(&script).output().unwrap();
        assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
        std::fs::remove_dir_all(&dir).unwrap();

        let man = man().unwrap();
        assert!(man.stdout.contains(".TH vbzkey-admin"), "not a man page");
        for word in ["vbzkey\\-admin", "rewrap", "pair"] {
            assert!(man.stdout.contains(word), "{word} missing from the man page");
        }
    }

    /// docs/CLI.md: one output flag, `-o/--output`; the old spellings stay as hidden aliases
    /// so existing scripts keep working.
    #[test]
    fn output_is_spelled_dash_o_and_the_old_spellings_still_parse() {
        for args in [
            vec!["backup", "--threshold", "2", "--shares", "3", "-o", "shares/"],
            vec!["backup", "--threshold", "2", "--shares", "3", "--output", "shares/"],
            vec!["backup", "--threshold", "2", "--shares", "3", "--out-dir", "shares/"],
            vec!["rewrap", "--in", "a.jsonl", "-o", "b.jsonl"],
            vec!["rewrap", "--in", "a.jsonl", "--out", "b.jsonl"],
            vec!["audit", "export", "-o", "audit.log"],
            vec!["pubkey", "-o", "store-public-key.txt"],
        ] {
            let parsed = Cli::try_parse_from(std::iter::once("vbzkey-admin").chain(args.clone()));
            assert!(parsed.is_ok(), "{args:?}: {}", parsed.err().unwrap());
        }
        let mut cli = Cli::command();
        for sub in ["backup", "rewrap"] {
            let help = cli.find_subcommand_mut(sub).unwrap().render_long_help().to_string();
            assert!(help.contains("-o, --output"), "{sub}: {help}");
            assert!(!help.contains("--out-dir <") && !help.contains("--out <"), "{sub}: {help}");
        }
    }

    #[test]
    fn a_serial_is_one_setting_in_two_spellings() {
        let cli =
            Cli::try_parse_from(["a", "--dongle", "usb:A1", "--serial", "B2", "info"]).unwrap();
        assert!(matches!(target(&cli), Err(AdminError::Usage(Usage::Addr(_)))));
        let cli = Cli::try_parse_from(["a", "--serial", "A1", "info"]).unwrap();
        assert_eq!(target(&cli).unwrap().addr, DongleAddr::Usb { serial: Some("A1".into()) });
    }
}
