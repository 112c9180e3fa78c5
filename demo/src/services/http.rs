//! HTTP/1.1 message framing for a server (RFC 9112) over any byte stream:
//! read a request head, hand the request and a bounded body reader to a
//! [`Handler`], write its [`Response`] with an exact `Content-Length`, and
//! keep the connection for the next request when both sides allow it.
//!
//! What the routes are lives in `routes.rs`; this file knows nothing of them.
//!
//! Supported: `Content-Length` request bodies of any size (read as a
//! stream), `Expect: 100-continue`, persistent connections (the HTTP/1.1
//! default, `Connection: close` honoured, HTTP/1.0 always closes),
//! pipelined requests, `HEAD`. Not supported: chunked or any other
//! `Transfer-Encoding` on requests (answered 501 and the connection closed;
//! curl only uses it when the body length is unknown, e.g. `-T -`).
//!
//! Bounds (DoS warning): a request head is at most [`MAX_HEAD_BYTES`] with
//! at most [`MAX_HEADERS`] fields (else 431); a connection holds one
//! head buffer of [`MAX_HEAD_BYTES`] and one response buffer of
//! [`OUT_BUF_BYTES`], whatever the bodies' sizes.
//!
//! Deadlines ([`Deadlines`], from the demo's `Limits`): the whole head of
//! the first request must arrive within `head` of the connection's start,
//! and a later one within `head` of its first byte (408, counted in
//! `head_timeouts`); between requests the connection may idle for `idle`
//! (closed quietly, `idle_timeouts`); a body must keep an average of
//! `body_min_rate` bytes/s after `body_grace` (closed, `body_timeouts`).
//! The read timeout is moved to the deadline before each read, so a byte
//! arriving does not restart it.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use crate::host::ConnInfo;
use crate::services::bytes;
use crate::services::conn::ReadTimeout;
use crate::services::limits::{is_timeout, Counters, Limits};

/// The largest request head (request line and header fields) accepted;
/// a larger one gets 431 (RFC 6585 §5).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// The most header fields in one request; more gets 431.
pub const MAX_HEADERS: usize = 64;

/// An unread request body of at most this many bytes is read and dropped
/// after the handler answered, so the connection can carry the next
/// request; a longer one closes the connection instead (RFC 9110 §10.1.1
/// allows either).
pub const DRAIN_LIMIT: u64 = 64 * 1024;

/// Size of the buffer a response is assembled in, so that a small response
/// leaves in one `write` (one segment) and a large one in large writes.
pub const OUT_BUF_BYTES: usize = 64 * 1024;

/// The read deadlines of an HTTP connection; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// The longest a whole request head may take.
    pub head: Duration,
    /// The longest wait for the next request on a kept-alive connection.
    pub idle: Duration,
    /// The slowest average body rate, bytes per second (0 counts as 1).
    pub body_min_rate: u64,
    /// The time a body is given before the rate applies.
    pub body_grace: Duration,
}

impl From<&Limits> for Deadlines {
    fn from(l: &Limits) -> Deadlines {
        Deadlines {
            head: l.head_timeout,
            idle: l.http_idle_timeout,
            body_min_rate: l.body_min_rate,
            body_grace: l.body_grace,
        }
    }
}

/// The interim response sent before reading a body the client holds back
/// (RFC 9110 §10.1.1).
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// A parsed request head: what a handler needs to route it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method token as sent, e.g. `GET` (methods are case-sensitive,
    /// RFC 9110 §9.1).
    pub method: String,
    /// The path of the request target, without the query.
    pub path: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// The body length from `Content-Length` (0 when absent).
    pub content_length: u64,
    /// The client sent `Expect: 100-continue` and waits for it.
    pub expect_continue: bool,
    /// Whether the client allows the connection to stay open afterwards.
    pub keep_alive: bool,
}

/// A response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// No content (`Content-Length: 0`, or none at all for 204).
    Empty,
    /// These bytes.
    Bytes(Vec<u8>),
    /// `n` bytes of the `i mod 251` pattern, generated while sending.
    Pattern(u64),
}

