//! The live page: what `GET /` answers a browser. One HTML page, its
//! script and its style sheet, compiled into the binary, and
//! `GET /live.json`, the snapshot the script polls about twice a second
//! (the visitor's 4-tuple, the socket table, the counters and the packet
//! log since the last poll).
//!
//! Everything the page needs is here: no CDN, no web fonts, no build
//! step. The host may have no network but the TUN link, and the page
//! shows the host's own packets, which fetches from elsewhere would only
//! clutter. The script is small hand-kept JavaScript (`live.js`).

use hyper::header::{HeaderMap, ACCEPT};
use serde_json::{json, Value};

use crate::host::{ConnInfo, HostInfo};

/// The page, `GET /` with `Accept: text/html`.
pub const PAGE: &str = include_str!("index.html");

/// `GET /live.js`: the script that keeps the page up to date.
pub const SCRIPT: &str = include_str!("live.js");

/// `GET /live.css`.
pub const STYLE: &str = include_str!("live.css");

/// Whether a request for `/` comes from a browser: its `Accept` field
/// lists `text/html` (with a non-zero weight). curl sends `*/*` and gets
/// the text page, which reads better in a terminal.
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("");
            // RFC 9110 §12.4.2: `q=0` means "not acceptable".
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            media.eq_ignore_ascii_case("text/html") && !refused
        })
}

/// The `since` of a `/live.json?since=N` query: the packet log's
/// sequence number to continue from, 0 (everything kept) when absent.
///
/// # Errors
/// `since` is there but not a decimal number; the message says so.
pub fn since(query: Option<&str>) -> Result<u64, String> {
    let value = query
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("since="));
    match value {
        None => Ok(0),
        Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => n
            .parse()
            .map_err(|_| format!("since={n} is larger than any packet number")),
        Some(n) => Err(format!(
            "since must be a packet number (a decimal integer), not {n:?}"
        )),
    }
}

/// The `/live.json` snapshot for the connection `you`:
/// `{"you": {"local", "remote"}, "sockets": [...], "stats": {...},
/// "packets": {"next", "packets": [...]}}`, each part as [`HostInfo`]
/// gives it.
pub fn snapshot(host: &dyn HostInfo, you: &ConnInfo, since: u64) -> Value {
    json!({
        "you": {
            "local": you.local.to_string(),
            "remote": you.remote.to_string(),
        },
        "sockets": host.sockets(),
        "stats": host.stats(),
        "packets": host.packets(since),
    })
}

#[cfg(test)]
mod tests {
    use hyper::header::HeaderValue;

    use super::*;

    fn accept(values: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(ACCEPT, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn browsers_want_html_and_curl_does_not() {
        let chromium = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert!(wants_html(&accept(&[chromium])));
        assert!(wants_html(&accept(&["application/json", "Text/HTML"])));
        assert!(!wants_html(&accept(&["*/*"])));
        assert!(!wants_html(&accept(&[])));
        assert!(!wants_html(&accept(&["text/html;q=0, */*"])));
        assert!(!wants_html(&accept(&["text/htmlx"])));
    }

    #[test]
    fn since_is_a_decimal_packet_number_or_zero() {
        assert_eq!(since(None), Ok(0));
        assert_eq!(since(Some("x=1")), Ok(0));
        assert_eq!(since(Some("since=17")), Ok(17));
        assert_eq!(since(Some("a=b&since=3")), Ok(3));
        for bad in [
            "since=",
            "since=-1",
            "since=1e3",
            "since=99999999999999999999",
        ] {
            assert!(since(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_page_fetches_only_from_its_own_host() {
        for asset in [PAGE, SCRIPT, STYLE] {
            assert!(!asset.contains("http://") && !asset.contains("https://"));
            assert!(!asset.contains("//cdn") && !asset.contains("@import"));
        }
        assert!(PAGE.contains(r#"src="/live.js""#));
        assert!(PAGE.contains(r#"href="/live.css""#));
        assert!(SCRIPT.contains("/live.json?since="));
    }
}
