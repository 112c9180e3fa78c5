//! A peer for `scripts/bench-tun.sh`: smoltcp serving the routes the
//! benchmark asks of our demo, over the same persistent TUN device.
//!
//!   smoltcp_serve --tun tun0 --addr 10.0.0.2 --addr6 fd00::2
//!
//! It owns the IPv4 address (`--prefix`, default 24) and, unless `--addr6
//! none`, the IPv6 one (`--prefix6`, default 64) too; every listening
//! socket answers on both, as the demo does. One thread and one poll loop, as smoltcp is meant to be driven, with its
//! own `TunTapInterface` (one `read` or `write` per packet, no offload). It
//! serves the shapes the benchmark's clients send, one request per
//! connection (every response says `Connection: close`):
//!
//! - TCP 80: `GET /bytes/N` (N bytes, byte i = i mod 251), `POST /sha256`
//!   (the hex SHA-256 of a `Content-Length` body), any other `GET` a short
//!   text; a connection that ends before a request is closed (the
//!   connections/s client half-closes at once).
//! - TCP 7070: newline-delimited JSON-RPC 2.0 `add` (the round-trip row).
//!
//! smoltcp has no listen backlog: a listening socket becomes the
//! connection. So each port has a pool of sockets, and every pass of the
//! loop puts a socket that has finished back to listening at once: a
//! closed one, and one in TIME-WAIT (its last ACK has gone out in the poll
//! before; keeping it for smoltcp's 10 s would starve the pool under
//! connection churn, and a reused client port would meet the old
//! connection). A socket that makes no progress for [`IDLE_ABORT`] is
//! aborted and listens again, so no client can pin a pool entry.

use std::collections::VecDeque;
use std::io;
use std::os::unix::io::AsRawFd;
use std::process::ExitCode;
use std::time::Instant as StdInstant;

use sha2::{Digest, Sha256};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{wait as phy_wait, Medium, TunTapInterface};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr, Ipv4Address, Ipv6Address};

const HTTP_PORT: u16 = 80;
const RPC_PORT: u16 = 7070;
/// Listening sockets per port: the most connections open at once.
const HTTP_POOL: usize = 64;
const RPC_POOL: usize = 8;
/// Socket buffers: big enough for a window that fills a fast link.
const HTTP_BUF: usize = 1 << 20;
const RPC_BUF: usize = 64 << 10;
/// The longest request head taken (413 beyond).
const MAX_HEAD: usize = 8 << 10;
/// The longest JSON-RPC line taken (the connection closes beyond).
const MAX_LINE: usize = 64 << 10;
/// Queued reply bytes beyond which no more input is taken.
const MAX_PENDING_OUT: usize = 256 << 10;
/// smoltcp's own timeout: abort when the peer goes silent with data
/// outstanding.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(10);
/// Abort a connection that has moved no byte for this long.
const IDLE_ABORT: std::time::Duration = std::time::Duration::from_secs(30);
/// The `/bytes/N` pattern, a whole number of 251-byte periods.
const PATTERN_PERIODS: usize = 256;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut tun = "tun0".to_string();
    let mut addr = Ipv4Address::new(10, 0, 0, 2);
    let mut prefix = 24u8;
    let mut addr6 = Some(Ipv6Address::new(0xfd00, 0, 0, 0, 0, 0, 0, 2));
    let mut prefix6 = 64u8;
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1);
        match (args[i].as_str(), value) {
            ("--tun", Some(v)) => tun = v.clone(),
            ("--addr", Some(v)) => match v.parse() {
                Ok(a) => addr = a,
                Err(_) => return usage(&format!("bad --addr '{v}'")),
            },
            ("--prefix", Some(v)) => match v.parse() {
                Ok(p) if p <= 32 => prefix = p,
                _ => return usage(&format!("bad --prefix '{v}'")),
            },
            ("--addr6", Some(v)) if v == "none" => addr6 = None,
            ("--addr6", Some(v)) => match v.parse() {
                Ok(a) => addr6 = Some(a),
                Err(_) => return usage(&format!("bad --addr6 '{v}'")),
            },
            ("--prefix6", Some(v)) => match v.parse() {
                Ok(p) if p <= 128 => prefix6 = p,
                _ => return usage(&format!("bad --prefix6 '{v}'")),
            },
            ("-h" | "--help", _) => {
                println!(
                    "usage: smoltcp_serve [--tun NAME] [--addr IPV4] [--prefix LEN] \
                     [--addr6 IPV6|none] [--prefix6 LEN]"
                );
                return ExitCode::SUCCESS;
            }
            (other, _) => return usage(&format!("unknown or incomplete argument '{other}'")),
        }
        i += 2;
    }
    let v4 = IpCidr::new(IpAddress::Ipv4(addr), prefix);
    let v6 = addr6.map(|a| IpCidr::new(IpAddress::Ipv6(a), prefix6));
    match serve(&tun, v4, v6) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("smoltcp_serve: {tun}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage(msg: &str) -> ExitCode {
    eprintln!("smoltcp_serve: {msg} (see --help)");
    ExitCode::from(2)
}