impl Body {
    fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Bytes(b) => b.len() as u64,
            Body::Pattern(n) => *n,
        }
    }
}

/// A complete response, as a handler returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The `Content-Type` of the body.
    pub content_type: &'static str,
    /// The `Allow` field, for 405 (RFC 9110 §15.5.6 requires it).
    pub allow: Option<&'static str>,
    /// The content.
    pub body: Body,
}

impl Response {
    /// A `text/plain` response; a final newline is added so the text ends
    /// cleanly in a terminal.
    pub fn text(status: u16, text: impl Into<String>) -> Response {
        let mut body = text.into().into_bytes();
        if body.last() != Some(&b'\n') {
            body.push(b'\n');
        }
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            allow: None,
            body: Body::Bytes(body),
        }
    }

    /// An `application/json` response of `value` followed by a newline.
    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        let mut body = value.to_string().into_bytes();
        body.push(b'\n');
        Response {
            status,
            content_type: "application/json",
            allow: None,
            body: Body::Bytes(body),
        }
    }

    /// 405 with the `Allow` field listing the methods the path accepts.
    pub fn method_not_allowed(allow: &'static str) -> Response {
        Response {
            allow: Some(allow),
            ..Response::text(405, format!("method not allowed; this path allows {allow}"))
        }
    }
}

/// The application side of the server: one response for each request.
pub trait Handler {
    /// Answers `req`. The body (exactly `req.content_length` bytes) can be
    /// read from `body`; reading it first sends `100 Continue` if the client
    /// asked for it. A handler may leave the body unread (for example to
    /// refuse it); the server then drains or closes as described on
    /// [`DRAIN_LIMIT`].
    ///
    /// # Errors
    /// An error (typically from reading the body) closes the connection
    /// without a response.
    fn handle(&self, req: &Request, body: &mut dyn Read, info: &ConnInfo) -> io::Result<Response>;
}

/// Serves HTTP/1.1 requests on `stream` until the client closes, an error
/// occurs, or either side asks to close. Returns the number of responses
/// sent (not counting `100 Continue`).
///
/// Malformed requests get a 4xx/5xx response with a short text saying what
/// was wrong, then the connection is closed: after a framing error the
/// position of the next request is unknown.
///
/// # Errors
/// I/O errors of the stream, including a body slower than the deadlines
/// allow (`TimedOut`).
pub fn serve<S, H>(
    stream: S,
    info: &ConnInfo,
    handler: &H,
    deadlines: &Deadlines,
    counters: &Counters,
) -> io::Result<u64>
where
    S: Read + Write + ReadTimeout,
    H: Handler + ?Sized,
{
    let mut conn = Conn::new(stream, *deadlines);
    let mut served = 0u64;
    loop {
        let req = match conn.read_head() {
            Ok(req) => req,
            Err(HeadError::Closed) => return Ok(served),
            Err(HeadError::Idle) => {
                Counters::hit(&counters.idle_timeouts);
                return Ok(served);
            }
            Err(HeadError::Io(e)) => return Err(e),
            Err(HeadError::Reject(resp)) => {
                if resp.status == 408 {
                    Counters::hit(&counters.head_timeouts);
                }
                conn.write_response(&resp, false, true)?;
                return Ok(served + 1);
            }
        };
        let mut body = BodyReader {
            conn: &mut conn,
            remaining: req.content_length,
            // RFC 9110 §10.1.1: a server MUST ignore a 100-continue
            // expectation in an HTTP/1.0 request.
            continue_pending: req.expect_continue && req.minor_version == 1,
            started: None,
            received: 0,
            timed_out: false,
        };
        let handled = handler.handle(&req, &mut body, info);
        let drained = match &handled {
            Ok(_)
                if body.remaining > 0
                    && !body.continue_pending
                    && body.remaining <= DRAIN_LIMIT =>
            {
                io::copy(&mut body, &mut io::sink()).map(|_| ())
            }
            _ => Ok(()),
        };
        if body.timed_out {
            Counters::hit(&counters.body_timeouts);
        }
        let resp = handled?;
        drained?;
        let mut close = !req.keep_alive;
        if body.remaining > 0 {
            // The client either still waits for 100 Continue (it may send
            // the body anyway later) or has a lot to send: the next
            // request's start is unknown, so end here.
            close = true;
        }
        conn.write_response(&resp, req.method == "HEAD", close)?;
        served += 1;
        if close {
            return Ok(served);
        }
    }
}

