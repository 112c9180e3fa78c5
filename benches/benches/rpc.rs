//! RPC hot paths: encode+decode of a small request and response, decode
//! plus dispatch through a `Router`, and a full call round trip over
//! loopback `std::net` TCP (the baseline for the stack's own round trip).

// Benchmark setup: a failure aborts the run, which is what we want.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::net::TcpListener;
use std::sync::Arc;
use std::thread;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::{json, Value};

use rpc::{Client, Id, Params, Request, Response, Router};

const ADD: &[u8] = br#"{"jsonrpc":"2.0","method":"add","params":[2,3],"id":1}"#;

fn router() -> Router {
    let mut r = Router::new();
    r.register("add", |(a, b): (i64, i64)| Ok(a + b));
    r
}

fn codec(c: &mut Criterion) {
    let mut g = c.benchmark_group("rpc/codec");
    g.throughput(Throughput::Elements(1));
    let request = Request {
        method: "add".to_owned(),
        params: Some(Params::Positional(vec![json!(2), json!(3)])),
        id: Some(Id::from(1)),
    };
    g.bench_function("request_encode_decode", |b| {
        b.iter(|| {
            let bytes = serde_json::to_vec(black_box(&request)).unwrap();
            let v: Value = serde_json::from_slice(&bytes).unwrap();
            Request::from_value(v).unwrap()
        })
    });
    let response = Response::ok(Id::from(1), json!(5));
    g.bench_function("response_encode_decode", |b| {
        b.iter(|| {
            let bytes = serde_json::to_vec(black_box(&response)).unwrap();
            let v: Value = serde_json::from_slice(&bytes).unwrap();
            Response::from_value(v).unwrap()
        })
    });
    let router = router();
    g.bench_function("handle_text_add", |b| {
        b.iter(|| router.handle_text(black_box(ADD)).unwrap())
    });
    g.finish();
}

fn loopback(c: &mut Criterion) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Arc::new(router());
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = stream.set_nodelay(true);
            let router = Arc::clone(&router);
            thread::spawn(move || router.serve_lines(stream));
        }
    });
    let client = Client::connect_std(addr).unwrap();
    let mut g = c.benchmark_group("rpc/loopback_std");
    g.throughput(Throughput::Elements(1));
    g.bench_function("call_add_round_trip", |b| {
        b.iter(|| {
            let sum: i64 = client.call("add", black_box((2, 3))).unwrap();
            sum
        })
    });
    g.finish();
}

criterion_group!(benches, codec, loopback);
criterion_main!(benches);