/// What one pooled socket is doing for its current connection.
#[derive(Default)]
struct Conn {
    /// The request head (HTTP) or the partial line (RPC) so far.
    inbuf: Vec<u8>,
    /// Body bytes of `POST /sha256` still to come.
    body_left: u64,
    hasher: Option<Sha256>,
    /// Response bytes queued and how many have gone into the socket.
    out: Vec<u8>,
    out_pos: usize,
    /// Generated `/bytes/N` body: bytes still to send, and the offset of
    /// the next one.
    stream_left: u64,
    stream_off: u64,
    /// Close once everything queued has been handed to the socket.
    close_when_sent: bool,
    closing: bool,
    last_progress: Option<StdInstant>,
}

struct Slot {
    handle: SocketHandle,
    port: u16,
    conn: Conn,
}

#[derive(Default)]
struct Counters {
    accepted: u64,
    recycled_time_wait: u64,
    aborted_idle: u64,
}

fn serve(tun: &str, v4: IpCidr, v6: Option<IpCidr>) -> io::Result<()> {
    let mut device = TunTapInterface::new(tun, Medium::Ip)?;
    let fd = device.as_raw_fd();
    let mut config = Config::new(HardwareAddress::Ip);
    config.random_seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let mut iface = Interface::new(config, &mut device, Instant::now());
    iface.update_ip_addrs(|addrs| {
        // invariant: a fresh interface has room for two addresses
        // (smoltcp's IFACE_MAX_ADDR_COUNT is 2 unless a feature raises it).
        addrs.push(v4).expect("the first address fits");
        if let Some(v6) = v6 {
            addrs.push(v6).expect("the second address fits");
        }
    });

    let mut sockets = SocketSet::new(Vec::new());
    let mut slots = Vec::new();
    for (port, pool, buf) in [
        (HTTP_PORT, HTTP_POOL, HTTP_BUF),
        (RPC_PORT, RPC_POOL, RPC_BUF),
    ] {
        for _ in 0..pool {
            let mut socket = tcp::Socket::new(
                tcp::SocketBuffer::new(vec![0; buf]),
                tcp::SocketBuffer::new(vec![0; buf]),
            );
            // Responses are written whole; no Nagle stall on the last piece
            // (the kernel baseline sets TCP_NODELAY too).
            socket.set_nagle_enabled(false);
            socket.set_timeout(Some(SOCKET_TIMEOUT));
            socket
                .listen(port)
                .map_err(|e| io::Error::other(format!("listen {port}: {e}")))?;
            slots.push(Slot {
                handle: sockets.add(socket),
                port,
                conn: Conn::default(),
            });
        }
    }
    let pattern: Vec<u8> = (0..251 * PATTERN_PERIODS)
        .map(|i| (i % 251) as u8)
        .collect();
    let mut counters = Counters::default();
    eprintln!(
        "smoltcp_serve: {tun} as {v4}{}: HTTP on {HTTP_PORT} ({HTTP_POOL} sockets), \
         JSON-RPC on {RPC_PORT} ({RPC_POOL} sockets)",
        v6.map_or(String::new(), |c| format!(" and {c}"))
    );
    let mut last_report = StdInstant::now();
    loop {
        let now = Instant::now();
        iface.poll(now, &mut device, &mut sockets);
        let wall = StdInstant::now();
        let mut busy = false;
        for slot in &mut slots {
            let socket = sockets.get_mut::<tcp::Socket>(slot.handle);
            busy |= drive(
                socket,
                slot.port,
                &mut slot.conn,
                &pattern,
                wall,
                &mut counters,
            )?;
        }
        if busy {
            // Send what the services queued before waiting for more.
            continue;
        }
        if wall.duration_since(last_report) > std::time::Duration::from_secs(60) {
            last_report = wall;
            eprintln!(
                "smoltcp_serve: {} connections, {} recycled from TIME-WAIT, {} aborted idle",
                counters.accepted, counters.recycled_time_wait, counters.aborted_idle
            );
        }
        let delay = iface
            .poll_delay(Instant::now(), &sockets)
            .map_or(Duration::from_millis(100), |d| {
                d.min(Duration::from_millis(100))
            });
        phy_wait(fd, Some(delay))?;
    }
}

