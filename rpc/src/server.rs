//! The server side: a [`Router`] maps method names to typed handlers and
//! answers JSON-RPC text (JSON-RPC 2.0 §6 for batches), either as a pure
//! function ([`Router::handle_text`]) or on a byte stream with newline
//! ([`Router::serve_lines`]) or HTTP ([`Router::serve_http`]) framing.
//!
//! One `Router` (in an `Arc`) serves any number of connections, each on its
//! own thread: handlers are `Fn + Send + Sync`. A handler that panics is
//! answered with -32603 and the connection carries on.
//!
//! DoS bounds (each a `with_*` setting; beyond any of them the peer gets an
//! error response and the connection lives on):
//! - a message is at most `max_message` bytes (default 1 MiB) on either
//!   framing: -32000 "Message too large";
//! - a batch has at most `max_batch` entries (default [`DEFAULT_MAX_BATCH`]),
//!   counted by a cheap scan ([`crate::scan`]) *before* the text is parsed:
//!   -32000 "Batch too large";
//! - a batch's reply is at most `max_reply` bytes (default
//!   [`DEFAULT_MAX_REPLY`]): once the replies so far would pass it, the
//!   entry that would and every later one are not run, and each request
//!   among them is answered -32600 "Batch reply too large" (a notification
//!   among them is dropped unrun). The cap bounds the work and memory of
//!   one batch at about `max_reply` plus `max_batch` small error objects;
//!   a single request outside a batch is not capped by it;
//! - at most `max_heavy` calls (default [`DEFAULT_MAX_HEAVY`]) of methods
//!   marked heavy ([`Router::mark_heavy`], e.g. a snapshot of a large
//!   table) run per batch; each one after them is answered
//!   [`TOO_MANY_HEAVY`] (-32001) "Too many expensive calls in one batch".
//!
//! Over HTTP (`serve_http`, the demo's `POST /rpc`) all of these are
//! JSON-RPC errors in a 200 response, as on a line; only a body over
//! `max_message` is refused with HTTP 413 before it is read.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};
use std::panic::{self, AssertUnwindSafe};

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::discover::{self, MethodInfo};
use crate::error::{RpcError, INVALID_REQUEST, LIMIT_EXCEEDED, TOO_MANY_HEAVY};
use crate::framing::{self, Frame, LineReader, DEFAULT_MAX_LINE};
use crate::http::{HttpConn, Next};
use crate::message::{Id, Params, Request, Response};
use crate::scan;

/// Default maximum number of entries in one batch.
pub const DEFAULT_MAX_BATCH: usize = 1024;

/// Default maximum size of one batch's reply: 1 MiB, the line limit our
/// own [`Client`](crate::Client) reads replies with, so any batch reply
/// this server sends by default can be read by it.
pub const DEFAULT_MAX_REPLY: usize = DEFAULT_MAX_LINE;

/// Default number of calls to heavy methods run in one batch.
pub const DEFAULT_MAX_HEAVY: usize = 1;

/// A type-erased handler: params in, result or error out.
pub type Handler = Box<dyn Fn(Option<Params>) -> Result<Value, RpcError> + Send + Sync + 'static>;

struct Method {
    handler: Handler,
    info: MethodInfo,
}

/// Method name -> handler, plus the limits every connection is served with.
pub struct Router {
    methods: HashMap<String, Method>,
    title: String,
    version: String,
    max_message: usize,
    max_batch: usize,
    max_reply: usize,
    heavy: HashSet<String>,
    max_heavy: usize,
}

impl Default for Router {
    fn default() -> Router {
        Router::new()
    }
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.methods.keys().collect();
        names.sort();
        f.debug_struct("Router")
            .field("methods", &names)
            .field("max_message", &self.max_message)
            .field("max_batch", &self.max_batch)
            .field("max_reply", &self.max_reply)
            .field("max_heavy", &self.max_heavy)
            .finish()
    }
}

impl Router {
    /// An empty router with default limits. `rpc.discover` is always answered.
    pub fn new() -> Router {
        Router {
            methods: HashMap::new(),
            title: "rpc".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            max_message: DEFAULT_MAX_LINE,
            max_batch: DEFAULT_MAX_BATCH,
            max_reply: DEFAULT_MAX_REPLY,
            heavy: HashSet::new(),
            max_heavy: DEFAULT_MAX_HEAVY,
        }
    }

