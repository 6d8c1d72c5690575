//! The localhost HTTP API for staff browsers.
//!
//! The API is documented in OpenAPI 3.1 in docs/bridge-openapi.json (for people:
//! docs/API.md); [`routes`] is the list both the router and that document's test use.
//!
//! | route | what |
//! | --- | --- |
//! | `GET /v1/status` | method, lock state, keys, dongle serial |
//! | `POST /v1/unlock` | `{"pin": "…"}` |
//! | `POST /v1/lock` | `{}` |
//! | `POST /v1/unseal` | `{"items": [{"record": "vk1.…", "context": "…"}]}` → `{"results": [{"value": "…"} \| {"error": "code"}]}` |
//! | `GET /vbzkey.js` | the staff JS client |
//! | `GET /unlock`, `GET /unlock.js` | the bridge's own unlock page (passphrase methods) |
//!
//! Every request passes [`guard`] first: Host, Origin, CORS / Private Network Access
//! preflights, content type, per-origin concurrency and a timeout. Answers are never cached
//! and never logged with their bodies.

pub mod body;
pub mod guard;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use vbzkey_protocol::record::{self, MAX_CONTEXT_LEN};
use vbzkey_protocol::wire::SealedItem;
use zeroize::Zeroizing;

use crate::method::{KeyMethod, MethodError};

const JS_CLIENT: &str = include_str!("../../static/vbzkey.js");
const UNLOCK_PAGE: &str = include_str!("../../static/unlock.html");
const UNLOCK_JS: &str = include_str!("../../static/unlock.js");

/// HTTP limits and policy.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// The port (on 127.0.0.1 and ::1).
    pub port: u16,
    /// Exact origins allowed to call the API.
    pub allowed_origins: Vec<String>,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Most records in one unseal.
    pub max_batch: usize,
    /// Requests in flight per origin.
    pub per_origin_concurrency: usize,
    /// Longest a request may take.
    pub request_timeout: Duration,
}

/// Shared state of the server.
pub struct App {
    cfg: HttpConfig,
    method: Arc<dyn KeyMethod>,
    in_flight: Mutex<HashMap<String, usize>>,
}

/// Every route the bridge serves. The router is built from this list and nothing else, and
/// docs/bridge-openapi.json must document exactly these (host-bridge/tests/openapi.rs), so
/// the two cannot drift apart. `OPTIONS` (CORS preflights) is answered by [`guard`] on any
/// path; `HEAD` comes with every `GET`.
#[derive(Debug, Clone, Copy)]
enum Route {
    Status,
    Unlock,
    Lock,
    Unseal,
    StaffClient,
    UnlockPage,
    UnlockScript,
}

impl Route {
    const ALL: [Route; 7] = [
        Route::Status,
        Route::Unlock,
        Route::Lock,
        Route::Unseal,
        Route::StaffClient,
        Route::UnlockPage,
        Route::UnlockScript,
    ];

    fn path(self) -> &'static str {
        match self {
            Route::Status => "/v1/status",
            Route::Unlock => "/v1/unlock",
            Route::Lock => "/v1/lock",
            Route::Unseal => "/v1/unseal",
            Route::StaffClient => "/vbzkey.js",
            Route::UnlockPage => "/unlock",
            Route::UnlockScript => "/unlock.js",
        }
    }

    fn method(self) -> Method {
        match self {
            Route::Unlock | Route::Lock | Route::Unseal => Method::POST,
            Route::Status | Route::StaffClient | Route::UnlockPage | Route::UnlockScript => {
                Method::GET
            }
        }
    }

    fn handler(self) -> MethodRouter<Arc<App>> {
        match self {
            Route::Status => get(status),
            Route::Unlock => post(unlock),
            Route::Lock => post(lock),
            Route::Unseal => post(unseal),
            Route::StaffClient => {
                get(|| async { asset("application/javascript; charset=utf-8", JS_CLIENT) })
            }
            Route::UnlockPage => get(|| async { asset("text/html; charset=utf-8", UNLOCK_PAGE) }),
            Route::UnlockScript => {
                get(|| async { asset("application/javascript; charset=utf-8", UNLOCK_JS) })
            }
        }
    }
}

