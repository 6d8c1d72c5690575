//! `rewrap`: re-seal records to the dongle's active key through the dongle's `Rewrap`
//! request (plaintext never leaves it), from a file of records or a table of the store's
//! database, resumably.
//!
//! Files are JSON Lines: one object per line with at least `record` (`vk1.…`) and
//! `context`; every other field is kept, and a `key_id` field is updated. Output line *i* is
//! input line *i* (blank input lines are skipped). Each batch is appended and fsynced before
//! the next is sent, so after a crash or Ctrl-C the output holds whole batches, plus perhaps
//! a torn last line, which the next run cuts off before resuming where it stopped. A record
//! that does not open stops the run (nothing is dropped or written half), naming its line.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{Map, Value};
use vbzkey_client::Client;
use vbzkey_protocol::record::{self, Record, RecordError};
use vbzkey_protocol::wire::{ItemError, KeyInfo, MAX_BATCH, SealedItem};
use vbzkey_protocol::{KeyId, PublicKey};

use crate::dongle::{Dongle, NoStaffPin};
use crate::error::{AdminError, exit};
use crate::output::Output;
use crate::progress::Progress;
use crate::rewrap_db;

/// `rewrap`'s options.
#[derive(clap::Args)]
pub(crate) struct RewrapArgs {
    #[command(flatten)]
    staff: NoStaffPin,
    /// Input JSON lines.
    #[arg(long = "in", requires = "output", conflicts_with = "db")]
    input: Option<PathBuf>,
    /// Output JSON lines (appended to when resuming). (`--out`, its old spelling, still
    /// works.)
    #[arg(short = 'o', long = "output", alias = "out", requires = "input")]
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
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u16).range(1..=MAX_BATCH as i64))]
    batch: u16,
}

/// Why a re-wrap stopped (besides the dongle and files that cannot be read or written).
#[derive(Debug, thiserror::Error)]
pub(crate) enum RewrapError {
    /// A line of a records file is not usable.
    #[error("{} line {line}: {problem}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        problem: LineProblem,
    },
    /// The output file holds lines of another input.
    #[error("{} does not continue {}: line {line} is for another record; use a new output file", output.display(), input.display())]
    NotAContinuation {
        /// The output file.
        output: PathBuf,
        /// The input file.
        input: PathBuf,
        /// The first line that differs.
        line: usize,
    },
    /// The output file is longer than the input.
    #[error("{} has more lines than {}: use a new output file", output.display(), input.display())]
    OutputLonger {
        /// The output file.
        output: PathBuf,
        /// The input file.
        input: PathBuf,
    },
    /// The dongle answered fewer records than it was sent.
    #[error("the dongle answered {got} records for {sent}")]
    ShortAnswer {
        /// Records sent.
        sent: usize,
        /// Results received.
        got: usize,
    },
}

/// What is wrong with one line of records.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LineProblem {
    /// Not a JSON object.
    #[error("not a JSON object")]
    NotJson,
    /// No `record` string.
    #[error("no \"record\" string")]
    NoRecord,
    /// No `context` string.
    #[error("no \"context\" string")]
    NoContext,
    /// The record is malformed.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The record is well-formed but does not open (tampered, or the wrong context).
    #[error("the record does not open ({}); fix or remove it, then run again to resume", .0.code())]
    DoesNotOpen(ItemError),
}

impl RewrapError {
    /// The exit code of this failure's class.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            RewrapError::Line { problem: LineProblem::DoesNotOpen(e), .. } => {
                crate::error::item_class(e)
            }
            RewrapError::Line { .. } => exit::BAD_INPUT,
            RewrapError::NotAContinuation { .. } | RewrapError::OutputLonger { .. } => exit::USAGE,
            RewrapError::ShortAnswer { .. } => exit::DONGLE_FAILED,
        }
    }
}

fn bad_line(path: &Path, line: usize, problem: impl Into<LineProblem>) -> AdminError {
    RewrapError::Line { path: path.to_path_buf(), line, problem: problem.into() }.into()
}

/// Re-wrap a file or a table to the active key.
pub(crate) fn command(d: &Dongle, args: &RewrapArgs) -> Result<Output, AdminError> {
    args.staff.check("rewrap")?;
    d.admin()?;
    let target = d.client().active_key()?;
    let batch = usize::from(args.batch);
    let mut out = Output::default();
    match (&args.db, &args.input, &args.output) {
        (Some(db), _, _) => {
            let table = args.table.as_deref().unwrap_or_default();
            let column = args.column.as_deref().unwrap_or_default();
            let s = rewrap_db::run(d.client(), &target, db, table, column, &args.id_column, batch)?;
            out.note(db_summary(table, column, target.key_id, &s));
        }
        (None, Some(input), Some(output)) => {
            let s = run(d.client(), &target, input, output, batch)?;
            out.note(file_summary(target.key_id, &s));
        }
        _ => unreachable!("clap requires --db, or --in with -o"),
    }
    Ok(out)
}

