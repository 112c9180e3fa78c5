//! Many callers on one connection: responses are matched to callers by id,
//! a panicking handler is contained, and a dropped connection fails every
//! waiting call instead of leaving it hanging.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use serde_json::Value;

use common::{spawn_server, Framing};
use rpc::{BatchEntry, CallError, Client, Router, RpcError};

fn router() -> Router {
    let mut r = Router::new();
    r.register("echo", |(v,): (Value,)| Ok(v));
    r.register("panic", |(): ()| -> Result<(), RpcError> {
        panic!("handler bug")
    });
    r.register("add", |(a, b): (i64, i64)| Ok(a + b));
    r
}

#[test]
fn eight_threads_thousand_calls_each_over_one_connection() {
    let addr = spawn_server(router(), Framing::Lines);
    let client = Client::connect_std(addr).unwrap();
    thread::scope(|s| {
        for t in 0..8 {
            let client = &client;
            s.spawn(move || {
                for i in 0..1000 {
                    let unique = format!("thread {t} call {i}");
                    let got: String = client.call("echo", (&unique,)).unwrap();
                    assert_eq!(got, unique);
                }
            });
        }
    });
}

#[test]
fn handler_panic_is_internal_error_and_the_next_call_works() {
    let addr = spawn_server(router(), Framing::Lines);
    let client = Client::connect_std(addr).unwrap();
    match client.call::<_, Value>("panic", ()) {
        Err(CallError::Rpc(e)) => {
            assert_eq!(e.code, rpc::error::INTERNAL_ERROR);
            assert!(e.data.unwrap().as_str().unwrap().contains("handler bug"));
        }
        other => panic!("expected -32603, got {other:?}"),
    }
    let sum: i64 = client.call("add", (2, 3)).unwrap();
    assert_eq!(sum, 5);
}

#[test]
fn dropped_server_fails_every_waiting_call_with_disconnected() {
    const CALLERS: usize = 4;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (got_all, wait_all) = mpsc::channel();
    // A server that reads every request, never answers, then hangs up.
    thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut lines = BufReader::new(&stream).lines();
        for _ in 0..CALLERS {
            lines.next().unwrap().unwrap();
        }
        got_all.send(()).unwrap();
        drop(lines);
        drop(stream);
    });
    // A long timeout: the calls must fail because of the close, not the clock.
    let client = Client::connect_std(addr)
        .unwrap()
        .with_timeout(Duration::from_secs(300));
    thread::scope(|s| {
        let handles: Vec<_> = (0..CALLERS)
            .map(|i| {
                let client = &client;
                s.spawn(move || client.call::<_, Value>("echo", (i,)))
            })
            .collect();
        wait_all.recv().unwrap();
        for h in handles {
            let r = h.join().unwrap();
            assert!(matches!(r, Err(CallError::Disconnected(_))), "{r:?}");
        }
    });
    // Later calls fail at once too.
    let r = client.call::<_, Value>("echo", (1,));
    assert!(matches!(r, Err(CallError::Disconnected(_))), "{r:?}");
}

#[test]
fn call_timeout_expires_when_no_reply_comes() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts and keeps the connection open without ever answering.
    let server = thread::spawn(move || listener.accept().unwrap());
    let client = Client::connect_std(addr).unwrap();
    let r = client.call_timeout::<_, Value>("echo", (1,), Duration::from_millis(50));
    assert!(matches!(r, Err(CallError::Timeout)), "{r:?}");
    drop(server.join().unwrap());
}

#[test]
fn batch_returns_each_call_outcome_in_order_and_skips_notifications() {
    let addr = spawn_server(router(), Framing::Lines);
    let client = Client::connect_std(addr).unwrap();
    let results = client
        .batch(vec![
            BatchEntry::call("add", (1, 2)).unwrap(),
            BatchEntry::notify("echo", ("ignored",)).unwrap(),
            BatchEntry::call("missing", ()).unwrap(),
            BatchEntry::call("echo", ("x",)).unwrap(),
        ])
        .unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0], Ok(Value::from(3)));
    assert_eq!(
        results[1].as_ref().unwrap_err().code,
        rpc::error::METHOD_NOT_FOUND
    );
    assert_eq!(results[2], Ok(Value::from("x")));
    client.notify("echo", (1,)).unwrap();
    let sum: i64 = client.call("add", (20, 22)).unwrap();
    assert_eq!(sum, 42);
}

#[test]
fn one_router_serves_many_connections_at_once() {
    let addr = spawn_server(router(), Framing::Lines);
    thread::scope(|s| {
        for t in 0..4i64 {
            s.spawn(move || {
                let client = Client::connect_std(addr).unwrap();
                for i in 0..100i64 {
                    assert_eq!(client.call::<_, i64>("add", (t, i)).unwrap(), t + i);
                }
            });
        }
    });
}
