//! JSON-RPC over HTTP `POST`, served by hyper 1.x: the contract of the
//! hand-written [`crate::http`] server, on async streams.
//!
//! - `POST /` or `/rpc` with `Content-Type: application/json` and a
//!   `Content-Length` body of at most `max_message` bytes: 200 with the
//!   JSON reply, or 204 when there is none (notifications only);
//! - refusals are decided by the same [`check_request`] as the blocking
//!   server: 404 (other paths), 405 with `Allow: POST` (other methods),
//!   411 (chunked, or no `Content-Length`), 413 (a body over
//!   `max_message`, refused before any of it is read, so no
//!   `100 Continue` is sent), 415 (not JSON); each with a plain-text reason
//!   and `Connection: close`;
//! - hyper parses the head: 400 for a malformed one, 431 for one over
//!   [`MAX_HEAD`] bytes or [`MAX_HEADERS`] lines; it also answers
//!   `Expect: 100-continue` when the body is first read, and keeps the
//!   connection alive as HTTP/1.1 (or `Connection`) asks.
//!
//! Batch, reply and heavy-call limits are JSON-RPC errors in a 200, as
//! on a line. A head must arrive within [`HEAD_TIMEOUT`] (slow-loris).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use ::tokio::io::{AsyncRead, AsyncWrite};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{
    HeaderValue, ALLOW, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING,
};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};

use crate::http::{check_request, Reject, MAX_HEAD, MAX_HEADERS};
use crate::server::Router;

/// How long hyper waits for a whole request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// hyper's smallest read buffer; a head must also fit in it.
const MIN_BUF: usize = 8 * 1024;

/// Serves JSON-RPC over HTTP/1.1 on one connection until the peer closes
/// it (or a refusal closes it).
///
/// # Errors
///
/// hyper's error for the connection (I/O, or a protocol error it already
/// answered with 400/431).
pub async fn serve_connection<S>(router: Arc<Router>, stream: S) -> Result<(), hyper::Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let router = Arc::clone(&router);
        async move { Ok::<_, Infallible>(answer(&router, req).await) }
    });
    http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_headers(MAX_HEADERS)
        .max_buf_size(MAX_HEAD.max(MIN_BUF))
        .serve_connection(TokioIo::new(stream), service)
        .await
}

/// The accept loop of [`crate::tokio::serve`], serving each connection
/// with [`serve_connection`] on its own task.
///
/// # Errors
///
/// The first error `accept` returns.
pub async fn serve<A, AF, S>(router: Arc<Router>, accept: A) -> io::Result<()>
where
    A: FnMut() -> AF,
    AF: Future<Output = io::Result<S>>,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    super::accept_loop(accept, move |stream| {
        let router = Arc::clone(&router);
        async move {
            let _ = serve_connection(router, stream).await;
        }
    })
    .await
}

/// One request's response.
async fn answer(router: &Router, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let headers = req.headers();
    let chunked = headers.contains_key(TRANSFER_ENCODING);
    // hyper has already refused (400) an invalid or conflicting
    // Content-Length, so a present one parses.
    let content_length = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let checked = check_request(
        req.method().as_str(),
        req.uri().path(),
        chunked,
        content_length,
        content_type,
        router.max_message(),
    );
    let length = match checked {
        Ok(n) => n,
        Err(reject) => return refuse(&reject),
    };
    // At most the declared length: hyper ends the body there anyway.
    let body = match Limited::new(req.into_body(), length).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            let reject = Reject::new(400, "Bad Request", format!("cannot read the body: {e}"));
            return refuse(&reject);
        }
    };
    match router.handle_text(&body) {
        Some(reply) => {
            let mut response = Response::new(Full::new(Bytes::from(reply)));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        None => status_only(StatusCode::NO_CONTENT),
    }
}

fn status_only(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

/// The 4xx for a refusal: its plain-text reason, then the connection closes.
fn refuse(reject: &Reject) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(reject.body())));
    *response.status_mut() = StatusCode::from_u16(reject.status).unwrap_or(StatusCode::BAD_REQUEST);
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(CONNECTION, HeaderValue::from_static("close"));
    if reject.status == 405 {
        headers.insert(ALLOW, HeaderValue::from_static("POST"));
    }
    response
}
