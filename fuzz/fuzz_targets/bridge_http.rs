//! The bridge's HTTP API through the real axum router (`http::router`): request bodies of
//! `/v1/unseal` and `/v1/unlock` (and the other routes), with every Origin / Content-Type
//! case, in front of the real key-file method holding the test kit's key.
//!
//! Input: a route byte, a header byte (origin and content type), then the body.
//! Checked: no request makes the router fail (500) or panic; every answer is JSON with
//! either a result or an error code; an unseal answered 200 has one result per item asked;
//! a request from a foreign origin, without an origin, or without JSON is refused before the
//! key is used.
#![no_main]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;
use vbzkey_fuzz::kit_key;
use vbzkey_host_bridge::http::{HttpConfig, router};
use vbzkey_host_bridge::method::KeyMethod;
use vbzkey_host_bridge::method::soft::{RateLimit, SoftMethod, Source};
use vbzkey_softkey::{Kdf, KeyFile};

const PORT: u16 = 17_480;
const STORE: &str = "https://store.example";
const PASSPHRASE: &[u8] = b"fuzzing key file passphrase";

/// The kit key in a key file (cheap Argon2), written once per process.
fn key_file() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("vbzkey-fuzz-bridge-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("key.json");
        let file = KeyFile::seal(&kit_key(), PASSPHRASE, Kdf::TEST_ONLY_WEAK).unwrap();
        std::fs::write(&path, file.to_json()).unwrap();
        path
    })
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap())
}

fuzz_target!(|data: &[u8]| {
    let [route, heads, body @ ..] = data else { return };
    let path = ["/v1/unseal", "/v1/unlock", "/v1/lock", "/v1/status"][usize::from(route % 4)];
    let own = format!("http://127.0.0.1:{PORT}");
    let origin = [Some(STORE), Some(own.as_str()), Some("https://evil.example"), None]
        [usize::from(heads % 4)];
    let json = (heads >> 2) % 4 != 3;
    let unlocked = heads & 0x10 == 0;

    let method = Arc::new(SoftMethod::new(
        Source::KeyFile(key_file().clone()),
        Duration::from_secs(900),
        RateLimit::default(),
    ));
    if unlocked {
        method.unlock(PASSPHRASE).unwrap();
    }
    let cfg = HttpConfig {
        port: PORT,
        allowed_origins: vec![STORE.to_string()],
        max_body_bytes: 64 * 1024,
        max_batch: 256,
        per_origin_concurrency: 4,
        request_timeout: Duration::from_secs(10),
    };
    let app = router(cfg, Arc::clone(&method) as Arc<dyn KeyMethod>);
    let mut req = Request::builder()
        .method(if path == "/v1/status" { "GET" } else { "POST" })
        .uri(path)
        .header(header::HOST, format!("127.0.0.1:{PORT}"));
    if let Some(o) = origin {
        req = req.header(header::ORIGIN, o);
    }
    if json {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    let req = req.body(Body::from(body.to_vec())).unwrap();
    let (status, answer) = runtime().block_on(async {
        let resp = app.oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24).await.unwrap();
        (status, bytes)
    });
    assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let answer: serde_json::Value = serde_json::from_slice(&answer).expect("a JSON answer");
    if status.is_success() {
        assert!(answer.get("error").is_none(), "{answer}");
    } else {
        assert!(answer["error"].is_string(), "{status}: {answer}");
    }
    let foreign = origin.is_some_and(|o| o != STORE && o != own);
    if path != "/v1/status" && (foreign || origin.is_none() || !json) {
        assert!(status == StatusCode::FORBIDDEN || status == StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    if path == "/v1/unseal" && status == StatusCode::OK {
        let asked: serde_json::Value = serde_json::from_slice(body).expect("it was parsed");
        assert_eq!(
            answer["results"].as_array().map(Vec::len),
            asked["items"].as_array().map(Vec::len),
            "one result per item"
        );
    }
});
