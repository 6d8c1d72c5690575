//! Re-wrap straight from the store's SQLite table (`--db sqlite:PATH`), in place.
//!
//! Rows are read in primary-key order, a batch at a time; those whose record is not yet on the
//! target key go through the dongle's `Rewrap`, and the batch is written back in **one
//! transaction**, each row with a compare-and-swap (`WHERE id = ? AND column = <old record>`),
//! so a row the store changed meanwhile is left alone and reported. A crash or Ctrl-C loses at
//! most the batch in flight; running the command again skips every row already on the target
//! key, so it resumes by itself and never re-wraps a row twice. The context of each value is
//! `<table>/<id>/<column>`, as `docs/SCHEMA.md` lays out.

use rusqlite::{Connection, params};
use vbzkey_client::Client;
use vbzkey_protocol::record::{self, Record, RecordError};
use vbzkey_protocol::wire::{ItemError, KeyInfo, MAX_BATCH, SealedItem};
use vbzkey_protocol::{KeyId, PublicKey};

use crate::error::{AdminError, exit};

/// Why a database re-wrap or check stopped (besides the dongle).
#[derive(Debug, thiserror::Error)]
pub(crate) enum DbError {
    /// `--db` is not a database this tool reaches.
    #[error("{0:?}: a database is sqlite:PATH")]
    BadUrl(String),
    /// MySQL/MariaDB, not reachable directly yet.
    #[error(
        "MySQL/MariaDB tables are not reachable directly yet: export the sealed column as JSON \
         lines and use --in/--out (docs/OPERATIONS.md)"
    )]
    NotSupported,
    /// A table or column name that is not a plain identifier (it would reach the SQL text).
    #[error("{0:?} is not a plain table or column name")]
    BadName(String),
    /// The database failed.
    #[error("{path}: {source}")]
    Sql {
        /// The database.
        path: String,
        /// Why.
        source: rusqlite::Error,
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
            DbError::BadUrl(_) | DbError::NotSupported | DbError::BadName(_) => exit::USAGE,
            DbError::Sql { .. } => exit::IO,
            DbError::BadRecord { .. } | DbError::DoesNotOpen { .. } => exit::BAD_INPUT,
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

/// A table or column name: only plain identifiers reach the SQL text.
fn ident(name: &str) -> Result<&str, DbError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok { Ok(name) } else { Err(DbError::BadName(name.to_string())) }
}

/// The path of a `sqlite:PATH` connection string.
pub(crate) fn sqlite_path(db: &str) -> Result<&str, DbError> {
    if let Some(p) = db.strip_prefix("sqlite:") {
        return Ok(p);
    }
    if db.starts_with("mysql:") || db.starts_with("mariadb:") {
        return Err(DbError::NotSupported);
    }
    Err(DbError::BadUrl(db.to_string()))
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
    let path = sqlite_path(db)?;
    let sql_err = |source| DbError::Sql { path: path.to_string(), source };
    let mut conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)
        .map_err(sql_err)?;
    let new_key = PublicKey::from_bytes(target.public_key);
    let has_key_id = conn
        .prepare(&format!("SELECT * FROM {table} LIMIT 0"))
        .map_err(sql_err)?
        .column_names()
        .any(|c| c == "key_id");
    let batch = batch.clamp(1, MAX_BATCH);
    let target_id = target.key_id;
    let mut summary = DbSummary { rows: 0, rewrapped: 0, changed_meanwhile: 0 };
    let mut after: Option<String> = None;
    loop {
        // Keyset pagination over the primary key (read as text, whatever its type).
        let rows: Vec<(String, String)> = {
            let sql = format!(
                "SELECT CAST({id_column} AS TEXT), {column} FROM {table} \
                 WHERE ?1 IS NULL OR CAST({id_column} AS TEXT) > ?1 ORDER BY CAST({id_column} AS TEXT) LIMIT ?2"
            );
            let mut stmt = conn.prepare(&sql).map_err(sql_err)?;
            stmt.query_map(params![after, batch as i64], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(sql_err)?
                .collect::<Result<_, _>>()
                .map_err(sql_err)?
        };
        let Some(last) = rows.last() else { break };
        after = Some(last.0.clone());
        summary.rows += rows.len();
        let mut todo = Vec::new();
        for (id, text) in rows {
            let bad = |source| DbError::BadRecord { at: format!("{table} row {id}"), source };
            let bytes = record::from_text(text.trim()).map_err(bad)?;
            if Record::parse(&bytes).map_err(bad)?.key_id() != target_id {
                let context = format!("{table}/{id}/{column}");
                todo.push((id, text, SealedItem { record: bytes, context: context.into_bytes() }));
            }
        }
        if todo.is_empty() {
            continue;
        }
        let items = todo.iter().map(|(_, _, item)| item.clone()).collect();
        let results = client.rewrap(items, &new_key)?;
        if results.len() != todo.len() {
            return Err(DbError::ShortAnswer { sent: todo.len(), got: results.len() }.into());
        }
        let tx = conn.transaction().map_err(sql_err)?;
        for ((id, old, _), result) in todo.iter().zip(results) {
            let new = result.map_err(|error| DbError::DoesNotOpen {
                table: table.into(),
                id: id.clone(),
                error,
            })?;
            let new = record::to_text(&new);
            let changed = if has_key_id {
                tx.execute(
                    &format!("UPDATE {table} SET {column} = ?1, key_id = ?2 WHERE CAST({id_column} AS TEXT) = ?3 AND {column} = ?4"),
                    params![new, target_id.to_string(), id, old],
                )
            } else {
                tx.execute(
                    &format!("UPDATE {table} SET {column} = ?1 WHERE CAST({id_column} AS TEXT) = ?2 AND {column} = ?3"),
                    params![new, id, old],
                )
            }
            .map_err(sql_err)?;
            if changed == 1 {
                summary.rewrapped += 1;
            } else {
                summary.changed_meanwhile += 1;
            }
        }
        tx.commit().map_err(sql_err)?;
        eprintln!("rewrap: {} rows read, {} re-wrapped", summary.rows, summary.rewrapped);
    }
    Ok(summary)
}

/// Rows of `table.column` sealed to `key_id` (for a checked retire).
pub(crate) fn count_using(
    db: &str,
    table: &str,
    column: &str,
    key_id: KeyId,
) -> Result<usize, DbError> {
    let (table, column) = (ident(table)?, ident(column)?);
    let path = sqlite_path(db)?;
    let sql_err = |source| DbError::Sql { path: path.to_string(), source };
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(sql_err)?;
    let mut stmt = conn.prepare(&format!("SELECT {column} FROM {table}")).map_err(sql_err)?;
    let mut n = 0;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(sql_err)?;
    for text in rows {
        let text = text.map_err(sql_err)?;
        let bad = |source| DbError::BadRecord { at: format!("{table}.{column}"), source };
        let bytes = record::from_text(text.trim()).map_err(bad)?;
        if Record::parse(&bytes).map_err(bad)?.key_id() == key_id {
            n += 1;
        }
    }
    Ok(n)
}
