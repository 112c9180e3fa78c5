//! An echo server (RFC 862) on the stack with tokio: one task per
//! connection, any number of connections.
//!
//! ```text
//! sudo scripts/setup-tun.sh                      # tun0, host side 10.0.0.1
//! cargo run -p stack --features tokio --example tokio_echo
//! nc 10.0.0.2 7
//! ```

use stack::device::tun::TunDevice;
use stack::tokio::TcpListener;
use stack::{Config, Stack};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let stack = Stack::new(TunDevice::open("tun0", 1500)?, Config::default())?;
    let listener = TcpListener::bind(&stack, (stack.addr(), 7))?;
    loop {
        let (mut conn, peer) = listener.accept().await?;
        tokio::spawn(async move {
            let (mut rd, mut wr) = conn.split();
            let echoed = tokio::io::copy(&mut rd, &mut wr).await;
            println!("{peer}: {echoed:?}");
        });
    }
}
