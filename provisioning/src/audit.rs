//! The dongle's audit log: `audit export` (the whole log, or from an entry on, fetched page by
//! page) and `audit verify` (the chain of an exported file or of the dongle's log, from its
//! start, from a segment's header, or from a head remembered earlier; and its head against
//! the dongle's or a remembered one). The format is `vbzkey_protocol::audit`, specified in
//! docs/AUDIT-LOG.md.

use std::io::BufRead;
use std::path::PathBuf;

use clap::Subcommand;
use vbzkey_protocol::audit::{self, Hash, Verifier};

use crate::dongle::Dongle;
use crate::error::{AdminError, AuditProblem};
use crate::output::Output;

/// Entries asked for per request (the dongle may give fewer, to fit one answer).
const PAGE: u16 = 1000;

/// The audit subcommands.
#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Print the log (every entry, oldest first; or from entry --from on, after a header that
    /// names the head before it), checking it as it comes.
    #[command(after_help = "Examples:\n  vbzkey-admin audit export -o audit-2026-11.log\n  \
                      vbzkey-admin audit export --from 120000 -o audit-december.log\n  \
                      vbzkey-admin audit export --json | jq 'select(.event == \"unseal\")'\n\
                      The last line on stderr names the head: keep it, to check later exports \
                      (`audit verify --head`) or the next segment (`audit verify --after`). To \
                      a terminal it prints a listing in local time; to a file or a pipe, the \
                      log's own lines (docs/AUDIT-LOG.md), which `audit verify` checks.")]
    Export {
        /// Write to this file.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// The first entry to export (its header carries the head it chains from).
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// One JSON object per entry and line (`seq`, `time` in RFC 3339, `event`, `keys`,
        /// `ok`, `failed`, `host`, `hash`), for reading; `audit verify` checks the plain log.
        #[arg(long)]
        json: bool,
    },
    /// Check the hash chain, of the dongle's log or of an exported file.
    #[command(
        after_help = "Examples:\n  vbzkey-admin audit verify\n  vbzkey-admin audit verify audit-2026-11.log\n  \
                      vbzkey-admin audit verify audit-december.log --after 3bf8…8469 --head 77a0…19c2"
    )]
    Verify {
        /// An exported log (or a segment copied from the dongle's card); without it the
        /// dongle's own log is fetched and checked against its head.
        file: Option<PathBuf>,
        /// The head remembered before the file's first entry: the file must chain from it.
        #[arg(long, value_parser = parse_head)]
        after: Option<Hash>,
        /// A head remembered earlier: the file must end there.
        #[arg(long, value_parser = parse_head)]
        head: Option<Hash>,
        /// Print `{"verified": true, "entries", "head"}` as JSON when it verifies.
        #[arg(long)]
        json: bool,
    },
}

fn parse_head(s: &str) -> Result<Hash, AuditProblem> {
    audit::parse_hash(s.trim()).ok_or_else(|| AuditProblem::BadHead(s.to_string()))
}

/// Run an audit subcommand.
pub(crate) fn run(d: &Dongle, cmd: &AuditCommand) -> Result<Output, AdminError> {
    match cmd {
        AuditCommand::Export { output, from, json } => {
            let (raw, summary) = fetch(d, *from)?;
            let text = if *json {
                as_json(&raw)
            } else if output.is_none() && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                listing(&raw, &crate::output::system_zone())
            } else {
                raw
            };
            let mut out = Output::default();
            match output {
                Some(path) => {
                    vbzkey_os::durable::write(
                        path,
                        text.as_bytes(),
                        0o600,
                        vbzkey_os::durable::Mode::Replace,
                    )
                    .map_err(|e| AdminError::io("write", path, e))?;
                    out.note(format!("{summary}; written to {}.", path.display()));
                }
                None => {
                    out.stdout.push_str(&text);
                    out.note(summary);
                }
            }
            Ok(out)
        }
        AuditCommand::Verify { file: Some(path), after, head, json } => {
            let file = std::fs::File::open(path).map_err(|e| AdminError::io("read", path, e))?;
            let mut v = after.map_or_else(Verifier::segment, Verifier::after);
            let mut first = None;
            for line in std::io::BufReader::new(file).lines() {
                let line = line.map_err(|e| AdminError::io("read", path, e))?;
                first.get_or_insert_with(|| line.split(' ').nth(1).unwrap_or("?").to_string());
                if let Err(e) = v.push(&line) {
                    // A file that starts mid-chain without a header, and no --after.
                    if after.is_none()
                        && v.entries() == 0
                        && !line.starts_with(audit::SEGMENT_HEADER)
                    {
                        return Err(
                            AuditProblem::Unanchored { first: first.unwrap_or_default() }.into()
                        );
                    }
                    return Err(AuditProblem::Broken(e).into());
                }
            }
            Ok(verified(&v, *head, after.is_some(), *json)?)
        }
        AuditCommand::Verify { file: None, json, .. } => {
            let (raw, summary) = fetch(d, 0)?;
            let mut out = Output::default();
            if *json {
                let (head, entries) = audit::verify(&raw).map_err(AuditProblem::Broken)?;
                out.line(verified_json(entries, &head));
            } else {
                out.line(format!("audit log verifies: {summary}, as the dongle says"));
            }
            Ok(out)
        }
    }
}