/// Why no request came out of [`Conn::read_head`].
enum HeadError {
    /// The client closed cleanly between requests.
    Closed,
    /// No next request within the idle timeout.
    Idle,
    /// The stream failed.
    Io(io::Error),
    /// The request is unacceptable: send this and close.
    Reject(Response),
}

impl From<io::Error> for HeadError {
    fn from(e: io::Error) -> HeadError {
        HeadError::Io(e)
    }
}

/// One server connection: the stream, the bytes read past the last request
/// head (the start of a body or of a pipelined request), and the response
/// buffer.
struct Conn<S> {
    stream: S,
    /// `MAX_HEAD_BYTES` long; `buf[start..end]` is unconsumed input.
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    out: Vec<u8>,
    deadlines: Deadlines,
    /// The deadline of the first request's head: the connection's start
    /// plus `deadlines.head`.
    first_deadline: Option<Instant>,
}

impl<S: Read + Write + ReadTimeout> Conn<S> {
    fn new(stream: S, deadlines: Deadlines) -> Conn<S> {
        Conn {
            stream,
            buf: vec![0u8; MAX_HEAD_BYTES].into_boxed_slice(),
            start: 0,
            end: 0,
            out: Vec::with_capacity(OUT_BUF_BYTES),
            deadlines,
            first_deadline: Instant::now().checked_add(deadlines.head),
        }
    }