fn db_summary(table: &str, column: &str, key: KeyId, s: &rewrap_db::DbSummary) -> String {
    format!(
        "{table}.{column}: {} rows, {} re-wrapped to key {key}{}",
        s.rows,
        s.rewrapped,
        if s.changed_meanwhile > 0 {
            format!(
                ", {} changed by the store meanwhile (run again to re-wrap them)",
                s.changed_meanwhile
            )
        } else {
            String::new()
        }
    )
}

fn file_summary(key: KeyId, s: &Summary) -> String {
    format!(
        "{} records: {} re-wrapped to key {key} and {} already on it{}, in {:.1} s ({:.0} records/s)",
        s.total,
        s.rewrapped,
        s.already,
        if s.resumed_at > 0 { format!(", resumed after {}", s.resumed_at) } else { String::new() },
        s.seconds,
        (s.rewrapped + s.already) as f64 / s.seconds.max(1e-3)
    )
}

/// What a run did.
pub(crate) struct Summary {
    pub(crate) total: usize,
    pub(crate) resumed_at: usize,
    pub(crate) rewrapped: usize,
    pub(crate) already: usize,
    pub(crate) seconds: f64,
}

fn lines(
    path: &Path,
) -> Result<impl Iterator<Item = Result<(usize, String), AdminError>>, AdminError> {
    let f = File::open(path).map_err(|e| AdminError::io("read", path, e))?;
    let path = path.to_path_buf();
    Ok(BufReader::new(f)
        .lines()
        .enumerate()
        .map(move |(i, l)| l.map(|l| (i + 1, l)).map_err(|e| AdminError::io("read", &path, e)))
        .filter(|r| !matches!(r, Ok((_, l)) if l.trim().is_empty())))
}

fn parse(
    path: &Path,
    n: usize,
    line: &str,
) -> Result<(Map<String, Value>, String, String), AdminError> {
    let obj: Map<String, Value> =
        serde_json::from_str(line).map_err(|_| bad_line(path, n, LineProblem::NotJson))?;
    let field = |name, problem| {
        obj.get(name)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| bad_line(path, n, problem))
    };
    let rec = field("record", LineProblem::NoRecord)?;
    let ctx = field("context", LineProblem::NoContext)?;
    Ok((obj, rec, ctx))
}

/// The record of a line, and the key it is sealed to.
fn sealed(path: &Path, n: usize, text: &str) -> Result<(Vec<u8>, KeyId), AdminError> {
    let bytes = record::from_text(text.trim()).map_err(|e| bad_line(path, n, e))?;
    let key_id = Record::parse(&bytes).map_err(|e| bad_line(path, n, e))?.key_id();
    Ok((bytes, key_id))
}

/// Complete lines already in `output`; a torn last line (no newline) is cut off.
fn done_lines(output: &Path) -> Result<Vec<String>, AdminError> {
    let Ok(bytes) = std::fs::read(output) else { return Ok(Vec::new()) };
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    if complete < bytes.len() {
        OpenOptions::new()
            .write(true)
            .open(output)
            .and_then(|f| f.set_len(complete as u64).and_then(|()| f.sync_all()))
            .map_err(|e| AdminError::io("write", output, e))?;
        eprintln!(
            "vbzkey-admin: cut a torn last line from {} (an interrupted write)",
            output.display()
        );
    }
    Ok(String::from_utf8_lossy(&bytes[..complete])
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect())
}

