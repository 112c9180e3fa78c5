//! Errors: [`RpcError`], the error object a server puts on the wire
//! (JSON-RPC 2.0 §5.1), and [`CallError`], what a client call can fail with.
//!
//! The split follows whose fault it was: an `RpcError` is the peer's answer
//! (the call reached the server and was refused), a `CallError` other than
//! `Rpc` means the call never got an answer at all.

use std::fmt;
use std::io;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// -32700: invalid JSON was received by the server (JSON-RPC 2.0 §5.1).
pub const PARSE_ERROR: i64 = -32700;
/// -32600: the JSON sent is not a valid Request object.
pub const INVALID_REQUEST: i64 = -32600;
/// -32601: the method does not exist / is not available.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// -32602: invalid method parameter(s).
pub const INVALID_PARAMS: i64 = -32602;
/// -32603: internal JSON-RPC error (here also: a handler panicked).
pub const INTERNAL_ERROR: i64 = -32603;
/// Upper end of the "Server error" range reserved for implementation-defined errors.
pub const SERVER_ERROR_MAX: i64 = -32000;
/// Lower end of the "Server error" range.
pub const SERVER_ERROR_MIN: i64 = -32099;

/// Implementation-defined server error (in -32000..=-32099): a message or
/// batch exceeded a configured limit.
pub const LIMIT_EXCEEDED: i64 = -32000;

/// Implementation-defined server error: a batch called more methods marked
/// heavy than the server allows in one batch (`Router::mark_heavy`).
pub const TOO_MANY_HEAVY: i64 = -32001;

/// The JSON-RPC 2.0 error object: `{"code": .., "message": .., "data": ..}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcError {
    /// One of the spec codes above, or an application-defined code.
    pub code: i64,
    /// A short, single-sentence description.
    pub message: String,
    /// Optional detail, e.g. which parameter did not match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    /// An error with any code and no `data`.
    pub fn new(code: i64, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// The same error with `data` attached.
    #[must_use]
    pub fn with_data(mut self, data: impl Into<Value>) -> RpcError {
        self.data = Some(data.into());
        self
    }

    /// -32700 "Parse error".
    pub fn parse_error() -> RpcError {
        RpcError::new(PARSE_ERROR, "Parse error")
    }

    /// -32600 "Invalid Request".
    pub fn invalid_request() -> RpcError {
        RpcError::new(INVALID_REQUEST, "Invalid Request")
    }

    /// -32601 "Method not found".
    pub fn method_not_found() -> RpcError {
        RpcError::new(METHOD_NOT_FOUND, "Method not found")
    }

    /// -32602 "Invalid params" with a human-readable explanation in `data`.
    pub fn invalid_params(detail: impl Into<String>) -> RpcError {
        RpcError::new(INVALID_PARAMS, "Invalid params").with_data(detail.into())
    }

    /// -32603 "Internal error" with a human-readable explanation in `data`.
    pub fn internal_error(detail: impl Into<String>) -> RpcError {
        RpcError::new(INTERNAL_ERROR, "Internal error").with_data(detail.into())
    }

    /// A server-defined error. `code` is clamped into -32099..=-32000, the
    /// range the specification reserves for them.
    pub fn server_error(code: i64, message: impl Into<String>) -> RpcError {
        RpcError::new(code.clamp(SERVER_ERROR_MIN, SERVER_ERROR_MAX), message)
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)?;
        if let Some(data) = &self.data {
            write!(f, ": {data}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RpcError {}

/// Why a client call did not produce a result.
#[derive(Debug)]
pub enum CallError {
    /// The server answered with an error object.
    Rpc(RpcError),
    /// No response arrived within the call's timeout.
    Timeout,
    /// The connection closed (or failed) before the response arrived.
    Disconnected(String),
    /// Writing the request failed.
    Io(io::Error),
    /// The result did not deserialize into the requested type.
    Decode(String),
    /// The params did not serialize into a JSON array or object.
    Encode(String),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Rpc(e) => write!(f, "server error: {e}"),
            CallError::Timeout => write!(f, "timed out waiting for the response"),
            CallError::Disconnected(why) => write!(f, "disconnected: {why}"),
            CallError::Io(e) => write!(f, "i/o error: {e}"),
            CallError::Decode(why) => write!(f, "cannot decode result: {why}"),
            CallError::Encode(why) => write!(f, "cannot encode params: {why}"),
        }
    }
}

impl std::error::Error for CallError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CallError::Rpc(e) => Some(e),
            CallError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<RpcError> for CallError {
    fn from(e: RpcError) -> CallError {
        CallError::Rpc(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_object_omits_absent_data() {
        let v = serde_json::to_value(RpcError::method_not_found()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"code": -32601, "message": "Method not found"})
        );
    }

    #[test]
    fn server_error_code_is_clamped_into_reserved_range() {
        assert_eq!(RpcError::server_error(-1, "x").code, -32000);
        assert_eq!(RpcError::server_error(-40000, "x").code, -32099);
        assert_eq!(RpcError::server_error(-32050, "x").code, -32050);
    }
}
