//! The line-framed server on async streams.

use std::future::Future;
use std::io;
use std::sync::Arc;

use ::tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::server::Router;

/// Serves newline-delimited JSON-RPC on `stream` until the peer closes it:
/// [`Router::serve_lines`] on an async stream, with the same answers and
/// the same limits (`max_message` per line, the batch bounds of
/// [`crate::server`]). Requests on one connection are answered in order.
///
/// # Errors
///
/// I/O errors of the stream.
pub async fn serve_lines<S>(router: &Router, mut stream: S) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut lines = router.line_reader();
    while let Some(frame) = lines.read_frame_async(&mut stream).await? {
        if let Some(reply) = router.handle_frame(frame) {
            write_line(&mut stream, &reply).await?;
        }
    }
    // Best effort: the peer has already gone.
    let _ = stream.shutdown().await;
    Ok(())
}

/// [`serve_lines`] on the two halves of a connection (`into_split`).
///
/// # Errors
///
/// I/O errors of either half.
pub async fn serve_lines_split<R, W>(
    router: &Router,
    mut reader: R,
    mut writer: W,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut lines = router.line_reader();
    while let Some(frame) = lines.read_frame_async(&mut reader).await? {
        if let Some(reply) = router.handle_frame(frame) {
            write_line(&mut writer, &reply).await?;
        }
    }
    let _ = writer.shutdown().await;
    Ok(())
}

/// The accept loop: takes connections from `accept` (a closure returning
/// a future of the next one, so any listener fits: tokio's, the stack's
/// `stack::tokio::TcpListener`, an in-memory one) and serves each with
/// [`serve_lines`] on its own task. A connection's I/O error ends that
/// connection only.
///
/// ```no_run
/// # async fn example(router: std::sync::Arc<rpc::Router>) -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:7000").await?;
/// let l = &listener;
/// rpc::tokio::serve(router, move || async move { l.accept().await.map(|(s, _)| s) }).await
/// # }
/// ```
///
/// # Errors
///
/// The first error `accept` returns; the loop ends there (tasks already
/// spawned carry on). Retry in the caller if some errors (`EMFILE`) are
/// passing.
pub async fn serve<A, AF, S>(router: Arc<Router>, accept: A) -> io::Result<()>
where
    A: FnMut() -> AF,
    AF: Future<Output = io::Result<S>>,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    super::accept_loop(accept, move |stream| {
        let router = Arc::clone(&router);
        async move {
            // The connection's own failure: nothing to tell anyone else.
            let _ = serve_lines(&router, stream).await;
        }
    })
    .await
}

/// Writes `body` and a newline, then flushes (as [`crate::framing::write_line`]).
pub(crate) async fn write_line<W: AsyncWrite + Unpin + ?Sized>(
    w: &mut W,
    body: &[u8],
) -> io::Result<()> {
    let mut out = Vec::with_capacity(body.len() + 1);
    out.extend_from_slice(body);
    out.push(b'\n');
    w.write_all(&out).await?;
    w.flush().await
}
