//! The checks that keep other web pages away from the bridge, as pure functions.
//!
//! - **Host**: only `127.0.0.1:PORT`, `[::1]:PORT` or `localhost:PORT`. A DNS-rebinding page
//!   (`evil.example` re-pointed at 127.0.0.1) sends its own name as Host and is refused.
//! - **Origin**: exact match against the allow-list (scheme, host and port; no wildcard, no
//!   `null`), plus the bridge's own origins (its local unlock page).
//! - **Content type**: state-changing requests must be `application/json`, which a page can
//!   only send after a CORS preflight; form posts and `text/plain` are refused.
//! - **Status without an Origin**: only the bridge's own page (`Sec-Fetch-Site: same-origin`)
//!   or an address the user typed (`none`). A foreign page's `<img>` or no-cors fetch sends
//!   `cross-site` (or `same-site`) and is refused, so no page can learn the dongle's state or
//!   poll it; command-line clients send `Sec-Fetch-Site: none` themselves.

/// Whether a `Host` header names the bridge itself.
pub fn host_ok(host: Option<&str>, port: u16) -> bool {
    let Some(host) = host else { return false };
    let port = port.to_string();
    ["127.0.0.1", "[::1]", "localhost"].iter().any(|name| {
        host.strip_prefix(name).and_then(|rest| rest.strip_prefix(':')).is_some_and(|p| p == port)
    })
}

/// The bridge's own origins (its unlock page), always allowed.
pub fn own_origins(port: u16) -> [String; 3] {
    [
        format!("http://127.0.0.1:{port}"),
        format!("http://[::1]:{port}"),
        format!("http://localhost:{port}"),
    ]
}

/// Whether `origin` is one of the bridge's own.
pub fn is_own_origin(origin: &str, port: u16) -> bool {
    own_origins(port).iter().any(|o| o == origin)
}

/// Whether `origin` may use the API.
pub fn origin_allowed(origin: &str, allowed: &[String], port: u16) -> bool {
    origin != "null" && (is_own_origin(origin, port) || allowed.iter().any(|a| a == origin))
}

/// Why an allow-list entry is not an exact origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OriginError {
    /// No `https://` or `http://`.
    #[error("an origin starts with https:// or http://")]
    Scheme,
    /// A path, wildcard, query, user or space.
    #[error("an origin is scheme://host[:port] exactly, without path or wildcard")]
    NotExact,
    /// Upper case, or an empty port.
    #[error("write the origin in lower case, as browsers send it")]
    NotCanonical,
}

/// Check an allow-list entry: an exact origin, as a browser sends it.
pub fn check_origin_entry(entry: &str) -> Result<(), OriginError> {
    let rest = entry
        .strip_prefix("https://")
        .or_else(|| entry.strip_prefix("http://"))
        .ok_or(OriginError::Scheme)?;
    if rest.is_empty() || rest.contains(['/', '*', '?', '#', ' ', '@']) || entry != entry.trim() {
        return Err(OriginError::NotExact);
    }
    if entry.ends_with(':') || entry.to_ascii_lowercase() != entry {
        return Err(OriginError::NotCanonical);
    }
    Ok(())
}

/// Whether a `GET /v1/status` without an `Origin` may be answered (see the module docs).
pub fn status_without_origin_ok(sec_fetch_site: Option<&str>) -> bool {
    matches!(sec_fetch_site, Some("same-origin" | "none"))
}

/// Whether a `Content-Type` is JSON (`application/json`, optionally with parameters).
pub fn is_json(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| {
        ct.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_without_origin_only_for_the_bridge_page_or_a_typed_address() {
        assert!(status_without_origin_ok(Some("same-origin")));
        assert!(status_without_origin_ok(Some("none")));
        for bad in [None, Some("cross-site"), Some("same-site"), Some(""), Some("NONE")] {
            assert!(!status_without_origin_ok(bad), "{bad:?}");
        }
    }

    #[test]
    fn host_header() {
        for ok in ["127.0.0.1:7878", "[::1]:7878", "localhost:7878"] {
            assert!(host_ok(Some(ok), 7878), "{ok}");
        }
        for bad in [
            "evil.example:7878",
            "127.0.0.1",
            "127.0.0.1:7879",
            "127.0.0.1:78780",
            "localhost.evil.example:7878",
            "127.0.0.1.nip.io:7878",
            "",
        ] {
            assert!(!host_ok(Some(bad), 7878), "{bad}");
        }
        assert!(!host_ok(None, 7878));
    }

    #[test]
    fn origins() {
        let allowed = vec!["https://shop.example".to_string()];
        assert!(origin_allowed("https://shop.example", &allowed, 7878));
        assert!(origin_allowed("http://127.0.0.1:7878", &allowed, 7878));
        for bad in [
            "null",
            "https://shop.example.evil",
            "http://shop.example",
            "https://shop.example:444",
            "https://evil.example",
            "",
        ] {
            assert!(!origin_allowed(bad, &allowed, 7878), "{bad}");
        }
    }

    #[test]
    fn allow_list_entries_must_be_exact_origins() {
        assert!(check_origin_entry("https://shop.example").is_ok());
        assert!(check_origin_entry("http://localhost:8080").is_ok());
        for bad in [
            "*",
            "https://*.shop.example",
            "https://shop.example/",
            "shop.example",
            "null",
            "https://Shop.example",
            "https://",
        ] {
            assert!(check_origin_entry(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn content_types() {
        assert!(is_json(Some("application/json")));
        assert!(is_json(Some("application/json; charset=utf-8")));
        for bad in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data"),
            Some("application/jsonp"),
        ] {
            assert!(!is_json(bad), "{bad:?}");
        }
    }
}
