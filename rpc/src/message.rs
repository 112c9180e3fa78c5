//! The JSON-RPC 2.0 message types (specification §4 and §5): [`Request`],
//! [`Response`], [`Id`] and [`Params`], and their strict parse from a JSON
//! value. Nothing here does I/O.

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Number, Value};

use crate::error::RpcError;

/// The protocol version string every message carries (§4: MUST be exactly "2.0").
pub const VERSION: &str = "2.0";

/// A request identifier (§4: "String, Number, or NULL value if included").
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Id {
    /// A numeric id; kept as the exact JSON number the peer sent.
    Number(Number),
    /// A string id.
    String(String),
    /// `null`: allowed but discouraged for requests; used in error
    /// responses whose id could not be determined (§5).
    Null,
}

impl Id {
    /// Reads an id from JSON; `None` if the value is not a valid id type.
    pub fn from_value(v: &Value) -> Option<Id> {
        match v {
            Value::Number(n) => Some(Id::Number(n.clone())),
            Value::String(s) => Some(Id::String(s.clone())),
            Value::Null => Some(Id::Null),
            _ => None,
        }
    }
}

impl From<u64> for Id {
    fn from(n: u64) -> Id {
        Id::Number(n.into())
    }
}

/// Structured parameters (§4.2): by position or by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Params {
    /// `"params": [a, b]`
    Positional(Vec<Value>),
    /// `"params": {"a": .., "b": ..}`
    Named(Map<String, Value>),
}

impl Params {
    /// Params from any JSON value: an array or an object, anything else is `None`.
    pub fn from_value(v: Value) -> Option<Params> {
        match v {
            Value::Array(a) => Some(Params::Positional(a)),
            Value::Object(o) => Some(Params::Named(o)),
            _ => None,
        }
    }

    /// The params as a JSON value again.
    pub fn into_value(self) -> Value {
        match self {
            Params::Positional(a) => Value::Array(a),
            Params::Named(o) => Value::Object(o),
        }
    }
}

/// A request or, when `id` is `None`, a notification (§4.1).
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: String,
    pub params: Option<Params>,
    /// `None` means notification: the server MUST NOT reply.
    pub id: Option<Id>,
}

impl Request {
    /// Checks one JSON value against §4 and turns it into a request.
    ///
    /// # Errors
    ///
    /// An Invalid Request error (-32600) paired with the id to answer with:
    /// the request's own id when that part was valid, else `Id::Null` (§5).
    pub fn from_value(v: Value) -> Result<Request, (RpcError, Id)> {
        let Value::Object(mut obj) = v else {
            return Err((RpcError::invalid_request(), Id::Null));
        };
        // Decide the id first so that an error about another member can
        // still be answered to the right caller.
        let id = match obj.remove("id") {
            None => None,
            Some(v) => match Id::from_value(&v) {
                Some(id) => Some(id),
                None => {
                    return Err((
                        RpcError::invalid_request()
                            .with_data("id must be a string, number or null"),
                        Id::Null,
                    ))
                }
            },
        };
        let reply_id = id.clone().unwrap_or(Id::Null);
        let fail = |why: &str| Err((RpcError::invalid_request().with_data(why), reply_id.clone()));
        if obj.get("jsonrpc").and_then(Value::as_str) != Some(VERSION) {
            return fail("jsonrpc must be exactly \"2.0\"");
        }
        let method = match obj.remove("method") {
            Some(Value::String(m)) => m,
            _ => return fail("method must be a string"),
        };
        let params = match obj.remove("params") {
            None => None,
            Some(p) => match Params::from_value(p) {
                Some(p) => Some(p),
                None => return fail("params must be an array or an object"),
            },
        };
        Ok(Request { method, params, id })
    }

    /// True when no reply is expected.
    pub fn is_notification(&self) -> bool {
        self.id.is_none()
    }
}

impl Serialize for Request {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let len = 2 + usize::from(self.params.is_some()) + usize::from(self.id.is_some());
        let mut m = s.serialize_map(Some(len))?;
        m.serialize_entry("jsonrpc", VERSION)?;
        m.serialize_entry("method", &self.method)?;
        if let Some(p) = &self.params {
            m.serialize_entry("params", p)?;
        }
        if let Some(id) = &self.id {
            m.serialize_entry("id", id)?;
        }
        m.end()
    }
}

