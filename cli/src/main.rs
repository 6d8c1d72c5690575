//! `vbzkey`: make software key pairs, seal and open vbzkey records, seal customer records.
//!
//! A thin layer over `vbzkey-protocol` with Unix manners: data on stdin, result on stdout,
//! messages on stderr, secrets and binary never written to a terminal.
#![forbid(unsafe_code)]

mod customer_json;
mod error;
mod io;
mod keyfile;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use serde_json::json;
use vbzkey_protocol::SecretKey;
use vbzkey_protocol::record::{self, MAX_PLAINTEXT_LEN, MAX_TEXT_LEN, Record};
use vbzkey_protocol::split::{self, CustomerInput};

use vbzkey_os::exit::{self, Exit};

use crate::error::CliError;

/// Largest customer JSON accepted on stdin: generous for one record, bounded for safety.
const MAX_CUSTOMER_JSON: usize = 64 * 1024;

#[derive(Parser)]
#[command(
    name = "vbzkey",
    version,
    about = "Seal and open vbzkey records (format v1: HPKE X25519 / HKDF-SHA256 / ChaCha20Poly1305).",
    after_help = format!("{}\n\n\
                  Example:\n  vbzkey keygen -o key.txt\n  \
                  echo 4111111111111111 | vbzkey seal --to \"$(vbzkey pubkey -k key.txt)\" \
                  --context cust_cards/1001/card_number > rec.txt\n  \
                  vbzkey open -k key.txt --context cust_cards/1001/card_number < rec.txt",
                  Exit::help())
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a software key pair (for tests and the key-file method).
    #[command(after_help = "Example:\n  vbzkey keygen -o key.txt\n\
                            The public key is printed on stderr. The file is created 0600 and never \
                            overwritten. Without -o the key goes to stdout, never to a terminal.")]
    Keygen {
        /// Write the secret key file here.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Write an encrypted key file (for the bridge's key-file method) instead, under the
        /// passphrase read from --passphrase-file.
        #[arg(long, requires = "passphrase_file")]
        encrypt: bool,
        /// File whose first line is the passphrase (`-`: standard input; at a terminal it
        /// is asked for, with echo off, twice).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
        /// With -o: print {"public_key", "key_id"} as JSON on standard output.
        #[arg(long, requires = "output")]
        json: bool,
    },
    /// Make the descriptor of a passphrase-derived key (the bridge's passphrase method).
    #[command(
        after_help = "Example:\n  vbzkey passphrase-key --passphrase-file - -o passphrase-key.json\n\
                            The key is derived from the passphrase (Argon2id, 64 MiB); the file holds \
                            only the salt, the cost and the public key. The passphrase must be at \
                            least 16 characters: anyone with the public key can test guesses offline."
    )]
    PassphraseKey {
        /// Write the descriptor here (never overwritten).
        #[arg(short, long)]
        output: PathBuf,
        /// File whose first line is the passphrase (`-`: standard input; at a terminal it
        /// is asked for, with echo off, twice).
        #[arg(long)]
        passphrase_file: PathBuf,
        /// Print {"public_key", "key_id"} as JSON on standard output.
        #[arg(long)]
        json: bool,
    },
    /// Print the public key of a key file (or of a secret key file on stdin).
    #[command(after_help = "Example:\n  vbzkey pubkey -k key.txt > store-public-key.txt\n\
                            Any key file works: a secret key file, an encrypted key file, a \
                            passphrase-key descriptor (no passphrase needed) or a public key file.")]
    Pubkey {
        /// Key file; a secret key file on stdin if omitted.
        #[arg(short, long)]
        key: Option<PathBuf>,
        /// Print {"public_key", "key_id"} as JSON.
        #[arg(long)]
        json: bool,
        /// Write it to this file (`-`: standard output).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Seal a value (a file, or standard input) to a public key, under a context.
    #[command(after_help = "Example:\n  printf %s 4111111111111111 | vbzkey seal --to vkpub1.… \
                            --context cust_cards/1001/card_number\n\
                            One trailing newline on stdin is dropped (use --keep-newline to seal it). \
                            An empty value is refused (exit 3): store an empty field as empty, not sealed.")]
    Seal {
        /// Recipient: a `vkpub1.` key, or a file holding a public or secret key.
        #[arg(long)]
        to: String,
        /// Where the value will be stored, e.g. `cust_cards/1001/card_number` (not empty).
        #[arg(long, value_parser = clap::builder::NonEmptyStringValueParser::new())]
        context: String,
        /// Write the binary record instead of the `vk1.` text form.
        #[arg(long)]
        binary: bool,
        /// Seal stdin exactly, including a trailing newline.
        #[arg(long)]
        keep_newline: bool,
        /// Write the record to this file (`-`: standard output).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// The value's file (`-` or none: standard input).
        input: Option<PathBuf>,
    },
    /// Open a record from stdin (text or binary) with a secret key file.
    #[command(
        after_help = "Example:\n  vbzkey open -k key.txt --context cust_cards/1001/card_number rec.txt\n  \
                      vbzkey open -k key.txt --context cust_cards/1001/card_number < rec.txt"
    )]
    Open {
        /// Secret key file, encrypted key file or passphrase-key descriptor.
        #[arg(short, long)]
        key: PathBuf,
        /// With an encrypted key file or a passphrase descriptor: a file whose first line is
        /// the passphrase (not `-` when the record comes from standard input).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
        /// The record's file (`-` or none: standard input).
        input: Option<PathBuf>,
        /// The context the record was sealed under.
        #[arg(long)]
        context: String,
        /// Write the value to this file, created 0600 (`-`: standard output).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Split a customer JSON record into clear fields and sealed fields.
    #[command(
        after_help = "Example:\n  echo '{\"id\":\"1001\",\"card\":{\"number\":\"4111 1111 1111 1111\",\
                            \"expiry\":\"12/27\"}}' | vbzkey seal-customer --to vkpub1.…\n\
                            Input fields: id, card{number,expiry}, bank{account,routing}, \
                            address{lines,city,region,postal_code,country}, phone, email. \
                            A CVV/CVC is refused (PCI DSS)."
    )]
    SealCustomer {
        /// Recipient: a `vkpub1.` key, or a file holding one.
        #[arg(long)]
        to: String,
        /// Write the JSON to this file (`-`: standard output).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// The customer JSON's file (`-` or none: standard input).
        input: Option<PathBuf>,
    },
    /// Show what a record's header says, without any key.
    #[command(after_help = "Example:\n  vbzkey inspect --json rec.txt")]
    Inspect {
        /// Print the facts as JSON.
        #[arg(long)]
        json: bool,
        /// The record's file (`-` or none: standard input).
        input: Option<PathBuf>,
    },
    /// Print a completion script for a shell.
    #[command(after_help = "Example:\n  vbzkey completions bash > /etc/bash_completion.d/vbzkey")]
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page, in roff.
    #[command(after_help = "Example:\n  vbzkey man > vbzkey.1 && man ./vbzkey.1")]
    Man,
}

