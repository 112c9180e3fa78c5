//! HTTP/1.1 framing for JSON-RPC: one `POST` with a JSON body per call
//! (RFC 9112 message syntax, RFC 9110 semantics). Heads are parsed by
//! `httparse`; this file decides what the RPC endpoint accepts and reads
//! exactly `Content-Length` body bytes, so requests can follow each other on
//! a kept-alive connection.
//!
//! Every refusal is a clear 4xx with a plain-text reason, after which the
//! connection is closed (the framing may be lost, so nothing after it can be
//! trusted).
//!
//! Why this stays beside hyper ([`crate::tokio::http`]): it serves any
//! blocking `Read + Write` stream, such as the stack's blocking
//! `TcpStream`, in a program with no async runtime, and hyper needs one.
//! Both servers take their rules from [`check_request`], so they accept
//! and refuse the same requests.
//!
//! DoS bounds: the head may be at most [`MAX_HEAD`] bytes with at most
//! [`MAX_HEADERS`] header lines; the body at most `max_body` bytes (default
//! [`DEFAULT_MAX_BODY`], 1 MiB), checked before any of it is read.

use std::io::{self, Read, Write};

/// Default maximum body size: 1 MiB.
pub const DEFAULT_MAX_BODY: usize = 1 << 20;
/// Maximum size of the request line plus headers.
pub const MAX_HEAD: usize = 16 * 1024;
/// Maximum number of header lines.
pub const MAX_HEADERS: usize = 32;

/// Paths the RPC endpoint answers on.
const RPC_PATHS: [&str; 2] = ["/", "/rpc"];

/// RFC 9110 §10.1.1: the interim response a client waits for after `Expect: 100-continue`.
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// A request the endpoint accepted; its body is the JSON-RPC text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub path: String,
    pub body: Vec<u8>,
    /// Whether the client wants the connection kept open afterwards.
    pub keep_alive: bool,
}

/// A refusal: status line and the reason shown to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub status: u16,
    pub reason: &'static str,
    pub detail: String,
}

impl Reject {
    pub fn new(status: u16, reason: &'static str, detail: impl Into<String>) -> Reject {
        Reject {
            status,
            reason,
            detail: detail.into(),
        }
    }

    /// The plain-text body a refusal is sent with.
    pub fn body(&self) -> String {
        format!("{} {}: {}\n", self.status, self.reason, self.detail)
    }
}

/// What [`HttpConn::read_request`] found next on the stream.
#[derive(Debug)]
pub enum Next {
    Request(HttpRequest),
    /// Answer with this status (see [`HttpConn::write_reject`]) and close.
    Reject(Reject),
    /// The peer closed the connection between requests (or mid-request).
    Closed,
}

/// The parts of a request head the endpoint cares about.
#[derive(Debug)]
struct Head {
    path: String,
    content_length: usize,
    expect_continue: bool,
    keep_alive: bool,
}

/// Parses and checks one head. `Ok(None)` means incomplete: read more.
fn parse_head(buf: &[u8], max_body: usize) -> Result<Option<(Head, usize)>, Reject> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
            return Err(Reject::new(
                431,
                "Request Header Fields Too Large",
                format!("the request head exceeds {MAX_HEAD} bytes"),
            ));
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Reject::new(
                431,
                "Request Header Fields Too Large",
                format!("more than {MAX_HEADERS} header lines"),
            ));
        }
        Err(e) => {
            return Err(Reject::new(
                400,
                "Bad Request",
                format!("malformed HTTP request: {e}"),
            ))
        }
    };
    // Complete parse: httparse guarantees method, path and version are set.
    let (Some(method), Some(path), Some(version)) = (req.method, req.path, req.version) else {
        return Err(Reject::new(400, "Bad Request", "malformed request line"));
    };
    let mut content_length = None;
    let mut chunked = false;
    let mut expect_continue = false;
    let mut content_type = None;
    // RFC 9112 §9.3: HTTP/1.1 defaults to persistent, HTTP/1.0 does not.
    let mut keep_alive = version == 1;
    for h in req.headers.iter() {
        let value = String::from_utf8_lossy(h.value);
        let value = value.trim();
        if h.name.eq_ignore_ascii_case("content-length") {
            // RFC 9112 §6.3: differing or invalid Content-Length is unrecoverable.
            match (value.parse::<usize>(), content_length) {
                (Ok(n), None) => content_length = Some(n),
                (Ok(n), Some(m)) if n == m => {}
                _ => return Err(Reject::new(400, "Bad Request", "invalid Content-Length")),
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = true;
        } else if h.name.eq_ignore_ascii_case("expect") {
            expect_continue = value.eq_ignore_ascii_case("100-continue");
        } else if h.name.eq_ignore_ascii_case("content-type") {
            content_type = Some(value.to_owned());
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    keep_alive = true;
                }
            }
        }
    }
    let route = path.split('?').next().unwrap_or(path);
    let content_length = check_request(
        method,
        route,
        chunked,
        content_length,
        content_type.as_deref(),
        max_body,
    )?;
    let head = Head {
        path: route.to_owned(),
        content_length,
        expect_continue,
        keep_alive,
    };
    Ok(Some((head, head_len)))
}

