//! docs/bridge-openapi.json and the bridge's router agree: every route the router serves is
//! documented with its method, and the document lists no route the router does not serve.
//! Each documented operation is then asked of the real router (in front of a real key-file
//! method whose file is not there yet), and answers with a status the document lists for it.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use vbzkey_host_bridge::config::Config;
use vbzkey_host_bridge::http;

fn document() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/bridge-openapi.json");
    let text = std::fs::read_to_string(path).expect("docs/bridge-openapi.json");
    serde_json::from_str(&text).expect("the OpenAPI document is JSON")
}

/// `(METHOD, path)` of every documented operation but the CORS preflights.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            if method != "options" {
                ops.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

#[test]
fn the_openapi_document_lists_exactly_the_routes_the_router_serves() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let served: BTreeSet<(String, String)> =
        http::routes().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    let documented = documented(&doc);
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let not_served: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "served but not in docs/bridge-openapi.json: {undocumented:?}"
    );
    assert!(not_served.is_empty(), "documented but not served: {not_served:?}");
    // Preflights are documented only on paths that exist.
    for (path, item) in doc["paths"].as_object().unwrap() {
        if item.get("options").is_some() {
            assert!(served.iter().any(|(_, p)| p == path), "OPTIONS on unknown {path}");
        }
    }
}

/// The real router on a loopback port, with the key-file method (its file not there yet).
fn serve() -> u16 {
    let dir = std::env::temp_dir().join(format!("vbzkey-openapi-{}", std::process::id()));
    let config = Config::parse(&format!(
        "allowed_origins = [\"https://shop.example\"]\n[method]\nkind = \"keyfile\"\npath = \"{}\"\n",
        dir.join("key.json").display()
    ))
    .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let mut cfg = config.http();
    cfg.port = port;
    let app = http::router(cfg, Arc::from(config.key_method().unwrap()));
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build();
        rt.unwrap().block_on(async move {
            let l = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(l, app).await.unwrap();
        });
    });
    port
}

/// One request from the bridge's own page; the status code.
fn ask(port: u16, method: &str, path: &str, body: &str) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("a status line")
}

#[test]
fn each_documented_operation_answers_a_status_the_document_lists() {
    let doc = document();
    let port = serve();
    for (method, path) in documented(&doc) {
        let body = match path.as_str() {
            "/v1/unlock" => r#"{"passphrase": "not the passphrase"}"#,
            "/v1/unseal" => r#"{"items": [{"record": "vk1.AAAA", "context": "c"}]}"#,
            "/v1/lock" => "{}",
            _ => "",
        };
        let status = ask(port, &method, &path, body);
        let op = &doc["paths"][&path][method.to_lowercase()];
        assert!(
            op["responses"].get(status.to_string()).is_some(),
            "{method} {path} answered {status}, which docs/bridge-openapi.json does not list"
        );
    }
    // Anything else is not found, and a served path refuses another method.
    assert_eq!(ask(port, "GET", "/v1/openapi.json", ""), 404);
    assert_eq!(ask(port, "GET", "/v1/unseal", ""), 405);
    assert_eq!(ask(port, "DELETE", "/v1/unseal", "{}"), 405);
}
