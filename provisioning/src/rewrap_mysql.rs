//! A sealed column in a MariaDB/MySQL table, for the re-wrap loop of [`crate::rewrap_db`].
//!
//! Connection string: `mysql://USER@localhost/DATABASE?socket=PATH&password-file=PATH`
//! (`mariadb://` too). Only a server on this machine's Unix socket is reached (default
//! `/run/mysqld/mysqld.sock`, Debian's): the client has no TLS, and over a network a
//! man in the middle could drop or corrupt the re-wrapped records it writes back. A password in
//! the URL is refused (it would show in `ps` and the shell history); it comes from the first
//! line of `password-file`.
//!
//! The compare-and-swap compares the old record as **binary**: the schema's sealed columns are
//! `ascii` with a case-insensitive collation, and base64url is case-sensitive.

use std::path::{Path, PathBuf};

use mysql::prelude::Queryable;
use mysql::{Conn, OptsBuilder, TxOpts, Value};
use url::Url;

use crate::input::read_secret_line;
use crate::rewrap_db::{DbError, Row, SealedColumn, Swap};

/// Debian's (and most distributions') socket of the system's MariaDB/MySQL server.
const DEFAULT_SOCKET: &str = "/run/mysqld/mysqld.sock";

/// How a connection string is written, for messages.
const FORM: &str = "write mysql://USER@localhost/DATABASE?socket=PATH&password-file=PATH";

/// What is wrong with a `mysql://` connection string. Never quotes a password.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UrlProblem {
    /// Not a URL at all.
    #[error("{0} in the database URL: {FORM}")]
    Parse(url::ParseError),
    /// Another scheme.
    #[error("not a MariaDB/MySQL URL: {FORM}")]
    NotMySql,
    /// A password in the URL itself.
    #[error(
        "a password in the database URL would show in `ps` and the shell history: put it in a \
         file (first line) and add password-file=PATH"
    )]
    PasswordInUrl,
    /// A server on another machine.
    #[error(
        "{0}: only a server on this machine is reached, on its Unix socket (without TLS the \
         records written back could be altered on the way); run vbzkey-admin on the database \
         server"
    )]
    RemoteHost(String),
    /// A TCP port.
    #[error("a port is for TCP; the server is reached on its Unix socket: {FORM}")]
    Port,
    /// A user or database name that is not percent-encoded UTF-8.
    #[error("{0:?} is not valid percent-encoded UTF-8")]
    NotUtf8(String),
    /// No user.
    #[error("the database URL names no user: {FORM}")]
    NoUser,
    /// No database, or a path that is not one name.
    #[error("the database URL names no database: {FORM}")]
    NoDatabase,
    /// An unknown or repeated option.
    #[error("{0:?} is not an option of the database URL: {FORM}")]
    UnknownOption(String),
}

/// Is `db` a MariaDB/MySQL connection string?
pub(crate) fn is_mysql(db: &str) -> bool {
    db.starts_with("mysql:") || db.starts_with("mariadb:")
}

/// Where and as whom to connect, from the connection string.
#[derive(Debug, PartialEq)]
struct Target {
    user: String,
    database: String,
    socket: String,
    password_file: Option<String>,
}

fn parse(db: &str) -> Result<Target, UrlProblem> {
    let url = Url::parse(db).map_err(UrlProblem::Parse)?;
    if !matches!(url.scheme(), "mysql" | "mariadb") {
        return Err(UrlProblem::NotMySql);
    }
    if url.password().is_some() {
        return Err(UrlProblem::PasswordInUrl);
    }
    match url.host_str() {
        None | Some("localhost") => {}
        Some(host) => return Err(UrlProblem::RemoteHost(host.to_string())),
    }
    if url.port().is_some() {
        return Err(UrlProblem::Port);
    }
    let decode = |s: &str| percent_decode(s).ok_or_else(|| UrlProblem::NotUtf8(s.to_string()));
    let user = decode(url.username())?;
    if user.is_empty() {
        return Err(UrlProblem::NoUser);
    }
    let database = decode(url.path().trim_start_matches('/'))?;
    if database.is_empty() || database.contains('/') {
        return Err(UrlProblem::NoDatabase);
    }
    let (mut socket, mut password_file) = (None, None);
    for (k, v) in url.query_pairs() {
        match &*k {
            "socket" if socket.is_none() => socket = Some(v.into_owned()),
            "password-file" if password_file.is_none() => password_file = Some(v.into_owned()),
            other => return Err(UrlProblem::UnknownOption(other.to_string())),
        }
    }
    Ok(Target {
        user,
        database,
        socket: socket.unwrap_or_else(|| DEFAULT_SOCKET.into()),
        password_file,
    })
}

fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

/// The password in the first line of `path`.
fn read_password(path: &Path) -> Result<String, DbError> {
    let line = read_secret_line(path)
        .map_err(|source| DbError::PasswordFile { path: path.to_path_buf(), source })?;
    String::from_utf8(line.to_vec())
        .map_err(|_| DbError::PasswordNotText { path: PathBuf::from(path) })
}

/// A sealed column of a MariaDB/MySQL table.
pub(crate) struct MySqlColumn {
    conn: Conn,
    /// `user@database`, for messages.
    name: String,
    table: String,
    column: String,
    id_column: String,
    has_key_id: bool,
}

impl MySqlColumn {
    /// Connect and check that the table and columns exist.
    pub(crate) fn open(
        db: &str,
        table: &str,
        column: &str,
        id_column: &str,
    ) -> Result<Self, DbError> {
        let t = parse(db)?;
        let name = format!("{}@{}", t.user, t.database);
        let password =
            t.password_file.as_deref().map(|p| read_password(Path::new(p))).transpose()?;
        let opts = OptsBuilder::new()
            .socket(Some(&t.socket))
            .prefer_socket(false)
            .user(Some(&t.user))
            .pass(password)
            .db_name(Some(&t.database));
        let mut conn = Conn::new(opts).map_err(|source| DbError::MySqlConnect {
            name: name.clone(),
            socket: t.socket.clone(),
            source,
        })?;
        let err = |source| DbError::MySql { name: name.clone(), source };
        conn.query_drop(format!("SELECT `{id_column}`, `{column}` FROM `{table}` LIMIT 0"))
            .map_err(err)?;
        let has_key_id: Option<u64> = conn
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = 'key_id'",
                (table,),
            )
            .map_err(err)?;
        Ok(MySqlColumn {
            conn,
            name,
            table: table.into(),
            column: column.into(),
            id_column: id_column.into(),
            has_key_id: has_key_id.unwrap_or(0) > 0,
        })
    }

    fn err(&self, source: mysql::Error) -> DbError {
        DbError::MySql { name: self.name.clone(), source }
    }
}

/// The server's own message, without the crate's debug wrapping.
pub(crate) fn describe(e: &mysql::Error) -> String {
    match e {
        mysql::Error::MySqlError(m) => format!("{} (error {})", m.message, m.code),
        other => other.to_string(),
    }
}

impl SealedColumn for MySqlColumn {
    /// The primary key's value as the server sent it (pages and writes compare it natively).
    type Key = Value;

    fn count(&mut self) -> Result<u64, DbError> {
        let n: Option<u64> = self
            .conn
            .query_first(format!("SELECT COUNT(*) FROM `{}`", self.table))
            .map_err(|e| self.err(e))?;
        Ok(n.unwrap_or(0))
    }

    fn page(&mut self, after: Option<&Value>, limit: usize) -> Result<Vec<Row<Value>>, DbError> {
        let (t, c, id) = (&self.table, &self.column, &self.id_column);
        let select = format!("SELECT `{id}`, CAST(`{id}` AS CHAR), `{c}` FROM `{t}`");
        // Rows come back untyped and are converted here: a NULL or binary value in the
        // sealed column is an error naming the row, never a panic in the client library.
        let rows: Result<Vec<mysql::Row>, _> = match after {
            None => self.conn.exec(format!("{select} ORDER BY `{id}` LIMIT ?"), (limit as u64,)),
            Some(k) => self.conn.exec(
                format!("{select} WHERE `{id}` > ? ORDER BY `{id}` LIMIT ?"),
                (k.clone(), limit as u64),
            ),
        };
        let mut out = Vec::new();
        for mut row in rows.map_err(|e| self.err(e))? {
            let key = row.take_opt::<Value, _>(0).and_then(Result::ok);
            let id = row.take_opt::<String, _>(1).and_then(Result::ok);
            let (Some(key), Some(id)) = (key, id) else {
                return Err(DbError::NoId {
                    db: self.name.clone(),
                    table: t.clone(),
                    id_column: self.id_column.clone(),
                });
            };
            let record = row.take_opt::<String, _>(2).and_then(Result::ok).ok_or_else(|| {
                DbError::NotARecord { db: self.name.clone(), at: format!("{t} row {id}: {c}") }
            })?;
            out.push(Row { key, id, record });
        }
        Ok(out)
    }

