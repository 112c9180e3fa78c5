//! End to end over `std::net::TcpStream` on 127.0.0.1: the typed stub
//! client calls the typed stub server, and `rpc.discover` describes it.
//! The same test is meant to run over the stack's own `TcpStream` once
//! that lands; nothing here is specific to `std::net` except the setup.

mod common;

use serde_json::{json, Value};

use common::{spawn_server, Framing};
use rpc::{CallError, Client, Router, RpcError};

rpc::service! {
    /// The demo's service.
    pub service Demo, client DemoClient {
        /// Adds two numbers; integral sums are sent as integers.
        fn add(a: f64, b: f64) -> Value;
        /// Returns its argument.
        fn echo(params: Value) -> Value;
        /// Greets someone, optionally loudly.
        fn greet(name: String, loud: Option<bool>) -> String;
        /// Always fails with a server-defined error.
        fn fail() -> ();
    }
}

struct DemoImpl;

impl Demo for DemoImpl {
    fn add(&self, a: f64, b: f64) -> Result<Value, RpcError> {
        Ok(rpc::message::number(a + b))
    }
    fn echo(&self, params: Value) -> Result<Value, RpcError> {
        Ok(params)
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

fn demo_router() -> Router {
    let mut r = Router::new().with_info("Demo", "1.0.0");
    DemoImpl.register_into(&mut r);
    r
}

#[test]
fn typed_stub_client_calls_typed_stub_server_over_loopback() {
    let addr = spawn_server(demo_router(), Framing::Lines);
    let demo = DemoClient::new(Client::connect_std(addr).unwrap());
    assert_eq!(demo.add(2.0, 3.0).unwrap(), json!(5));
    assert_eq!(demo.add(0.5, 0.25).unwrap(), json!(0.75));
    assert_eq!(
        demo.echo(json!({"k": [1, 2]})).unwrap(),
        json!({"k": [1, 2]})
    );
    assert_eq!(demo.greet("nc".into(), None).unwrap(), "hello, nc");
    assert_eq!(demo.greet("nc".into(), Some(true)).unwrap(), "HELLO, NC");
    match demo.fail() {
        Err(CallError::Rpc(e)) => assert_eq!((e.code, e.message.as_str()), (-32001, "not today")),
        other => panic!("expected a server error, got {other:?}"),
    }
}

#[test]
fn untyped_calls_with_named_params_reach_the_stub_server() {
    let addr = spawn_server(demo_router(), Framing::Lines);
    let client = Client::connect_std(addr).unwrap();
    let v: Value = client.call("add", json!({"a": 2, "b": 3})).unwrap();
    assert_eq!(v, json!(5));
    let e = client.call::<_, Value>("add", json!({"a": 2})).unwrap_err();
    let CallError::Rpc(e) = e else {
        panic!("{e:?}")
    };
    assert_eq!(e.code, rpc::error::INVALID_PARAMS);
    let data = e.data.unwrap();
    assert!(
        data.as_str().unwrap().contains("\"b\" (f64): missing"),
        "{data}"
    );
}

#[test]
fn rpc_discover_describes_every_method() {
    let addr = spawn_server(demo_router(), Framing::Lines);
    let demo = DemoClient::new(Client::connect_std(addr).unwrap());
    let doc: Value = demo.inner().call("rpc.discover", ()).unwrap();
    assert_eq!(doc["openrpc"], "1.2.6");
    assert_eq!(doc["info"], json!({"title": "Demo", "version": "1.0.0"}));
    let names: Vec<&str> = doc["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["add", "echo", "fail", "greet"]);
    let add = &doc["methods"][0];
    assert_eq!(
        add["summary"],
        "Adds two numbers; integral sums are sent as integers."
    );
    assert_eq!(
        add["params"],
        json!([
            {"name": "a", "required": true, "schema": {"type": "number"}},
            {"name": "b", "required": true, "schema": {"type": "number"}},
        ])
    );
    let greet = &doc["methods"][3];
    assert_eq!(greet["params"][1]["required"], false);
    assert_eq!(greet["result"]["schema"], json!({"type": "string"}));
    // The document matches what the stub itself declares.
    assert_eq!(DemoClient::describe().len(), names.len());
}

#[test]
fn the_same_router_serves_http_on_loopback() {
    use std::io::{Read, Write};
    let addr = spawn_server(demo_router(), Framing::Http);
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    let body = r#"{"jsonrpc":"2.0","method":"add","params":[2,3],"id":1}"#;
    write!(
        conn,
        "POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    conn.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(
        reply.ends_with(r#"{"jsonrpc":"2.0","result":5,"id":1}"#),
        "{reply}"
    );
}
