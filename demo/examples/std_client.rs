//! `demo get` and `demo call` over the kernel's sockets, for trying
//! `demo::client` by hand:
//!
//! `cargo run -p demo --example std_client -- get http://127.0.0.1:8080/`
//! `cargo run -p demo --example std_client -- call 127.0.0.1:7070 add 2 3`

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use demo::client;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.first().map(String::as_str) {
        Some("get") if args.len() == 2 => get(&args[1]),
        Some("call") if args.len() >= 3 => call(&args[1], &args[2], &args[3..]),
        _ => Err("usage: std_client get URL | call ADDR METHOD [ARGS..]".to_owned()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn get(url: &str) -> Result<(), String> {
    let url = client::parse_url(url)?;
    let stream = TcpStream::connect(url.addr).map_err(|e| format!("connect {}: {e}", url.addr))?;
    let local = stream.local_addr().map_err(|e| e.to_string())?;
    eprintln!("connected: {local} -> {}", url.addr);
    let resp = client::http_get(stream, &url.authority, &url.path, client::DEFAULT_MAX_BODY)
        .map_err(|e| e.to_string())?;
    eprintln!("HTTP {} {}", resp.status, resp.reason);
    for (name, value) in &resp.headers {
        eprintln!("{name}: {value}");
    }
    io::stdout()
        .write_all(&resp.body)
        .map_err(|e| e.to_string())
}

fn call(addr: &str, method: &str, args: &[String]) -> Result<(), String> {
    let addr: SocketAddr = addr.parse().map_err(|e| format!("ADDR: {e}"))?;
    let stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    let reader = stream.try_clone().map_err(|e| e.to_string())?;
    let writer = stream.try_clone().map_err(|e| e.to_string())?;
    let result = client::rpc_call(
        reader,
        writer,
        method,
        client::call_params(args),
        Duration::from_secs(10),
    )
    .map_err(|e| e.to_string())?;
    println!("{result}");
    Ok(())
}
