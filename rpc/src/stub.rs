//! Typed stubs: [`service!`](crate::service) defines a service once and
//! generates the server trait, its registration into a [`Router`](crate::Router),
//! a client stub whose methods look like local calls, and the discovery
//! descriptions.
//!
//! ```
//! rpc::service! {
//!     /// A calculator.
//!     pub service Calc, client CalcClient {
//!         /// Adds two numbers.
//!         fn add(a: i64, b: i64) -> i64;
//!         fn neg(x: Option<i64>) -> i64;
//!     }
//! }
//!
//! struct Impl;
//! impl Calc for Impl {
//!     fn add(&self, a: i64, b: i64) -> Result<i64, rpc::RpcError> { Ok(a + b) }
//!     fn neg(&self, x: Option<i64>) -> Result<i64, rpc::RpcError> { Ok(-x.unwrap_or(0)) }
//! }
//!
//! let mut router = rpc::Router::new();
//! Impl.register_into(&mut router);
//! let reply = router.handle_text(br#"{"jsonrpc":"2.0","method":"add","params":{"a":2,"b":3},"id":1}"#);
//! assert_eq!(reply.unwrap(), br#"{"jsonrpc":"2.0","result":5,"id":1}"#);
//! // Client side: CalcClient::new(rpc::Client::connect_std(addr)?).add(2, 3)?
//! ```
//!
//! Each method accepts its params by position (`[a, b]`) or by name
//! (`{"a": .., "b": ..}`); a missing trailing param reads as `null`, so
//! `Option` params may be left out. Anything else is -32602 with `data`
//! naming the parameter and the expected signature.

