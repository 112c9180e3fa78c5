//! Issue 12 over the kernel's TCP on 127.0.0.1: the demo's services hold
//! under peers that try to make them spend without end. Each test runs a
//! server with small limits (short timeouts, a small connection cap) so it
//! is cheap; nothing here asserts a duration except as a generous bound.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use demo::kernel::{kernel_serve_with, KernelServer, Ports};
use demo::{HostInfo, Limits, Service};
use serde_json::{json, Value};

struct FakeHost;

impl HostInfo for FakeHost {
    fn sockets(&self) -> Value {
        json!([{"protocol": "tcp", "local": "10.0.0.2:80"}])
    }

    fn stats(&self) -> Value {
        json!({"rx_packets": 1})
    }
}

fn server(limits: Limits) -> KernelServer {
    kernel_serve_with(
        Ipv4Addr::LOCALHOST.into(),
        Ports::ephemeral(),
        Arc::new(FakeHost),
        limits,
    )
    .expect("bind")
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s
}

/// One `GET path` on a fresh connection: status and body.
fn get(addr: SocketAddr, path: &str) -> (u16, Vec<u8>) {
    let r = demo::client::http_get(connect(addr), &addr.to_string(), path, 1 << 20)
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    (r.status, r.body)
}

/// The demo's counters from `/stats`.
fn demo_counters(srv: &KernelServer) -> Value {
    let (status, body) = get(srv.addr(Service::Http).expect("http"), "/stats");
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["rx_packets"], 1, "the host's counters stay at the top");
    v["demo"].clone()
}

