//! A hyper service on the stack: hyper-util's `TokioIo` adapts the
//! stack's async `TcpStream`, as it does tokio's.
//!
//! ```text
//! sudo scripts/setup-tun.sh                      # tun0, host side 10.0.0.1
//! cargo run -p stack --features tokio --example hyper_hello
//! curl http://10.0.0.2/
//! ```

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{server::conn::http1, service::service_fn, Request, Response};
use hyper_util::rt::TokioIo;
use stack::{device::tun::TunDevice, tokio::TcpListener, Config, Stack};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let stack = Stack::new(TunDevice::open("tun0", 1500)?, Config::default())?;
    let listener = TcpListener::bind(&stack, (stack.addr(), 80))?;
    loop {
        let (conn, peer) = listener.accept().await?;
        let hello = service_fn(move |req: Request<Incoming>| async move {
            let text = format!("hello {peer}, you asked for {}\n", req.uri());
            Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::from(text))))
        });
        tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(conn), hello));
    }
}