/// A response (§5): exactly one of `result` or `error`, and the id.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub outcome: Result<Value, RpcError>,
    pub id: Id,
}

impl Response {
    pub fn ok(id: Id, result: Value) -> Response {
        Response {
            outcome: Ok(result),
            id,
        }
    }

    pub fn err(id: Id, error: RpcError) -> Response {
        Response {
            outcome: Err(error),
            id,
        }
    }

    /// Reads a response object; `None` if it is not one (a client drops those).
    pub fn from_value(v: Value) -> Option<Response> {
        let Value::Object(mut obj) = v else {
            return None;
        };
        if obj.get("jsonrpc").and_then(Value::as_str) != Some(VERSION) {
            return None;
        }
        let id = Id::from_value(obj.get("id")?)?;
        let outcome = match (obj.remove("result"), obj.remove("error")) {
            (Some(r), None) => Ok(r),
            (None, Some(e)) => Err(serde_json::from_value(e).ok()?),
            _ => return None,
        };
        Some(Response { outcome, id })
    }
}

impl Serialize for Response {
    // Field order as the specification prints it: jsonrpc, result|error, id.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("jsonrpc", VERSION)?;
        match &self.outcome {
            Ok(r) => m.serialize_entry("result", r)?,
            Err(e) => m.serialize_entry("error", e)?,
        }
        m.serialize_entry("id", &self.id)?;
        m.end()
    }
}

/// `x` as a JSON number that prints as an integer when `x` is integral
/// (so `2.0 + 3.0` goes out as `5`, as the specification's examples show),
/// else as a float; non-finite values become `null`, which JSON lacks numbers for.
pub fn number(x: f64) -> Value {
    // 2^53: above it f64 cannot hold every integer, so keep the float form.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if x.fract() == 0.0 && x.abs() <= EXACT {
        // invariant: |x| <= 2^53 and integral, so the cast is exact.
        return Value::Number(Number::from(x as i64));
    }
    Number::from_f64(x).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn request_with_null_id_is_a_call_not_a_notification() {
        let r = Request::from_value(json!({"jsonrpc":"2.0","method":"m","id":null})).unwrap();
        assert_eq!(r.id, Some(Id::Null));
        let n = Request::from_value(json!({"jsonrpc":"2.0","method":"m"})).unwrap();
        assert!(n.is_notification());
    }

    #[test]
    fn invalid_request_keeps_a_valid_id_for_the_reply() {
        let (e, id) =
            Request::from_value(json!({"jsonrpc":"2.0","method":1,"id":"x"})).unwrap_err();
        assert_eq!(e.code, crate::error::INVALID_REQUEST);
        assert_eq!(id, Id::String("x".into()));
    }

    #[test]
    fn rejects_wrong_version_and_scalar_params() {
        assert!(Request::from_value(json!({"jsonrpc":"1.0","method":"m","id":1})).is_err());
        assert!(Request::from_value(json!({"method":"m","id":1})).is_err());
        assert!(Request::from_value(json!({"jsonrpc":"2.0","method":"m","params":3})).is_err());
    }

    #[test]
    fn response_serializes_in_spec_order() {
        let s = serde_json::to_string(&Response::ok(1.into(), json!(5))).unwrap();
        assert_eq!(s, r#"{"jsonrpc":"2.0","result":5,"id":1}"#);
    }

    #[test]
    fn response_round_trips_through_value() {
        let r = Response::err(Id::String("a".into()), RpcError::method_not_found());
        let back = Response::from_value(serde_json::to_value(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn number_is_integral_when_possible() {
        assert_eq!(number(5.0).to_string(), "5");
        assert_eq!(number(-2.0).to_string(), "-2");
        assert_eq!(number(2.5).to_string(), "2.5");
        assert_eq!(number(1e300).as_f64(), Some(1e300));
        assert_eq!(number(f64::NAN), Value::Null);
    }
}
