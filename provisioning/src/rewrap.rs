//! Re-wrap a file of sealed records to the dongle's active key, through the dongle's
//! `Rewrap` request (plaintext never leaves it), resumably.
//!
//! Input and output are JSON Lines: one object per line with at least `record` (`vk1.…`) and
//! `context`; every other field is kept, and a `key_id` field is updated. Output line *i* is
//! input line *i* (blank input lines are skipped). Each batch is appended and fsynced before
//! the next is sent, so after a crash or Ctrl-C the output holds whole batches, plus perhaps
//! a torn last line, which the next run cuts off before resuming where it stopped. A record
//! that does not open stops the run (nothing is dropped or written half), naming its line.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::time::Instant;

use serde_json::{Map, Value};
use vbzkey_protocol::record::{self, Record};
use vbzkey_protocol::wire::{KeyInfo, MAX_BATCH, Request, Response, SealedItem};

use crate::device::{Dongle, unexpected};
use crate::progress::Progress;

/// What a run did.
pub(crate) struct Summary {
    pub(crate) total: usize,
    pub(crate) resumed_at: usize,
    pub(crate) rewrapped: usize,
    pub(crate) already: usize,
    pub(crate) seconds: f64,
}

fn lines(path: &Path) -> Result<impl Iterator<Item = Result<(usize, String), String>>, String> {
    let f = File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let name = path.display().to_string();
    Ok(BufReader::new(f)
        .lines()
        .enumerate()
        .map(move |(i, l)| l.map(|l| (i + 1, l)).map_err(|e| format!("{name}: {e}")))
        .filter(|r| !matches!(r, Ok((_, l)) if l.trim().is_empty())))
}

fn parse(
    path: &Path,
    n: usize,
    line: &str,
) -> Result<(Map<String, Value>, String, String), String> {
    let bad = |what: &str| format!("{} line {n}: {what}", path.display());
    let obj: Map<String, Value> =
        serde_json::from_str(line).map_err(|_| bad("not a JSON object"))?;
    let rec = obj
        .get("record")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no \"record\" string"))?
        .to_string();
    let ctx = obj
        .get("context")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no \"context\" string"))?
        .to_string();
    Ok((obj, rec, ctx))
}

/// Complete lines already in `output`; a torn last line (no newline) is cut off.
fn done_lines(output: &Path) -> Result<Vec<String>, String> {
    let Ok(bytes) = std::fs::read(output) else { return Ok(Vec::new()) };
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    if complete < bytes.len() {
        let f = OpenOptions::new()
            .write(true)
            .open(output)
            .map_err(|e| format!("{}: {e}", output.display()))?;
        f.set_len(complete as u64)
            .and_then(|()| f.sync_all())
            .map_err(|e| format!("{}: {e}", output.display()))?;
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
    dongle: &mut Dongle,
    target: &KeyInfo,
    input: &Path,
    output: &Path,
    batch: usize,
) -> Result<Summary, String> {
    let batch = batch.clamp(1, MAX_BATCH);
    let total = lines(input)?.count();
    let done = done_lines(output)?;
    let resumed_at = done.len();
    let mut src = lines(input)?;
    // The output must be a prefix of this input's re-wrap: same contexts, same order.
    for (k, out_line) in done.iter().enumerate() {
        let (n, line) = src.next().ok_or_else(|| {
            format!("{} has more lines than {}", output.display(), input.display())
        })??;
        let (_, _, ctx) = parse(input, n, &line)?;
        let (_, _, out_ctx) = parse(output, k + 1, out_line)?;
        if ctx != out_ctx {
            return Err(format!(
                "{} does not continue {}: line {} is for another record; use a new output file",
                output.display(),
                input.display(),
                k + 1
            ));
        }
    }
    let mut out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(output)
        .map_err(|e| format!("cannot write {}: {e}", output.display()))?;
    let target_id = target.key_id;
    let start = Instant::now();
    let (mut rewrapped, mut already, mut processed) = (0, 0, resumed_at);
    let mut progress = Progress::start("rewrap", "records", total as u64, resumed_at as u64);
    let result = (|| loop {
        let chunk: Vec<(usize, String)> = src.by_ref().take(batch).collect::<Result<_, _>>()?;
        if chunk.is_empty() {
            return Ok::<(), String>(());
        }
        let mut parsed = Vec::with_capacity(chunk.len());
        let mut items = Vec::new();
        for (n, line) in &chunk {
            let (obj, rec, ctx) = parse(input, *n, line)?;
            let bytes = record::from_text(rec.trim())
                .map_err(|e| format!("{} line {n}: {e}", input.display()))?;
            let key_id = Record::parse(&bytes)
                .map_err(|e| format!("{} line {n}: {e}", input.display()))?
                .key_id();
            let needs = key_id != target_id;
            if needs {
                items.push(SealedItem { record: bytes, context: ctx.into_bytes() });
            }
            parsed.push((*n, obj, needs));
        }
        let mut results = if items.is_empty() {
            Vec::new()
        } else {
            match dongle.ask(&Request::Rewrap { items, new_public_key: target.public_key })? {
                Response::Rewrapped(r) => r,
                other => return Err(unexpected(&other)),
            }
        }
        .into_iter();
        let mut text = String::new();
        for (n, mut obj, needs) in parsed {
            if needs {
                let new = results.next().ok_or("the dongle answered fewer records than sent")?.map_err(|e| {
                    format!(
                        "{} line {n}: the record does not open ({}); fix or remove it, then run again to resume",
                        input.display(),
                        e.code()
                    )
                })?;
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
            .map_err(|e| format!("cannot write {}: {e}", output.display()))?;
        processed += chunk.len();
        progress.set(processed as u64);
    })();
    progress.finish();
    result?;
    Ok(Summary { total, resumed_at, rewrapped, already, seconds: start.elapsed().as_secs_f64() })
}

/// How many records in `files` are sealed to `key_id` (checked, not assumed, before a retire).
pub(crate) fn count_using(
    files: &[std::path::PathBuf],
    key_id: vbzkey_protocol::KeyId,
) -> Result<usize, String> {
    let mut n = 0;
    for f in files {
        for l in lines(f)? {
            let (i, line) = l?;
            let (_, rec, _) = parse(f, i, &line)?;
            let bytes = record::from_text(rec.trim())
                .map_err(|e| format!("{} line {i}: {e}", f.display()))?;
            if Record::parse(&bytes).map_err(|e| format!("{} line {i}: {e}", f.display()))?.key_id()
                == key_id
            {
                n += 1;
            }
        }
    }
    Ok(n)
}