    /// Sets the service title and version reported by `rpc.discover`.
    #[must_use]
    pub fn with_info(mut self, title: impl Into<String>, version: impl Into<String>) -> Router {
        self.title = title.into();
        self.version = version.into();
        self
    }

    /// Sets the largest accepted message (a line, or an HTTP body), in bytes.
    #[must_use]
    pub fn with_max_message(mut self, bytes: usize) -> Router {
        self.max_message = bytes;
        self
    }

    /// Sets the largest accepted batch, in entries.
    #[must_use]
    pub fn with_max_batch(mut self, entries: usize) -> Router {
        self.max_batch = entries;
        self
    }

    /// Sets the largest reply of one batch, in bytes (see the module docs
    /// for what happens past it).
    #[must_use]
    pub fn with_max_reply(mut self, bytes: usize) -> Router {
        self.max_reply = bytes;
        self
    }

    /// Sets how many calls of heavy methods one batch may run.
    #[must_use]
    pub fn with_max_heavy(mut self, calls: usize) -> Router {
        self.max_heavy = calls;
        self
    }

    /// Marks `name` heavy: its cost grows with something the caller does
    /// not control (a table snapshot), so a batch may call heavy methods
    /// at most `max_heavy` times in all. Calls outside a batch are not
    /// limited: each one is a separate message the peer had to send.
    pub fn mark_heavy(&mut self, name: &str) -> &mut Router {
        self.heavy.insert(name.to_owned());
        self
    }

    /// Registers a typed handler. Params are deserialized into `P`: a
    /// positional array into a tuple or `Vec`, a named object into a struct
    /// or map, absent params as `null` (so `()` or `Option` take none).
    /// A mismatch is answered with -32602 and serde's explanation in `data`.
    ///
    /// ```
    /// let mut router = rpc::Router::new();
    /// router.register("add", |(a, b): (i64, i64)| Ok(a + b));
    /// ```
    ///
    /// # Panics
    ///
    /// If `name` starts with `rpc.`: the specification reserves those names.
    pub fn register<P, R, F>(&mut self, name: &str, f: F) -> &mut Router
    where
        P: DeserializeOwned,
        R: Serialize,
        F: Fn(P) -> Result<R, RpcError> + Send + Sync + 'static,
    {
        let info = MethodInfo::from_types::<P, R>(name);
        self.register_raw(info, move |params| {
            let value = params.map_or(Value::Null, Params::into_value);
            let p: P = serde_json::from_value(value)
                .map_err(|e| RpcError::invalid_params(e.to_string()))?;
            to_result(f(p)?)
        })
    }

    /// Registers an untyped handler with its discovery description; the
    /// form the [`service!`](crate::service) macro uses.
    ///
    /// # Panics
    ///
    /// If the name starts with `rpc.` (reserved by the specification §4).
    pub fn register_raw<F>(&mut self, info: MethodInfo, f: F) -> &mut Router
    where
        F: Fn(Option<Params>) -> Result<Value, RpcError> + Send + Sync + 'static,
    {
        assert!(
            !info.name.starts_with("rpc."),
            "method names starting with \"rpc.\" are reserved"
        );
        self.methods.insert(
            info.name.clone(),
            Method {
                handler: Box::new(f),
                info,
            },
        );
        self
    }