/// This tool's name in its error lines.
const TOOL: &str = "vbzkey";

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            return exit::command_line(TOOL, &e.render().to_string(), e.use_stderr());
        }
    };
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            exit::error(TOOL, &e);
            if let Some(hint) = e.hint() {
                eprintln!("{TOOL}: hint: {hint}");
            }
            e.exit().into()
        }
    }
}

fn run(command: Command) -> Result<(), CliError> {
    match command {
        Command::Keygen { output, encrypt: false, json, .. } => keygen(output, json),
        Command::Keygen { output, encrypt: true, passphrase_file, json } => {
            keygen_encrypted(output, &passphrase_file.expect("required by clap"), json)
        }
        Command::PassphraseKey { output, passphrase_file, json } => {
            passphrase_key(&output, &passphrase_file, json)
        }
        Command::Pubkey { key, json, output } => pubkey(key, json, output.as_deref()),
        Command::Seal { to, context, binary, keep_newline, output, input } => {
            let out = Output { binary, keep_newline, path: output.as_deref() };
            seal(&to, &context, out, input.as_deref())
        }
        Command::Open { key, context, passphrase_file, input, output } => {
            open(key, &context, passphrase_file.as_deref(), input.as_deref(), output.as_deref())
        }
        Command::SealCustomer { to, output, input } => {
            seal_customer(&to, output.as_deref(), input.as_deref())
        }
        Command::Inspect { json, input } => inspect(json, input.as_deref()),
        Command::Completions { shell } => self_description(|out| {
            clap_complete::generate(shell, &mut Cli::command(), "vbzkey", out);
            Ok(())
        }),
        Command::Man => self_description(|out| clap_mangen::Man::new(Cli::command()).render(out)),
    }
}

/// `completions` and `man`: generated from the definitions above, so they list exactly the
/// commands and options this build has.
fn self_description(
    write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    write(&mut stdout).map_err(|e| CliError::io("write to stdout", e))
}

/// Processes that hold a secret key keep it out of core dumps; failure is only a warning.
fn harden() {
    if let Err(e) = vbzkey_os::harden::no_core_dumps() {
        eprintln!("vbzkey: warning: could not disable core dumps: {e}");
    }
}

fn keygen(output: Option<PathBuf>, json: bool) -> Result<(), CliError> {
    harden();
    if output.is_none() {
        io::refuse_terminal("a secret key", "redirect standard output or use -o FILE")?;
    }
    let key = SecretKey::generate().map_err(|_| CliError::Record(record::RecordError::Rng))?;
    match output {
        Some(path) => {
            keyfile::write_new(&path, &key)?;
            made(key.public_key(), json)?;
        }
        None => io::write_stdout(vbzkey_protocol::keyfile::render(&key).as_bytes())?,
    }
    Ok(())
}

