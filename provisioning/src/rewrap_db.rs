//! Re-wrap straight from the store's database table, in place: SQLite (`sqlite:PATH`, here)
//! or MariaDB/MySQL (`mysql://USER@localhost/DB?socket=PATH`, in [`crate::rewrap_mysql`]).
//!
//! Rows are read in primary-key order, a batch at a time; those whose record is not yet on the
//! target key go through the dongle's `Rewrap`, and the batch is written back in **one
//! transaction**, each row with a compare-and-swap (`WHERE id = ? AND column = <old record>`),
//! so a row the store changed meanwhile (a checkout) is left alone and reported. A crash or
//! Ctrl-C loses at most the batch in flight; running the command again skips every row already
//! on the target key, so it resumes by itself and never re-wraps a row twice. The context of
//! each value is `<table>/<id>/<column>`, as `docs/SCHEMA.md` lays out.

use std::ffi::OsString;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, params};
use vbzkey_protocol::record::{self, Record};
use vbzkey_protocol::wire::{KeyInfo, MAX_BATCH, Request, Response, SealedItem};

use crate::device::{Dongle, unexpected};
use crate::progress::Progress;
use crate::rewrap_mysql;

/// What a run did.
pub(crate) struct DbSummary {
    pub(crate) rows: usize,
    pub(crate) rewrapped: usize,
    pub(crate) changed_meanwhile: usize,
}

/// One row as read: its key (to page on and to write back by), its id as text (the `<id>` of
/// the context) and the sealed text.
pub(crate) struct Row<K> {
    pub(crate) key: K,
    pub(crate) id: String,
    pub(crate) record: String,
}

/// A new record for a row, written only if the row still holds `old`.
pub(crate) struct Swap<'a, K> {
    pub(crate) key: &'a K,
    pub(crate) old: &'a str,
    pub(crate) new: String,
}

/// A sealed column of one table, as the re-wrap loop sees it.
pub(crate) trait SealedColumn {
    /// The primary key as the database compares it.
    type Key: Clone;
    /// Rows in the table (for the progress bar's total).
    fn count(&mut self) -> Result<u64, String>;
    /// Up to `limit` rows after `after`, in primary-key order.
    fn page(
        &mut self,
        after: Option<&Self::Key>,
        limit: usize,
    ) -> Result<Vec<Row<Self::Key>>, String>;
    /// Write `swaps` in one transaction, each only where the row still holds its old record,
    /// also setting `key_id` where the table has that column; `halfway` is called after half
    /// of them (a crash-test point). Returns how many rows were written.
    fn swap(
        &mut self,
        swaps: &[Swap<'_, Self::Key>],
        key_id: &str,
        halfway: &mut dyn FnMut(),
    ) -> Result<usize, String>;
    /// Call `f` with every record of the column.
    fn for_each_record(
        &mut self,
        f: &mut dyn FnMut(&str) -> Result<(), String>,
    ) -> Result<(), String>;
}

/// A table or column name: only plain identifiers reach the SQL text.
pub(crate) fn ident(name: &str) -> Result<&str, String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok { Ok(name) } else { Err(format!("{name:?} is not a plain table or column name")) }
}

/// The path of a `sqlite:PATH` connection string.
pub(crate) fn sqlite_path(db: &str) -> Result<&str, String> {
    db.strip_prefix("sqlite:").ok_or_else(|| {
        format!("{db:?}: a database is sqlite:PATH or mysql://USER@localhost/DB?socket=PATH")
    })
}

/// Re-wrap `table.column` in place to `target`.
pub(crate) fn run(
    dongle: &mut Dongle,
    target: &KeyInfo,
    db: &str,
    table: &str,
    column: &str,
    id_column: &str,
    batch: usize,
) -> Result<DbSummary, String> {
    let (table, column, id_column) = (ident(table)?, ident(column)?, ident(id_column)?);
    if rewrap_mysql::is_mysql(db) {
        let mut col = rewrap_mysql::MySqlColumn::open(db, table, column, id_column)?;
        return rewrap(dongle, target, &mut col, table, column, batch);
    }
    let mut col = SqliteColumn::open(sqlite_path(db)?, table, column, id_column, true)?;
    rewrap(dongle, target, &mut col, table, column, batch)
}