/// Defines a service: see the [module docs](crate::stub).
///
/// Generates, for `service Name, client NameClient { fn m(a: A) -> R; .. }`:
/// - `trait Name: Send + Sync + 'static` with `fn m(&self, a: A) -> Result<R, RpcError>`,
///   plus provided `register_into(self, &mut Router)` and `describe() -> Vec<MethodInfo>`;
/// - `struct NameClient` with `new(Client)`, `inner()`, `describe()` and
///   `fn m(&self, a: A) -> Result<R, CallError>`.
///
/// With `async_client NameAsyncClient` after the client's name (cargo
/// feature `tokio`), also `struct NameAsyncClient` wrapping a
/// [`rpc::tokio::Client`](crate::tokio::Client), with the same methods as
/// `async fn`s. The server side needs nothing more: the trait registers
/// into a `Router`, which the blocking and async servers both serve.
#[macro_export]
macro_rules! service {
    (
        $(#[$meta:meta])*
        $vis:vis service $name:ident, client $client:ident, async_client $aclient:ident {
            $(
                $(#[doc = $doc:literal])*
                fn $method:ident ( $( $arg:ident : $ty:ty ),* $(,)? ) -> $ret:ty ;
            )*
        }
    ) => {
        $crate::service! {
            $(#[$meta])*
            $vis service $name, client $client {
                $(
                    $(#[doc = $doc])*
                    fn $method ( $( $arg : $ty ),* ) -> $ret ;
                )*
            }
        }

        #[doc = concat!("Async client stub for [`", stringify!($name), "`]: each method is a remote call.")]
        #[derive(Debug)]
        $vis struct $aclient {
            inner: $crate::tokio::Client,
        }

        impl $aclient {
            /// Wraps a connected async client.
            $vis fn new(inner: $crate::tokio::Client) -> $aclient {
                $aclient { inner }
            }

            /// The underlying client, for untyped calls.
            $vis fn inner(&self) -> &$crate::tokio::Client {
                &self.inner
            }

            $(
                $(#[doc = $doc])*
                $vis async fn $method(&self $(, $arg: $ty)*) -> ::core::result::Result<$ret, $crate::CallError> {
                    self.inner.call(stringify!($method), ($(&$arg,)*)).await
                }
            )*
        }
    };
    (
        $(#[$meta:meta])*
        $vis:vis service $name:ident, client $client:ident {
            $(
                $(#[doc = $doc:literal])*
                fn $method:ident ( $( $arg:ident : $ty:ty ),* $(,)? ) -> $ret:ty ;
            )*
        }
    ) => {
        $(#[$meta])*
        $vis trait $name: ::core::marker::Send + ::core::marker::Sync + 'static {
            $(
                $(#[doc = $doc])*
                fn $method(&self $(, $arg: $ty)*) -> ::core::result::Result<$ret, $crate::RpcError>;
            )*

            /// Registers every method of this service, served by `self`, into `router`.
            fn register_into(self, router: &mut $crate::Router)
            where
                Self: ::core::marker::Sized,
            {
                let this = ::std::sync::Arc::new(self);
                $(
                    {
                        let this = ::std::sync::Arc::clone(&this);
                        const SIG: &[(&str, &str)] = &[$((stringify!($arg), stringify!($ty))),*];
                        router.register_raw(
                            $crate::stub::__private::method_info(
                                stringify!($method), SIG, stringify!($ret), &[$($doc),*],
                            ),
                            move |params| {
                                #[allow(unused_mut, unused_variables)]
                                let mut values = $crate::stub::__private::take_params(params, SIG)?.into_iter();
                                $(
                                    let $arg: $ty = $crate::stub::__private::decode(
                                        values.next().flatten(), stringify!($arg), stringify!($ty), SIG,
                                    )?;
                                )*
                                $crate::stub::__private::encode(this.$method($($arg),*)?)
                            },
                        );
                    }
                )*
            }

            /// The discovery descriptions of this service's methods.
            fn describe() -> ::std::vec::Vec<$crate::MethodInfo>
            where
                Self: ::core::marker::Sized,
            {
                $client::describe()
            }
        }

        #[doc = concat!("Client stub for [`", stringify!($name), "`]: each method is a remote call.")]
        #[derive(Debug)]
        $vis struct $client {
            inner: $crate::Client,
        }

        impl $client {
            /// Wraps a connected client.
            $vis fn new(inner: $crate::Client) -> $client {
                $client { inner }
            }

            /// The underlying client, for untyped calls.
            $vis fn inner(&self) -> &$crate::Client {
                &self.inner
            }

            /// The discovery descriptions of this service's methods.
            $vis fn describe() -> ::std::vec::Vec<$crate::MethodInfo> {
                ::std::vec![$(
                    $crate::stub::__private::method_info(
                        stringify!($method),
                        &[$((stringify!($arg), stringify!($ty))),*],
                        stringify!($ret),
                        &[$($doc),*],
                    )
                ),*]
            }

            $(
                $(#[doc = $doc])*
                $vis fn $method(&self $(, $arg: $ty)*) -> ::core::result::Result<$ret, $crate::CallError> {
                    self.inner.call(stringify!($method), ($(&$arg,)*))
                }
            )*
        }
    };
}

/// Helpers the macro expands to; not a stable API.
#[doc(hidden)]
pub mod __private {
    use serde::de::DeserializeOwned;
    use serde::Serialize;
    use serde_json::Value;

    use crate::discover::MethodInfo;
    use crate::error::RpcError;
    use crate::message::Params;

    fn signature(sig: &[(&str, &str)]) -> String {
        let parts: Vec<String> = sig.iter().map(|(n, t)| format!("{n}: {t}")).collect();
        format!("[{}]", parts.join(", "))
    }

    /// Lines up the params with the signature: one slot per parameter,
    /// `None` where the caller left it out.
    ///
    /// # Errors
    ///
    /// -32602 for too many positional params or an unknown name.
    pub fn take_params(
        params: Option<Params>,
        sig: &[(&str, &str)],
    ) -> Result<Vec<Option<Value>>, RpcError> {
        match params {
            None => Ok(vec![None; sig.len()]),
            Some(Params::Positional(values)) => {
                if values.len() > sig.len() {
                    return Err(RpcError::invalid_params(format!(
                        "expected at most {} params {} (by position or by name), got {}",
                        sig.len(),
                        signature(sig),
                        values.len()
                    )));
                }
                let mut slots: Vec<Option<Value>> = values.into_iter().map(Some).collect();
                slots.resize(sig.len(), None);
                Ok(slots)
            }
            Some(Params::Named(mut map)) => {
                let slots = sig.iter().map(|(n, _)| map.remove(*n)).collect();
                if let Some(extra) = map.keys().next() {
                    return Err(RpcError::invalid_params(format!(
                        "unknown parameter {extra:?}; expected {}",
                        signature(sig)
                    )));
                }
                Ok(slots)
            }
        }
    }

    /// Deserializes one parameter, naming it in the error.
    ///
    /// # Errors
    ///
    /// -32602 if the value is missing or of the wrong type.
    pub fn decode<T: DeserializeOwned>(
        value: Option<Value>,
        name: &str,
        ty: &str,
        sig: &[(&str, &str)],
    ) -> Result<T, RpcError> {
        let missing = value.is_none();
        serde_json::from_value(value.unwrap_or(Value::Null)).map_err(|e| {
            let why = if missing {
                "missing".to_owned()
            } else {
                e.to_string()
            };
            RpcError::invalid_params(format!(
                "parameter {name:?} ({ty}): {why}; expected {} by position or by name",
                signature(sig)
            ))
        })
    }

    /// Serializes a method's result.
    ///
    /// # Errors
    ///
    /// -32603 if it cannot be represented as JSON.
    pub fn encode<R: Serialize>(result: R) -> Result<Value, RpcError> {
        serde_json::to_value(result)
            .map_err(|e| RpcError::internal_error(format!("cannot serialize result: {e}")))
    }

    /// A method description from the macro's tokens.
    pub fn method_info(name: &str, sig: &[(&str, &str)], ret: &str, docs: &[&str]) -> MethodInfo {
        let summary: Vec<&str> = docs
            .iter()
            .map(|d| d.trim())
            .filter(|d| !d.is_empty())
            .collect();
        MethodInfo::new(name, sig, ret).with_summary(summary.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use crate::{Router, RpcError};

    // Private module: the unit tests use the server half only; the client
    // half is exercised end to end in tests/end_to_end.rs.
    #[allow(dead_code)]
    mod calc {
        crate::service! {
            /// Test service.
            pub(crate) service Calc, client CalcClient {
                /// Adds.
                fn add(a: i64, b: i64) -> i64;
                fn opt(x: i64, y: Option<i64>) -> i64;
                fn nothing() -> ();
            }
        }
    }
    use calc::{Calc, CalcClient};

    struct Impl;

    impl Calc for Impl {
        fn add(&self, a: i64, b: i64) -> Result<i64, RpcError> {
            Ok(a + b)
        }
        fn opt(&self, x: i64, y: Option<i64>) -> Result<i64, RpcError> {
            Ok(x + y.unwrap_or(100))
        }
        fn nothing(&self) -> Result<(), RpcError> {
            Ok(())
        }
    }

    fn call(text: &str) -> Value {
        let mut router = Router::new();
        Impl.register_into(&mut router);
        serde_json::from_slice(&router.handle_text(text.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn positional_and_named_params_both_work() {
        let v = call(r#"{"jsonrpc":"2.0","method":"add","params":[2,3],"id":1}"#);
        assert_eq!(v["result"], 5);
        let v = call(r#"{"jsonrpc":"2.0","method":"add","params":{"b":3,"a":2},"id":1}"#);
        assert_eq!(v["result"], 5);
    }

    #[test]
    fn trailing_option_may_be_omitted() {
        let v = call(r#"{"jsonrpc":"2.0","method":"opt","params":[1],"id":1}"#);
        assert_eq!(v["result"], 101);
        let v = call(r#"{"jsonrpc":"2.0","method":"nothing","id":1}"#);
        assert_eq!(v["result"], Value::Null);
    }

    #[test]
    fn mismatches_are_invalid_params_naming_the_parameter() {
        for params in [
            json!([1]),
            json!([1, 2, 3]),
            json!({"a": 1, "c": 2}),
            json!([1, "x"]),
        ] {
            let text = json!({"jsonrpc":"2.0","method":"add","params":params,"id":1}).to_string();
            let v = call(&text);
            assert_eq!(v["error"]["code"], -32602, "{params}");
            let data = v["error"]["data"].as_str().unwrap();
            assert!(data.contains("[a: i64, b: i64]"), "{data}");
        }
    }

    #[test]
    fn describe_lists_methods_with_docs() {
        let d = CalcClient::describe();
        assert_eq!(d.len(), 3);
        assert_eq!(d[0].name, "add");
        assert_eq!(d[0].summary, "Adds.");
        assert_eq!(d[0].params.len(), 2);
        assert_eq!(<Impl as Calc>::describe(), d);
    }
}
