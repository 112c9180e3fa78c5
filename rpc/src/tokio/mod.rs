/*! The async face of the RPC layer (cargo feature `tokio`): the same
[`Router`](crate::Router), messages and [`service!`](crate::service) stubs
as the blocking API, on any `AsyncRead + AsyncWrite`.

- [`serve_lines`] / [`serve`]: newline framing, one task per connection;
- [`Client`]: calls from any number of tasks over one connection,
  answered by id, each under a timeout;
- [`http`]: JSON-RPC over HTTP `POST`, served by hyper 1.x.

Only the I/O differs from the blocking API. The parsing, dispatch,
batching, error objects and every DoS bound are the blocking code's own
([`Router::handle_frame`](crate::Router::handle_frame),
[`LineReader`](crate::framing::LineReader),
[`http::check_request`](crate::http::check_request)), so a peer cannot
tell the two servers apart.

Handlers are plain `Fn`s and run inline on the connection's task, as they
run on the connection's thread in the blocking server: they should be
quick (a table snapshot, not a disk scan), or they hold up that runtime
worker while they run.

```no_run
# async fn example() -> std::io::Result<()> {
use std::sync::Arc;
let mut router = rpc::Router::new();
router.register("add", |(a, b): (i64, i64)| Ok(a + b));
let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
let addr = listener.local_addr()?;
let l = &listener;
let server = rpc::tokio::serve(Arc::new(router), move || async move {
    l.accept().await.map(|(s, _)| s)
});
# let _ = server;
let client = rpc::tokio::Client::connect(addr).await?;
let sum: i64 = client.call("add", (2, 3)).await.unwrap();
# Ok(()) }
```
*/

mod client;
pub mod http;
mod server;

pub use client::Client;
pub use server::{serve, serve_lines, serve_lines_split};

use std::future::Future;
use std::io;

/// Accepts connections from `accept` until it fails, spawning
/// `conn(stream)` for each on its own task. The loop shared by
/// [`serve`] and [`http::serve`].
async fn accept_loop<A, AF, S, C, CF>(mut accept: A, conn: C) -> io::Result<()>
where
    A: FnMut() -> AF,
    AF: Future<Output = io::Result<S>>,
    C: Fn(S) -> CF,
    CF: Future<Output = ()> + Send + 'static,
{
    loop {
        let stream = accept().await?;
        ::tokio::spawn(conn(stream));
    }
}
