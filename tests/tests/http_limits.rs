//! The HTTP layer's own limits, with a key method that is slow on purpose: a request that
//! takes too long is cut off, and one origin cannot hold more than its share of requests.

use std::sync::Arc;
use std::time::Duration;

use vbzkey_e2e::http;
use vbzkey_host_bridge::http::{HttpConfig, router};
use vbzkey_host_bridge::method::{ItemResult, KeyMethod, MethodError, State, Status};
use vbzkey_protocol::record::RecordErrorCode;
use vbzkey_protocol::wire::{ItemError, SealedItem};

/// Unseals nothing, slowly: stands in for a dongle waiting for its button.
struct Slow(Duration);

impl KeyMethod for Slow {
    fn name(&self) -> &'static str {
        "slow"
    }
    fn status(&self) -> Status {
        Status {
            method: "slow",
            state: State::Unlocked,
            source: None,
            serial: None,
            firmware_version: None,
            pin_tries_left: None,
            keys: vec![],
            also_present: vec![],
            detail: None,
            custody: None,
        }
    }
    fn unlock(&self, _: &[u8]) -> Result<(), MethodError> {
        Ok(())
    }
    fn lock(&self) -> Result<(), MethodError> {
        Ok(())
    }
    fn unseal(&self, items: Vec<SealedItem>) -> Result<Vec<ItemResult>, MethodError> {
        std::thread::sleep(self.0);
        Ok(items.iter().map(|_| Err(ItemError::Record(RecordErrorCode::TagMismatch))).collect())
    }
    fn unlock_only_on_bridge_page(&self) -> bool {
        false
    }
}

const A: &str = "http://127.0.0.1:8080";
const B: &str = "https://shop.example";

fn serve(delay: Duration, timeout: Duration) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let cfg = HttpConfig {
        port,
        allowed_origins: vec![A.into(), B.into()],
        max_body_bytes: 64 * 1024,
        max_batch: 8,
        per_origin_concurrency: 1,
        request_timeout: timeout,
    };
    let app = router(cfg, Arc::new(Slow(delay)));
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(l, app).await.unwrap();
        });
    });
    port
}

const BODY: &str = r#"{"items":[{"record":"vk1.VksBATjh3t0UxEmTpOCSkrZRwni5dyxWn1-puxPZBrRqtoyd-dwrRAn4ogmpLyATngCoIgmsGmRHWg3I9qz9eQJMy7aSJ9qmu8a7IA","context":"c"}]}"#;

fn post(port: u16, origin: &str) -> vbzkey_e2e::HttpResponse {
    let host = format!("127.0.0.1:{port}");
    http(
        port,
        "POST",
        "/v1/unseal",
        &[("Host", &host), ("Origin", origin), ("Content-Type", "application/json")],
        BODY.as_bytes(),
    )
}

#[test]
fn a_request_that_takes_too_long_is_cut_off() {
    let port = serve(Duration::from_secs(3), Duration::from_millis(300));
    let r = post(port, A);
    assert_eq!((r.status, r.json()["error"].as_str()), (503, Some("timeout")));
}

#[test]
fn one_origin_cannot_hold_more_than_its_share() {
    let port = serve(Duration::from_millis(1500), Duration::from_secs(10));
    let first = std::thread::spawn(move || post(port, A));
    std::thread::sleep(Duration::from_millis(400));
    let second = post(port, A);
    assert_eq!((second.status, second.json()["error"].as_str()), (429, Some("too_many_requests")));
    assert_eq!(second.header("retry-after"), Some("1"));
    // Another page is not starved by the first one.
    assert_eq!(post(port, B).status, 200);
    assert_eq!(first.join().unwrap().status, 200);
    // Once the first request is done, its slot is free again.
    assert_eq!(post(port, A).status, 200);
}
