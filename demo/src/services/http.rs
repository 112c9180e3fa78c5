//! HTTP/1.1 on hyper: the framing (RFC 9112), keep-alive, pipelining,
//! `Expect: 100-continue` (sent when a handler first reads the body),
//! `HEAD`, chunked and `Content-Length` request bodies are hyper's; what
//! the demo adds is its response body ([`Reply`], streamed without
//! copying), the body-rate deadline ([`BodyReader`]) and the head
//! deadline's bookkeeping ([`HttpClock`]). What the routes are lives in
//! `routes.rs`.
//!
//! Bounds (DoS warning): a request head is at most [`MAX_HEAD_BYTES`] with
//! at most [`MAX_HEADERS`] fields (else hyper answers 431); a malformed
//! head gets 400 and the connection closes. The head, idle and write
//! deadlines are enforced on the stream (`deadline.rs`); a body must keep
//! an average of `body_min_rate` bytes/s after `body_grace` (closed
//! without an answer, `body_timeouts`).

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::header::{HeaderValue, ALLOW, CONNECTION, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::time::Instant;

use crate::host::ConnInfo;
use crate::services::bytes;
use crate::services::conn::Conn;
use crate::services::deadline::{HttpClock, Timed};
use crate::services::limits::{Counters, Limits};
use crate::services::routes::Routes;

/// The largest request head (request line and header fields) accepted;
/// a larger one gets 431 (RFC 6585 §5).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// The most header fields in one request; more gets 431.
pub const MAX_HEADERS: usize = 64;

/// Serves HTTP/1.1 requests on `stream` with `routes` until the client
/// closes, an error or a deadline ends it, or either side asks to close.
///
/// # Errors
/// The stream's errors (the deadlines' among them), or hyper's for a
/// request it could not parse (after answering it).
pub async fn serve<S: Conn>(
    stream: Timed<S>,
    clock: Arc<HttpClock>,
    info: ConnInfo,
    routes: Arc<Routes>,
) -> io::Result<()> {
    let service = service_fn(move |req| {
        clock.head_received();
        let routes = Arc::clone(&routes);
        let clock = Arc::clone(&clock);
        async move {
            let response = routes.handle(req, &info).await?;
            Ok::<_, io::Error>(response.map(|body| body.then_wait_for_head(clock)))
        }
    });
    http1::Builder::new()
        // A client that sends its request and shuts its side (`nc -N`,
        // RFC 9293's half-close) still gets the answer.
        .half_close(true)
        .max_headers(MAX_HEADERS)
        .max_header_size(MAX_HEAD_BYTES)
        .serve_connection(TokioIo::new(stream), service)
        .await
        .map_err(|e| {
            // Keep the kind of an I/O error underneath (a deadline's
            // `TimedOut`), for the caller's log.
            let kind = std::error::Error::source(&e)
                .and_then(|s| s.downcast_ref::<io::Error>())
                .map_or(io::ErrorKind::Other, io::Error::kind);
            io::Error::new(kind, e)
        })
}

/// A response body: bytes in memory, or the `/bytes/N` pattern generated
/// as it is sent. Its exact length is known, so hyper sends
/// `Content-Length` (also for `HEAD`, without the body).
#[derive(Debug)]
pub struct Reply {
    content: Content,
    /// Told when the response is done with, so the next head's deadline
    /// starts at its first byte.
    clock: Option<Arc<HttpClock>>,
}

#[derive(Debug, PartialEq, Eq)]
enum Content {
    Bytes(Bytes),
    /// The pattern's bytes `at..end`.
    Pattern {
        at: u64,
        end: u64,
    },
}

impl Reply {
    /// These bytes.
    pub fn bytes(bytes: impl Into<Bytes>) -> Reply {
        Reply {
            content: Content::Bytes(bytes.into()),
            clock: None,
        }
    }

    /// No content.
    pub fn empty() -> Reply {
        Reply::bytes(Bytes::new())
    }

    /// `n` bytes of the `i mod 251` pattern.
    pub fn pattern(n: u64) -> Reply {
        Reply {
            content: Content::Pattern { at: 0, end: n },
            clock: None,
        }
    }

    fn then_wait_for_head(mut self, clock: Arc<HttpClock>) -> Reply {
        self.clock = Some(clock);
        self
    }

    fn remaining(&self) -> u64 {
        match &self.content {
            Content::Bytes(b) => b.len() as u64,
            Content::Pattern { at, end } => end - at,
        }
    }

    /// The whole content, for tests.
    pub fn to_vec(&self) -> Vec<u8> {
        match &self.content {
            Content::Bytes(b) => b.to_vec(),
            Content::Pattern { at, end } => {
                bytes::chunks(*at, end - at).flatten().copied().collect()
            }
        }
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if let Some(clock) = &self.clock {
            clock.response_done();
        }
    }
}

impl Body for Reply {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let chunk = match &mut this.content {
            Content::Bytes(b) if b.is_empty() => None,
            Content::Bytes(b) => Some(std::mem::take(b)),
            Content::Pattern { at, end } => bytes::chunks(*at, *end - *at).next().map(|c| {
                *at += c.len() as u64;
                Bytes::from_static(c)
            }),
        };
        Poll::Ready(chunk.map(|c| Ok(Frame::data(c))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining() == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining())
    }
}

/// A response with `body`, of `content_type`.
pub fn response(status: u16, content_type: &'static str, body: Reply) -> Response<Reply> {
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// A `text/plain` response; a final newline is added so the text ends
/// cleanly in a terminal.
pub fn text(status: u16, text: impl Into<String>) -> Response<Reply> {
    let mut body = text.into().into_bytes();
    if body.last() != Some(&b'\n') {
        body.push(b'\n');
    }
    response(status, "text/plain; charset=utf-8", Reply::bytes(body))
}

/// An `application/json` response of `value` followed by a newline.
pub fn json(status: u16, value: &serde_json::Value) -> Response<Reply> {
    let mut body = value.to_string().into_bytes();
    body.push(b'\n');
    response(status, "application/json", Reply::bytes(body))
}

/// 405 with the `Allow` field listing the methods the path accepts
/// (RFC 9110 §15.5.6 requires it).
pub fn method_not_allowed(allow: &'static str) -> Response<Reply> {
    let mut r = text(405, format!("method not allowed; this path allows {allow}"));
    r.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    r
}

/// `response` with `Connection: close`: after a refusal the body the
/// client may still send is not read, so the connection cannot carry
/// another request.
pub fn closing(mut response: Response<Reply>) -> Response<Reply> {
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A request body read under the minimum-rate deadline: after `grace`,
/// the body must have averaged `min_rate` bytes/s since its start.
pub struct BodyReader {
    body: Incoming,
    started: Instant,
    received: u64,
    grace: Duration,
    min_rate: u64,
    counters: Arc<Counters>,
}

impl BodyReader {
    /// Reads `request`'s body within `limits`, counting a deadline missed.
    pub fn new(request: Request<Incoming>, limits: &Limits, counters: Arc<Counters>) -> BodyReader {
        BodyReader {
            body: request.into_body(),
            started: Instant::now(),
            received: 0,
            grace: limits.body_grace,
            min_rate: limits.body_min_rate.max(1),
            counters,
        }
    }

    /// The next piece of the body, `None` at its end. Reading the first
    /// sends `100 Continue` if the client waits for it.
    ///
    /// # Errors
    /// `TimedOut` when the body falls below the rate (counted in
    /// `body_timeouts`); hyper's error for a broken body.
    pub async fn next(&mut self) -> io::Result<Option<Bytes>> {
        use http_body_util::BodyExt;
        loop {
            // The moment the average would fall below the rate with no
            // further byte.
            let due =
                self.grace + Duration::from_secs_f64(self.received as f64 / self.min_rate as f64);
            let frame = match tokio::time::timeout_at(self.started + due, self.body.frame()).await {
                Err(_) => {
                    Counters::hit(&self.counters.body_timeouts);
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the body came slower than {} bytes/s", self.min_rate),
                    ));
                }
                Ok(None) => return Ok(None),
                Ok(Some(frame)) => frame.map_err(io::Error::other)?,
            };
            // Trailers carry nothing the routes use.
            if let Ok(data) = frame.into_data() {
                self.received += data.len() as u64;
                return Ok(Some(data));
            }
        }
    }
}