/// After a key file is written: its public key for people on stderr, or as JSON on stdout.
fn made(pk: &vbzkey_protocol::PublicKey, json: bool) -> Result<(), CliError> {
    if json {
        let v = json!({ "public_key": pk.to_text(), "key_id": pk.key_id().to_string() });
        io::write_stdout(format!("{v}\n").as_bytes())
    } else {
        eprintln!("Public key: {pk}");
        Ok(())
    }
}

/// Whether a passphrase read is for a new key (typed twice at a terminal) or an existing one.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Passphrase {
    /// Setting one: a typo would make the key unopenable, so a terminal asks twice.
    New,
    /// Opening a key with one.
    Existing,
}

/// The first line of a passphrase file (or of stdin for `-`), without its line ending. With
/// `-` on a terminal it is asked for with echo off (twice for a new one); pipes and files are
/// read as they are.
fn read_passphrase(
    path: &std::path::Path,
    kind: Passphrase,
) -> Result<zeroize::Zeroizing<Vec<u8>>, CliError> {
    let limit = vbzkey_softkey::MAX_PASSPHRASE_LEN + 2;
    if path == std::path::Path::new("-") && io::stdin_is_terminal() {
        let first = io::typed_secret("passphrase")?;
        if kind == Passphrase::New {
            let again = io::typed_secret("passphrase, again")?;
            if first != again {
                return Err(CliError::Usage(
                    "the two passphrases typed differ; nothing was written".into(),
                ));
            }
        }
        return Ok(first);
    }
    let raw = if path == std::path::Path::new("-") {
        io::read_stdin(limit, "the passphrase")?
    } else {
        io::read_file(path, limit)?
    };
    let line = raw.split(|b| *b == b'\n').next().unwrap_or_default();
    Ok(zeroize::Zeroizing::new(io::strip_one_newline(line).to_vec()))
}

fn soft_err(e: vbzkey_softkey::SoftKeyError) -> CliError {
    CliError::BadInput(e.to_string())
}

fn keygen_encrypted(
    output: Option<PathBuf>,
    passphrase_file: &std::path::Path,
    json: bool,
) -> Result<(), CliError> {
    harden();
    let output = output.ok_or_else(|| CliError::Usage("--encrypt needs -o FILE".into()))?;
    let passphrase = read_passphrase(passphrase_file, Passphrase::New)?;
    let key = SecretKey::generate().map_err(|_| CliError::Record(record::RecordError::Rng))?;
    let file = vbzkey_softkey::KeyFile::seal(&key, &passphrase, vbzkey_softkey::Kdf::WORKSTATION)
        .map_err(soft_err)?;
    keyfile::write_new_file(&output, file.to_json().as_bytes())?;
    made(key.public_key(), json)
}

fn passphrase_key(
    output: &std::path::Path,
    passphrase_file: &std::path::Path,
    json: bool,
) -> Result<(), CliError> {
    harden();
    let passphrase = read_passphrase(passphrase_file, Passphrase::New)?;
    let (descriptor, key) =
        vbzkey_softkey::PassphraseKey::create(&passphrase, vbzkey_softkey::Kdf::WORKSTATION)
            .map_err(soft_err)?;
    keyfile::write_new_file(output, descriptor.to_json().as_bytes())?;
    made(key.public_key(), json)
}

fn pubkey(
    key: Option<PathBuf>,
    json: bool,
    output: Option<&std::path::Path>,
) -> Result<(), CliError> {
    harden();
    let pk = match key {
        Some(path) => keyfile::load(&path)?.public_key(&path)?,
        None => keyfile::parse(&io::read_stdin(
            vbzkey_protocol::keyfile::MAX_KEY_FILE_LEN,
            "the key file",
        )?)?
        .public_key()
        .clone(),
    };
    let out = if json {
        json!({ "public_key": pk.to_text(), "key_id": pk.key_id().to_string() }).to_string()
    } else {
        pk.to_text()
    };
    io::write_output(output, format!("{out}\n").as_bytes(), false)
}

/// How `seal` writes its record.
struct Output<'a> {
    binary: bool,
    keep_newline: bool,
    path: Option<&'a std::path::Path>,
}