    /// Descriptions of the registered methods, sorted by name.
    pub fn methods(&self) -> Vec<&MethodInfo> {
        let mut v: Vec<&MethodInfo> = self.methods.values().map(|m| &m.info).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// The answer to one JSON-RPC text (a request or a batch), or `None`
    /// when nothing must be sent back (a notification or an
    /// all-notification batch, §6). Never fails: every problem becomes an
    /// error response.
    pub fn handle_text(&self, text: &[u8]) -> Option<Vec<u8>> {
        if text.len() > self.max_message {
            let e = RpcError::server_error(LIMIT_EXCEEDED, "Message too large").with_data(format!(
                "a message may be at most {} bytes",
                self.max_message
            ));
            return Some(encode(&Response::err(Id::Null, e)));
        }
        // The batch limit on a cheap count, before any parse.
        if let Some(n) = scan::batch_len(text, self.max_batch) {
            if n > self.max_batch {
                return Some(encode(&Response::err(Id::Null, self.batch_too_large())));
            }
        }
        let value: Value = match serde_json::from_slice(text) {
            Ok(v) => v,
            Err(e) => {
                let err = RpcError::parse_error().with_data(e.to_string());
                return Some(encode(&Response::err(Id::Null, err)));
            }
        };
        match value {
            // §6: an empty array is a single Invalid Request, not an empty batch.
            Value::Array(items) if items.is_empty() => {
                let e = RpcError::invalid_request().with_data("empty batch");
                Some(encode(&Response::err(Id::Null, e)))
            }
            // The scan above counts what the parse finds; this stays as
            // the rule's statement should the two ever disagree.
            Value::Array(items) if items.len() > self.max_batch => {
                Some(encode(&Response::err(Id::Null, self.batch_too_large())))
            }
            Value::Array(items) => self.handle_batch(items),
            single => self.handle_value(single).map(|r| encode(&r)),
        }
    }

    fn batch_too_large(&self) -> RpcError {
        RpcError::server_error(LIMIT_EXCEEDED, "Batch too large").with_data(format!(
            "a batch may hold at most {} entries",
            self.max_batch
        ))
    }

    /// A batch (§6), under the reply and heavy-call budgets of the module
    /// docs. The reply is assembled as bytes while the entries run, so its
    /// size is known without encoding anything twice.
    fn handle_batch(&self, items: Vec<Value>) -> Option<Vec<u8>> {
        let mut out = vec![b'['];
        let mut over_budget = false;
        let mut heavy_calls = 0usize;
        for item in items {
            let request = match Request::from_value(item) {
                Ok(r) => r,
                Err((e, id)) => {
                    push_entry(&mut out, &encode(&Response::err(id, e)));
                    continue;
                }
            };
            let refusal = if over_budget {
                Some(self.reply_too_large())
            } else if self.heavy.contains(&request.method) {
                heavy_calls += 1;
                (heavy_calls > self.max_heavy).then(|| self.too_many_heavy())
            } else {
                None
            };
            let outcome = match refusal {
                Some(e) => Err(e),
                None => self.dispatch(&request.method, request.params),
            };
            // A notification is run for its effect and answered with nothing.
            let Some(id) = request.id else { continue };
            let mut reply = encode(&Response {
                outcome,
                id: id.clone(),
            });
            // +2: the comma before it and the closing bracket.
            if !over_budget && out.len() + reply.len() + 2 > self.max_reply {
                over_budget = true;
                reply = encode(&Response::err(id, self.reply_too_large()));
            }
            push_entry(&mut out, &reply);
        }
        // §6: nothing at all for a batch of only notifications.
        if out.len() == 1 {
            return None;
        }
        out.push(b']');
        Some(out)
    }

    fn reply_too_large(&self) -> RpcError {
        RpcError::new(INVALID_REQUEST, "Batch reply too large").with_data(format!(
            "a batch's reply may be at most {} bytes; this entry and the ones after it were not run",
            self.max_reply
        ))
    }

    fn too_many_heavy(&self) -> RpcError {
        let why = format!(
            "a batch may call expensive methods at most {} times; send the rest in another message",
            self.max_heavy
        );
        RpcError::server_error(TOO_MANY_HEAVY, "Too many expensive calls in one batch")
            .with_data(why)
    }

    /// One request object in, its response out (`None` for a notification).
    fn handle_value(&self, value: Value) -> Option<Response> {
        let request = match Request::from_value(value) {
            Ok(r) => r,
            Err((e, id)) => return Some(Response::err(id, e)),
        };
        let outcome = self.dispatch(&request.method, request.params);
        request.id.map(|id| Response { outcome, id })
    }

    fn dispatch(&self, method: &str, params: Option<Params>) -> Result<Value, RpcError> {
        if method == discover::METHOD {
            return Ok(discover::document(
                &self.title,
                &self.version,
                &self.methods(),
            ));
        }
        // An unknown method is a value, answered -32601 (not a failure of the connection).
        let Some(m) = self.methods.get(method) else {
            return Err(
                RpcError::method_not_found().with_data(format!("no method named {method:?}"))
            );
        };
        // A handler bug must not take the server down: contain the panic.
        // AssertUnwindSafe: handlers are `Fn` and the router holds no state
        // a panicking handler could leave half-updated.
        match panic::catch_unwind(AssertUnwindSafe(|| (m.handler)(params))) {
            Ok(outcome) => outcome,
            Err(payload) => {
                let why = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_owned());
                Err(RpcError::internal_error(format!(
                    "handler {method:?} panicked: {why}"
                )))
            }
        }
    }