/// The routes the bridge serves, as `(method, path)`.
pub fn routes() -> impl Iterator<Item = (Method, &'static str)> {
    Route::ALL.into_iter().map(|r| (r.method(), r.path()))
}

/// Build the router for `method`.
pub fn router(cfg: HttpConfig, method: Arc<dyn KeyMethod>) -> Router {
    let max_body = cfg.max_body_bytes;
    let app = Arc::new(App { cfg, method, in_flight: Mutex::new(HashMap::new()) });
    Route::ALL
        .into_iter()
        .fold(Router::new(), |r, route| r.route(route.path(), route.handler()))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "no such endpoint") })
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(Arc::clone(&app), guard))
        .with_state(app)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, axum::Json(json!({ "error": code, "message": message }))).into_response()
}

fn method_error(e: &MethodError) -> Response {
    let status = match e {
        MethodError::Absent(_) | MethodError::KeyUnavailable(_) | MethodError::NotPaired(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        MethodError::Locked | MethodError::LockedOut => StatusCode::LOCKED,
        MethodError::WrongSecret { .. } => StatusCode::UNAUTHORIZED,
        MethodError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        MethodError::NotInitialised => StatusCode::CONFLICT,
        MethodError::Refused(_) | MethodError::BadAnswer(_) => StatusCode::BAD_GATEWAY,
    };
    let mut body = json!({ "error": e.code(), "message": e.to_string() });
    if let MethodError::WrongSecret { tries_left: Some(n) } = e {
        body["tries_left"] = json!(n);
    }
    let mut r = (status, axum::Json(body)).into_response();
    if let MethodError::RateLimited { retry_after_ms } = e {
        let secs = retry_after_ms.div_ceil(1000).max(1);
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    r
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Counts a request against its origin's concurrency budget until dropped.
struct Slot<'a> {
    app: &'a App,
    origin: String,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut m = self.app.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.origin) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.origin);
            }
        }
    }
}

fn take_slot<'a>(app: &'a App, origin: &str) -> Option<Slot<'a>> {
    let mut m = app.in_flight.lock().unwrap_or_else(|p| p.into_inner());
    let n = m.entry(origin.to_string()).or_insert(0);
    if *n >= app.cfg.per_origin_concurrency {
        return None;
    }
    *n += 1;
    Some(Slot { app, origin: origin.to_string() })
}

fn cors_headers(h: &mut HeaderMap, origin: &str) {
    if let Ok(v) = HeaderValue::from_str(origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
}

/// The checks every request passes. See [`guard`](self::guard) for the rules.
async fn guard(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let (path, method) = (req.uri().path().to_string(), req.method().clone());
    let port = app.cfg.port;
    let origin = header_str(req.headers(), header::ORIGIN).map(str::to_string);
    let mut resp = 'answer: {
        if !guard::host_ok(header_str(req.headers(), header::HOST), port) {
            break 'answer error(
                StatusCode::FORBIDDEN,
                "bad_host",
                "requests must be addressed to 127.0.0.1, [::1] or localhost",
            );
        }
        let allowed = origin
            .as_deref()
            .is_some_and(|o| guard::origin_allowed(o, &app.cfg.allowed_origins, port));
        if method == Method::OPTIONS {
            break 'answer preflight(req.headers(), origin.as_deref(), allowed);
        }
        let state_changing = method != Method::GET && method != Method::HEAD;
        match (&origin, allowed) {
            (Some(_), false) => {
                break 'answer error(
                    StatusCode::FORBIDDEN,
                    "origin_not_allowed",
                    "this page's origin is not on the bridge's allow-list",
                );
            }
            (None, _) if state_changing => {
                break 'answer error(
                    StatusCode::FORBIDDEN,
                    "origin_required",
                    "requests that change state must come from an allowed page",
                );
            }
            (None, _)
                if path == "/v1/status"
                    && !guard::status_without_origin_ok(header_str(
                        req.headers(),
                        header::HeaderName::from_static("sec-fetch-site"),
                    )) =>
            {
                break 'answer error(
                    StatusCode::FORBIDDEN,
                    "origin_required",
                    "the status is for allowed pages, the bridge's own page, or an address typed \
                     by hand (command-line clients: send Sec-Fetch-Site: none)",
                );
            }
            _ => {}
        }
        if state_changing && !guard::is_json(header_str(req.headers(), header::CONTENT_TYPE)) {
            break 'answer error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "json_required",
                "send Content-Type: application/json",
            );
        }
        let key = origin.clone().unwrap_or_else(|| "(no origin)".into());
        let Some(_slot) = take_slot(&app, &key) else {
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "too many requests in flight from this page",
            );
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(1));
            break 'answer r;
        };
        match tokio::time::timeout(app.cfg.request_timeout, next.run(req)).await {
            Ok(r) => r,
            Err(_) => {
                error(StatusCode::SERVICE_UNAVAILABLE, "timeout", "the key did not answer in time")
            }
        }
    };
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    // No page may frame the bridge (the unlock page above all: clickjacking a passphrase).
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("frame-ancestors 'none'"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if let Some(o) =
        origin.as_deref().filter(|o| guard::origin_allowed(o, &app.cfg.allowed_origins, port))
    {
        cors_headers(h, o);
    }
    // Never a body, never a secret: who asked what, and how it went.
    tracing::info!(
        "{method} {path} origin={} -> {} in {} ms",
        origin.as_deref().unwrap_or("-"),
        resp.status().as_u16(),
        started.elapsed().as_millis()
    );
    resp
}

