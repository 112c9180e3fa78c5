//! [`HostInfo`] for the userspace stack: its socket table and counters as
//! JSON, for `GET /sockets`, `GET /stats` and the RPC methods.

use serde_json::{json, Map, Value};

use crate::HostInfo;

/// The stack seen as a host.
pub struct StackHost {
    stack: stack::Stack,
}

impl StackHost {
    pub fn new(stack: stack::Stack) -> StackHost {
        StackHost { stack }
    }
}

impl HostInfo for StackHost {
    fn sockets(&self) -> Value {
        Value::Array(
            self.stack
                .sockets()
                .into_iter()
                .map(|s| {
                    json!({
                        "protocol": s.protocol.as_str(),
                        "local": s.local.to_string(),
                        "remote": s.remote.map(|r| r.to_string()),
                        "state": s.state,
                        "recv_queue": s.recv_queue,
                        "send_queue": s.send_queue,
                    })
                })
                .collect(),
        )
    }

    fn stats(&self) -> Value {
        let counters: Map<String, Value> = self
            .stack
            .stats()
            .snapshot()
            .into_iter()
            .map(|(name, value)| (name.to_string(), Value::from(value)))
            .collect();
        Value::Object(counters)
    }
}