    /// Serves newline-delimited JSON-RPC on `stream` until the peer closes
    /// it: one JSON text per line in, one response per line out. A bad
    /// line gets an error response; blank lines are skipped by the framing
    /// and get nothing.
    ///
    /// # Errors
    ///
    /// I/O errors of the stream.
    pub fn serve_lines<S: Read + Write>(&self, mut stream: S) -> io::Result<()> {
        let mut reader = self.line_reader();
        while let Some(frame) = reader.read_frame(&mut stream)? {
            if let Some(reply) = self.handle_frame(frame) {
                framing::write_line(&mut stream, &reply)?;
            }
        }
        Ok(())
    }

    /// The answer to one frame of line framing: [`handle_text`](Router::handle_text)
    /// for a line, -32000 "Message too large" for an oversize one. The
    /// blocking and async line servers both answer through here.
    pub fn handle_frame(&self, frame: Frame) -> Option<Vec<u8>> {
        match frame {
            Frame::Line(line) => self.handle_text(&line),
            Frame::Oversize => {
                let e = RpcError::server_error(LIMIT_EXCEEDED, "Message too large")
                    .with_data(format!("a line may be at most {} bytes", self.max_message));
                Some(encode(&Response::err(Id::Null, e)))
            }
        }
    }

    /// A [`LineReader`] with this router's message limit, for a new connection.
    pub fn line_reader(&self) -> LineReader {
        LineReader::new(self.max_message)
    }

    /// The largest accepted message (a line, or an HTTP body), in bytes.
    pub fn max_message(&self) -> usize {
        self.max_message
    }

    /// Serves JSON-RPC over HTTP/1.1 `POST` on `stream` until the peer
    /// closes it or asks to close; see [`crate::http`] for what is accepted.
    ///
    /// # Errors
    ///
    /// I/O errors of the stream.
    pub fn serve_http<S: Read + Write>(&self, stream: S) -> io::Result<()> {
        let mut conn = HttpConn::new(stream, self.max_message);
        loop {
            match conn.read_request()? {
                Next::Closed => return Ok(()),
                Next::Reject(r) => return conn.write_reject(&r),
                Next::Request(req) => {
                    let reply = self.handle_text(&req.body);
                    conn.write_json(reply.as_deref(), req.keep_alive)?;
                    if !req.keep_alive {
                        return Ok(());
                    }
                }
            }
        }
    }
}

/// Serializes a handler's result.
fn to_result<R: Serialize>(r: R) -> Result<Value, RpcError> {
    serde_json::to_value(r)
        .map_err(|e| RpcError::internal_error(format!("cannot serialize result: {e}")))
}

/// Appends one encoded reply to a batch reply being built after `[`.
fn push_entry(out: &mut Vec<u8>, reply: &[u8]) {
    if out.len() > 1 {
        out.push(b',');
    }
    out.extend_from_slice(reply);
}