/// Re-wrap `input` into `output` to `target`, `batch` records per request.
pub(crate) fn run(
    client: &Client,
    target: &KeyInfo,
    input: &Path,
    output: &Path,
    batch: usize,
) -> Result<Summary, AdminError> {
    let batch = batch.clamp(1, MAX_BATCH);
    let total = lines(input)?.count();
    let done = done_lines(output)?;
    let resumed_at = done.len();
    let mut src = lines(input)?;
    // The output must be a prefix of this input's re-wrap: same contexts, same order.
    for (k, out_line) in done.iter().enumerate() {
        let (n, line) = src.next().ok_or_else(|| RewrapError::OutputLonger {
            output: output.to_path_buf(),
            input: input.to_path_buf(),
        })??;
        let (_, _, ctx) = parse(input, n, &line)?;
        let (_, _, out_ctx) = parse(output, k + 1, out_line)?;
        if ctx != out_ctx {
            return Err(RewrapError::NotAContinuation {
                output: output.to_path_buf(),
                input: input.to_path_buf(),
                line: k + 1,
            }
            .into());
        }
    }
    let new_key = PublicKey::from_bytes(target.public_key);
    let mut out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(output)
        .map_err(|e| AdminError::io("write", output, e))?;
    let target_id = target.key_id;
    let start = Instant::now();
    let (mut rewrapped, mut already, mut processed) = (0, 0, resumed_at);
    let mut progress = Progress::start("rewrap", "records", total as u64, resumed_at as u64);
    let result = (|| loop {
        let chunk: Vec<(usize, String)> = src.by_ref().take(batch).collect::<Result<_, _>>()?;
        if chunk.is_empty() {
            return Ok::<(), AdminError>(());
        }
        let mut parsed = Vec::with_capacity(chunk.len());
        let mut items = Vec::new();
        for (n, line) in &chunk {
            let (obj, rec, ctx) = parse(input, *n, line)?;
            let (bytes, key_id) = sealed(input, *n, &rec)?;
            let needs = key_id != target_id;
            if needs {
                items.push(SealedItem { record: bytes, context: ctx.into_bytes() });
            }
            parsed.push((*n, obj, needs));
        }
        let sent = items.len();
        let results = if items.is_empty() { Vec::new() } else { client.rewrap(items, &new_key)? };
        if results.len() != sent {
            return Err(RewrapError::ShortAnswer { sent, got: results.len() }.into());
        }
        let mut results = results.into_iter();
        let mut text = String::new();
        for (n, mut obj, needs) in parsed {
            if needs {
                let new = results
                    .next()
                    .expect("as many results as records sent")
                    .map_err(|e| bad_line(input, n, LineProblem::DoesNotOpen(e)))?;
                obj.insert("record".into(), Value::from(record::to_text(&new)));
                rewrapped += 1;
            } else {
                already += 1;
            }
            if obj.contains_key("key_id") {
                obj.insert("key_id".into(), Value::from(target_id.to_string()));
            }
            text.push_str(&Value::Object(obj).to_string());
            text.push('\n');
        }
        out.write_all(text.as_bytes())
            .and_then(|()| out.sync_data())
            .map_err(|e| AdminError::io("write", output, e))?;
        processed += chunk.len();
        progress.set(processed as u64);
    })();
    progress.finish();
    result?;
    Ok(Summary { total, resumed_at, rewrapped, already, seconds: start.elapsed().as_secs_f64() })
}

/// How many records in `files` are sealed to `key_id` (checked, not assumed, before a retire).
pub(crate) fn count_using(files: &[PathBuf], key_id: KeyId) -> Result<usize, AdminError> {
    let mut n = 0;
    for f in files {
        for l in lines(f)? {
            let (i, line) = l?;
            let (_, rec, _) = parse(f, i, &line)?;
            if sealed(f, i, &rec)?.1 == key_id {
                n += 1;
            }
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_id() -> KeyId {
        KeyId([0x5b, 0x97, 0x72, 0x4a, 0x44, 0x96, 0x1f, 0xf0])
    }

    #[test]
    fn summaries_say_what_was_done_and_what_to_do() {
        let s = Summary { total: 10, resumed_at: 4, rewrapped: 5, already: 1, seconds: 2.0 };
        let line = file_summary(key_id(), &s);
        assert!(
            line.starts_with("10 records: 5 re-wrapped to key 5b97724a44961ff0 and 1 already on it, resumed after 4"),
            "{line}"
        );
        let db = rewrap_db::DbSummary { rows: 500, rewrapped: 498, changed_meanwhile: 2 };
        let line = db_summary("cust_cards", "card_number", key_id(), &db);
        assert!(line.starts_with("cust_cards.card_number: 500 rows, 498 re-wrapped"), "{line}");
        assert!(line.contains("2 changed by the store meanwhile (run again"), "{line}");
    }

    #[test]
    fn a_bad_line_is_named_by_file_and_number() {
        let p = Path::new("cards.jsonl");
        let err = |line: &str| parse(p, 7, line).err().unwrap().to_string();
        assert_eq!(err("not json"), "cards.jsonl line 7: not a JSON object");
        assert_eq!(err("{\"context\": \"c\"}"), "cards.jsonl line 7: no \"record\" string");
        assert_eq!(err("{\"record\": \"vk1.x\"}"), "cards.jsonl line 7: no \"context\" string");
        let e = sealed(p, 3, "vk1.\u{e9}").err().unwrap();
        assert!(e.to_string().starts_with("cards.jsonl line 3: "), "{e}");
        assert_eq!(e.exit_code(), exit::BAD_INPUT);
    }
}