    fn swap(
        &mut self,
        swaps: &[Swap<'_, Value>],
        key_id: &str,
        halfway: &mut dyn FnMut(),
    ) -> Result<usize, DbError> {
        let (t, c, id) = (&self.table, &self.column, &self.id_column);
        let sql = if self.has_key_id {
            format!(
                "UPDATE `{t}` SET `{c}` = ?, `key_id` = ? WHERE `{id}` = ? AND `{c}` = BINARY ?"
            )
        } else {
            format!(
                "UPDATE `{t}` SET `{c}` = ? WHERE ? IS NOT NULL AND `{id}` = ? AND `{c}` = BINARY ?"
            )
        };
        let name = self.name.clone();
        let err = |source| DbError::MySql { name: name.clone(), source };
        let mut tx = self.conn.start_transaction(TxOpts::default()).map_err(err)?;
        let mut written = 0;
        for (i, s) in swaps.iter().enumerate() {
            if i == swaps.len() / 2 {
                halfway();
            }
            tx.exec_drop(&sql, (&s.new, key_id, s.key.clone(), s.old)).map_err(err)?;
            written += tx.affected_rows() as usize;
        }
        tx.commit().map_err(err)?;
        Ok(written)
    }

    fn for_each_record(
        &mut self,
        f: &mut dyn FnMut(&str) -> Result<(), DbError>,
    ) -> Result<(), DbError> {
        let (name, t, c) = (self.name.clone(), &self.table, &self.column);
        let err = |source| DbError::MySql { name: name.clone(), source };
        let rows = self.conn.query_iter(format!("SELECT `{c}` FROM `{t}`")).map_err(err)?;
        for row in rows {
            let mut row = row.map_err(err)?;
            let text = row.take_opt::<String, _>(0).and_then(Result::ok).ok_or_else(|| {
                DbError::NotARecord { db: name.clone(), at: format!("a value of {t}.{c}") }
            })?;
            f(&text)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_url_names_user_database_socket_and_password_file() {
        let t =
            parse("mysql://shop@localhost/store?socket=/tmp/my%20db/s.sock&password-file=/etc/pw")
                .unwrap();
        assert_eq!(
            t,
            Target {
                user: "shop".into(),
                database: "store".into(),
                socket: "/tmp/my db/s.sock".into(),
                password_file: Some("/etc/pw".into())
            }
        );
        let t = parse("mariadb://shop@localhost/store").unwrap();
        assert_eq!(t.socket, DEFAULT_SOCKET);
        assert_eq!(t.password_file, None);
    }

    #[test]
    fn bad_urls_are_refused_with_what_to_do() {
        for (url, says) in [
            ("mysql://shop:hunter2@localhost/store", "password-file"),
            ("mysql://shop@db.example.com/store", "on this machine"),
            ("mysql://shop@localhost:3306/store", "Unix socket"),
            ("mysql://localhost/store", "no user"),
            ("mysql://shop@localhost/", "no database"),
            ("mysql://shop@localhost/a/b", "no database"),
            ("mysql://shop@localhost/store?sockett=/x", "not an option"),
            ("mysql://shop@localhost/store?socket=/x&socket=/y", "not an option"),
            ("mysql://sh%ffop@localhost/store", "percent-encoded"),
            ("mysql://[::1/store", "database URL"),
        ] {
            let e = parse(url).unwrap_err().to_string();
            assert!(e.contains(says), "{url}: {e}");
            assert!(!e.contains("hunter2"), "{url}: the password is never repeated: {e}");
        }
    }
}