/// Encodes a response or batch; these types always serialize.
fn encode<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
    // invariant: Response holds only JSON values, strings and numbers, all
    // of which serde_json encodes without error.
    serde_json::to_vec(v).unwrap_or_else(|_| b"{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32603,\"message\":\"Internal error\"},\"id\":null}".to_vec())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn router() -> Router {
        let mut r = Router::new();
        r.register("add", |(a, b): (i64, i64)| Ok(a + b));
        r.register("boom", |(): ()| -> Result<(), RpcError> {
            panic!("kaboom")
        });
        r
    }

    fn call(r: &Router, text: &str) -> Value {
        serde_json::from_slice(&r.handle_text(text.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn typed_handler_gets_positional_params() {
        let v = call(
            &router(),
            r#"{"jsonrpc":"2.0","method":"add","params":[2,3],"id":1}"#,
        );
        assert_eq!(v, json!({"jsonrpc":"2.0","result":5,"id":1}));
    }

    #[test]
    fn type_mismatch_is_invalid_params_with_data() {
        let v = call(
            &router(),
            r#"{"jsonrpc":"2.0","method":"add","params":["x",3],"id":1}"#,
        );
        assert_eq!(v["error"]["code"], -32602);
        assert!(v["error"]["data"]
            .as_str()
            .unwrap()
            .contains("invalid type"));
    }

    #[test]
    fn panic_is_contained_as_internal_error() {
        let r = router();
        let v = call(&r, r#"{"jsonrpc":"2.0","method":"boom","id":7}"#);
        assert_eq!(v["error"]["code"], -32603);
        assert!(v["error"]["data"].as_str().unwrap().contains("kaboom"));
        let v = call(
            &r,
            r#"{"jsonrpc":"2.0","method":"add","params":[1,1],"id":8}"#,
        );
        assert_eq!(v["result"], 2);
    }

    #[test]
    fn batch_over_limit_is_one_error() {
        let r = router().with_max_batch(2);
        let one = r#"{"jsonrpc":"2.0","method":"add","params":[1,1],"id":1}"#;
        let v = call(&r, &format!("[{one},{one},{one}]"));
        assert_eq!(v["error"]["code"], LIMIT_EXCEEDED);
        let v = call(&r, &format!("[{one},{one}]"));
        assert_eq!(v.as_array().unwrap().len(), 2);
    }

    #[test]
    fn huge_batch_is_refused_on_the_count_before_the_parse() {
        let r = router().with_max_batch(4);
        // A million entries: refused by the scan, without building a Value.
        let text = format!("[{}1]", "1,".repeat(1_000_000));
        let v = call(&r.with_max_message(4 << 20), &text);
        assert_eq!(v["error"]["code"], LIMIT_EXCEEDED);
        assert_eq!(v["error"]["message"], "Batch too large");
    }

    #[test]
    fn batch_reply_is_capped_and_later_entries_are_not_run() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let runs = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&runs);
        let mut r = Router::new().with_max_reply(1000);
        r.register("big", move |(): ()| {
            counter.fetch_add(1, Ordering::Relaxed);
            Ok("x".repeat(300))
        });
        let one = |id: u32| format!(r#"{{"jsonrpc":"2.0","method":"big","id":{id}}}"#);
        let batch: Vec<String> = (1..=10).map(one).collect();
        let v = call(&r, &format!("[{}]", batch.join(",")));
        let replies = v.as_array().unwrap();
        assert_eq!(replies.len(), 10, "every request still gets an answer");
        let ok = replies.iter().filter(|x| x.get("result").is_some()).count();
        assert_eq!(ok, 2, "three 300-byte results pass 1000 bytes");
        for x in &replies[ok..] {
            assert_eq!(x["error"]["code"], crate::error::INVALID_REQUEST);
            assert_eq!(x["error"]["message"], "Batch reply too large");
        }
        assert_eq!(replies[9]["id"], 10);
        // The third ran (its reply was too large); the rest never did.
        assert_eq!(runs.load(Ordering::Relaxed), 3);
        let reply = r
            .handle_text(format!("[{}]", batch.join(",")).as_bytes())
            .unwrap();
        assert!(reply.len() < 1000 + 8 * 200, "{}", reply.len());
    }

    #[test]
    fn heavy_methods_are_limited_per_batch_not_per_message() {
        let mut r = router().with_max_heavy(1);
        r.register("table", |(): ()| Ok(vec![0u8; 10]));
        r.mark_heavy("table");
        let one = |id: u32| format!(r#"{{"jsonrpc":"2.0","method":"table","id":{id}}}"#);
        let v = call(&r, &format!("[{},{},{}]", one(1), one(2), one(3)));
        let replies = v.as_array().unwrap();
        assert!(replies[0].get("result").is_some());
        for x in &replies[1..] {
            assert_eq!(x["error"]["code"], TOO_MANY_HEAVY);
        }
        // Alone, each call is served.
        for id in 1..=3 {
            assert!(call(&r, &one(id)).get("result").is_some());
        }
    }

    #[test]
    fn message_over_limit_is_an_error() {
        let r = router().with_max_message(10);
        let v = call(
            &r,
            r#"{"jsonrpc":"2.0","method":"add","params":[1,1],"id":1}"#,
        );
        assert_eq!(v["error"]["code"], LIMIT_EXCEEDED);
    }

    #[test]
    fn notification_to_unknown_method_gets_no_reply() {
        assert_eq!(
            router().handle_text(br#"{"jsonrpc":"2.0","method":"nope"}"#),
            None
        );
    }

    #[test]
    fn serve_lines_answers_each_line_and_returns_at_eof() {
        let input =
            b"{\"jsonrpc\":\"2.0\",\"method\":\"add\",\"params\":[1,2],\"id\":1}\n\n[\n".to_vec();
        let mut stream = Duplex {
            input: &input[..],
            output: Vec::new(),
        };
        router().serve_lines(&mut stream).unwrap();
        let out = String::from_utf8(stream.output).unwrap();
        let lines: Vec<Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["result"], 3);
        assert_eq!(lines[1]["error"]["code"], -32700);
    }

    struct Duplex<'a> {
        input: &'a [u8],
        output: Vec<u8>,
    }

    impl Read for Duplex<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Write for Duplex<'_> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.output.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
}
