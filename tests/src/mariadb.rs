//! A private MariaDB server for one test: Debian's `mariadbd`, its own data directory and
//! Unix socket under the test's temporary directory, no TCP at all (`--skip-networking`),
//! `--no-defaults` so nothing of the machine's configuration leaks in. Stopped on drop, also
//! when the test fails (SIGTERM, then SIGKILL if it has not stopped within 20 s).
//!
//! `scripts/test` installs the server (`mariadb-server-core`, `mariadb-client-core`); without
//! it these tests fail saying so.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::START_TIMEOUT;

/// Options every start uses: small InnoDB files (the default redo log is 96 MiB), defaults
/// otherwise, so durability (a flush at every commit) is what a shop's server does.
const SERVER_OPTIONS: &[&str] = &[
    "--no-defaults",
    "--skip-networking",
    "--innodb-log-file-size=16M",
    "--innodb-buffer-pool-size=64M",
    "--character-set-server=utf8mb4",
    "--max-connections=50",
];

/// A running private server.
pub struct MariaDb {
    child: Child,
    /// Its Unix socket.
    pub socket: PathBuf,
}

fn os_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8(out.stdout).expect("user name").trim().to_string()
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

impl MariaDb {
    /// Create a data directory in `dir` and start a server on it; `root` (no password) is
    /// reachable by this OS user through the socket only.
    pub fn start(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).expect("mariadb dir");
        let data = dir.join("data");
        let user = os_user();
        let mut install = Command::new("mariadb-install-db");
        install
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg("--auth-root-authentication-method=socket")
            .arg(format!("--auth-root-socket-user={user}"))
            .args(["--skip-test-db", "--innodb-log-file-size=16M"]);
        if is_root() {
            install.arg("--user=root");
        }
        let out = install.output().unwrap_or_else(|e| {
            panic!("mariadb-install-db: {e}: install Debian's mariadb-server (scripts/test does)")
        });
        assert!(
            out.status.success(),
            "mariadb-install-db: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let socket = dir.join("mysqld.sock");
        // Debian puts the server in /usr/sbin, which a normal user's PATH may lack.
        let mariadbd = ["/usr/sbin/mariadbd", "/usr/bin/mariadbd"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("mariadbd");
        let mut server = Command::new(mariadbd);
        server
            .args(&SERVER_OPTIONS[..1])
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--pid-file={}", dir.join("mysqld.pid").display()))
            .arg(format!("--log-error={}", dir.join("error.log").display()))
            .args(&SERVER_OPTIONS[1..]);
        if is_root() {
            server.arg("--user=root");
        }
        let child = server
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mariadbd");
        let db = MariaDb { child, socket };
        let deadline = Instant::now() + START_TIMEOUT;
        while db.try_sql(None, "SELECT 1").is_err() {
            assert!(
                Instant::now() < deadline,
                "mariadbd did not come up: {}",
                std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        db
    }

    fn client(&self, database: Option<&str>) -> Command {
        let mut c = Command::new("mariadb");
        c.arg("--no-defaults").arg(format!("--socket={}", self.socket.display())).args([
            "--user=root",
            "--batch",
            "--skip-column-names",
            "--raw",
        ]);
        if let Some(d) = database {
            c.arg(format!("--database={d}"));
        }
        c
    }

    /// Run `sql` as root; its tab-separated output, or the client's error.
    pub fn try_sql(&self, database: Option<&str>, sql: &str) -> Result<String, String> {
        let mut child = self
            .client(database)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("mariadb client: {e}"))?;
        child.stdin.take().expect("stdin").write_all(sql.as_bytes()).map_err(|e| e.to_string())?;
        let out: Output = child.wait_with_output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Run `sql` as root in `database`, panicking on an error.
    pub fn sql(&self, database: &str, sql: &str) -> String {
        self.try_sql(Some(database), sql).unwrap_or_else(|e| panic!("SQL failed: {e}"))
    }

    /// A connection as `user` (password authentication, as a store's application connects),
    /// e.g. to hold a transaction and its row locks while another process works.
    pub fn connect(&self, user: &str, password: &str, database: &str) -> mysql::Conn {
        let opts = mysql::OptsBuilder::new()
            .socket(Some(self.socket.display().to_string()))
            .prefer_socket(false)
            .user(Some(user))
            .pass(Some(password))
            .db_name(Some(database));
        mysql::Conn::new(opts).expect("connect to the private MariaDB")
    }

    /// Create an empty database.
    pub fn create_database(&self, database: &str) {
        self.try_sql(None, &format!("CREATE DATABASE `{database}`"))
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Run an SQL file (e.g. `schema/mysql.sql`) in `database` as root.
    pub fn load(&self, database: &str, file: &Path) {
        let sql =
            std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        self.sql(database, &sql);
    }

    /// A user with `password` (also written to `password_file`, first line) and these
    /// privileges (e.g. `SELECT, UPDATE ON shop.*`), logging in by password as a store's
    /// application or the admin tool does.
    pub fn create_user(&self, user: &str, password: &str, grants: &[&str], password_file: &Path) {
        let mut sql = format!("CREATE USER '{user}'@'localhost' IDENTIFIED BY '{password}';\n");
        for g in grants {
            sql.push_str(&format!("GRANT {g} TO '{user}'@'localhost';\n"));
        }
        self.try_sql(None, &sql).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(password_file, format!("{password}\n")).expect("password file");
    }

    /// The `vbzkey-admin --db` URL for `user` on `database` (password from `password_file`).
    pub fn admin_url(&self, user: &str, database: &str, password_file: &Path) -> String {
        format!(
            "mysql://{user}@localhost/{database}?socket={}&password-file={}",
            self.socket.display(),
            password_file.display()
        )
    }

    /// The PDO DSN for PHP (`pdo_mysql` on the socket).
    pub fn pdo_dsn(&self, database: &str) -> String {
        format!("mysql:unix_socket={};dbname={database};charset=utf8mb4", self.socket.display())
    }

    /// Statements waiting for a row lock right now: InnoDB's own count, or (MariaDB 10.11 does
    /// not always list a waiting transaction in `INNODB_TRX`) an `UPDATE` that has been running
    /// for over half a second, which a single-row update by primary key only does while it waits.
    pub fn lock_waits(&self) -> usize {
        self.sql(
            "information_schema",
            "SELECT (SELECT COUNT(*) FROM information_schema.INNODB_TRX \
                     WHERE trx_state = 'LOCK WAIT') \
                  + (SELECT COUNT(*) FROM information_schema.PROCESSLIST \
                     WHERE INFO LIKE 'UPDATE%' AND TIME_MS > 500)",
        )
        .trim()
        .parse()
        .expect("a count")
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        // A clean shutdown (SIGTERM), bounded; then the hard way.
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