/// Answer a CORS preflight: only for allowed origins, only for what the API uses. Chrome's
/// older Private Network Access preflight (`Access-Control-Request-Private-Network`) gets
/// `Access-Control-Allow-Private-Network: true` on the same terms.
fn preflight(h: &HeaderMap, origin: Option<&str>, allowed: bool) -> Response {
    let Some(origin) = origin.filter(|_| allowed) else {
        return error(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "this page's origin is not on the bridge's allow-list",
        );
    };
    let method_ok =
        matches!(header_str(h, header::ACCESS_CONTROL_REQUEST_METHOD), Some("GET" | "POST"));
    let headers_ok = header_str(h, header::ACCESS_CONTROL_REQUEST_HEADERS).is_none_or(|v| {
        v.split(',').map(str::trim).all(|x| x.is_empty() || x.eq_ignore_ascii_case("content-type"))
    });
    if !method_ok || !headers_ok {
        return error(
            StatusCode::FORBIDDEN,
            "preflight_refused",
            "only GET and POST with Content-Type are allowed",
        );
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    let out = r.headers_mut();
    cors_headers(out, origin);
    out.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST"));
    out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("Content-Type"));
    out.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    if h.get("access-control-request-private-network").is_some_and(|v| v == "true") {
        out.insert("access-control-allow-private-network", HeaderValue::from_static("true"));
    }
    r
}

/// Run a blocking method call off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("method calls do not panic")
}

async fn status(State(app): State<Arc<App>>) -> Response {
    let method = Arc::clone(&app.method);
    let s = blocking(move || method.status()).await;
    let mut body = serde_json::to_value(&s).expect("plain data");
    body["bridge_version"] = json!(env!("CARGO_PKG_VERSION"));
    body["unlock_url"] = json!(format!("http://127.0.0.1:{}/unlock", app.cfg.port));
    body["unlock_on_bridge_page"] = json!(app.method.unlock_only_on_bridge_page());
    axum::Json(body).into_response()
}