/// The log from entry `from` on (after a header when `from` > 0), checked page by page and
/// against the dongle's head, and a summary naming the head.
fn fetch(d: &Dongle, from: u64) -> Result<(String, String), AdminError> {
    let mut text = String::new();
    let mut next = from;
    let mut v = None;
    loop {
        let page = d.client().audit_read(next, PAGE)?;
        let v = v.get_or_insert_with(|| {
            if from > 0 {
                text.push_str(&audit::segment_header(from, &page.prev_head));
            }
            Verifier::after(page.prev_head)
        });
        for line in &page.lines {
            v.push(line).map_err(AuditProblem::Broken)?;
            text.push_str(line);
            text.push('\n');
        }
        next += page.lines.len() as u64;
        if next >= page.total || page.lines.is_empty() {
            if next < page.total {
                return Err(
                    AuditProblem::Incomplete { fetched: next - from, total: page.total }.into()
                );
            }
            // The log may have grown meanwhile; the chain must end at the dongle's head then.
            if page.total == next && v.head() != page.head && next > 0 {
                return Err(AuditProblem::HeadMismatch.into());
            }
            let summary = format!(
                "{} entries ({from} to {}), head {}",
                next - from,
                next.saturating_sub(1),
                audit::hex(&v.head())
            );
            return Ok((text, summary));
        }
    }
}

/// `audit verify --json` on success.
fn verified_json(entries: u64, head: &Hash) -> String {
    serde_json::json!({ "verified": true, "entries": entries, "head": audit::hex(head) })
        .to_string()
}

/// The summary of a verified file, or why it does not verify against `head`.
fn verified(
    v: &Verifier,
    head: Option<Hash>,
    anchored: bool,
    json: bool,
) -> Result<Output, AuditProblem> {
    if head.is_some_and(|h| v.entries() > 0 && h != v.head()) {
        return Err(AuditProblem::HeadMismatch);
    }
    let mut out = Output::default();
    out.line(if json {
        verified_json(v.entries(), &v.head())
    } else {
        format!("audit log verifies: {} entries, head {}", v.entries(), audit::hex(&v.head()))
    });
    if !anchored && v.next_seq().is_some_and(|n| n > v.entries()) {
        out.note(
            "It starts after entry 0: checked from its own header. Give --after with the head \
             you remembered before it to tie it to what you saw.",
        );
    }
    Ok(out)
}

/// The fields of an entry line of a log that verified (nine, space-separated:
/// docs/AUDIT-LOG.md); `None` for a segment header.
struct Fields<'a> {
    seq: &'a str,
    unix: u64,
    event: &'a str,
    keys: &'a str,
    ok: &'a str,
    failed: &'a str,
    host: &'a str,
    hash: &'a str,
}

fn fields(line: &str) -> Option<Fields<'_>> {
    let f: Vec<&str> = line.split(' ').collect();
    match f[..] {
        [_, seq, unix, event, keys, ok, failed, host, hash] => {
            Some(Fields { seq, unix: unix.parse().ok()?, event, keys, ok, failed, host, hash })
        }
        _ => None,
    }
}

/// `audit export --json`: one object per entry, its time in RFC 3339 (docs/CLI.md); segment
/// headers, which are not entries, are left out.
fn as_json(raw: &str) -> String {
    let mut text = String::new();
    for f in raw.lines().filter_map(fields) {
        let keys: Vec<&str> = f.keys.split(',').filter(|k| *k != "-").collect();
        let num = |s: &str| s.parse::<u64>().map_or(serde_json::Value::Null, Into::into);
        let v = serde_json::json!({
            "seq": num(f.seq),
            "time": crate::output::utc_time(f.unix),
            "event": f.event,
            "keys": keys,
            "ok": num(f.ok),
            "failed": num(f.failed),
            "host": f.host,
            "hash": f.hash,
        });
        text.push_str(&v.to_string());
        text.push('\n');
    }
    text
}

