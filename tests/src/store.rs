//! The demo store (`examples/store`, PHP) as a test drives it: checkouts through its CLI,
//! the admin page through PHP's built-in web server on a free loopback port. Its database is
//! SQLite in its data directory, or any PDO DSN (the MariaDB tests give one).

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Instant;

use vbzkey_protocol::PublicKey;

use crate::{HttpResponse, START_TIMEOUT, http};

fn example(file: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/store")).join(file)
}

/// A demo store: its data directory and database.
pub struct DemoStore {
    data: PathBuf,
    env: Vec<(String, String)>,
}

impl DemoStore {
    /// A store in `data` that seals to `public_key`; `database` is (PDO DSN, user, password
    /// file) for a server, or `None` for SQLite in `data/store.db`.
    pub fn new(data: &Path, public_key: &PublicKey, database: Option<(&str, &str, &Path)>) -> Self {
        std::fs::create_dir_all(data).expect("store data dir");
        std::fs::write(data.join("public-key.txt"), format!("{}\n", public_key.to_text()))
            .expect("public key");
        let mut env = vec![("VBZKEY_STORE_DATA".to_string(), data.display().to_string())];
        if let Some((dsn, user, password_file)) = database {
            env.push(("VBZKEY_STORE_DSN".into(), dsn.into()));
            env.push(("VBZKEY_STORE_DB_USER".into(), user.into()));
            env.push(("VBZKEY_STORE_DB_PASSWORD_FILE".into(), password_file.display().to_string()));
        }
        DemoStore { data: data.into(), env }
    }

    fn php(&self, script: &str) -> Command {
        let mut c = Command::new("php");
        c.arg(example(script)).envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    /// Create the tables (`php install.php`).
    pub fn install(&self) -> String {
        let out = self.php("install.php").output().expect("php is installed (scripts/test)");
        assert!(out.status.success(), "install.php: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// One checkout (`php checkout.php < order`).
    pub fn checkout(&self, order: &serde_json::Value) -> Output {
        let mut child = self
            .php("checkout.php")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("php is installed (scripts/test)");
        child.stdin.take().expect("stdin").write_all(order.to_string().as_bytes()).expect("order");
        child.wait_with_output().expect("checkout.php")
    }

    /// The bridge the admin page tells vbzkey.js to use (read on every request).
    pub fn set_bridge(&self, bridge: &str) {
        std::fs::write(self.data.join("bridge-url.txt"), bridge).expect("bridge url");
    }

    /// Serve the admin page, talking to the bridge at `bridge`.
    pub fn serve(&self, bridge: &str) -> StoreServer {
        self.set_bridge(bridge);
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("php")
            .arg("-S")
            .arg(format!("127.0.0.1:{port}"))
            .arg(example("router.php"))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("php -S");
        let server = StoreServer { child, port };
        let deadline = Instant::now() + START_TIMEOUT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the store page did not come up");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        server
    }
}

/// The admin page served by PHP's built-in server.
pub struct StoreServer {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl StoreServer {
    /// The page's origin, for the bridge's allow-list.
    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `GET path` (e.g. `/?q=1111`).
    pub fn get(&self, path: &str) -> HttpResponse {
        let host = format!("127.0.0.1:{}", self.port);
        http(self.port, "GET", path, &[("Host", &host)], b"")
    }
}

impl Drop for StoreServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `(record, context)` pairs of the sealed fields in an admin page's HTML, once each.
pub fn sealed_fields(html: &str) -> Vec<(String, String)> {
    let unescape = |s: &str| s.replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&");
    let mut out: Vec<(String, String)> = html
        .split("data-vbzkey-record=\"")
        .skip(1)
        .filter_map(|rest| {
            let (record, rest) = rest.split_once('"')?;
            let context = rest.strip_prefix(" data-vbzkey-context=\"")?.split('"').next()?;
            Some((unescape(record), unescape(context)))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The order numbers listed on an admin page.
pub fn listed_orders(html: &str) -> Vec<String> {
    let mut out: Vec<String> = html
        .split("data-vbzkey-select value=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next().map(str::to_string))
        .collect();
    out.sort();
    out
}