/// Runs one pooled socket's service; true if it moved data (so the loop
/// should poll again at once).
fn drive(
    socket: &mut tcp::Socket<'_>,
    port: u16,
    conn: &mut Conn,
    pattern: &[u8],
    now: StdInstant,
    counters: &mut Counters,
) -> io::Result<bool> {
    match socket.state() {
        tcp::State::Listen | tcp::State::SynReceived => return Ok(false),
        tcp::State::Closed => {
            relisten(socket, port, conn)?;
            return Ok(false);
        }
        tcp::State::TimeWait => {
            // The final ACK went out in the poll that got us here.
            socket.abort();
            counters.recycled_time_wait += 1;
            relisten(socket, port, conn)?;
            return Ok(false);
        }
        _ => {}
    }
    let last = *conn.last_progress.get_or_insert_with(|| {
        counters.accepted += 1;
        now
    });
    let mut moved = false;

    // Take in what arrived, unless replies are piling up unread (a
    // client pipelining JSON-RPC without reading): then the socket's
    // receive window closes instead of `out` growing without bound.
    while socket.can_recv() && !conn.closing && conn.out.len() - conn.out_pos <= MAX_PENDING_OUT {
        let taken = socket
            .recv(|buf| {
                let n = if port == RPC_PORT {
                    rpc_input(conn, buf)
                } else {
                    http_input(conn, buf)
                };
                (n, n)
            })
            .unwrap_or(0);
        if taken == 0 {
            break;
        }
        moved = true;
    }
    // The peer finished sending: with no request under way, we are done.
    if !socket.may_recv()
        && !conn.closing
        && conn.out_pos == conn.out.len()
        && conn.stream_left == 0
    {
        if conn.body_left > 0 || (port == HTTP_PORT && !conn.inbuf.is_empty()) {
            // Cut short mid-request.
            socket.abort();
            conn.closing = true;
            return Ok(true);
        }
        conn.close_when_sent = true;
    }

    // Hand the socket what is queued.
    while conn.out_pos < conn.out.len() && socket.can_send() {
        match socket.send_slice(&conn.out[conn.out_pos..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                conn.out_pos += n;
                moved = true;
            }
        }
    }
    if conn.out_pos == conn.out.len() {
        conn.out.clear();
        conn.out_pos = 0;
        while conn.stream_left > 0 && socket.can_send() {
            let sent = socket
                .send(|buf| {
                    let want = buf
                        .len()
                        .min(usize::try_from(conn.stream_left).unwrap_or(usize::MAX));
                    let mut done = 0;
                    while done < want {
                        let at = (conn.stream_off % 251) as usize;
                        let n = (want - done).min(pattern.len() - at);
                        buf[done..done + n].copy_from_slice(&pattern[at..at + n]);
                        done += n;
                        conn.stream_off += n as u64;
                    }
                    (want, want)
                })
                .unwrap_or(0);
            if sent == 0 {
                break;
            }
            conn.stream_left -= sent as u64;
            moved = true;
        }
        if conn.stream_left == 0 && conn.close_when_sent && !conn.closing {
            socket.close();
            conn.closing = true;
            moved = true;
        }
    }

    if moved {
        conn.last_progress = Some(now);
    } else if now.duration_since(last) > IDLE_ABORT {
        socket.abort();
        counters.aborted_idle += 1;
        relisten(socket, port, conn)?;
    }
    Ok(moved)
}

fn relisten(socket: &mut tcp::Socket<'_>, port: u16, conn: &mut Conn) -> io::Result<()> {
    *conn = Conn::default();
    socket
        .listen(port)
        .map_err(|e| io::Error::other(format!("listen {port}: {e}")))
}