/// Polls the counter `name` until it is at least `min`, for up to 20 s.
fn wait_for_counter(srv: &KernelServer, name: &str, min: u64) -> Value {
    let start = Instant::now();
    loop {
        let c = demo_counters(srv);
        if c[name].as_u64().expect("counter") >= min {
            return c;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{name} never reached {min}: {c}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// Reads until EOF or an error; the connection was closed by the server.
fn read_until_closed(s: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("the server did not close: {e}"),
        }
    }
}

// ---- slow request heads ----------------------------------------------------

#[test]
fn slow_heads_on_every_slot_do_not_lock_out_a_fresh_client() {
    // The head deadline is long here: eviction alone must let a fresh
    // client in while every slot trickles a head.
    let limits = Limits {
        max_connections: 8,
        head_timeout: Duration::from_secs(60),
        ..Limits::default()
    };
    let srv = server(limits);
    let addr = srv.addr(Service::Http).expect("http");
    let mut slow: Vec<TcpStream> = (0..limits.max_connections)
        .map(|_| {
            let mut s = connect(addr);
            s.write_all(b"GET / HTTP/1.1\r\nX-a:").expect("head start");
            s
        })
        .collect();
    thread::sleep(Duration::from_millis(200));
    for s in &mut slow {
        s.write_all(b"a").expect("one more byte");
    }
    for round in 0..3 {
        let (status, body) = get(addr, "/");
        assert_eq!(status, 200, "round {round}");
        assert!(String::from_utf8_lossy(&body).contains("you are 127.0.0.1:"));
    }
    // The first fresh client evicted a slow head; the later ones found its
    // slot free when the one before them had finished.
    let c = demo_counters(&srv);
    assert!(c["evicted"].as_u64().expect("evicted") >= 1, "{c}");
    assert_eq!(c["refused"], 0, "{c}");
    // The evicted one was a slow head.
    let closed = slow
        .iter_mut()
        .filter(|s| {
            s.set_read_timeout(Some(Duration::from_millis(500)))
                .expect("timeout");
            let mut b = [0u8; 1];
            matches!((&**s).read(&mut b), Ok(0) | Err(_))
        })
        .count();
    assert!(closed >= 1, "{closed} slow heads closed");
}

#[test]
fn a_trickled_head_gets_408_at_the_deadline_not_per_byte() {
    let srv = server(Limits {
        head_timeout: Duration::from_secs(1),
        ..Limits::default()
    });
    let addr = srv.addr(Service::Http).expect("http");
    let mut s = connect(addr);
    s.write_all(b"GET / HTTP/1.1\r\nX-a:").expect("head start");
    let writer = s.try_clone().expect("clone");
    // One byte every 100 ms: the idle timer of old would never fire.
    let trickle = thread::spawn(move || {
        let mut w = writer;
        for _ in 0..100 {
            if w.write_all(b"a").is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
    });
    let started = Instant::now();
    let mut r = BufReader::new(s);
    let mut status = String::new();
    r.read_line(&mut status).expect("a response");
    assert!(status.starts_with("HTTP/1.1 408 "), "{status}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    let _ = trickle.join();
    wait_for_counter(&srv, "head_timeouts", 1);
}

// ---- bodies, idle connections ---------------------------------------------

#[test]
fn a_stalled_body_is_closed_after_the_grace() {
    let srv = server(Limits {
        body_min_rate: 1000,
        body_grace: Duration::from_millis(500),
        ..Limits::default()
    });
    let addr = srv.addr(Service::Http).expect("http");
    let mut s = connect(addr);
    s.write_all(b"POST /sha256 HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n0123456789")
        .expect("head and 10 bytes");
    let got = read_until_closed(&mut s);
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    wait_for_counter(&srv, "body_timeouts", 1);
}

#[test]
fn an_idle_keep_alive_connection_is_closed() {
    let srv = server(Limits {
        http_idle_timeout: Duration::from_millis(500),
        ..Limits::default()
    });
    let addr = srv.addr(Service::Http).expect("http");
    let mut s = connect(addr);
    s.write_all(b"GET /bytes/3 HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("request");
    let got = read_until_closed(&mut s);
    assert!(got.ends_with(&[0, 1, 2]), "{got:?}");
    wait_for_counter(&srv, "idle_timeouts", 1);
}

#[test]
fn an_idle_echo_connection_is_closed() {
    let srv = server(Limits {
        stream_idle_timeout: Duration::from_millis(500),
        ..Limits::default()
    });
    let mut s = connect(srv.addr(Service::Echo).expect("echo"));
    s.write_all(b"hi").expect("send");
    assert_eq!(read_until_closed(&mut s), b"hi");
    wait_for_counter(&srv, "idle_timeouts", 1);
}

// ---- zero-window readers, /bytes/N cap -----------------------------------

#[test]
fn a_reader_that_never_reads_is_dropped_after_the_write_timeout() {
    let srv = server(Limits {
        write_timeout: Duration::from_secs(1),
        ..Limits::default()
    });
    let addr = srv.addr(Service::Http).expect("http");
    let mut s = connect(addr);
    s.write_all(b"GET /bytes/4000000000 HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("request");
    // Never read: the window closes, the server's write stalls.
    wait_for_counter(&srv, "write_timeouts", 1);
    // What was in flight can still be read, then the stream ends short.
    let got = read_until_closed(&mut s);
    assert!(got.len() < 4_000_000_000, "{}", got.len());
}

#[test]
fn bytes_over_the_cap_get_413_and_are_counted() {
    let srv = server(Limits {
        max_bytes: 1000,
        ..Limits::default()
    });
    let addr = srv.addr(Service::Http).expect("http");
    let (status, body) = get(addr, "/bytes/1000");
    assert_eq!((status, body.len()), (200, 1000));
    let (status, body) = get(addr, "/bytes/1001");
    assert_eq!(status, 413);
    assert!(String::from_utf8_lossy(&body).contains("at most 1000 bytes"));
    let (status, _) = get(addr, "/bytes/18446744073709551615");
    assert_eq!(status, 413);
    assert_eq!(demo_counters(&srv)["bytes_too_large"], 2);
}

// ---- JSON-RPC --------------------------------------------------------------

#[test]
fn a_newline_flood_is_skipped_cheaply_and_the_next_request_answered() {
    let srv = server(Limits::default());
    let mut s = connect(srv.addr(Service::Rpc).expect("rpc"));
    let writer = s.try_clone().expect("clone");
    let started = Instant::now();
    let flood = thread::spawn(move || {
        let mut w = writer;
        let chunk = vec![b'\n'; 1 << 20];
        for _ in 0..16 {
            w.write_all(&chunk).expect("flood");
        }
        w.write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"add\",\"params\":[2,3],\"id\":1}\n")
            .expect("request");
    });
    let mut line = String::new();
    BufReader::new(&mut s).read_line(&mut line).expect("reply");
    let v: Value = serde_json::from_str(&line).expect("json");
    assert_eq!(v["result"], 5, "{v}");
    flood.join().expect("flood thread");
    // Not a timing assertion: a record of the cost (about 100 ms here;
    // several seconds before the framing was linear).
    eprintln!(
        "16 MiB of newlines, then a reply, in {:?}",
        started.elapsed()
    );
}

#[test]
fn a_trickled_rpc_line_is_closed_at_the_line_deadline_not_per_byte() {
    let srv = server(Limits {
        head_timeout: Duration::from_secs(1),
        ..Limits::default()
    });
    let mut s = connect(srv.addr(Service::Rpc).expect("rpc"));
    // A whole line first: answered, and the deadline starts over.
    s.write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"add\",\"params\":[1,1],\"id\":1}\n")
        .expect("request");
    let mut reader = BufReader::new(s.try_clone().expect("clone"));
    let mut line = String::new();
    reader.read_line(&mut line).expect("reply");
    assert!(line.contains("\"result\":2"), "{line}");
    // Then a line trickled one byte every 100 ms: the idle timer of old
    // would never fire.
    let writer = s.try_clone().expect("clone");
    let trickle = thread::spawn(move || {
        let mut w = writer;
        for _ in 0..100 {
            if w.write_all(b" ").is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
    });
    let started = Instant::now();
    let rest = read_until_closed(reader.get_mut());
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    let _ = trickle.join();
    let c = wait_for_counter(&srv, "head_timeouts", 1);
    assert_eq!(c["idle_timeouts"], 0, "{c}");
}

#[test]
fn a_batch_of_heavy_calls_runs_one_and_refuses_the_rest() {
    let srv = server(Limits::default());
    let mut s = connect(srv.addr(Service::Rpc).expect("rpc"));
    let batch: Vec<Value> = (0..1024)
        .map(|id| json!({"jsonrpc": "2.0", "method": "sockets", "id": id}))
        .collect();
    let mut text = serde_json::to_vec(&batch).expect("encode");
    text.push(b'\n');
    s.write_all(&text).expect("batch");
    let mut line = String::new();
    BufReader::new(&mut s).read_line(&mut line).expect("reply");
    let replies: Vec<Value> = serde_json::from_str(&line).expect("json");
    assert_eq!(replies.len(), 1024);
    assert_eq!(replies[0]["result"], FakeHost.sockets());
    for r in &replies[1..] {
        assert_eq!(r["error"]["code"], rpc::error::TOO_MANY_HEAVY, "{r}");
    }
    // Over HTTP the same rule, as JSON-RPC errors in a 200.
    let http = srv.addr(Service::Http).expect("http");
    let mut s = connect(http);
    let body = serde_json::to_vec(&batch[..2]).expect("encode");
    write!(
        s,
        "POST /rpc HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .expect("head");
    s.write_all(&body).expect("body");
    let reply = String::from_utf8(read_until_closed(&mut s)).expect("utf-8");
    assert!(reply.starts_with("HTTP/1.1 200 "), "{reply}");
    assert!(reply.contains("-32001"), "{reply}");
}

/// kernel-serve's listeners take the backlog asked for, not the 128 of
/// tokio's `bind`: `ss` shows a listening socket's backlog as its Send-Q.
#[test]
fn kernel_listeners_have_the_backlog_asked_for() {
    let limits = Limits {
        backlog: 777,
        ..Limits::default()
    };
    let srv = server(limits);
    let port = srv.addr(Service::Echo).expect("echo").port();
    let out = std::process::Command::new("ss")
        .args(["-ltnH", &format!("sport = :{port}")])
        .output()
        .expect("ss (iproute2) runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let columns: Vec<&str> = text.split_whitespace().collect();
    // State, Recv-Q (waiting to be accepted), Send-Q (the backlog), ...
    assert_eq!(
        columns.get(..3),
        Some(&["LISTEN", "0", "777"][..]),
        "{text}"
    );
}
