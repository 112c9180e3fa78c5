//! The async socket API (feature `tokio`), shaped like `tokio::net`:
//! [`TcpListener`] with `accept().await`, [`TcpStream`] implementing
//! tokio's [`AsyncRead`](::tokio::io::AsyncRead) and
//! [`AsyncWrite`](::tokio::io::AsyncWrite) (so tokio-util codecs and
//! hyper, through hyper-util's `TokioIo`, work on it unchanged) with
//! `peek().await`, `info()` and `take_error()`, and [`UdpSocket`] with
//! `send_to`/`recv_from().await`, or `connect` then `send`/`recv().await`.
//!
//! The stack's own threads run as they do for blocking users: the async
//! types only await readiness. Each runtime socket keeps a set of wakers
//! beside its condition variable and wakes both wherever it wakes one, so
//! blocking and async users share one socket table and one runtime, and
//! no task polls in a loop. Any executor works; the stack needs no tokio
//! reactor or timer (a deadline is the caller's, e.g.
//! `tokio::time::timeout`).
//!
//! Every future here is cancellation-safe: data is taken from a socket
//! only in a poll that returns `Ready`, so a dropped `read`, `accept` or
//! `recv_from` loses nothing. Writes apply back-pressure: `poll_write` is
//! `Pending` while the connection's send buffer is full, and the task is
//! woken when acknowledgements free room. Errors are the blocking API's
//! (`ConnectionRefused`, `ConnectionReset`, `TimedOut`, `BrokenPipe`,
//! `NotConnected` once the stack is shut down).
//!
//! The stack must run its own threads ([`Stack::new`](crate::Stack::new)):
//! a [`Stack::driven`](crate::Stack::driven) stack moves packets only when
//! its owner polls it.
//!
//! # Example: an echo server
//!
//! ```
//! use stack::device::mem::MemPair;
//! use stack::tokio::{TcpListener, TcpStream};
//! use stack::{Config, Stack};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! // Two stacks joined by an in-memory link; a TunDevice works the same.
//! let (da, db) = MemPair::new(1024, 1500);
//! let server = Stack::new(da, Config::with_addr([10, 9, 0, 2].into()))?;
//! let client = Stack::new(db, Config::with_addr([10, 9, 0, 1].into()))?;
//!
//! // The echo server (RFC 862): a task per connection.
//! let listener = TcpListener::bind(&server, ([0, 0, 0, 0], 7))?;
//! tokio::spawn(async move {
//!     while let Ok((mut conn, _peer)) = listener.accept().await {
//!         tokio::spawn(async move {
//!             let (mut rd, mut wr) = conn.split();
//!             tokio::io::copy(&mut rd, &mut wr).await
//!         });
//!     }
//! });
//!
//! let mut conn = TcpStream::connect(&client, ([10, 9, 0, 2], 7)).await?;
//! conn.write_all(b"hello").await?;
//! conn.shutdown().await?; // FIN: the server's copy ends.
//! let mut echoed = String::new();
//! conn.read_to_string(&mut echoed).await?;
//! assert_eq!(echoed, "hello");
//! # Ok(())
//! # }
//! ```
//!
//! # Example: a hyper service
//!
//! hyper runs on the stack's streams through hyper-util's `TokioIo`; the
//! server side is a dozen lines:
//!
//! ```
//! use std::convert::Infallible;
//!
//! use http_body_util::{BodyExt, Full};
//! use hyper::body::{Bytes, Incoming};
//! use hyper::{server, service::service_fn, Request, Response};
//! use hyper_util::rt::TokioIo;
//! use stack::device::mem::MemPair;
//! use stack::{Config, Stack};
//!
//! async fn hello(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
//!     Ok(Response::new(Full::from(format!("hello, {}\n", req.uri().path()))))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (da, db) = MemPair::new(1024, 1500);
//! let server = Stack::new(da, Config::with_addr([10, 9, 0, 2].into()))?;
//! let listener = stack::tokio::TcpListener::bind(&server, ([0, 0, 0, 0], 80))?;
//! tokio::spawn(async move {
//!     while let Ok((conn, _peer)) = listener.accept().await {
//!         let http = server::conn::http1::Builder::new();
//!         tokio::spawn(http.serve_connection(TokioIo::new(conn), service_fn(hello)));
//!     }
//! });
//!
//! // hyper's client, over the stack too.
//! let client = Stack::new(db, Config::with_addr([10, 9, 0, 1].into()))?;
//! let conn = stack::tokio::TcpStream::connect(&client, ([10, 9, 0, 2], 80)).await?;
//! let (mut sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(conn)).await?;
//! tokio::spawn(driver);
//! let req = Request::get("/stack").header("host", "10.9.0.2").body(Full::<Bytes>::default())?;
//! let body = sender.send_request(req).await?.into_body().collect().await?.to_bytes();
//! assert_eq!(body, "hello, /stack\n");
//! # Ok(())
//! # }
//! ```
//!
//! `stack/examples/tokio_echo.rs` runs the echo server on a TUN device,
//! `stack/examples/hyper_hello.rs` the hyper service, and the demo
//! (`demo/`) all its services, HTTP on hyper, this way.

mod tcp;
mod udp;

pub use tcp::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, TcpListener, TcpStream, WriteHalf};
pub use udp::UdpSocket;
