//! The demo's web pages: which path answers what. The HTTP framing is in
//! `http.rs`; the data comes from [`HostInfo`] and the RPC [`rpc::Router`].
//!
//! | route            | answer                                                |
//! |------------------|-------------------------------------------------------|
//! | `GET /`          | text: the caller's 4-tuple and what else to try       |
//! | `GET /sockets`   | JSON: [`HostInfo::sockets`]                           |
//! | `GET /stats`     | JSON: [`HostInfo::stats`]                             |
//! | `GET /bytes/N`   | N bytes, byte i = i mod 251 (N decimal, at most `Limits::max_bytes`, default 16 GiB; more is 400) |
//! | `POST /sha256`   | lowercase hex SHA-256 of the body, then `\n`          |
//! | `POST /rpc`      | JSON-RPC 2.0 reply then `\n`; 204 if none; body at most [`MAX_RPC_BODY`] bytes |
//!
//! `HEAD` is accepted wherever `GET` is.

use std::io::{self, Read};
use std::net::IpAddr;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::host::{ConnInfo, HostInfo};
use crate::services::http::{Body, Handler, Request, Response};
use crate::services::limits::{Counters, Limits};

/// The largest `POST /rpc` body; a larger one gets 413 without being read.
pub const MAX_RPC_BODY: u64 = 1 << 20;

/// Size of the buffer `POST /sha256` reads the body through.
const SHA_BUF: usize = 64 * 1024;

/// The route table, shared by every HTTP connection.
pub struct Routes {
    host: Arc<dyn HostInfo>,
    router: Arc<rpc::Router>,
    max_bytes: u64,
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
            max_bytes: limits.max_bytes,
            counters,
        }
    }
}

impl Handler for Routes {
    fn handle(&self, req: &Request, body: &mut dyn Read, info: &ConnInfo) -> io::Result<Response> {
        let get = matches!(req.method.as_str(), "GET" | "HEAD");
        let post = req.method == "POST";
        let path = req.path.as_str();
        Ok(match path {
            "/" if get => Response::text(200, index_page(info)),
            "/sockets" if get => Response::json(200, &self.host.sockets()),
            "/stats" if get => Response::json(200, &self.host.stats()),
            "/" | "/sockets" | "/stats" => Response::method_not_allowed("GET, HEAD"),
            "/sha256" if post => sha256_body(body)?,
            "/rpc" if post => self.rpc(req, body)?,
            "/sha256" | "/rpc" => Response::method_not_allowed("POST"),
            _ => match path.strip_prefix("/bytes/") {
                Some(n) if get => {
                    let resp = bytes(n, self.max_bytes);
                    if resp.status == 413 {
                        Counters::hit(&self.counters.bytes_too_large);
                    }
                    resp
                }
                Some(_) => Response::method_not_allowed("GET, HEAD"),
                None => Response::text(404, format!("no such path {path:?}; GET / lists them")),
            },
        })
    }
}

impl Routes {
    /// `POST /rpc`: the body is one JSON-RPC text; a reply of only
    /// notifications is 204 No Content.
    fn rpc(&self, req: &Request, body: &mut dyn Read) -> io::Result<Response> {
        if req.content_length > MAX_RPC_BODY {
            return Ok(Response::text(
                413,
                format!("a JSON-RPC request body may be at most {MAX_RPC_BODY} bytes"),
            ));
        }
        // Bounded by the check above.
        let mut text = Vec::with_capacity(usize::try_from(req.content_length).unwrap_or(0));
        body.read_to_end(&mut text)?;
        Ok(match self.router.handle_text(&text) {
            // A final newline, as on port 7070, so `curl` output ends cleanly.
            Some(mut reply) => Response {
                status: 200,
                content_type: "application/json",
                allow: None,
                body: Body::Bytes({
                    reply.push(b'\n');
                    reply
                }),
            },
            None => Response {
                status: 204,
                content_type: "application/json",
                allow: None,
                body: Body::Empty,
            },
        })
    }
}

/// The `GET /` page: the caller's own 4-tuple, then a menu.
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
         \x20 {curl} {here}/bytes/1000 | xxd  1000 bytes, byte i = i mod 251\n\
         \x20 {curl} --data-binary @FILE {here}/sha256   SHA-256 of FILE\n\
         \x20 {curl} -d '{{\"jsonrpc\":\"2.0\",\"method\":\"add\",\"params\":[2,3],\"id\":1}}' {here}/rpc\n\
         \x20 {nc} {ip} 7       echo (RFC 862)\n\
         \x20 {nc} {ip} 9       discard (RFC 863)\n\
         \x20 {nc} {ip} 7070    JSON-RPC 2.0, one request per line; try\n\
         \x20   {{\"jsonrpc\":\"2.0\",\"method\":\"rpc.discover\",\"id\":1}}\n",
        remote.ip(),
        remote.port(),
        local.ip(),
        local.port(),
    )
}

/// `GET /bytes/N`: N is a plain decimal number up to `max`. A larger N
/// is answered 413: what the client asked for is more than this server
/// sends in one response (the limit is in the text).
fn bytes(n: &str, max: u64) -> Response {
    match n.parse::<u64>() {
        Ok(len) if n.bytes().all(|b| b.is_ascii_digit()) && len <= max => Response {
            status: 200,
            content_type: "application/octet-stream",
            allow: None,
            body: Body::Pattern(len),
        },
        Ok(_) if n.bytes().all(|b| b.is_ascii_digit()) => Response::text(
            413,
            format!("/bytes/N serves at most {max} bytes (demo --max-bytes); ask for less"),
        ),
        _ => Response::text(
            400,
            format!("/bytes/N needs N to be a decimal number of bytes up to {max}, not {n:?}"),
        ),
    }
}

/// `POST /sha256`: hashes the body as it streams through one buffer.
fn sha256_body(body: &mut dyn Read) -> io::Result<Response> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; SHA_BUF];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(buf.get(..n).unwrap_or(&[]));
    }
    Ok(Response::text(200, hex(&hasher.finalize())))
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
    use super::*;

    #[test]
    fn hex_is_lowercase_two_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xab, 0xff]), "000fabff");
    }

    #[test]
    fn bytes_rejects_signs_and_junk() {
        for bad in ["", "+5", "-1", "1e3", "0x10", "18446744073709551616", "5/"] {
            assert_eq!(bytes(bad, u64::MAX).status, 400, "{bad}");
        }
        assert_eq!(
            bytes("18446744073709551615", u64::MAX).body,
            Body::Pattern(u64::MAX)
        );
    }

    #[test]
    fn bytes_over_the_cap_is_413_with_the_limit() {
        assert_eq!(bytes("1000", 1000).body, Body::Pattern(1000));
        let r = bytes("1001", 1000);
        assert_eq!(r.status, 413);
        let Body::Bytes(text) = r.body else {
            panic!("text")
        };
        assert!(String::from_utf8_lossy(&text).contains("at most 1000 bytes"));
        assert_eq!(bytes("18446744073709551615", 1000).status, 413);
    }
}