/// Rows of `table.column` sealed to `key_id` (for a checked retire).
pub(crate) fn count_using(
    db: &str,
    table: &str,
    column: &str,
    key_id: vbzkey_protocol::KeyId,
) -> Result<usize, String> {
    let (table, column) = (ident(table)?, ident(column)?);
    let mut n = 0;
    let mut count = |text: &str| {
        let bytes = record::from_text(text.trim()).map_err(|e| format!("{table}.{column}: {e}"))?;
        if Record::parse(&bytes).map_err(|e| format!("{table}.{column}: {e}"))?.key_id() == key_id {
            n += 1;
        }
        Ok(())
    };
    if rewrap_mysql::is_mysql(db) {
        rewrap_mysql::MySqlColumn::open(db, table, column, "id")?.for_each_record(&mut count)?;
    } else {
        SqliteColumn::open(sqlite_path(db)?, table, column, "id", false)?
            .for_each_record(&mut count)?;
    }
    Ok(n)
}

/// Test hook (`VBZKEY_DANGEROUS_CRASH_AT=rewrap-db:<step>:<batch>`): die at `step` of this
/// run's `batch`-th batch that has work, to prove a kill at any point loses nothing.
fn crash_point(step: &str, batch: usize) {
    if std::env::var_os(vbzkey_os::durable::CRASH_AT_ENV).is_some() {
        vbzkey_os::durable::crash_if_asked(&OsString::from(format!("rewrap-db:{step}:{batch}")));
    }
}

/// The loop shared by every database.
fn rewrap<T: SealedColumn>(
    dongle: &mut Dongle,
    target: &KeyInfo,
    col: &mut T,
    table: &str,
    column: &str,
    batch: usize,
) -> Result<DbSummary, String> {
    let batch = batch.clamp(1, MAX_BATCH);
    let target_id = target.key_id;
    let mut summary = DbSummary { rows: 0, rewrapped: 0, changed_meanwhile: 0 };
    let mut progress = Progress::start("rewrap", "rows", col.count()?, 0);
    let mut after: Option<T::Key> = None;
    let mut batches = 0;
    let result = (|| loop {
        let rows = col.page(after.as_ref(), batch)?;
        // Keyset pagination: the next page starts after the largest key of this one.
        let Some(next) = rows.last().map(|r| r.key.clone()) else { return Ok(()) };
        summary.rows += rows.len();
        let mut todo = Vec::new();
        for row in rows {
            let bytes = record::from_text(row.record.trim())
                .map_err(|e| format!("{table} row {}: {e}", row.id))?;
            let key_id =
                Record::parse(&bytes).map_err(|e| format!("{table} row {}: {e}", row.id))?.key_id();
            if key_id != target_id {
                let context = format!("{table}/{}/{column}", row.id).into_bytes();
                todo.push((SealedItem { record: bytes, context }, row));
            }
        }
        after = Some(next);
        if !todo.is_empty() {
            batches += 1;
            let (rewrapped, changed) = rewrap_batch(dongle, target, col, table, &todo, batches)?;
            summary.rewrapped += rewrapped;
            summary.changed_meanwhile += changed;
        }
        progress.set(summary.rows as u64);
    })();
    progress.finish();
    result.map(|()| summary)
}

/// One batch: re-wrapped by the dongle, then swapped in; returns (written, changed meanwhile).
fn rewrap_batch<T: SealedColumn>(
    dongle: &mut Dongle,
    target: &KeyInfo,
    col: &mut T,
    table: &str,
    todo: &[(SealedItem, Row<T::Key>)],
    n: usize,
) -> Result<(usize, usize), String> {
    crash_point("read", n);
    let items = todo.iter().map(|(item, _)| item.clone()).collect();
    let results = match dongle.ask(&Request::Rewrap { items, new_public_key: target.public_key })? {
        Response::Rewrapped(r) => r,
        other => return Err(unexpected(&other)),
    };
    crash_point("rewrapped", n);
    if results.len() != todo.len() {
        return Err("the dongle answered another number of records than it was sent".into());
    }
    let mut swaps = Vec::with_capacity(todo.len());
    for ((_, row), result) in todo.iter().zip(results) {
        let new = result.map_err(|e| {
            format!(
                "{table} row {}: the record does not open ({}); fix it, then run again to resume",
                row.id,
                e.code()
            )
        })?;
        swaps.push(Swap { key: &row.key, old: &row.record, new: record::to_text(&new) });
    }
    let written =
        col.swap(&swaps, &target.key_id.to_string(), &mut || crash_point("half-written", n))?;
    crash_point("committed", n);
    Ok((written, swaps.len() - written))
}

/// A sealed column in a SQLite database file.
struct SqliteColumn {
    conn: Connection,
    path: String,
    table: String,
    column: String,
    id_column: String,
    has_key_id: bool,
}

