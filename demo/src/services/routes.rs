//! The demo's web pages: which path answers what. The HTTP framing is
//! hyper's (`http.rs`); the data comes from [`HostInfo`] and the RPC
//! [`rpc::Router`].
//!
//! | route            | answer                                                |
//! |------------------|-------------------------------------------------------|
//! | `GET /`          | text: the caller's 4-tuple and what else to try; a browser (`Accept: text/html`) gets the live page ([`live`]) |
//! | `GET /live.json?since=N` | JSON: [`live::snapshot`], what the live page polls |
//! | `GET /live.js`, `/live.css` | the live page's script and style sheet       |
//! | `GET /sockets`   | JSON: [`HostInfo::sockets`]                           |
//! | `GET /stats`     | JSON: [`HostInfo::stats`]                             |
//! | `GET /metrics`   | Prometheus text: [`HostInfo::metrics`], then the demo's `demo_*` |
//! | `GET /bytes/N`   | N bytes, byte i = i mod 251 (N decimal, at most `Limits::max_bytes`, default 16 GiB; more is 400) |
//! | `POST /sha256`   | lowercase hex SHA-256 of the body, then `\n`          |
//! | `POST /rpc`      | JSON-RPC 2.0 reply then `\n`; 204 if none; body at most [`MAX_RPC_BODY`] bytes |
//!
//! `HEAD` is accepted wherever `GET` is. An HTTP/1.1 request without
//! `Host` is 400 (RFC 9112 §3.2).

use std::io;
use std::net::IpAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_LENGTH, HOST, VARY};
use hyper::{Method, Request, Response, Version};
use sha2::{Digest, Sha256};

use crate::host::{ConnInfo, HostInfo};
use crate::services::http::{self, BodyReader, Reply};
use crate::services::limits::{Counters, Limits};
use crate::services::live;

/// The largest `POST /rpc` body; a larger one gets 413 without being read.
pub const MAX_RPC_BODY: u64 = 1 << 20;

/// The route table, shared by every HTTP connection.
pub struct Routes {
    host: Arc<dyn HostInfo>,
    router: Arc<rpc::Router>,
    limits: Limits,
    counters: Arc<Counters>,
}

impl Routes {
    /// Routes answering from `host` and `router`, within `limits`; the
    /// limits hit are counted in `counters`.
    pub fn new(
        host: Arc<dyn HostInfo>,
        router: Arc<rpc::Router>,
        limits: Limits,
        counters: Arc<Counters>,
    ) -> Routes {
        Routes {
            host,
            router,
            limits,
            counters,
        }
    }

    /// Answers one request.
    ///
    /// # Errors
    /// Reading the body failed or was too slow: the connection is closed
    /// without an answer.
    pub async fn handle(
        &self,
        req: Request<Incoming>,
        info: &ConnInfo,
    ) -> io::Result<Response<Reply>> {
        if req.version() == Version::HTTP_11 && !req.headers().contains_key(HOST) {
            return Ok(http::closing(http::text(
                400,
                "an HTTP/1.1 request needs a Host field (RFC 9112 §3.2)",
            )));
        }
        let get = matches!(*req.method(), Method::GET | Method::HEAD);
        let post = req.method() == Method::POST;
        let path = req.uri().path().to_owned();
        Ok(match path.as_str() {
            "/" if get => index(live::wants_html(req.headers()), info),
            "/live.json" if get => match live::since(req.uri().query()) {
                Ok(since) => no_store(http::json(
                    200,
                    &live::snapshot(self.host.as_ref(), info, since),
                )),
                Err(why) => http::text(400, why),
            },
            "/live.js" if get => http::response(
                200,
                "text/javascript; charset=utf-8",
                Reply::bytes(live::SCRIPT),
            ),
            "/live.css" if get => {
                http::response(200, "text/css; charset=utf-8", Reply::bytes(live::STYLE))
            }
            "/sockets" if get => http::json(200, &self.host.sockets()),
            "/stats" if get => http::json(200, &self.host.stats()),
            "/metrics" if get => http::response(
                200,
                stack::metrics::CONTENT_TYPE,
                Reply::bytes(self.host.metrics()),
            ),
            "/" | "/sockets" | "/stats" | "/metrics" | "/live.json" | "/live.js" | "/live.css" => {
                http::method_not_allowed("GET, HEAD")
            }
            "/sha256" if post => self.sha256(req).await?,
            "/rpc" if post => self.rpc(req).await?,
            "/sha256" | "/rpc" => http::method_not_allowed("POST"),
            _ => match path.strip_prefix("/bytes/") {
                Some(n) if get => {
                    let resp = bytes(n, self.limits.max_bytes);
                    if resp.status() == 413 {
                        Counters::hit(&self.counters.bytes_too_large);
                    }
                    resp
                }
                Some(_) => http::method_not_allowed("GET, HEAD"),
                None => http::text(404, format!("no such path {path:?}; GET / lists them")),
            },
        })
    }

    fn body(&self, req: Request<Incoming>) -> BodyReader {
        BodyReader::new(req, &self.limits, Arc::clone(&self.counters))
    }

    /// `POST /sha256`: hashes the body as it streams through.
    async fn sha256(&self, req: Request<Incoming>) -> io::Result<Response<Reply>> {
        let mut body = self.body(req);
        let mut hasher = Sha256::new();
        while let Some(piece) = body.next().await? {
            hasher.update(&piece);
        }
        Ok(http::text(200, hex(&hasher.finalize())))
    }

