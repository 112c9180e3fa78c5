//! JSON-RPC 2.0 (<https://www.jsonrpc.org/specification>) over any byte
//! stream: `std::net`, the stack's own `TcpStream`, or an in-memory pipe.
//!
//! ```text
//!   Client::call ──► Request ──► framing (line | HTTP) ══ stream ══► Router::serve_*
//!        ▲                                                              │ handle_text
//!        └──── reader thread ◄── Response by id ◄══ stream ◄── handler ◄┘
//! ```
//!
//! - [`message`]: `Request`, `Response`, `Id`, `Params` and their strict parse.
//! - [`error`]: `RpcError` (the wire error object and spec codes), `CallError`.
//! - [`framing`]: newline-delimited JSON, a "complete line?" check apart from the parse.
//! - [`scan`]: cheap checks before a parse (the entry count of a batch).
//! - [`http`]: HTTP/1.1 `POST` framing (keep-alive, `Expect: 100-continue`, 4xx).
//! - [`server`]: `Router`, name -> typed handler; `handle_text`, `serve_lines`, `serve_http`.
//! - [`client`]: `Client`, many threads calling at once over one connection.
//! - [`stub`]: the [`service!`] macro, typed client and server from one definition.
//! - [`discover`]: the `rpc.discover` document (OpenRPC style).
//! - `tokio` (cargo feature `tokio`): the same servers and client on
//!   tokio's `AsyncRead + AsyncWrite`, and the HTTP endpoint on hyper;
//!   they share the router, messages, limits and stubs above.
//!
//! Every bound (line length, body size, batch length, batch reply size,
//! heavy calls per batch, header size) is documented where it is enforced; exceeding it gets an error response,
//! never a silent drop or a panic.

#![forbid(unsafe_code)]

pub mod client;
pub mod discover;
pub mod error;
pub mod framing;
pub mod http;
pub mod message;
pub mod scan;
pub mod server;
pub mod stub;
#[cfg(feature = "tokio")]
pub mod tokio;

pub use client::{BatchEntry, Client};
pub use discover::{MethodInfo, ParamInfo};
pub use error::{CallError, RpcError};
pub use message::{Id, Params, Request, Response};
pub use server::Router;