fn seal(
    to: &str,
    context: &str,
    Output { binary, keep_newline, path: output }: Output<'_>,
    input: Option<&std::path::Path>,
) -> Result<(), CliError> {
    let pk = keyfile::recipient(to)?;
    if binary && output.is_none_or(|p| p == std::path::Path::new("-")) {
        io::refuse_terminal("a binary record", "redirect standard output or use -o FILE")?;
    }
    // One byte of slack per allowed line ending, so a maximal value plus "\r\n" still fits.
    let input = io::read_input(input, MAX_PLAINTEXT_LEN + 2, "the value")?;
    let value = if keep_newline { &input[..] } else { io::strip_one_newline(&input) };
    // An empty record is almost always a mistake (a Ctrl-D on a terminal, an empty variable in
    // a script), and it would read back as a "value" that was never there.
    if value.is_empty() {
        return Err(CliError::BadInput(
            "the value is empty; nothing was sealed (store an empty field \
             as empty, without a record)"
                .into(),
        ));
    }
    let rec = record::seal(&pk, context.as_bytes(), value)?;
    if binary {
        io::write_output(output, &rec, false)
    } else {
        io::write_output(output, format!("{}\n", record::to_text(&rec)).as_bytes(), false)
    }
}

/// Read a record from `input` (a file, or stdin for `-` or none): the `vk1.` text form
/// (surrounding whitespace ignored) or binary.
fn read_record(input: Option<&std::path::Path>) -> Result<Vec<u8>, CliError> {
    let input = io::read_input(input, MAX_TEXT_LEN + 2, "the record")?;
    if input.starts_with(&record::MAGIC) {
        return Ok(input.to_vec());
    }
    let text = std::str::from_utf8(&input)
        .map_err(|_| CliError::Record(record::RecordError::BadMagic))?
        .trim();
    Ok(record::from_text(text)?)
}

fn open(
    key: PathBuf,
    context: &str,
    passphrase_file: Option<&std::path::Path>,
    input: Option<&std::path::Path>,
    output: Option<&std::path::Path>,
) -> Result<(), CliError> {
    harden();
    let stdin = |p: Option<&std::path::Path>| p.is_none_or(|p| p == std::path::Path::new("-"));
    if passphrase_file == Some(std::path::Path::new("-")) && stdin(input) {
        return Err(CliError::Usage(
            "--passphrase-file - would read the passphrase from standard input, which carries \
             the record; give the passphrase in a file, or the record as a file argument"
                .into(),
        ));
    }
    let passphrase =
        passphrase_file.map(|p| read_passphrase(p, Passphrase::Existing)).transpose()?;
    let key = keyfile::secret(&key, passphrase.as_deref().map(|p| &p[..]))?;
    let rec = read_record(input)?;
    let mut plaintext = record::open(&key, context.as_bytes(), &rec)?;
    let to_stdout = output.is_none_or(|p| p == std::path::Path::new("-"));
    if to_stdout && io::stdout_is_terminal() {
        plaintext.push(b'\n');
    }
    io::write_output(output, &plaintext, true)
}

fn seal_customer(
    to: &str,
    output: Option<&std::path::Path>,
    input: Option<&std::path::Path>,
) -> Result<(), CliError> {
    let pk = keyfile::recipient(to)?;
    let input = io::read_input(input, MAX_CUSTOMER_JSON, "the customer JSON")?;
    // CustomerInput zeroizes itself on drop.
    let customer: CustomerInput = customer_json::parse(&input)?;
    let split = split::split(&customer)?;
    let mut sealed = serde_json::Map::new();
    for field in &split.sealed {
        let rec = record::seal(&pk, field.context.as_bytes(), field.value.as_bytes())?;
        sealed.insert(
            field.field.to_string(),
            json!({ "table": field.table, "context": field.context, "record": record::to_text(&rec) }),
        );
    }
    let out = json!({
        "id": customer.id,
        "key_id": pk.key_id().to_string(),
        "clear": split.clear,
        "sealed": sealed,
    });
    let text = format!("{}\n", serde_json::to_string_pretty(&out).expect("JSON values"));
    io::write_output(output, text.as_bytes(), false)
}

fn inspect(json: bool, input: Option<&std::path::Path>) -> Result<(), CliError> {
    let bytes = read_record(input)?;
    let rec = Record::parse(&bytes)?;
    let enc: String = rec.enc().iter().map(|b| format!("{b:02x}")).collect();
    let out = if json {
        json!({
            "format_version": record::VERSION,
            "suite": record::SUITE,
            "key_id": rec.key_id().to_string(),
            "enc": enc,
            "record_len": bytes.len(),
            "plaintext_len": rec.plaintext_len(),
        })
        .to_string()
    } else {
        format!(
            "vbzkey record, format v{}, suite {} (HPKE X25519/HKDF-SHA256/ChaCha20Poly1305)\n\
             key id:        {}\nenc:           {enc}\nrecord bytes:  {}\nvalue bytes:   {}",
            record::VERSION,
            record::SUITE,
            rec.key_id(),
            bytes.len(),
            rec.plaintext_len()
        )
    };
    io::write_stdout(format!("{out}\n").as_bytes())
}
