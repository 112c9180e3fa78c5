//! The async RPC layer (`rpc::tokio`) against the blocking one and on its
//! own: each client against the other's server over tokio's 127.0.0.1 TCP,
//! the async server over `tokio::io::duplex`, its limits, and the hyper
//! JSON-RPC endpoint's statuses.

#![cfg(feature = "tokio")]
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use common::{spawn_server, Framing};
use rpc::{CallError, Router, RpcError};

rpc::service! {
    /// A calculator.
    pub service Calc, client CalcClient, async_client CalcAsyncClient {
        /// Adds two numbers.
        fn add(a: i64, b: i64) -> i64;
        /// Greets someone, optionally loudly.
        fn greet(name: String, loud: Option<bool>) -> String;
        /// Always fails with a server-defined error.
        fn fail() -> ();
    }
}

struct CalcImpl;

impl Calc for CalcImpl {
    fn add(&self, a: i64, b: i64) -> Result<i64, RpcError> {
        Ok(a + b)
    }
    fn greet(&self, name: String, loud: Option<bool>) -> Result<String, RpcError> {
        let s = format!("hello, {name}");
        Ok(if loud == Some(true) {
            s.to_uppercase()
        } else {
            s
        })
    }
    fn fail(&self) -> Result<(), RpcError> {
        Err(RpcError::server_error(-32001, "not today"))
    }
}

fn router() -> Router {
    let mut r = Router::new().with_max_message(1000).with_max_batch(3);
    CalcImpl.register_into(&mut r);
    r.register("sleep_ms", |(ms,): (u64,)| {
        std::thread::sleep(Duration::from_millis(ms));
        Ok(ms)
    });
    r
}