/// Takes HTTP request bytes; returns how many were used.
fn http_input(conn: &mut Conn, buf: &[u8]) -> usize {
    if conn.close_when_sent {
        // One request per connection: ignore anything after it.
        return buf.len();
    }
    if conn.body_left > 0 {
        let n = buf
            .len()
            .min(usize::try_from(conn.body_left).unwrap_or(usize::MAX));
        if let Some(h) = conn.hasher.as_mut() {
            h.update(&buf[..n]);
        }
        conn.body_left -= n as u64;
        if conn.body_left == 0 {
            finish_sha256(conn);
        }
        return n;
    }
    // Accumulate the head up to its blank line, taking no body byte.
    let start = conn.inbuf.len();
    let mut used = buf.len();
    conn.inbuf.extend_from_slice(buf);
    let search_from = start.saturating_sub(3);
    let Some(end) = conn.inbuf[search_from..]
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| search_from + p + 4)
    else {
        if conn.inbuf.len() > MAX_HEAD {
            respond(
                conn,
                "413 Content Too Large",
                "text/plain",
                b"head too large\n",
            );
        }
        return used;
    };
    // Bytes past the head belong to the body: give them back.
    used -= conn.inbuf.len() - end;
    conn.inbuf.truncate(end);
    let head = String::from_utf8_lossy(&conn.inbuf).into_owned();
    let mut lines = head.split("\r\n");
    let mut request = lines.next().unwrap_or("").split(' ');
    let method = request.next().unwrap_or("");
    let path = request.next().unwrap_or("");
    let content_length = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    match (method, path) {
        ("GET", p) if p.starts_with("/bytes/") => match p["/bytes/".len()..].parse::<u64>() {
            Ok(n) => {
                conn.out = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\
                     Content-Length: {n}\r\nConnection: close\r\n\r\n"
                )
                .into_bytes();
                conn.stream_left = n;
                conn.stream_off = 0;
                conn.close_when_sent = true;
            }
            Err(_) => respond(conn, "400 Bad Request", "text/plain", b"bad length\n"),
        },
        ("POST", "/sha256") => {
            conn.hasher = Some(Sha256::new());
            conn.body_left = content_length;
            if content_length == 0 {
                finish_sha256(conn);
            }
        }
        ("GET", _) => respond(conn, "200 OK", "text/plain", b"smoltcp_serve\n"),
        _ => respond(conn, "404 Not Found", "text/plain", b"not found\n"),
    }
    // The head is parsed: an empty `inbuf` now means no request is cut short.
    conn.inbuf.clear();
    used
}

fn finish_sha256(conn: &mut Conn) {
    let digest = conn.hasher.take().unwrap_or_default().finalize();
    let mut body = String::with_capacity(65);
    for b in digest {
        body.push_str(&format!("{b:02x}"));
    }
    body.push('\n');
    respond(conn, "200 OK", "text/plain", body.as_bytes());
}

fn respond(conn: &mut Conn, status: &str, content_type: &str, body: &[u8]) {
    conn.out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    conn.out.extend_from_slice(body);
    conn.out_pos = 0;
    conn.close_when_sent = true;
}

/// Takes JSON-RPC bytes: each complete line gets one reply line.
fn rpc_input(conn: &mut Conn, buf: &[u8]) -> usize {
    let mut lines: VecDeque<Vec<u8>> = VecDeque::new();
    for &b in buf {
        if b == b'\n' {
            lines.push_back(std::mem::take(&mut conn.inbuf));
        } else if conn.inbuf.len() < MAX_LINE {
            conn.inbuf.push(b);
        } else {
            conn.close_when_sent = true;
        }
    }
    for line in lines {
        let reply = rpc_reply(&line);
        conn.out.extend_from_slice(reply.as_bytes());
        conn.out.push(b'\n');
    }
    buf.len()
}

/// The reply to one JSON-RPC request: `add` sums its numeric params.
fn rpc_reply(line: &[u8]) -> String {
    let Ok(req) = serde_json::from_slice::<serde_json::Value>(line) else {
        return r#"{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null}"#
            .to_string();
    };
    let id = req.get("id").cloned().unwrap_or(serde_json::Value::Null);
    let method = req.get("method").and_then(|m| m.as_str()).unwrap_or("");
    let reply = if method == "add" {
        let sum: i64 = req
            .get("params")
            .and_then(|p| p.as_array())
            .map(|a| a.iter().filter_map(|v| v.as_i64()).sum())
            .unwrap_or(0);
        serde_json::json!({"jsonrpc": "2.0", "result": sum, "id": id})
    } else {
        serde_json::json!({"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": id})
    };
    reply.to_string()
}