    /// Reads until one complete request head is buffered, parses and
    /// checks it, and consumes it from the buffer. The head must be
    /// complete by its deadline (408); with no byte of it yet, the wait is
    /// the idle timeout.
    fn read_head(&mut self) -> Result<Request, HeadError> {
        let mut deadline = self.first_deadline.take();
        loop {
            let pending = self.buf.get(self.start..self.end).unwrap_or(&[]);
            if !pending.is_empty() && deadline.is_none() {
                deadline = Instant::now().checked_add(self.deadlines.head);
            }
            if !pending.is_empty() {
                let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut parsed = httparse::Request::new(&mut fields);
                match parsed.parse(pending) {
                    Ok(httparse::Status::Complete(n)) => {
                        let req = check_head(&parsed);
                        self.start += n;
                        return req.map_err(HeadError::Reject);
                    }
                    Ok(httparse::Status::Partial) => {}
                    Err(httparse::Error::TooManyHeaders) => {
                        return Err(HeadError::Reject(Response::text(
                            431,
                            format!("too many header fields (at most {MAX_HEADERS})"),
                        )));
                    }
                    Err(e) => {
                        return Err(HeadError::Reject(Response::text(
                            400,
                            format!("malformed request: {e}"),
                        )));
                    }
                }
            }
            if self.end - self.start == self.buf.len() {
                return Err(HeadError::Reject(Response::text(
                    431,
                    format!("request head larger than {MAX_HEAD_BYTES} bytes"),
                )));
            }
            // Make room at the end: move the partial head to the front.
            if self.end == self.buf.len() || self.start == self.end {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            let timeout = match deadline {
                Some(at) => {
                    let left = at.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(self.head_timeout());
                    }
                    left
                }
                None => self.deadlines.idle,
            };
            self.stream.set_read_timeout(Some(timeout))?;
            let n = match read_retrying(
                &mut self.stream,
                self.buf.get_mut(self.end..).unwrap_or(&mut []),
            ) {
                Ok(n) => n,
                Err(e) if is_timeout(&e) && deadline.is_some() => return Err(self.head_timeout()),
                Err(e) if is_timeout(&e) => return Err(HeadError::Idle),
                Err(e) => return Err(HeadError::Io(e)),
            };
            if n == 0 {
                return if self.start == self.end {
                    Err(HeadError::Closed)
                } else {
                    // A half-sent head; there is nobody to answer.
                    Err(HeadError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed inside a request head",
                    )))
                };
            }
            self.end += n;
        }
    }

    /// The 408 for a head not complete by its deadline (RFC 9110 §15.5.9).
    fn head_timeout(&self) -> HeadError {
        HeadError::Reject(Response::text(
            408,
            format!(
                "the request head did not arrive within {} s",
                self.deadlines.head.as_secs_f64()
            ),
        ))
    }

    /// Writes `resp` (only its head for a HEAD request), with
    /// `Connection: close` if this is the last response.
    fn write_response(&mut self, resp: &Response, head_only: bool, close: bool) -> io::Result<()> {
        self.out.clear();
        let status = resp.status;
        self.out
            .extend_from_slice(format!("HTTP/1.1 {status} {}\r\n", reason(status)).as_bytes());
        // RFC 9110 §8.6: no Content-Length in a 1xx or 204 response.
        if status != 204 {
            let len = resp.body.len();
            self.out.extend_from_slice(
                format!(
                    "Content-Type: {}\r\nContent-Length: {len}\r\n",
                    resp.content_type
                )
                .as_bytes(),
            );
        }
        if let Some(allow) = resp.allow {
            self.out
                .extend_from_slice(format!("Allow: {allow}\r\n").as_bytes());
        }
        if close {
            self.out.extend_from_slice(b"Connection: close\r\n");
        }
        self.out.extend_from_slice(b"\r\n");
        if !head_only && status != 204 {
            match &resp.body {
                Body::Empty => {}
                Body::Bytes(b) => self.out.extend_from_slice(b),
                Body::Pattern(n) => {
                    // Fill the rest of the buffer with the first bytes, so a
                    // small body leaves with its head in one write.
                    let room = OUT_BUF_BYTES.saturating_sub(self.out.len());
                    let first = usize::try_from(*n).unwrap_or(room).min(room);
                    self.out.extend_from_slice(bytes::pattern_slice(0, first));
                    self.stream.write_all(&self.out)?;
                    self.out.clear();
                    bytes::write_pattern(&mut self.stream, first as u64, n - first as u64)?;
                }
            }
        }
        if !self.out.is_empty() {
            self.stream.write_all(&self.out)?;
        }
        // Do not keep a large body's buffer for the rest of the connection.
        if self.out.capacity() > OUT_BUF_BYTES {
            self.out = Vec::with_capacity(OUT_BUF_BYTES);
        }
        self.stream.flush()
    }
}

/// The request body: at most `remaining` more bytes, first from the head
/// buffer, then from the stream.
struct BodyReader<'a, S> {
    conn: &'a mut Conn<S>,
    remaining: u64,
    continue_pending: bool,
    /// When the body was first read from the stream: the rate's origin.
    started: Option<Instant>,
    /// Body bytes delivered so far.
    received: u64,
    /// A read failed its rate deadline.
    timed_out: bool,
}

impl<S: Read + Write + ReadTimeout> BodyReader<'_, S> {
    /// The read timeout that keeps the average rate since `started` at or
    /// above the minimum: the time the bytes received so far have earned,
    /// plus the grace, minus the time spent; at most the idle timeout.
    /// `None` when it has run out.
    fn rate_timeout(&mut self) -> Option<Duration> {
        let d = self.conn.deadlines;
        let started = *self.started.get_or_insert_with(Instant::now);
        let rate = u128::from(d.body_min_rate.max(1));
        let earned_nanos = u128::from(self.received) * 1_000_000_000 / rate;
        let earned = Duration::from_nanos(u64::try_from(earned_nanos).unwrap_or(u64::MAX));
        let Some(until) = started
            .checked_add(d.body_grace)
            .and_then(|t| t.checked_add(earned))
        else {
            // Centuries of credit: only the idle timeout applies.
            return Some(d.idle);
        };
        let left = until.saturating_duration_since(Instant::now());
        (!left.is_zero()).then(|| left.min(d.idle))
    }

    fn too_slow(&mut self) -> io::Error {
        self.timed_out = true;
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "request body slower than {} bytes/s",
                self.conn.deadlines.body_min_rate
            ),
        )
    }
}

