//! Service discovery: `rpc.discover` answers with an OpenRPC-style
//! document (OpenRPC 1.2.6 "Service Discovery Method") listing every
//! method's name, params and result, so a client can learn what it may call.
//!
//! Schemas are derived from Rust type names (`f64` -> number, `String` ->
//! string, `Vec<T>` -> array, ...): enough to tell a caller what to send
//! without requiring a schema trait on every type. Unknown types are
//! described as `{}` (any JSON) with the Rust name in `x-rust-type`.

use serde_json::{json, Map, Value};

/// The reserved method name (JSON-RPC 2.0 §4: `rpc.` names are for the protocol).
pub const METHOD: &str = "rpc.discover";

/// OpenRPC version the document follows.
pub const OPENRPC_VERSION: &str = "1.2.6";

/// One parameter of a method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamInfo {
    pub name: String,
    /// The Rust type as written (or as `std::any::type_name` prints it).
    pub rust_type: String,
}

/// What discovery says about one method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodInfo {
    pub name: String,
    /// One line of documentation; may be empty.
    pub summary: String,
    pub params: Vec<ParamInfo>,
    /// The Rust type of the result.
    pub result: String,
}

impl MethodInfo {
    /// A description from `(name, rust type)` pairs.
    pub fn new(name: &str, params: &[(&str, &str)], result: &str) -> MethodInfo {
        MethodInfo {
            name: name.to_owned(),
            summary: String::new(),
            params: params
                .iter()
                .map(|(n, t)| ParamInfo {
                    name: (*n).to_owned(),
                    rust_type: (*t).to_owned(),
                })
                .collect(),
            result: result.to_owned(),
        }
    }

    /// The same description with a summary line.
    #[must_use]
    pub fn with_summary(mut self, summary: impl Into<String>) -> MethodInfo {
        self.summary = summary.into();
        self
    }

    /// A description from the handler's types: a tuple `P` becomes
    /// positional params `arg0, arg1, ..`; `()` none; anything else one
    /// param called `params`.
    pub fn from_types<P, R>(name: &str) -> MethodInfo {
        let p = std::any::type_name::<P>();
        let params = match p.strip_prefix('(').and_then(|s| s.strip_suffix(')')) {
            Some(inner) => split_top_level(inner)
                .into_iter()
                .enumerate()
                .map(|(i, t)| ParamInfo {
                    name: format!("arg{i}"),
                    rust_type: t.to_owned(),
                })
                .collect(),
            None => vec![ParamInfo {
                name: "params".to_owned(),
                rust_type: p.to_owned(),
            }],
        };
        MethodInfo {
            name: name.to_owned(),
            summary: String::new(),
            params,
            result: std::any::type_name::<R>().to_owned(),
        }
    }

    /// This method as an OpenRPC Method Object.
    pub fn to_openrpc(&self) -> Value {
        let params: Vec<Value> = self
            .params
            .iter()
            .map(|p| {
                json!({
                    "name": p.name,
                    "required": !is_option(&p.rust_type),
                    "schema": schema(&p.rust_type),
                })
            })
            .collect();
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        if !self.summary.is_empty() {
            m.insert("summary".into(), json!(self.summary));
        }
        m.insert("params".into(), Value::Array(params));
        m.insert(
            "result".into(),
            json!({"name": "result", "schema": schema(&self.result)}),
        );
        Value::Object(m)
    }
}

/// The whole discovery document.
pub fn document(title: &str, version: &str, methods: &[&MethodInfo]) -> Value {
    json!({
        "openrpc": OPENRPC_VERSION,
        "info": {"title": title, "version": version},
        "methods": methods.iter().map(|m| m.to_openrpc()).collect::<Vec<_>>(),
    })
}

/// A JSON Schema for a Rust type name.
pub fn schema(rust_type: &str) -> Value {
    let t: String = rust_type.chars().filter(|c| !c.is_whitespace()).collect();
    let t = t.trim_start_matches('&');
    if let Some(inner) = generic_arg(t, "Option") {
        return schema(inner);
    }
    if let Some(inner) =
        generic_arg(t, "Vec").or_else(|| t.strip_prefix('[').and_then(|s| s.strip_suffix(']')))
    {
        let item = inner.split(';').next().unwrap_or(inner);
        return json!({"type": "array", "items": schema(item)});
    }
    if t == "()" {
        return json!({"type": "null"});
    }
    if t.starts_with('(') {
        return json!({"type": "array"});
    }
    let base = t.split('<').next().unwrap_or(t);
    let last = base.rsplit("::").next().unwrap_or(base);
    match last {
        "f32" | "f64" | "Number" => json!({"type": "number"}),
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" | "u8" | "u16" | "u32" | "u64" | "u128"
        | "usize" => {
            json!({"type": "integer"})
        }
        "String" | "str" | "char" => json!({"type": "string"}),
        "bool" => json!({"type": "boolean"}),
        "HashMap" | "BTreeMap" | "Map" => json!({"type": "object"}),
        "Value" => json!({}),
        _ => json!({"x-rust-type": rust_type}),
    }
}

fn is_option(rust_type: &str) -> bool {
    let t: String = rust_type.chars().filter(|c| !c.is_whitespace()).collect();
    generic_arg(&t, "Option").is_some()
}

/// `T` of `Name<T>` or `path::Name<T>`.
fn generic_arg<'a>(t: &'a str, name: &str) -> Option<&'a str> {
    let open = t.find('<')?;
    let base = t.get(..open)?;
    if base.rsplit("::").next()? != name {
        return None;
    }
    t.get(open + 1..)?.strip_suffix('>')
}

/// Splits `a, B<c, d>, (e, f)` at the commas outside brackets.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '<' | '(' | '[' => depth += 1,
            '>' | ')' | ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(s.get(start..i).unwrap_or_default().trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    let last = s.get(start..).unwrap_or_default().trim();
    if !last.is_empty() {
        parts.push(last);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_of_common_types() {
        assert_eq!(schema("f64"), json!({"type": "number"}));
        assert_eq!(schema("alloc::string::String"), json!({"type": "string"}));
        assert_eq!(schema("Option<i64>"), json!({"type": "integer"}));
        assert_eq!(
            schema("Vec<bool>"),
            json!({"type": "array", "items": {"type": "boolean"}})
        );
        assert_eq!(schema("serde_json::Value"), json!({}));
    }

    #[test]
    fn tuple_handler_types_become_positional_params() {
        let m = MethodInfo::from_types::<(f64, Vec<(u8, u8)>), String>("m");
        let names: Vec<&str> = m.params.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["arg0", "arg1"]);
        assert_eq!(m.params[1].rust_type, "alloc::vec::Vec<(u8, u8)>");
        assert!(MethodInfo::from_types::<(), ()>("n").params.is_empty());
    }

    #[test]
    fn document_has_openrpc_shape() {
        let m = MethodInfo::new("add", &[("a", "f64"), ("b", "Option<f64>")], "f64")
            .with_summary("Adds.");
        let d = document("Demo", "1", &[&m]);
        assert_eq!(d["openrpc"], "1.2.6");
        assert_eq!(d["methods"][0]["params"][1]["required"], false);
        assert_eq!(d["methods"][0]["result"]["schema"]["type"], "number");
        assert_eq!(d["methods"][0]["summary"], "Adds.");
    }
}
