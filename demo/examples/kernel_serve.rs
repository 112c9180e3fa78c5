//! Runs `demo::kernel::kernel_serve_on`: the demo's services on the
//! kernel's sockets, for trying them by hand with curl and nc.
//!
//! `cargo run -p demo --example kernel_serve -- 127.0.0.1 [BASE]`: with
//! BASE, the ports are BASE+7 (echo, TCP and UDP), BASE+9, BASE+80 and
//! BASE+7070; without it, the well-known ports (root needed below 1024).

use std::net::IpAddr;
use std::sync::Arc;

use demo::kernel::{kernel_serve_on, KernelHost, Ports};

fn main() -> std::io::Result<()> {
    demo::init_logging();
    let mut args = std::env::args().skip(1);
    let ip: IpAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1".to_owned())
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("IP: {e}")))?;
    let ports = match args.next().map(|b| b.parse::<u16>()) {
        Some(Ok(base)) => Ports {
            echo: base + 7,
            discard: base + 9,
            http: base + 80,
            rpc: base + 7070,
            udp_echo: base + 7,
        },
        Some(Err(e)) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("BASE: {e}"),
            ))
        }
        None => Ports::default(),
    };
    let server = kernel_serve_on(ip, ports, Arc::new(KernelHost::new()))?;
    for (service, addr) in &server.tcp {
        println!("{service:?} on tcp {addr}");
    }
    println!("UDP echo on udp {}", server.udp_echo);
    server.wait()
}