/// Read a request body: its size, then its JSON shape ([`body`]), then the endpoint's type.
/// Every refusal says what the endpoint takes; none quotes the body.
fn body_json<T: serde::de::DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
    shape: &'static str,
    check: fn(&body::Json) -> Result<(), body::BodyError>,
) -> Result<T, Box<Response>> {
    let bytes = body.map_err(|e| {
        Box::new(if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", "the request body is too large")
        } else {
            error(StatusCode::BAD_REQUEST, "bad_body", "the request body could not be read")
        })
    })?;
    // Wrapped so a PIN in a malformed body is still wiped.
    let bytes = Zeroizing::new(bytes.to_vec());
    let refuse = |e: body::BodyError| {
        Box::new(error(StatusCode::BAD_REQUEST, "malformed_json", &e.to_string()))
    };
    check(&body::outline(&bytes, shape).map_err(refuse)?).map_err(refuse)?;
    // The outline check passed, so this parse does too; should it not, nothing is quoted.
    serde_json::from_slice(&bytes)
        .map_err(|_| refuse(body::BodyError::Shape(format!("the body must be {shape}"))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnlockBody {
    #[serde(alias = "passphrase")]
    pin: Zeroizing<String>,
}

async fn unlock(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body: UnlockBody = match body_json(body, body::UNLOCK_SHAPE, body::check_unlock) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let origin = header_str(&headers, header::ORIGIN).unwrap_or_default();
    if app.method.unlock_only_on_bridge_page() && !guard::is_own_origin(origin, app.cfg.port) {
        return error(
            StatusCode::FORBIDDEN,
            "unlock_on_bridge_page",
            "type the passphrase into the bridge's own page, not into a web page",
        );
    }
    let method = Arc::clone(&app.method);
    match blocking(move || method.unlock(body.pin.as_bytes())).await {
        Ok(()) => axum::Json(json!({ "state": "unlocked" })).into_response(),
        Err(e) => method_error(&e),
    }
}

async fn lock(State(app): State<Arc<App>>, body: Result<Bytes, BytesRejection>) -> Response {
    if let Err(r) = body_json::<Value>(body, body::LOCK_SHAPE, body::check_lock) {
        return *r;
    }
    let method = Arc::clone(&app.method);
    match blocking(move || method.lock()).await {
        Ok(()) => axum::Json(json!({ "state": "locked" })).into_response(),
        Err(e) => method_error(&e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnsealBody {
    items: Vec<UnsealItem>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnsealItem {
    record: String,
    context: String,
}

async fn unseal(State(app): State<Arc<App>>, body: Result<Bytes, BytesRejection>) -> Response {
    let body: UnsealBody = match body_json(body, body::UNSEAL_SHAPE, body::check_unseal) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let n = body.items.len();
    if n == 0 || n > app.cfg.max_batch {
        let msg = format!("send 1 to {} items", app.cfg.max_batch);
        return error(StatusCode::BAD_REQUEST, "bad_batch_size", &msg);
    }
    // Records that are not even well-formed text never reach the key.
    let mut results: Vec<Option<Result<String, &'static str>>> = vec![None; n];
    let mut forward = Vec::with_capacity(n);
    let mut positions = Vec::with_capacity(n);
    for (i, item) in body.items.into_iter().enumerate() {
        if item.context.len() > MAX_CONTEXT_LEN {
            results[i] = Some(Err("context_too_long"));
            continue;
        }
        match record::from_text(item.record.trim()) {
            Ok(rec) => {
                forward.push(SealedItem { record: rec, context: item.context.into_bytes() });
                positions.push(i);
            }
            Err(e) => results[i] = Some(Err(e.code())),
        }
    }
    if !forward.is_empty() {
        let method = Arc::clone(&app.method);
        match blocking(move || method.unseal(forward)).await {
            Ok(out) => {
                for (pos, r) in positions.into_iter().zip(out) {
                    // Record values are UTF-8 by format (the dongle checks it too).
                    results[pos] = Some(r.map_err(|e| e.code()).and_then(|p| {
                        String::from_utf8(p.0.to_vec()).map_err(|_| "plaintext_not_utf8")
                    }));
                }
            }
            Err(e) => return method_error(&e),
        }
    }
    let items: Vec<Value> = results
        .into_iter()
        .map(|r| match r.expect("every item has a result") {
            Ok(value) => json!({ "value": value }),
            Err(code) => json!({ "error": code }),
        })
        .collect();
    // From here the plaintext is in buffers hyper owns and frees without wiping; that is the
    // bridge's documented limit (docs/THREAT-MODEL.md): it lives only as long as the answer.
    let mut r = Response::new(Body::from(
        serde_json::to_vec(&json!({ "results": items })).expect("plain data"),
    ));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}