impl<S: Read + Write + ReadTimeout> Read for BodyReader<'_, S> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || out.is_empty() {
            return Ok(0);
        }
        if self.continue_pending {
            self.continue_pending = false;
            self.conn.stream.write_all(CONTINUE)?;
            self.conn.stream.flush()?;
        }
        let want = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(out.len());
        let n = if self.conn.start < self.conn.end {
            let dst = out.get_mut(..want).unwrap_or(&mut []);
            let conn = &mut *self.conn;
            let src = conn.buf.get(conn.start..conn.end).unwrap_or(&[]);
            let n = src.len().min(dst.len());
            dst.get_mut(..n)
                .unwrap_or(&mut [])
                .copy_from_slice(src.get(..n).unwrap_or(&[]));
            conn.start += n;
            n
        } else {
            let Some(timeout) = self.rate_timeout() else {
                return Err(self.too_slow());
            };
            self.conn.stream.set_read_timeout(Some(timeout))?;
            let dst = out.get_mut(..want).unwrap_or(&mut []);
            match read_retrying(&mut self.conn.stream, dst) {
                Ok(n) => n,
                Err(e) if is_timeout(&e) => return Err(self.too_slow()),
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before the end of the request body",
            ));
        }
        self.remaining -= n as u64;
        self.received += n as u64;
        Ok(n)
    }
}

/// One `read`, repeated while it is merely interrupted.
fn read_retrying<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// Turns a parsed head into a [`Request`], or the response that refuses it.
fn check_head(parsed: &httparse::Request<'_, '_>) -> Result<Request, Response> {
    let (Some(method), Some(target), Some(minor_version)) =
        (parsed.method, parsed.path, parsed.version)
    else {
        return Err(Response::text(400, "incomplete request line"));
    };
    if !target.starts_with('/') {
        return Err(Response::text(
            400,
            "the request target must be a path starting with /",
        ));
    }
    let path = target.split('?').next().unwrap_or(target).to_owned();

    let mut content_length: Option<u64> = None;
    let mut has_host = false;
    let mut expect_continue = false;
    let mut conn_close = false;
    let mut conn_keep_alive = false;
    for field in parsed.headers.iter() {
        let value = std::str::from_utf8(field.value)
            .map_err(|_| Response::text(400, format!("header {} is not UTF-8", field.name)))?
            .trim();
        let name = field.name;
        if name.eq_ignore_ascii_case("content-length") {
            // RFC 9112 §6.3: an invalid or conflicting Content-Length is an
            // unrecoverable framing error.
            let len = parse_content_length(value)
                .ok_or_else(|| Response::text(400, "invalid Content-Length"))?;
            if content_length.is_some_and(|old| old != len) {
                return Err(Response::text(400, "conflicting Content-Length fields"));
            }
            content_length = Some(len);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Response::text(
                501,
                "Transfer-Encoding (chunked) request bodies are not supported; send Content-Length",
            ));
        } else if name.eq_ignore_ascii_case("host") {
            has_host = true;
        } else if name.eq_ignore_ascii_case("expect") {
            if value.eq_ignore_ascii_case("100-continue") {
                expect_continue = true;
            } else {
                return Err(Response::text(
                    417,
                    format!("unsupported expectation {value:?}"),
                ));
            }
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                conn_close |= token.eq_ignore_ascii_case("close");
                conn_keep_alive |= token.eq_ignore_ascii_case("keep-alive");
            }
        }
    }
    // RFC 9112 §3.2: a server MUST respond 400 to an HTTP/1.1 request
    // without Host.
    if minor_version == 1 && !has_host {
        return Err(Response::text(
            400,
            "HTTP/1.1 request without a Host header",
        ));
    }
    let _ = conn_keep_alive; // HTTP/1.0 keep-alive is not offered: 1.0 always closes.
    Ok(Request {
        method: method.to_owned(),
        path,
        minor_version,
        content_length: content_length.unwrap_or(0),
        expect_continue,
        // RFC 9112 §9.3: persistent by default in 1.1 unless "close".
        keep_alive: minor_version == 1 && !conn_close,
    })
}