/// `audit export` to a terminal: one line per entry with the time in local time (`tz`), for a
/// person reading it; the header lines say where a segment starts.
fn listing(raw: &str, tz: &jiff::tz::TimeZone) -> String {
    let mut text = String::new();
    for line in raw.lines() {
        match fields(line) {
            Some(f) => text.push_str(&format!(
                "{:>7}  {}  {:<19} keys {}  ok {} failed {}  {}\n",
                f.seq,
                crate::output::time_in(f.unix, tz),
                f.event,
                f.keys,
                f.ok,
                f.failed,
                f.host
            )),
            None => text.push_str(&format!("(from {line})\n")),
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use vbzkey_protocol::audit::{AuditError, Entry};

    fn log(n: u64) -> (String, Hash) {
        let mut head = [0u8; 32];
        let mut text = String::new();
        for seq in 0..n {
            let e =
                Entry { seq, unix: 9, event: "unseal", keys: "", ok: 1, failed: 0, host: "usb" };
            let (line, h) = audit::line(&head, &e);
            text.push_str(&line);
            head = h;
        }
        (text, head)
    }

    fn check(text: &str, after: Option<Hash>) -> Result<Verifier, AuditError> {
        let mut v = after.map_or_else(Verifier::segment, Verifier::after);
        for l in text.lines() {
            v.push(l)?;
        }
        Ok(v)
    }

    #[test]
    fn a_chain_that_holds_and_matches_a_remembered_head_verifies() {
        let (text, head) = log(3);
        let v = check(&text, None).unwrap();
        let out = verified(&v, Some(head), false, false).unwrap();
        assert_eq!(
            out.stdout.as_str(),
            format!("audit log verifies: 3 entries, head {}\n", audit::hex(&head))
        );
        assert!(out.stderr.is_empty());
    }

    #[test]
    fn an_edited_log_or_another_head_does_not_verify() {
        let (text, _) = log(3);
        let edited = text.replacen(" 1 0 usb", " 0 0 usb", 1);
        assert_eq!(check(&edited, None).err(), Some(AuditError::Broken { line: 1 }));
        let v = check(&text, None).unwrap();
        assert!(matches!(
            verified(&v, Some([1; 32]), false, false),
            Err(AuditProblem::HeadMismatch)
        ));
        assert!(
            AuditProblem::HeadMismatch.to_string().contains("does NOT verify"),
            "scripts and people look for these words"
        );
    }

    #[test]
    fn a_later_part_verifies_from_its_header_or_a_remembered_head() {
        let (text, head) = log(5);
        let lines: Vec<&str> = text.lines().collect();
        let (_, head_2) = log(2);
        let rest = format!("{}\n{}\n{}\n", lines[2], lines[3], lines[4]);
        let with_header = format!("{}{rest}", audit::segment_header(2, &head_2));
        let v = check(&with_header, None).unwrap();
        let out = verified(&v, Some(head), false, false).unwrap();
        assert!(out.stderr.contains("--after"), "unanchored: {}", out.stderr);
        let v = check(&rest, Some(head_2)).unwrap();
        assert!(verified(&v, Some(head), true, false).unwrap().stderr.is_empty());
        assert!(check(&rest, Some(head)).is_err(), "not after that head");
        assert!(parse_head(&audit::hex(&head)).is_ok());
        assert!(matches!(parse_head("3bf8"), Err(AuditProblem::BadHead(_))));
    }

    /// `audit export` printed the raw Unix seconds of each line to a person; JSON gives RFC
    /// 3339, a terminal local time.
    #[test]
    fn an_exported_log_reads_in_rfc3339_as_json_and_in_local_time_at_a_terminal() {
        let (text, head) = log(2);
        let json = as_json(&text);
        let rows: Vec<serde_json::Value> =
            json.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1]["seq"], 1);
        assert_eq!(rows[1]["time"], "1970-01-01T00:00:09Z");
        assert_eq!(rows[1]["event"], "unseal");
        assert_eq!(rows[1]["keys"], serde_json::json!([]));
        assert_eq!((rows[1]["ok"].as_u64(), rows[1]["failed"].as_u64()), (Some(1), Some(0)));
        assert_eq!(rows[1]["hash"], audit::hex(&head));
        let header = format!("{}{}", audit::segment_header(2, &head), text);
        assert_eq!(as_json(&header), json, "a segment header is not an entry");

        let cet = jiff::tz::TimeZone::fixed(jiff::tz::offset(1));
        let people = listing(&header, &cet);
        assert!(people.contains("      1  1970-01-01 01:00:09 +01  unseal"), "{people}");
        assert!(people.starts_with("(from vbzkey-audit-segment"), "{people}");
        for l in text.lines() {
            let unix = l.split(' ').nth(2).unwrap();
            assert!(!people.contains(&format!(" {unix} ")), "raw Unix seconds in {people}");
        }
        let v = check(&text, None).unwrap();
        let out = verified(&v, Some(head), false, true).unwrap();
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!((v["verified"].as_bool(), v["entries"].as_u64()), (Some(true), Some(2)));
        assert_eq!(v["head"], audit::hex(&head));
    }
}
