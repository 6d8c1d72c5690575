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
use std::path::PathBuf;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, params};
use vbzkey_client::Client;
use vbzkey_protocol::record::{self, Record, RecordError};
use vbzkey_protocol::wire::{ItemError, KeyInfo, MAX_BATCH, SealedItem};
use vbzkey_protocol::{KeyId, PublicKey};

use crate::error::{AdminError, exit};
use crate::progress::Progress;
use crate::rewrap_mysql::{self, UrlProblem};

/// Why a database re-wrap or check stopped (besides the dongle).
#[derive(Debug, thiserror::Error)]
pub(crate) enum DbError {
    /// `--db` is not a database this tool reaches. Only its scheme is kept: the rest of a
    /// connection string of another kind (`postgres://user:password@…`) may hold a password.
    #[error(
        "--db {0}…: a database is sqlite:PATH or mysql://USER@localhost/DB?socket=PATH \
         (the rest of --db is not repeated here: it may hold a password)"
    )]
    BadUrl(String),
    /// A `mysql://` connection string this tool does not accept.
    #[error(transparent)]
    MySqlUrl(#[from] UrlProblem),
    /// A table or column name that is not a plain identifier (it would reach the SQL text).
    #[error("{0:?} is not a plain table or column name")]
    BadName(String),
    /// The SQLite database failed.
    #[error("{path}: {source}")]
    Sql {
        /// The database.
        path: String,
        /// Why.
        source: rusqlite::Error,
    },
    /// The file naming the MariaDB/MySQL password could not be read.
    #[error("cannot read the database password from {}: {source}", path.display())]
    PasswordFile {
        /// The `password-file` of the connection string.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The MariaDB/MySQL password file's first line is not UTF-8 text.
    #[error("{}: the database password (its first line) is not UTF-8 text", path.display())]
    PasswordNotText {
        /// The `password-file` of the connection string.
        path: PathBuf,
    },
    /// The MariaDB/MySQL server could not be reached, or refused the login.
    #[error("cannot connect to {name} on {socket}: {}", rewrap_mysql::describe(.source))]
    MySqlConnect {
        /// `user@database`.
        name: String,
        /// The Unix socket.
        socket: String,
        /// Why (the server's own message: it never holds the password).
        source: mysql::Error,
    },
    /// The MariaDB/MySQL server refused or failed a statement.
    #[error("{name}: {}", rewrap_mysql::describe(.source))]
    MySql {
        /// `user@database`.
        name: String,
        /// Why.
        source: mysql::Error,
    },
    /// A row whose primary key is NULL (or, on MariaDB, not text).
    #[error("{db}: {table} has a row whose {id_column} is NULL or not text")]
    NoId {
        /// The database (path, or `user@database`).
        db: String,
        /// The table.
        table: String,
        /// The primary key column.
        id_column: String,
    },
    /// A sealed column holding NULL or binary instead of a record's text.
    #[error("{db}: {at} is NULL or not text, not a sealed record")]
    NotARecord {
        /// The database (path, or `user@database`).
        db: String,
        /// Where: `TABLE row ID: COLUMN`, or `TABLE.COLUMN` when counting.
        at: String,
    },
    /// A stored record is malformed.
    #[error("{at}: {source}")]
    BadRecord {
        /// Where: `TABLE row ID`, or `TABLE.COLUMN` when counting.
        at: String,
        /// Why.
        source: RecordError,
    },
    /// A stored record does not open.
    #[error("{table} row {id}: the record does not open ({}); fix it, then run again to resume", .error.code())]
    DoesNotOpen {
        /// The table.
        table: String,
        /// The row's id.
        id: String,
        /// Why.
        error: ItemError,
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

impl DbError {
    /// The exit code of this failure's class.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            DbError::BadUrl(_) | DbError::MySqlUrl(_) | DbError::BadName(_) => exit::USAGE,
            DbError::Sql { .. }
            | DbError::PasswordFile { .. }
            | DbError::MySqlConnect { .. }
            | DbError::MySql { .. } => exit::IO,
            DbError::PasswordNotText { .. }
            | DbError::NoId { .. }
            | DbError::NotARecord { .. }
            | DbError::BadRecord { .. } => exit::BAD_INPUT,
            DbError::DoesNotOpen { error, .. } => crate::error::item_class(error),
            DbError::ShortAnswer { .. } => exit::DONGLE_FAILED,
        }
    }
}

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
    fn count(&mut self) -> Result<u64, DbError>;
    /// Up to `limit` rows after `after`, in primary-key order.
    fn page(
        &mut self,
        after: Option<&Self::Key>,
        limit: usize,
    ) -> Result<Vec<Row<Self::Key>>, DbError>;
    /// Write `swaps` in one transaction, each only where the row still holds its old record,
    /// also setting `key_id` where the table has that column; `halfway` is called after half
    /// of them (a crash-test point). Returns how many rows were written.
    fn swap(
        &mut self,
        swaps: &[Swap<'_, Self::Key>],
        key_id: &str,
        halfway: &mut dyn FnMut(),
    ) -> Result<usize, DbError>;
    /// Call `f` with every record of the column.
    fn for_each_record(
        &mut self,
        f: &mut dyn FnMut(&str) -> Result<(), DbError>,
    ) -> Result<(), DbError>;
}

/// A table or column name: only plain identifiers reach the SQL text.
pub(crate) fn ident(name: &str) -> Result<&str, DbError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok { Ok(name) } else { Err(DbError::BadName(name.to_string())) }
}

