//! Every example of the JSON-RPC 2.0 specification's "Examples" section
//! (<https://www.jsonrpc.org/specification#examples>), sent as text to a
//! router with the spec's methods, compared as JSON values with the
//! response the specification shows.
//!
//! The spec's error objects carry no `data`; ours may add one (§5.1: "A
//! Primitive or Structured value that contains additional information
//! about the error ... defined by the Server"), so `data` is checked to be
//! the only extra member and then removed before the comparison.

use serde_json::{json, Value};

use rpc::{Router, RpcError};

rpc::service! {
    /// The spec's `subtract`, by position or by name.
    service Arith, client ArithClient {
        fn subtract(minuend: i64, subtrahend: i64) -> i64;
    }
}

struct ArithImpl;

impl Arith for ArithImpl {
    fn subtract(&self, minuend: i64, subtrahend: i64) -> Result<i64, RpcError> {
        Ok(minuend - subtrahend)
    }
}

fn spec_router() -> Router {
    let mut r = Router::new();
    ArithImpl.register_into(&mut r);
    r.register("sum", |v: Vec<i64>| Ok(v.iter().sum::<i64>()));
    r.register("update", |_: Vec<Value>| Ok(()));
    r.register("notify_hello", |_: Vec<Value>| Ok(()));
    r.register("notify_sum", |_: Vec<i64>| Ok(()));
    r.register("get_data", |(): ()| Ok(json!(["hello", 5])));
    r
}

/// (what the spec calls it, request text, expected response or None for "nothing is returned").
const EXAMPLES: &[(&str, &str, Option<&str>)] = &[
    (
        "rpc call with positional parameters (1)",
        r#"{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}"#,
        Some(r#"{"jsonrpc": "2.0", "result": 19, "id": 1}"#),
    ),
    (
        "rpc call with positional parameters (2)",
        r#"{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}"#,
        Some(r#"{"jsonrpc": "2.0", "result": -19, "id": 2}"#),
    ),
    (
        "rpc call with named parameters (1)",
        r#"{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}"#,
        Some(r#"{"jsonrpc": "2.0", "result": 19, "id": 3}"#),
    ),
    (
        "rpc call with named parameters (2)",
        r#"{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, "id": 4}"#,
        Some(r#"{"jsonrpc": "2.0", "result": 19, "id": 4}"#),
    ),
    (
        "a Notification (update)",
        r#"{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}"#,
        None,
    ),
    (
        "a Notification (foobar)",
        r#"{"jsonrpc": "2.0", "method": "foobar"}"#,
        None,
    ),
    (
        "rpc call of non-existent method",
        r#"{"jsonrpc": "2.0", "method": "foobar", "id": "1"}"#,
        Some(
            r#"{"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "1"}"#,
        ),
    ),
    (
        "rpc call with invalid JSON",
        r#"{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]"#,
        Some(
            r#"{"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}"#,
        ),
    ),
    (
        "rpc call with invalid Request object",
        r#"{"jsonrpc": "2.0", "method": 1, "params": "bar"}"#,
        Some(
            r#"{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}"#,
        ),
    ),
    (
        "rpc call Batch, invalid JSON",
        r#"[
  {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
  {"jsonrpc": "2.0", "method"
]"#,
        Some(
            r#"{"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}"#,
        ),
    ),
    (
        "rpc call with an empty Array",
        r#"[]"#,
        Some(
            r#"{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}"#,
        ),
    ),
    (
        "rpc call with an invalid Batch (but not empty)",
        r#"[1]"#,
        Some(
            r#"[
  {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}
]"#,
        ),
    ),
    (
        "rpc call with invalid Batch",
        r#"[1,2,3]"#,
        Some(
            r#"[
  {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},
  {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},
  {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}
]"#,
        ),
    ),
    (
        "rpc call Batch",
        r#"[
        {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
        {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
        {"foo": "boo"},
        {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
        {"jsonrpc": "2.0", "method": "get_data", "id": "9"}
    ]"#,
        Some(
            r#"[
        {"jsonrpc": "2.0", "result": 7, "id": "1"},
        {"jsonrpc": "2.0", "result": 19, "id": "2"},
        {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},
        {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "5"},
        {"jsonrpc": "2.0", "result": ["hello", 5], "id": "9"}
    ]"#,
        ),
    ),
    (
        "rpc call Batch (all notifications)",
        r#"[
        {"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}
    ]"#,
        None,
    ),
];

/// Removes the server-defined `error.data` from one response object.
fn strip_data(response: &mut Value) {
    if let Some(error) = response.get_mut("error").and_then(Value::as_object_mut) {
        error.remove("data");
        let keys: Vec<&String> = error.keys().collect();
        assert_eq!(keys, ["code", "message"], "unexpected error members");
    }
}

fn normalise(mut v: Value) -> Value {
    match &mut v {
        Value::Array(items) => items.iter_mut().for_each(strip_data),
        _ => strip_data(&mut v),
    }
    v
}

#[test]
fn every_specification_example_gets_the_specified_response() {
    let router = spec_router();
    for (name, request, expected) in EXAMPLES {
        let reply = router.handle_text(request.as_bytes());
        match expected {
            None => assert_eq!(reply, None, "{name}: expected no reply"),
            Some(expected) => {
                let reply = reply.unwrap_or_else(|| panic!("{name}: no reply"));
                let got: Value = serde_json::from_slice(&reply).unwrap();
                let want: Value = serde_json::from_str(expected).unwrap();
                assert_eq!(normalise(got), want, "{name}");
            }
        }
    }
}

#[test]
fn subtract_result_is_an_integer_on_the_wire() {
    let reply = spec_router()
        .handle_text(br#"{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}"#)
        .unwrap();
    assert_eq!(reply, br#"{"jsonrpc":"2.0","result":19,"id":1}"#);
}

#[test]
fn examples_also_hold_over_line_framing() {
    // The same table through serve_lines: one example per line, replies in order.
    let router = spec_router();
    let mut input = Vec::new();
    for (_, request, _) in EXAMPLES {
        // One JSON text per line: collapse the pretty-printed batches.
        input.extend(request.bytes().filter(|&b| b != b'\n'));
        input.push(b'\n');
    }
    let mut stream = common::Scripted::new(input, 7);
    router.serve_lines(&mut stream).unwrap();
    let got: Vec<Value> = stream.output_json().into_iter().map(normalise).collect();
    let want: Vec<Value> = EXAMPLES
        .iter()
        .filter_map(|(_, _, e)| e.map(|e| serde_json::from_str(e).unwrap()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn the_stub_client_type_exists_for_the_spec_service() {
    // The macro's client half is exercised over TCP in end_to_end.rs; here
    // only its discovery description of the spec's method is checked.
    let d = ArithClient::describe();
    assert_eq!(d[0].name, "subtract");
    assert_eq!(d[0].params[0].name, "minuend");
}

mod common;
