//! The demo's JSON-RPC service: the methods behind TCP port 7070 and
//! `POST /rpc`, defined once with the `rpc` crate's typed stubs (which also
//! give `demo call` and tests a typed client, [`DemoClient`]).
//!
//! | method         | params            | result                           |
//! |----------------|-------------------|----------------------------------|
//! | `echo`         | anything          | the params as given (or `null`)  |
//! | `add`          | `[a, b]` / `{a,b}`| `a + b`, an integer if integral  |
//! | `sockets`      | none              | [`HostInfo::sockets`]            |
//! | `stats`        | none              | [`HostInfo::stats`]              |
//! | `rpc.discover` | none              | the OpenRPC document (rpc crate) |
//!
//! `sockets` and `stats` are heavy (their cost grows with the host's socket
//! table, not with the request): a batch may call them at most
//! [`rpc::server::DEFAULT_MAX_HEAVY`] times in all; further calls in that
//! batch get -32001 (`rpc::error::TOO_MANY_HEAVY`). A batch's reply is
//! capped at [`rpc::server::DEFAULT_MAX_REPLY`] bytes (-32600 past it).

use std::sync::Arc;

use serde_json::{Number, Value};

use crate::host::HostInfo;

rpc::service! {
    /// The demo host's typed methods.
    pub service Demo, client DemoClient {
        /// Adds two numbers; the sum is an integer when it is integral.
        fn add(a: Number, b: Number) -> Value;
        /// The host's socket table.
        fn sockets() -> Value;
        /// The host's counters.
        fn stats() -> Value;
    }
}

/// Serves [`Demo`] from a [`HostInfo`].
struct DemoImpl {
    host: Arc<dyn HostInfo>,
}

impl Demo for DemoImpl {
    fn add(&self, a: Number, b: Number) -> Result<Value, rpc::RpcError> {
        Ok(add(&a, &b))
    }

    fn sockets(&self) -> Result<Value, rpc::RpcError> {
        Ok(self.host.sockets())
    }

    fn stats(&self) -> Result<Value, rpc::RpcError> {
        Ok(self.host.stats())
    }
}

/// Builds the router answering the demo's methods from `host`.
///
/// `echo` is registered untyped: it returns its params whatever their
/// shape, which a fixed parameter list cannot express.
pub fn router(host: Arc<dyn HostInfo>) -> rpc::Router {
    let mut router = rpc::Router::new().with_info("demo", env!("CARGO_PKG_VERSION"));
    DemoImpl { host }.register_into(&mut router);
    router.mark_heavy("sockets").mark_heavy("stats");
    router.register_raw(
        rpc::MethodInfo::new("echo", &[("params", "Value")], "Value")
            .with_summary("Returns its params as given."),
        |params| Ok(params.map_or(Value::Null, rpc::Params::into_value)),
    );
    router
}

/// `a + b`: exact for two integers whose sum fits i64/u64, else in f64.
fn add(a: &Number, b: &Number) -> Value {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        if let Some(sum) = x.checked_add(y) {
            return Value::from(sum);
        }
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        if let Some(sum) = x.checked_add(y) {
            return Value::from(sum);
        }
    }
    // Every JSON number has an f64 reading (serde_json without
    // arbitrary_precision), so 0.0 is never used.
    let x = a.as_f64().unwrap_or(0.0);
    let y = b.as_f64().unwrap_or(0.0);
    rpc::message::number(x + y)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    struct NoHost;

    impl HostInfo for NoHost {
        fn sockets(&self) -> Value {
            json!([{"protocol": "tcp"}])
        }
        fn stats(&self) -> Value {
            json!({"n": 1})
        }
    }

    fn call(text: &str) -> Value {
        let r = router(Arc::new(NoHost));
        serde_json::from_slice(&r.handle_text(text.as_bytes()).expect("reply")).expect("json")
    }

    #[test]
    fn add_is_integral_when_it_can_be() {
        let v = call(r#"{"jsonrpc":"2.0","method":"add","params":[2,3],"id":1}"#);
        assert_eq!(v["result"], json!(5));
        assert_eq!(v["result"].to_string(), "5");
        let v = call(r#"{"jsonrpc":"2.0","method":"add","params":[2.5,0.25],"id":1}"#);
        assert_eq!(v["result"], json!(2.75));
        let v = call(r#"{"jsonrpc":"2.0","method":"add","params":[1.5,1.5],"id":1}"#);
        assert_eq!(v["result"].to_string(), "3");
        let v = call(r#"{"jsonrpc":"2.0","method":"add","params":{"a":-2,"b":3},"id":1}"#);
        assert_eq!(v["result"], json!(1));
    }

    #[test]
    fn add_of_large_integers_does_not_overflow() {
        let v = call(r#"{"jsonrpc":"2.0","method":"add","params":[9223372036854775807,1],"id":1}"#);
        assert_eq!(v["result"], json!(9_223_372_036_854_775_808u64));
    }

    #[test]
    fn add_rejects_non_numbers() {
        let v = call(r#"{"jsonrpc":"2.0","method":"add","params":["2",3],"id":1}"#);
        assert_eq!(v["error"]["code"], json!(-32602));
    }

    #[test]
    fn echo_returns_params_of_any_shape() {
        for p in [json!([1, "a", null]), json!({"k": [1]})] {
            let req = json!({"jsonrpc":"2.0","method":"echo","params":p,"id":1});
            assert_eq!(call(&req.to_string())["result"], p);
        }
        assert_eq!(
            call(r#"{"jsonrpc":"2.0","method":"echo","id":1}"#)["result"],
            Value::Null
        );
    }

    #[test]
    fn discover_lists_every_method() {
        let v = call(r#"{"jsonrpc":"2.0","method":"rpc.discover","id":1}"#);
        let text = v["result"].to_string();
        for m in ["echo", "add", "sockets", "stats"] {
            assert!(text.contains(&format!("\"{m}\"")), "{m} missing in {text}");
        }
    }
}