/// Serves `router()` with the async line server on tokio's 127.0.0.1 TCP,
/// on a runtime of its own: handlers run on the server's workers
/// (`sleep_ms` blocks one), which must not be the client's, or a client
/// task queued behind a sleeping handler could not see its timeout fire.
async fn spawn_async_server() -> SocketAddr {
    let (bound, addr) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            bound.send(listener.local_addr().unwrap()).unwrap();
            let l = &listener;
            rpc::tokio::serve(Arc::new(router()), move || async move {
                l.accept().await.map(|(s, _)| s)
            })
            .await
        })
    });
    addr.await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_client_against_blocking_server() {
    let addr = spawn_server(router(), Framing::Lines);
    let client = rpc::tokio::Client::connect(addr).await.unwrap();
    let sum: i64 = client.call("add", (2, 3)).await.unwrap();
    assert_eq!(sum, 5);
    let v: Value = client.call("add", json!({"a": 1, "b": 1})).await.unwrap();
    assert_eq!(v, json!(2));
    // Many calls in flight at once on one connection, matched by id.
    let client = Arc::new(client);
    let calls: Vec<_> = (0..50i64)
        .map(|i| {
            let c = Arc::clone(&client);
            tokio::spawn(async move { c.call::<_, i64>("add", (i, 1000)).await })
        })
        .collect();
    for (i, call) in calls.into_iter().enumerate() {
        assert_eq!(call.await.unwrap().unwrap(), i as i64 + 1000);
    }
    let r: Result<(), _> = client.call("fail", ()).await;
    assert!(
        matches!(r, Err(CallError::Rpc(ref e)) if e.code == -32001),
        "{r:?}"
    );
    let r: Result<(), _> = client.call("nope", ()).await;
    assert!(
        matches!(r, Err(CallError::Rpc(ref e)) if e.code == -32601),
        "{r:?}"
    );
    client.notify("add", (1, 2)).await.unwrap();
    let batch = client
        .batch(vec![
            rpc::BatchEntry::call("add", (1, 2)).unwrap(),
            rpc::BatchEntry::notify("add", (0, 0)).unwrap(),
            rpc::BatchEntry::call("nope", ()).unwrap(),
        ])
        .await
        .unwrap();
    assert_eq!(batch.len(), 2);
    assert_eq!(batch[0], Ok(json!(3)));
    assert_eq!(batch[1].as_ref().unwrap_err().code, -32601);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_async_stub_against_blocking_server() {
    let addr = spawn_server(router(), Framing::Lines);
    let calc = CalcAsyncClient::new(rpc::tokio::Client::connect(addr).await.unwrap());
    assert_eq!(calc.add(40, 2).await.unwrap(), 42);
    assert_eq!(
        calc.greet("bob".into(), Some(true)).await.unwrap(),
        "HELLO, BOB"
    );
    assert_eq!(calc.greet("al".into(), None).await.unwrap(), "hello, al");
    assert!(matches!(calc.fail().await, Err(CallError::Rpc(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_client_against_async_server() {
    let addr = spawn_async_server().await;
    let answers = tokio::task::spawn_blocking(move || {
        let calc = CalcClient::new(rpc::Client::connect_std(addr).unwrap());
        let sum = calc.add(2, 3).unwrap();
        let hi = calc.greet("eve".into(), None).unwrap();
        let failed = calc.fail().is_err();
        let batch = calc
            .inner()
            .batch(vec![
                rpc::BatchEntry::call("add", (1, 2)).unwrap(),
                rpc::BatchEntry::notify("add", (0, 0)).unwrap(),
                rpc::BatchEntry::call("add", (3, 4)).unwrap(),
            ])
            .unwrap();
        (sum, hi, failed, batch)
    })
    .await
    .unwrap();
    assert_eq!(answers.0, 5);
    assert_eq!(answers.1, "hello, eve");
    assert!(answers.2);
    assert_eq!(answers.3, vec![Ok(json!(3)), Ok(json!(7))]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_fails_the_call_and_the_connection_carries_on() {
    let addr = spawn_async_server().await;
    let client = rpc::tokio::Client::connect(addr).await.unwrap();
    let r: Result<u64, _> = client
        .call_timeout("sleep_ms", (500,), Duration::from_millis(50))
        .await;
    assert!(matches!(r, Err(CallError::Timeout)), "{r:?}");
    // The late reply finds nobody waiting; the next call is unaffected.
    let sum: i64 = client.call("add", (1, 2)).await.unwrap();
    assert_eq!(sum, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_call_leaves_the_connection_usable() {
    let addr = spawn_async_server().await;
    let client = rpc::tokio::Client::connect(addr).await.unwrap();
    // Cancelled at its first await: nothing half-written, nothing pending.
    tokio::select! {
        biased;
        () = std::future::ready(()) => {}
        _ = client.call::<_, u64>("sleep_ms", (10,)) => unreachable!(),
    }
    let sum: i64 = client.call("add", (4, 5)).await.unwrap();
    assert_eq!(sum, 9);
}

/// Asserts that `r` is the server's LIMIT_EXCEEDED refusal with this
/// message (both refusals below share the code).
fn refused<T: std::fmt::Debug>(r: Result<T, CallError>, message: &str) {
    match r {
        Err(CallError::Rpc(e)) => {
            assert_eq!(
                (e.code, e.message.as_str()),
                (rpc::error::LIMIT_EXCEEDED, message)
            );
        }
        other => panic!("{other:?}"),
    }
}

/// A request the server refuses before it can read its id (a line over
/// `max_message`, 1000 here; a batch over `max_batch`, 3) is answered
/// with a null id: the one call or batch in flight fails with that
/// error, on both clients, instead of waiting out its timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_with_a_null_id_fails_the_call_in_flight_on_both_clients() {
    let addr = spawn_async_server().await;
    let too_long = "x".repeat(2000);
    let five = || {
        (0..5)
            .map(|i| rpc::BatchEntry::call("add", (i, 1)).unwrap())
            .collect()
    };
    let client = rpc::tokio::Client::connect(addr)
        .await
        .unwrap()
        .with_timeout(Duration::from_secs(20));
    refused(
        client.call::<_, Value>("greet", (&too_long,)).await,
        "Message too large",
    );
    refused(client.batch(five()).await, "Batch too large");
    // The connection carries on.
    assert_eq!(client.call::<_, i64>("add", (1, 2)).await.unwrap(), 3);

    let blocking = tokio::task::spawn_blocking(move || {
        let client = rpc::Client::connect_std(addr)
            .unwrap()
            .with_timeout(Duration::from_secs(20));
        refused(
            client.call::<_, Value>("greet", (&too_long,)),
            "Message too large",
        );
        refused(client.batch(five()), "Batch too large");
        client.call::<_, i64>("add", (1, 2)).unwrap()
    });
    assert_eq!(blocking.await.unwrap(), 3);
}

#[tokio::test]
async fn a_closed_connection_fails_waiting_and_later_calls() {
    let (client_side, server_side) = tokio::io::duplex(1024);
    let client = rpc::tokio::Client::from_stream(client_side);
    let call = client.call::<_, i64>("add", (1, 2));
    drop(server_side);
    assert!(matches!(call.await, Err(CallError::Disconnected(_))));
    let r = client.call::<_, i64>("add", (1, 2)).await;
    assert!(matches!(r, Err(CallError::Disconnected(_))), "{r:?}");
}

/// The async server over an in-memory pipe, driven by raw lines.
#[tokio::test]
async fn async_server_over_duplex_honours_the_limits() {
    let (client_side, server_side) = tokio::io::duplex(4096);
    let server = tokio::spawn(async move {
        let router = router();
        rpc::tokio::serve_lines(&router, server_side).await
    });
    let (rd, mut wr) = tokio::io::split(client_side);
    let mut lines = BufReader::new(rd).lines();
    let mut ask = async |text: &str| -> Value {
        wr.write_all(format!("{text}\n").as_bytes()).await.unwrap();
        let line = lines.next_line().await.unwrap().unwrap();
        serde_json::from_str(&line).unwrap()
    };
    let one = r#"{"jsonrpc":"2.0","method":"add","params":[1,1],"id":1}"#;
    assert_eq!(ask(one).await, json!({"jsonrpc":"2.0","result":2,"id":1}));
    // An oversize line (max_message 1000) is one error; the connection lives on.
    let big = format!(
        r#"{{"jsonrpc":"2.0","method":"add","params":["{}"],"id":2}}"#,
        "x".repeat(5000)
    );
    let v = ask(&big).await;
    assert_eq!(v["error"]["code"], -32000);
    assert_eq!(v["error"]["message"], "Message too large");
    // A batch over max_batch (3) is one error, before anything runs.
    let v = ask(&format!("[{one},{one},{one},{one}]")).await;
    assert_eq!(v["error"]["message"], "Batch too large");
    let v = ask(&format!("[{one},{one},{one}]")).await;
    assert_eq!(v.as_array().unwrap().len(), 3);
    // Garbage, then a request: a parse error, then its answer.
    assert_eq!(ask("{nope").await["error"]["code"], -32700);
    assert_eq!(ask(one).await["result"], 2);
    drop(wr);
    drop(lines);
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn typed_async_stub_over_duplex() {
    let (client_side, server_side) = tokio::io::duplex(256);
    let (rd, wr) = tokio::io::split(server_side);
    tokio::spawn(async move {
        let router = router();
        rpc::tokio::serve_lines_split(&router, rd, wr).await
    });
    let calc = CalcAsyncClient::new(rpc::tokio::Client::from_stream(client_side));
    let (a, b) = tokio::join!(calc.add(1, 2), calc.greet("x".into(), Some(false)));
    assert_eq!(a.unwrap(), 3);
    assert_eq!(b.unwrap(), "hello, x");
}

// ---- JSON-RPC over HTTP, served by hyper ----

async fn spawn_http_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let l = &listener;
        rpc::tokio::http::serve(Arc::new(router()), move || async move {
            l.accept().await.map(|(s, _)| s)
        })
        .await
    });
    addr
}

/// Sends raw bytes and reads until the server closes, or 5 s pass.
async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out));
    let _ = read.await;
    String::from_utf8_lossy(&out).into_owned()
}

fn post(body: &str, extra: &str) -> String {
    format!(
        "POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}\r\n{body}",
        body.len()
    )
}

fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    response.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_call_gets_200_json_and_notification_204() {
    let addr = spawn_http_server().await;
    let out = raw(
        addr,
        post(
            r#"{"jsonrpc":"2.0","method":"add","params":[2,3],"id":1}"#,
            "Connection: close\r\n",
        )
        .as_bytes(),
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 200 "), "{out}");
    assert_eq!(header(&out, "content-type"), Some("application/json"));
    let body = out.split("\r\n\r\n").nth(1).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(body).unwrap(),
        json!({"jsonrpc":"2.0","result":5,"id":1})
    );
    let out = raw(
        addr,
        post(
            r#"{"jsonrpc":"2.0","method":"add","params":[2,3]}"#,
            "Connection: close\r\n",
        )
        .as_bytes(),
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 204 "), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_keep_alive_and_pipelining_answer_every_request() {
    let addr = spawn_http_server().await;
    let one = r#"{"jsonrpc":"2.0","method":"add","params":[1,1],"id":1}"#;
    let two = r#"{"jsonrpc":"2.0","method":"add","params":[2,2],"id":2}"#;
    let out = raw(
        addr,
        format!("{}{}", post(one, ""), post(two, "Connection: close\r\n")).as_bytes(),
    )
    .await;
    assert_eq!(out.matches("HTTP/1.1 200 ").count(), 2, "{out}");
    assert!(
        out.contains(r#""result":2"#) && out.contains(r#""result":4"#),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_refusals_use_the_blocking_servers_statuses() {
    let addr = spawn_http_server().await;
    let cases: Vec<(String, u16)> = vec![
        ("GARBAGE\r\n\r\n".into(), 400),
        ("POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".into(), 404),
        ("GET /rpc HTTP/1.1\r\nHost: x\r\n\r\n".into(), 405),
        ("POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\r\n".into(), 411),
        (
            "POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".into(),
            411,
        ),
        // Over max_message (1000): refused on the header, before the body.
        (
            "POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1001\r\n\r\n".into(),
            413,
        ),
        ("POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}".into(), 415),
        (
            "POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n".into(),
            400,
        ),
        (format!("POST /rpc HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n", "a".repeat(rpc::http::MAX_HEAD + 100)), 431),
        (
            format!("POST /rpc HTTP/1.1\r\nHost: x\r\n{}\r\n", "X: y\r\n".repeat(rpc::http::MAX_HEADERS + 1)),
            431,
        ),
    ];
    for (request, status) in cases {
        let out = raw(addr, request.as_bytes()).await;
        assert!(
            out.starts_with(&format!("HTTP/1.1 {status} ")),
            "{status}: {out}"
        );
        if status == 405 {
            assert_eq!(header(&out, "allow"), Some("POST"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_expect_continue_too_large_is_refused_up_front() {
    let addr = spawn_http_server().await;
    let request = "POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n";
    let out = raw(addr, request.as_bytes()).await;
    assert!(
        out.starts_with("HTTP/1.1 413 "),
        "no 100 Continue first: {out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_expect_continue_gets_the_interim_response_then_the_reply() {
    let addr = spawn_http_server().await;
    let body = r#"{"jsonrpc":"2.0","method":"add","params":[1,2],"id":9}"#;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).await.unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 100 Continue\r\n"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    s.write_all(body.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(
        out.starts_with("HTTP/1.1 200 ") && out.contains(r#""result":3"#),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_batch_limits_are_json_rpc_errors_in_a_200() {
    let addr = spawn_http_server().await;
    let one = r#"{"jsonrpc":"2.0","method":"add","params":[1,1],"id":1}"#;
    let out = raw(
        addr,
        post(
            &format!("[{one},{one},{one},{one}]"),
            "Connection: close\r\n",
        )
        .as_bytes(),
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 200 "), "{out}");
    assert!(out.contains("Batch too large"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hyper_client_calls_the_hyper_endpoint() {
    use http_body_util::{BodyExt, Full};
    use hyper::body::Bytes;
    let addr = spawn_http_server().await;
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    for id in 1..=3 {
        let body = format!(r#"{{"jsonrpc":"2.0","method":"add","params":[{id},10],"id":{id}}}"#);
        let request = hyper::Request::post("/rpc")
            .header("host", "x")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        sender.ready().await.unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["result"], id + 10);
    }
}