/// Content-Length = 1*DIGIT (RFC 9110 §8.6), no sign, no spaces, fits u64.
fn parse_content_length(value: &str) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// The reason phrase for the status codes this server sends.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddr};

    use super::*;
    use crate::services::testutil::Duplex;

    /// [`super::serve`] with the default deadlines.
    fn serve<S: Read + Write + ReadTimeout>(
        stream: S,
        info: &ConnInfo,
        handler: &dyn Handler,
    ) -> io::Result<u64> {
        super::serve(
            stream,
            info,
            handler,
            &Deadlines::from(&Limits::default()),
            &Counters::default(),
        )
    }

    /// Echoes method, path and body length; reads the body for POST.
    struct Probe;

    impl Handler for Probe {
        fn handle(&self, req: &Request, body: &mut dyn Read, _: &ConnInfo) -> io::Result<Response> {
            let mut n = 0;
            if req.method == "POST" {
                n = io::copy(body, &mut io::sink())?;
            }
            Ok(Response::text(
                200,
                format!("{} {} {n}", req.method, req.path),
            ))
        }
    }

    fn info() -> ConnInfo {
        ConnInfo {
            local: SocketAddr::from((Ipv4Addr::new(10, 0, 0, 2), 80)),
            remote: SocketAddr::from((Ipv4Addr::new(10, 0, 0, 1), 40000)),
        }
    }

    /// Serves `input`, then a read timeout: the output and the counters.
    fn run_stalled(input: &[u8]) -> (String, Counters) {
        let mut d = Duplex::new(input.to_vec());
        d.stall = true;
        let counters = Counters::default();
        let deadlines = Deadlines::from(&Limits::default());
        let _ = super::serve(&mut d, &info(), &Probe, &deadlines, &counters);
        (String::from_utf8_lossy(&d.output).into_owned(), counters)
    }

    fn count(c: &std::sync::atomic::AtomicU64) -> u64 {
        c.load(std::sync::atomic::Ordering::Relaxed)
    }

    #[test]
    fn a_timeout_inside_a_head_is_408_and_counted() {
        let (out, c) = run_stalled(b"GET / HTTP/1.1\r\nX-a:");
        assert!(out.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{out}");
        assert!(out.contains("Connection: close"), "{out}");
        assert_eq!((count(&c.head_timeouts), count(&c.idle_timeouts)), (1, 0));
    }

    #[test]
    fn a_timeout_between_requests_is_idle_and_silent() {
        let (out, c) = run_stalled(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(out.matches("HTTP/1.1 ").count(), 1, "{out}");
        assert!(out.ends_with("GET /a 0\n"), "{out}");
        assert_eq!((count(&c.head_timeouts), count(&c.idle_timeouts)), (0, 1));
    }

    #[test]
    fn a_timeout_inside_a_body_is_counted_and_unanswered() {
        let (out, c) = run_stalled(b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
        assert!(out.is_empty(), "{out}");
        assert_eq!(count(&c.body_timeouts), 1);
    }

    fn run(input: &[u8]) -> String {
        let mut d = Duplex::new(input.to_vec());
        let _ = serve(&mut d, &info(), &Probe);
        String::from_utf8_lossy(&d.output).into_owned()
    }

    #[test]
    fn pipelined_requests_each_get_a_response() {
        let out = run(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b?q=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert!(out.contains("GET /a 0\n"), "{out}");
        assert!(out.contains("POST /b 3\n"), "{out}");
        assert!(out.contains("GET /c 0\n"), "{out}");
        assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 3);
        assert!(
            out.ends_with("Connection: close\r\n\r\nGET /c 0\n"),
            "{out}"
        );
    }

    #[test]
    fn http10_closes_after_one_response() {
        let out = run(b"GET /a HTTP/1.0\r\n\r\nGET /b HTTP/1.0\r\n\r\n");
        assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 1);
        assert!(out.contains("Connection: close"));
    }

    #[test]
    fn head_sends_length_without_body() {
        let out = run(b"HEAD /abc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert!(out.contains("Content-Length: 12\r\n"), "{out}");
        assert!(out.ends_with("\r\n\r\n"), "{out}");
    }

    #[test]
    fn head_larger_than_limit_gets_431() {
        let mut req = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
        req.extend_from_slice(&[b'a'; MAX_HEAD_BYTES]);
        req.extend_from_slice(b"\r\n\r\n");
        assert!(run(&req).starts_with("HTTP/1.1 431 "));
    }

    #[test]
    fn head_just_under_limit_is_served() {
        let mut req = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: ".to_vec();
        let pad = MAX_HEAD_BYTES - req.len() - 4;
        req.resize(req.len() + pad, b'a');
        req.extend_from_slice(b"\r\n\r\n");
        assert_eq!(req.len(), MAX_HEAD_BYTES);
        assert!(run(&req).starts_with("HTTP/1.1 200 "));
    }

    #[test]
    fn too_many_fields_gets_431() {
        let mut req = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
        for i in 0..MAX_HEADERS {
            req.extend_from_slice(format!("X-{i}: 1\r\n").as_bytes());
        }
        req.extend_from_slice(b"\r\n");
        assert!(run(&req).starts_with("HTTP/1.1 431 "));
    }

    #[test]
    fn garbage_gets_400_and_close() {
        let out = run(b"\x00\x01 nonsense\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 400 "), "{out}");
        assert!(out.contains("Connection: close"));
    }

    #[test]
    fn missing_host_in_http11_gets_400() {
        assert!(run(b"GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 400 "));
    }

    #[test]
    fn bad_content_length_gets_400() {
        for cl in ["-1", "1x", "", "99999999999999999999999"] {
            let req = format!("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: {cl}\r\n\r\n");
            assert!(run(req.as_bytes()).starts_with("HTTP/1.1 400 "), "{cl}");
        }
        let req =
            b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab";
        assert!(run(req).starts_with("HTTP/1.1 400 "));
    }

    #[test]
    fn chunked_gets_501() {
        let req = b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        assert!(run(req).starts_with("HTTP/1.1 501 "));
    }

    #[test]
    fn expect_continue_is_sent_before_the_body_is_read() {
        let out = run(b"POST /x HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi");
        assert!(
            out.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"),
            "{out}"
        );
        assert!(out.ends_with("POST /x 2\n"));
    }

    #[test]
    fn unread_small_body_is_drained_and_the_connection_kept() {
        // GET with a body: Probe does not read it.
        let out = run(b"GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(
            out.contains("GET /a 0\n") && out.contains("GET /b 0\n"),
            "{out}"
        );
    }

    #[test]
    fn truncated_body_is_an_error_not_a_response() {
        let mut d =
            Duplex::new(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc".to_vec());
        let err = serve(&mut d, &info(), &Probe).expect_err("short body");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(d.output.is_empty());
    }

    #[test]
    fn pattern_body_is_exact_with_head() {
        let resp = Response {
            status: 200,
            content_type: "application/octet-stream",
            allow: None,
            body: Body::Pattern(200_000),
        };
        let mut conn = Conn::new(Duplex::new(Vec::new()), Deadlines::from(&Limits::default()));
        conn.write_response(&resp, false, false).expect("write");
        let out = &conn.stream.output;
        let split = out
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("head end")
            + 4;
        let body = &out[split..];
        assert_eq!(body.len(), 200_000);
        assert!(body.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
    }
}