/// What the endpoint accepts, decided from a parsed head: the path, the
/// method, a `Content-Length` body (not chunked) within `max_body`, and a
/// JSON `Content-Type`. Returns the body length. Shared by this server and
/// the hyper one (`crate::tokio::http`), so both refuse alike.
///
/// # Errors
///
/// The [`Reject`] (404, 405, 411, 413, 415) for the first rule broken.
pub fn check_request(
    method: &str,
    route: &str,
    chunked: bool,
    content_length: Option<usize>,
    content_type: Option<&str>,
    max_body: usize,
) -> Result<usize, Reject> {
    if !RPC_PATHS.contains(&route) {
        return Err(Reject::new(
            404,
            "Not Found",
            format!("no such path {route}; POST JSON-RPC to /rpc"),
        ));
    }
    if method != "POST" {
        return Err(Reject::new(
            405,
            "Method Not Allowed",
            format!("{method} is not supported; JSON-RPC calls are POST"),
        ));
    }
    if chunked {
        return Err(Reject::new(
            411,
            "Length Required",
            "chunked bodies are not supported; send Content-Length",
        ));
    }
    let Some(content_length) = content_length else {
        return Err(Reject::new(
            411,
            "Length Required",
            "send the body with a Content-Length header",
        ));
    };
    if content_length > max_body {
        return Err(Reject::new(
            413,
            "Content Too Large",
            format!("body of {content_length} bytes exceeds the limit of {max_body}"),
        ));
    }
    let media_type = content_type.map(str::to_ascii_lowercase);
    let media_type = media_type
        .as_deref()
        .and_then(|t| t.split(';').next())
        .map(str::trim);
    if media_type != Some("application/json") {
        return Err(Reject::new(
            415,
            "Unsupported Media Type",
            "send Content-Type: application/json",
        ));
    }
    Ok(content_length)
}

/// An HTTP/1.1 server connection on any byte stream.
#[derive(Debug)]
pub struct HttpConn<S> {
    stream: S,
    /// Bytes read but not consumed yet (the next pipelined request).
    buf: Vec<u8>,
    max_body: usize,
}

impl<S: Read + Write> HttpConn<S> {
    /// A connection that refuses bodies over `max_body` bytes with 413.
    pub fn new(stream: S, max_body: usize) -> HttpConn<S> {
        HttpConn {
            stream,
            buf: Vec::new(),
            max_body,
        }
    }

    /// Reads the next request: head, the `100 Continue` if asked for, body.
    ///
    /// # Errors
    ///
    /// I/O errors of the stream (not protocol errors: those are `Next::Reject`).
    pub fn read_request(&mut self) -> io::Result<Next> {
        let (head, head_len) = loop {
            match parse_head(&self.buf, self.max_body) {
                Ok(Some(found)) => break found,
                Ok(None) => {}
                Err(reject) => return Ok(Next::Reject(reject)),
            }
            if !self.fill()? {
                return Ok(Next::Closed);
            }
        };
        self.buf.drain(..head_len);
        if head.expect_continue && self.buf.len() < head.content_length {
            self.stream.write_all(CONTINUE)?;
            self.stream.flush()?;
        }
        while self.buf.len() < head.content_length {
            if !self.fill()? {
                return Ok(Next::Closed);
            }
        }
        let body: Vec<u8> = self.buf.drain(..head.content_length).collect();
        Ok(Next::Request(HttpRequest {
            path: head.path,
            body,
            keep_alive: head.keep_alive,
        }))
    }