impl SqliteColumn {
    fn open(
        path: &str,
        table: &str,
        column: &str,
        id_column: &str,
        write: bool,
    ) -> Result<Self, String> {
        let flags = if write {
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
        } else {
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
        };
        let conn = Connection::open_with_flags(path, flags)
            .map_err(|e| format!("cannot open {path}: {e}"))?;
        let has_key_id = conn
            .prepare(&format!("SELECT * FROM {table} LIMIT 0"))
            .map_err(|e| format!("{path}: {e}"))?
            .column_names()
            .any(|c| c == "key_id");
        Ok(SqliteColumn {
            conn,
            path: path.into(),
            table: table.into(),
            column: column.into(),
            id_column: id_column.into(),
            has_key_id,
        })
    }

    fn err(&self, e: rusqlite::Error) -> String {
        format!("{}: {e}", self.path)
    }
}

impl SealedColumn for SqliteColumn {
    /// The primary key's value as stored: pages and writes compare it natively, so both use
    /// the primary key's index (a comparison on its text form would scan the table per row).
    type Key = SqlValue;

    fn count(&mut self) -> Result<u64, String> {
        self.conn
            .query_row(&format!("SELECT COUNT(*) FROM {}", self.table), [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }

    fn page(
        &mut self,
        after: Option<&SqlValue>,
        limit: usize,
    ) -> Result<Vec<Row<SqlValue>>, String> {
        let (table, column, id) = (&self.table, &self.column, &self.id_column);
        let select = format!("SELECT {id}, CAST({id} AS TEXT), {column} FROM {table}");
        let path = &self.path;
        let read = |r: &rusqlite::Row<'_>| -> rusqlite::Result<(SqlValue, Option<String>, Option<String>)> {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        };
        let rows: Vec<(SqlValue, Option<String>, Option<String>)> = match after {
            None => self
                .conn
                .prepare_cached(&format!("{select} ORDER BY {id} LIMIT ?1"))
                .and_then(|mut st| st.query_map(params![limit as i64], read)?.collect()),
            Some(k) => self
                .conn
                .prepare_cached(&format!("{select} WHERE {id} > ?1 ORDER BY {id} LIMIT ?2"))
                .and_then(|mut st| st.query_map(params![k, limit as i64], read)?.collect()),
        }
        .map_err(|e| format!("{path}: {e}"))?;
        rows.into_iter()
            .map(|(key, id_text, record)| {
                let id_text = id_text
                    .ok_or_else(|| format!("{path}: {table} has a row whose {id} is NULL"))?;
                let record = record.ok_or_else(|| {
                    format!("{path}: {table} row {id_text}: {column} is NULL, not a sealed record")
                })?;
                Ok(Row { key, id: id_text, record })
            })
            .collect()
    }

    fn swap(
        &mut self,
        swaps: &[Swap<'_, SqlValue>],
        key_id: &str,
        halfway: &mut dyn FnMut(),
    ) -> Result<usize, String> {
        let (table, column, id) = (&self.table, &self.column, &self.id_column);
        let sql = if self.has_key_id {
            format!(
                "UPDATE {table} SET {column} = ?1, key_id = ?4 WHERE {id} = ?2 AND {column} = ?3"
            )
        } else {
            format!(
                "UPDATE {table} SET {column} = ?1 WHERE {id} = ?2 AND {column} = ?3 AND ?4 IS NOT NULL"
            )
        };
        let path = self.path.clone();
        let err = |e: rusqlite::Error| format!("{path}: {e}");
        let tx = self.conn.transaction().map_err(err)?;
        let mut written = 0;
        {
            let mut stmt = tx.prepare(&sql).map_err(err)?;
            for (i, s) in swaps.iter().enumerate() {
                if i == swaps.len() / 2 {
                    halfway();
                }
                written += stmt.execute(params![s.new, s.key, s.old, key_id]).map_err(err)?;
            }
        }
        tx.commit().map_err(err)?;
        Ok(written)
    }

    fn for_each_record(
        &mut self,
        f: &mut dyn FnMut(&str) -> Result<(), String>,
    ) -> Result<(), String> {
        let path = self.path.clone();
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {} FROM {}", self.column, self.table))
            .map_err(|e| format!("{path}: {e}"))?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(|e| e.to_string())?;
        for text in rows {
            f(&text.map_err(|e| format!("{path}: {e}"))?)?;
        }
        Ok(())
    }
}