    /// `POST /rpc`: the body is one JSON-RPC text; a reply of only
    /// notifications is 204 No Content. A body declared or found to be
    /// over [`MAX_RPC_BODY`] is 413, decided before reading any of a
    /// declared one (so no `100 Continue` is sent for it).
    async fn rpc(&self, req: Request<Incoming>) -> io::Result<Response<Reply>> {
        let too_large = || {
            http::closing(http::text(
                413,
                format!("a JSON-RPC request body may be at most {MAX_RPC_BODY} bytes"),
            ))
        };
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > MAX_RPC_BODY) {
            return Ok(too_large());
        }
        let mut body = self.body(req);
        let mut text = Vec::new();
        while let Some(piece) = body.next().await? {
            if (text.len() + piece.len()) as u64 > MAX_RPC_BODY {
                return Ok(too_large());
            }
            text.extend_from_slice(&piece);
        }
        Ok(match self.router.handle_text(&text) {
            // A final newline, as on port 7070, so `curl` output ends cleanly.
            Some(mut reply) => {
                reply.push(b'\n');
                http::response(200, "application/json", Reply::bytes(reply))
            }
            None => http::response(204, "application/json", Reply::empty()),
        })
    }
}

/// `GET /`: the live page for a browser, the text page for anyone else.
/// Either way the answer depends on `Accept`, which `Vary` tells caches.
fn index(html: bool, info: &ConnInfo) -> Response<Reply> {
    let mut response = if html {
        http::response(200, "text/html; charset=utf-8", Reply::bytes(live::PAGE))
    } else {
        http::text(200, index_page(info))
    };
    response
        .headers_mut()
        .insert(VARY, HeaderValue::from_static("accept"));
    response
}

/// `response` marked never to be cached: a snapshot is stale at once.
fn no_store(mut response: Response<Reply>) -> Response<Reply> {
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The text `GET /` page: the caller's own 4-tuple, then a menu.
fn index_page(info: &ConnInfo) -> String {
    let ConnInfo { local, remote } = info;
    // An IPv6 address in a URL is bracketed (RFC 3986 §3.2.2), and curl
    // takes brackets literally only with -g.
    let (curl, host) = match local.ip() {
        IpAddr::V4(ip) => ("curl", ip.to_string()),
        IpAddr::V6(ip) => ("curl -g", format!("[{ip}]")),
    };
    let here = if local.port() == 80 {
        host
    } else {
        format!("{host}:{}", local.port())
    };
    let ip = local.ip();
    let nc = if ip.is_ipv6() { "nc -6" } else { "nc" };
    format!(
        "you are {remote} talking to {local}\n\
         \n\
         Your connection is the 4-tuple ({}, {}, {}, {}): your address and the\n\
         ephemeral port your host picked, our address and the well-known port.\n\
         Every segment is delivered by that 4-tuple; run curl twice and see\n\
         your port change.\n\
         \n\
         Also try:\n\
         \x20 {curl} {here}/sockets           the socket table as JSON\n\
         \x20 {curl} {here}/stats             counters as JSON\n\
         \x20 {curl} {here}/metrics           the same, and more, for Prometheus\n\
         \x20 {curl} {here}/bytes/1000 | xxd  1000 bytes, byte i = i mod 251\n\
         \x20 {curl} --data-binary @FILE {here}/sha256   SHA-256 of FILE\n\
         \x20 {curl} -d '{{\"jsonrpc\":\"2.0\",\"method\":\"add\",\"params\":[2,3],\"id\":1}}' {here}/rpc\n\
         \x20 {nc} {ip} 7       echo (RFC 862)\n\
         \x20 {nc} {ip} 9       discard (RFC 863)\n\
         \x20 {nc} {ip} 7070    JSON-RPC 2.0, one request per line; try\n\
         \x20   {{\"jsonrpc\":\"2.0\",\"method\":\"rpc.discover\",\"id\":1}}\n\
         \n\
         Or open http://{here}/ in a web browser: the live page shows the socket\n\
         table, the packets and an RPC console as they change.\n",
        remote.ip(),
        remote.port(),
        local.ip(),
        local.port(),
    )
}

/// `GET /bytes/N`: N is a plain decimal number up to `max`. A larger N
/// is answered 413: what the client asked for is more than this server
/// sends in one response (the limit is in the text).
fn bytes(n: &str, max: u64) -> Response<Reply> {
    match n.parse::<u64>() {
        Ok(len) if n.bytes().all(|b| b.is_ascii_digit()) && len <= max => {
            http::response(200, "application/octet-stream", Reply::pattern(len))
        }
        Ok(_) if n.bytes().all(|b| b.is_ascii_digit()) => http::text(
            413,
            format!("/bytes/N serves at most {max} bytes (demo --max-bytes); ask for less"),
        ),
        _ => http::text(
            400,
            format!("/bytes/N needs N to be a decimal number of bytes up to {max}, not {n:?}"),
        ),
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use hyper::body::Body as _;

    use super::*;

    #[test]
    fn hex_is_lowercase_two_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xab, 0xff]), "000fabff");
    }

    #[test]
    fn bytes_rejects_signs_and_junk() {
        for bad in ["", "+5", "-1", "1e3", "0x10", "18446744073709551616", "5/"] {
            assert_eq!(bytes(bad, u64::MAX).status(), 400, "{bad}");
        }
        assert_eq!(
            bytes("18446744073709551615", u64::MAX)
                .body()
                .size_hint()
                .exact(),
            Some(u64::MAX)
        );
    }

    #[test]
    fn bytes_over_the_cap_is_413_with_the_limit() {
        assert_eq!(bytes("1000", 1000).body().to_vec().len(), 1000);
        let r = bytes("1001", 1000);
        assert_eq!(r.status(), 413);
        assert!(String::from_utf8_lossy(&r.body().to_vec()).contains("at most 1000 bytes"));
        assert_eq!(bytes("18446744073709551615", 1000).status(), 413);
    }
}