    /// Reads more bytes into the buffer; false at end of stream.
    fn fill(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; 8 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.buf
                        .extend_from_slice(chunk.get(..n).unwrap_or_default());
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// 200 with a JSON body, or 204 when there is nothing to say (a
    /// notification or an all-notification batch).
    ///
    /// # Errors
    ///
    /// I/O errors of the stream.
    pub fn write_json(&mut self, body: Option<&[u8]>, keep_alive: bool) -> io::Result<()> {
        match body {
            Some(b) => self.write_response(200, "OK", "application/json", b, keep_alive, &[]),
            None => self.write_response(204, "No Content", "", &[], keep_alive, &[]),
        }
    }

    /// The 4xx for a refusal, with `Connection: close`.
    ///
    /// # Errors
    ///
    /// I/O errors of the stream.
    pub fn write_reject(&mut self, reject: &Reject) -> io::Result<()> {
        let body = reject.body();
        let allow: &[(&str, &str)] = if reject.status == 405 {
            &[("Allow", "POST")]
        } else {
            &[]
        };
        self.write_response(
            reject.status,
            reject.reason,
            "text/plain; charset=utf-8",
            body.as_bytes(),
            false,
            allow,
        )
    }

    fn write_response(
        &mut self,
        status: u16,
        reason: &str,
        content_type: &str,
        body: &[u8],
        keep_alive: bool,
        extra: &[(&str, &str)],
    ) -> io::Result<()> {
        let mut out = format!("HTTP/1.1 {status} {reason}\r\n");
        // RFC 9110 §15.3.5: a 204 carries no content and no Content-Length is needed.
        if status != 204 {
            out.push_str(&format!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        for (name, value) in extra {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str(if keep_alive {
            "Connection: keep-alive\r\n\r\n"
        } else {
            "Connection: close\r\n\r\n"
        });
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(body);
        self.stream.write_all(&bytes)?;
        self.stream.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Option<(Head, usize)>, Reject> {
        parse_head(text.as_bytes(), 100)
    }

    fn status(text: &str) -> u16 {
        head(text).unwrap_err().status
    }

    const OK_HEAD: &str = "POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n";

    #[test]
    fn accepts_json_post_and_defaults_to_keep_alive() {
        let (h, n) = head(OK_HEAD).unwrap().unwrap();
        assert_eq!(
            (h.content_length, h.keep_alive, n),
            (2, true, OK_HEAD.len())
        );
    }

    #[test]
    fn partial_head_is_incomplete_not_an_error() {
        assert!(head("POST /rpc HTTP/1.1\r\nContent-Ty").unwrap().is_none());
    }

    #[test]
    fn refusals_use_the_matching_status() {
        assert_eq!(status("GARBAGE\r\n\r\n"), 400);
        assert_eq!(status("POST /nope HTTP/1.1\r\n\r\n"), 404);
        assert_eq!(status("GET /rpc HTTP/1.1\r\n\r\n"), 405);
        assert_eq!(
            status("POST /rpc HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"),
            411
        );
        assert_eq!(
            status("POST /rpc HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            411
        );
        assert_eq!(
            status("POST /rpc HTTP/1.1\r\nContent-Length: 101\r\n\r\n"),
            413
        );
        assert_eq!(
            status("POST /rpc HTTP/1.1\r\nContent-Length: 1\r\nContent-Type: text/plain\r\n\r\n"),
            415
        );
        assert_eq!(
            status("POST /rpc HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            400
        );
    }

    #[test]
    fn http10_closes_unless_asked_to_keep_alive() {
        let t = "POST / HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: 0\r\n\r\n";
        assert!(!head(t).unwrap().unwrap().0.keep_alive);
        let t = "POST / HTTP/1.1\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: 0\r\n\r\n";
        assert!(!head(t).unwrap().unwrap().0.keep_alive);
    }

    #[test]
    fn oversize_head_is_431() {
        let t = format!("POST / HTTP/1.1\r\nX: {}", "a".repeat(MAX_HEAD));
        assert_eq!(status(&t), 431);
    }
}
