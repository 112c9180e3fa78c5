//! A JSON-RPC 2.0 server over `std::net` offering `add` and `echo` (and the
//! automatic `rpc.discover`) on ONE port, which speaks both framings: the
//! first byte of a connection decides (an ASCII capital letter starts an
//! HTTP request line such as `POST`; anything else, `{` or `[`, is
//! newline-delimited JSON).
//!
//! ```text
//! cargo run -p rpc --example add_server -- 127.0.0.1:7070
//! echo '{"jsonrpc":"2.0","method":"add","params":[2,3],"id":1}' | nc -q1 127.0.0.1 7070
//! curl -s -H 'Content-Type: application/json' \
//!      -d '{"jsonrpc":"2.0","method":"add","params":[2,3],"id":1}' http://127.0.0.1:7070/rpc
//! ```
//!
//! Both print `{"jsonrpc":"2.0","result":5,"id":1}`. At most
//! `MAX_CONNECTIONS` connections are served at once; more are closed at accept.

use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use serde_json::Value;

use rpc::{Router, RpcError};

/// DoS bound: connections served at once (one thread each).
const MAX_CONNECTIONS: usize = 256;

rpc::service! {
    /// The example service.
    service Example, client ExampleClient {
        /// Adds two numbers; an integral sum is sent as an integer (2 + 3 = 5).
        fn add(a: f64, b: f64) -> Value;
        /// Returns its argument unchanged.
        fn echo(params: Value) -> Value;
    }
}

struct Service;

impl Example for Service {
    fn add(&self, a: f64, b: f64) -> Result<Value, RpcError> {
        Ok(rpc::message::number(a + b))
    }

    fn echo(&self, params: Value) -> Result<Value, RpcError> {
        Ok(params)
    }
}

/// Counts live connections; decrements when the connection's thread ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn serve(router: &Router, stream: TcpStream) -> std::io::Result<()> {
    let mut first = [0u8; 1];
    if stream.peek(&mut first)? == 0 {
        return Ok(());
    }
    if first[0].is_ascii_uppercase() {
        router.serve_http(stream)
    } else {
        router.serve_lines(stream)
    }
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7070".to_owned());
    let mut router = Router::new().with_info("add_server", env!("CARGO_PKG_VERSION"));
    Service.register_into(&mut router);
    let router = Arc::new(router);
    let live = Arc::new(AtomicUsize::new(0));

    let listener = TcpListener::bind(&addr)?;
    eprintln!(
        "add_server: JSON-RPC (lines and HTTP) on {}",
        listener.local_addr()?
    );
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                eprintln!("accept: {e}");
                continue;
            }
        };
        if live.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            live.fetch_sub(1, Ordering::SeqCst);
            continue; // dropping the stream closes it
        }
        let slot = Slot(Arc::clone(&live));
        let router = Arc::clone(&router);
        thread::spawn(move || {
            let _slot = slot;
            let peer = stream.peer_addr().ok();
            if let Err(e) = serve(&router, stream) {
                eprintln!("{peer:?}: {e}");
            }
        });
    }
    Ok(())
}
