//! hyper's HTTP/1.1 client against the demo's HTTP service, both on the
//! userspace stack: two stacks joined by an in-memory link (no device, no
//! root), the demo's `Services` behind a `stack::tokio::TcpListener` on
//! one, hyper's client over a `stack::tokio::TcpStream` from the other.
//! Keep-alive, a streamed 10 MiB download, an upload with and without
//! `Expect: 100-continue`, and the error statuses, checked by what hyper
//! parses.

#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use demo::kernel::KernelHost;
use demo::services::routes::hex;
use demo::{ConnInfo, Service, Services};
use stack::device::mem::MemPair;
use stack::{Config, Stack};

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 9, 1, 1);
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 9, 1, 2);
const PATIENCE: Duration = Duration::from_secs(60);

/// A client stack and a server stack serving the demo's HTTP on port 80.
fn serving() -> (Stack, Stack, SocketAddr) {
    let (dc, ds) = MemPair::new(1024, 1500);
    let client = Stack::new(dc, Config::with_addr(CLIENT)).unwrap();
    let server = Stack::new(ds, Config::with_addr(SERVER)).unwrap();
    let addr = SocketAddr::from((SERVER, 80));
    let listener = stack::tokio::TcpListener::bind(&server, addr).unwrap();
    let services = Services::new(Arc::new(KernelHost::new()));
    tokio::spawn(async move {
        services
            .accept_loop(Service::Http, || async {
                let (stream, remote) = listener.accept().await?;
                let local = stream.local_addr()?;
                Ok((stream, ConnInfo { local, remote }))
            })
            .await
    });
    (client, server, addr)
}

/// One hyper client connection through `client` to `addr`.
async fn connect(client: &Stack, addr: SocketAddr) -> SendRequest<Full<Bytes>> {
    let stream = stack::tokio::TcpStream::connect(client, addr)
        .await
        .unwrap();
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    sender
}

/// Sends `req` and returns the status, the headers and the whole body.
async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    req: Request<Full<Bytes>>,
) -> (StatusCode, hyper::HeaderMap, Bytes) {
    sender.ready().await.unwrap();
    let resp = tokio::time::timeout(PATIENCE, sender.send_request(req))
        .await
        .expect("an answer in time")
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, body)
}

fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("host", "demo")
        .body(Full::default())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hyper_client_fetches_every_kind_of_page_on_one_connection() {
    let (client, _server, addr) = serving();
    let mut sender = connect(&client, addr).await;

    // The index page names the client's own 4-tuple.
    let (status, _, body) = send(&mut sender, get("/")).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8_lossy(&body).into_owned();
    assert!(text.starts_with(&format!("you are {CLIENT}:")), "{text}");
    assert!(text.contains(&format!("talking to {addr}")), "{text}");

    // 10 MiB streamed, exact, with its length announced.
    let n = 10 * 1024 * 1024;
    let (status, headers, body) = send(&mut sender, get(&format!("/bytes/{n}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-length"], n.to_string().as_str());
    assert_eq!(body.len(), n);
    assert!(body.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));

    // JSON: the host's counters, with the demo's own under "demo".
    let (status, _, body) = send(&mut sender, get("/stats")).await;
    assert_eq!(status, StatusCode::OK);
    let stats: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(stats["stack"], "linux kernel");
    assert_eq!(stats["demo"]["refused"], 0);

    // Errors, each a status hyper parses, the connection kept where the
    // request was read whole.
    let (status, _, body) = send(&mut sender, get("/nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(String::from_utf8_lossy(&body).contains("/nope"));
    let (status, headers, _) = send(&mut sender, get("/sha256")).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers["allow"], "POST");
    let (status, _, _) = send(&mut sender, get("/bytes/ten")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Still the same connection: its ephemeral port has not changed.
    let (_, _, body) = send(&mut sender, get("/")).await;
    let again = String::from_utf8_lossy(&body).into_owned();
    let first_line = |t: &str| t.lines().next().unwrap_or_default().to_owned();
    assert_eq!(first_line(&again), first_line(&text));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hyper_client_uploads_with_and_without_expect_continue() {
    let (client, _server, addr) = serving();
    let mut sender = connect(&client, addr).await;
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let want = hex(&Sha256::digest(&data));
    for expect in [false, true] {
        let mut req = Request::post("/sha256").header("host", "demo");
        if expect {
            req = req.header("expect", "100-continue");
        }
        let req = req.body(Full::new(Bytes::from(data.clone()))).unwrap();
        let (status, _, body) = send(&mut sender, req).await;
        assert_eq!(status, StatusCode::OK, "expect {expect}");
        assert_eq!(String::from_utf8_lossy(&body).trim_end(), want);
    }

    // JSON-RPC over POST: a call and its reply, matched by id.
    let call = json!({"jsonrpc": "2.0", "method": "add", "params": [2, 3], "id": 7});
    let req = Request::builder()
        .method(Method::POST)
        .uri("/rpc")
        .header("host", "demo")
        .body(Full::new(Bytes::from(call.to_string())))
        .unwrap();
    let (status, _, body) = send(&mut sender, req).await;
    assert_eq!(status, StatusCode::OK);
    let reply: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(reply, json!({"jsonrpc": "2.0", "result": 5, "id": 7}));
}
