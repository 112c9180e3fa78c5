//! Fuzz target: any bytes as one JSON-RPC message to a `Router` with small
//! limits. The answer, when there is one, is valid JSON made of response
//! objects; a batch's answer has at most one entry per request and stays
//! within the reply cap plus one small error per refused entry; and the
//! cheap batch count (`rpc::scan::batch_len`) agrees with the parser on
//! every text that parses as an array.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rpc::Router;
use serde_json::Value;

const MAX_BATCH: usize = 8;
const MAX_REPLY: usize = 2048;
/// A generous size for one refusal object (its `data` text and an id of
/// at most the input's length are added separately).
const ERROR_SIZE: usize = 400;

fn router() -> Router {
    let mut r = Router::new()
        .with_max_batch(MAX_BATCH)
        .with_max_reply(MAX_REPLY)
        .with_max_message(1 << 16);
    r.register("echo", |v: Value| Ok(v));
    r.register("add", |(a, b): (i64, i64)| Ok(a.wrapping_add(b)));
    r.register("table", |(): ()| Ok(vec!["row"; 100]));
    r.mark_heavy("table");
    r
}

fuzz_target!(|data: &[u8]| {
    if let Ok(Value::Array(items)) = serde_json::from_slice::<Value>(data) {
        assert_eq!(
            rpc::scan::batch_len(data, usize::MAX - 1),
            Some(items.len())
        );
    }
    let Some(reply) = router().handle_text(data) else {
        return;
    };
    let v: Value = serde_json::from_slice(&reply).expect("a reply is JSON");
    let entries = match &v {
        Value::Array(a) => {
            assert!(!a.is_empty() && a.len() <= MAX_BATCH, "{}", a.len());
            let bound = MAX_REPLY + a.len() * (ERROR_SIZE + data.len());
            assert!(reply.len() <= bound, "{} > {bound}", reply.len());
            a.clone()
        }
        single => vec![single.clone()],
    };
    for e in entries {
        assert_eq!(e["jsonrpc"], "2.0", "{e}");
        assert!(e.get("result").is_some() != e.get("error").is_some(), "{e}");
    }
});