/// The path of a `sqlite:PATH` connection string.
pub(crate) fn sqlite_path(db: &str) -> Result<&str, DbError> {
    db.strip_prefix("sqlite:").ok_or_else(|| DbError::BadUrl(scheme_of(db)))
}

/// What a refused `--db` is called in its message: its scheme (`postgres:`), never more.
fn scheme_of(db: &str) -> String {
    match db.split_once(':') {
        Some((scheme, _))
            if (1..=16).contains(&scheme.len())
                && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            format!("{scheme}:")
        }
        _ => String::new(),
    }
}

/// Re-wrap `table.column` in place to `target`.
pub(crate) fn run(
    client: &Client,
    target: &KeyInfo,
    db: &str,
    table: &str,
    column: &str,
    id_column: &str,
    batch: usize,
) -> Result<DbSummary, AdminError> {
    let (table, column, id_column) = (ident(table)?, ident(column)?, ident(id_column)?);
    if rewrap_mysql::is_mysql(db) {
        let mut col = rewrap_mysql::MySqlColumn::open(db, table, column, id_column)?;
        return rewrap(client, target, &mut col, table, column, batch);
    }
    let mut col = SqliteColumn::open(sqlite_path(db)?, table, column, id_column, true)?;
    rewrap(client, target, &mut col, table, column, batch)
}

/// Rows of `table.column` sealed to `key_id` (for a checked retire).
pub(crate) fn count_using(
    db: &str,
    table: &str,
    column: &str,
    key_id: KeyId,
) -> Result<usize, DbError> {
    let (table, column) = (ident(table)?, ident(column)?);
    let mut n = 0;
    let mut count = |text: &str| {
        let bad = |source| DbError::BadRecord { at: format!("{table}.{column}"), source };
        let bytes = record::from_text(text.trim()).map_err(bad)?;
        if Record::parse(&bytes).map_err(bad)?.key_id() == key_id {
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
    client: &Client,
    target: &KeyInfo,
    col: &mut T,
    table: &str,
    column: &str,
    batch: usize,
) -> Result<DbSummary, AdminError> {
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
            let bad = |source| DbError::BadRecord { at: format!("{table} row {}", row.id), source };
            let bytes = record::from_text(row.record.trim()).map_err(bad)?;
            if Record::parse(&bytes).map_err(bad)?.key_id() != target_id {
                let context = format!("{table}/{}/{column}", row.id).into_bytes();
                todo.push((SealedItem { record: bytes, context }, row));
            }
        }
        after = Some(next);
        if !todo.is_empty() {
            batches += 1;
            let (rewrapped, changed) = rewrap_batch(client, target, col, table, &todo, batches)?;
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
    client: &Client,
    target: &KeyInfo,
    col: &mut T,
    table: &str,
    todo: &[(SealedItem, Row<T::Key>)],
    n: usize,
) -> Result<(usize, usize), AdminError> {
    crash_point("read", n);
    let items = todo.iter().map(|(item, _)| item.clone()).collect();
    let results = client.rewrap(items, &PublicKey::from_bytes(target.public_key))?;
    crash_point("rewrapped", n);
    if results.len() != todo.len() {
        return Err(DbError::ShortAnswer { sent: todo.len(), got: results.len() }.into());
    }
    let mut swaps = Vec::with_capacity(todo.len());
    for ((_, row), result) in todo.iter().zip(results) {
        let new = result.map_err(|error| DbError::DoesNotOpen {
            table: table.into(),
            id: row.id.clone(),
            error,
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
    ) -> Result<Self, DbError> {
        let flags = if write {
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
        } else {
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
        };
        let err = |source| DbError::Sql { path: path.to_string(), source };
        let conn = Connection::open_with_flags(path, flags).map_err(err)?;
        let has_key_id = conn
            .prepare(&format!("SELECT * FROM {table} LIMIT 0"))
            .map_err(err)?
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
}

impl SealedColumn for SqliteColumn {
    /// The primary key's value as stored: pages and writes compare it natively, so both use
    /// the primary key's index (a comparison on its text form would scan the table per row).
    type Key = SqlValue;

    fn count(&mut self) -> Result<u64, DbError> {
        self.conn
            .query_row(&format!("SELECT COUNT(*) FROM {}", self.table), [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(|source| DbError::Sql { path: self.path.clone(), source })
    }

    fn page(
        &mut self,
        after: Option<&SqlValue>,
        limit: usize,
    ) -> Result<Vec<Row<SqlValue>>, DbError> {
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
        .map_err(|source| DbError::Sql { path: path.clone(), source })?;
        rows.into_iter()
            .map(|(key, id_text, record)| {
                let id_text = id_text.ok_or_else(|| DbError::NoId {
                    db: path.clone(),
                    table: table.clone(),
                    id_column: id.clone(),
                })?;
                let record = record.ok_or_else(|| DbError::NotARecord {
                    db: path.clone(),
                    at: format!("{table} row {id_text}: {column}"),
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
    ) -> Result<usize, DbError> {
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
        let err = |source| DbError::Sql { path: path.clone(), source };
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
        f: &mut dyn FnMut(&str) -> Result<(), DbError>,
    ) -> Result<(), DbError> {
        let (path, table, column) = (&self.path, &self.table, &self.column);
        let err = |source| DbError::Sql { path: path.clone(), source };
        let mut stmt = self.conn.prepare(&format!("SELECT {column} FROM {table}")).map_err(err)?;
        let rows = stmt.query_map([], |r| r.get::<_, Option<String>>(0)).map_err(err)?;
        for text in rows {
            let text = text.map_err(err)?.ok_or_else(|| DbError::NotARecord {
                db: path.clone(),
                at: format!("a value of {table}.{column}"),
            })?;
            f(&text)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--db postgres://shop:hunter2@db/shop` used to come back whole on stderr (and so in
    /// cron mail and CI logs), password included.
    #[test]
    fn a_refused_db_string_is_named_by_its_scheme_only() {
        for (db, named) in [
            ("postgres://shop:hunter2@db/shop", "--db postgres:…"),
            ("hunter2", "--db …"),
            ("user:hunter2@localhost/shop", "--db user:…"),
            ("://hunter2", "--db …"),
        ] {
            let e = sqlite_path(db).unwrap_err().to_string();
            assert!(e.starts_with(named) && !e.contains("hunter2"), "{db}: {e}");
        }
        assert_eq!(sqlite_path("sqlite:/var/lib/shop.db").unwrap(), "/var/lib/shop.db");
    }
}
