//! The client side: [`Client`] sends requests on a writer half and a
//! reader thread matches responses to waiting callers by id, so any number
//! of threads may have calls in flight on one connection at once.
//!
//! Failure contract: when the connection ends (EOF, read error, or a
//! response line over the size limit), every waiting call fails at once
//! with [`CallError::Disconnected`], and so does every later call. A call
//! never waits longer than its timeout.
//!
//! An error response whose id is null (JSON-RPC 2.0 §5: the server could
//! not tell the request's id, as when a line is over its size limit or a
//! batch over its entry limit) goes to the calls of the one line in
//! flight, a call's or a batch's, which fail with that error
//! ([`CallError::Rpc`]) rather than wait out their timeout. With several
//! lines in flight nobody can tell whose it was; it is dropped and they
//! wait, as before.
//!
//! DoS bounds: a response line may be at most [`DEFAULT_MAX_LINE`] bytes
//! (a longer one ends the connection, since its id cannot be read); the
//! pending table holds one entry per in-flight call, at most one per
//! calling thread (or per batch entry).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::error::{CallError, RpcError};
use crate::framing::{self, Frame, LineReader, DEFAULT_MAX_LINE};
use crate::message::{Id, Params, Request, Response};

/// Timeout of [`Client::call`] unless changed with [`Client::with_timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Waiting callers by request id (each by how it is woken: `Tx`, a
/// channel sender), and why the connection ended (once it has). Shared
/// by the blocking and async clients.
pub(crate) struct State<Tx = mpsc::Sender<Response>> {
    pub(crate) pending: HashMap<u64, Waiting<Tx>>,
    pub(crate) closed: Option<String>,
}

/// One waiting call: how to wake it, and the line its request went in,
/// named by the first id in that line (a call's own id; for a batch, its
/// first call's).
pub(crate) struct Waiting<Tx> {
    line: u64,
    tx: Tx,
}

impl<Tx> Default for State<Tx> {
    fn default() -> State<Tx> {
        State {
            pending: HashMap::new(),
            closed: None,
        }
    }
}

impl<Tx> State<Tx> {
    /// Registers `id`, sent in the line named `line` (see [`Waiting`]), as
    /// awaiting a reply, unless the connection is gone.
    pub(crate) fn expect(&mut self, id: u64, line: u64, tx: Tx) -> Result<(), CallError> {
        if let Some(why) = &self.closed {
            return Err(CallError::Disconnected(why.clone()));
        }
        self.pending.insert(id, Waiting { line, tx });
        Ok(())
    }

    /// Who gets `response`: the caller of its id; for an error with a
    /// null id, every call of the one line in flight (see the module
    /// docs); else nobody (an id we never issued, or one whose caller
    /// gave up).
    pub(crate) fn route(&mut self, response: Response) -> Vec<(Tx, Response)> {
        match &response.id {
            Id::Number(n) => n
                .as_u64()
                .and_then(|id| self.pending.remove(&id))
                .map(|w| (w.tx, response))
                .into_iter()
                .collect(),
            Id::Null if response.outcome.is_err() => {
                let mut lines = self.pending.values().map(|w| w.line);
                let first = lines.next();
                if first.is_none() || lines.any(|l| Some(l) != first) {
                    return Vec::new();
                }
                self.pending
                    .drain()
                    .map(|(_, w)| (w.tx, response.clone()))
                    .collect()
            }
            _ => Vec::new(),
        }
    }

    /// The connection ended: remember why, and drop every sender, which
    /// wakes every waiting caller with `Disconnected`.
    pub(crate) fn close(&mut self, why: String) {
        self.closed.get_or_insert(why);
        self.pending.clear();
    }

    /// Why the connection is gone, for a caller whose sender was dropped.
    pub(crate) fn disconnected(&self) -> CallError {
        CallError::Disconnected(
            self.closed
                .clone()
                .unwrap_or_else(|| "connection closed".into()),
        )
    }
}

type Shared = Arc<Mutex<State>>;

/// Locks the state; a panic elsewhere cannot leave it inconsistent (every
/// update is a single insert/remove), so a poisoned lock is still usable.
pub(crate) fn lock<Tx>(state: &Mutex<State<Tx>>) -> MutexGuard<'_, State<Tx>> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A JSON-RPC client on one connection with newline framing. `Sync`: share
/// it (`&Client` or `Arc<Client>`) between threads.
pub struct Client {
    writer: Mutex<Box<dyn Write + Send>>,
    state: Shared,
    next_id: AtomicU64,
    timeout: Duration,
    /// Set by [`Client::connect_std`]: shut down on drop so the reader
    /// thread sees EOF and exits.
    socket: Option<TcpStream>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("timeout", &self.timeout)
            .field("closed", &lock(&self.state).closed)
            .finish()
    }
}

impl Client {
    /// A client over a reader half and a writer half of one connection.
    /// Spawns the reader thread; it ends when `reader` reaches EOF or fails.
    ///
    /// # Errors
    ///
    /// If the reader thread cannot be spawned.
    pub fn new(
        reader: impl Read + Send + 'static,
        writer: impl Write + Send + 'static,
    ) -> io::Result<Client> {
        let state: Shared = Arc::default();
        let thread_state = Arc::clone(&state);
        thread::Builder::new()
            .name("rpc-client-reader".into())
            .spawn(move || read_responses(reader, &thread_state))?;
        Ok(Client {
            writer: Mutex::new(Box::new(writer)),
            state,
            next_id: AtomicU64::new(1),
            timeout: DEFAULT_TIMEOUT,
            socket: None,
        })
    }

    /// Connects over `std::net` TCP and splits the stream with `try_clone`.
    ///
    /// # Errors
    ///
    /// Connection errors, or if the socket cannot be cloned.
    pub fn connect_std(addr: impl ToSocketAddrs) -> io::Result<Client> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        let mut client = Client::new(stream.try_clone()?, stream.try_clone()?)?;
        client.socket = Some(stream);
        Ok(client)
    }

    /// Sets the timeout used by [`call`](Client::call), [`batch`](Client::batch).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    /// Calls `method` and waits for its result, up to the client's timeout.
    /// `params` must serialize to an array (a tuple, `Vec`) or an object (a
    /// struct, map), or to `null` (`()`) for none.
    ///
    /// # Errors
    ///
    /// See [`CallError`].
    pub fn call<P: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        params: P,
    ) -> Result<R, CallError> {
        self.call_timeout(method, params, self.timeout)
    }

    /// [`call`](Client::call) with its own timeout.
    ///
    /// # Errors
    ///
    /// See [`CallError`].
    pub fn call_timeout<P: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        params: P,
        timeout: Duration,
    ) -> Result<R, CallError> {
        let params = to_params(params)?;
        let (id, rx) = self.expect_reply(None)?;
        let request = Request {
            method: method.to_owned(),
            params,
            id: Some(Id::from(id)),
        };
        if let Err(e) = self.send(&request) {
            self.forget(id);
            return Err(e);
        }
        let value = self.wait(id, &rx, Instant::now() + timeout)?.outcome?;
        serde_json::from_value(value).map_err(|e| CallError::Decode(e.to_string()))
    }

    /// Sends a notification: no id, no reply.
    ///
    /// # Errors
    ///
    /// `Encode` for bad params, `Disconnected` or `Io` if it cannot be sent.
    pub fn notify<P: Serialize>(&self, method: &str, params: P) -> Result<(), CallError> {
        let request = Request {
            method: method.to_owned(),
            params: to_params(params)?,
            id: None,
        };
        if let Some(why) = &lock(&self.state).closed {
            return Err(CallError::Disconnected(why.clone()));
        }
        self.send(&request)
    }

    /// Sends several calls and notifications as one batch (§6) and returns
    /// the outcome of each call (notifications have none), in the order given.
    ///
    /// # Errors
    ///
    /// A `CallError` that hit the batch as a whole; per-call server errors
    /// are in the returned vector.
    pub fn batch(
        &self,
        entries: Vec<BatchEntry>,
    ) -> Result<Vec<Result<Value, RpcError>>, CallError> {
        let mut waits: Vec<(u64, mpsc::Receiver<Response>)> = Vec::new();
        let mut requests = Vec::with_capacity(entries.len());
        for entry in entries {
            let id = if entry.notification {
                None
            } else {
                match self.expect_reply(waits.first().map(|(id, _)| *id)) {
                    Ok((id, rx)) => {
                        waits.push((id, rx));
                        Some(Id::from(id))
                    }
                    Err(e) => {
                        waits.iter().for_each(|(id, _)| self.forget(*id));
                        return Err(e);
                    }
                }
            };
            requests.push(Request {
                method: entry.method,
                params: entry.params,
                id,
            });
        }
        if let Err(e) = self.send(&requests) {
            waits.iter().for_each(|(id, _)| self.forget(*id));
            return Err(e);
        }
        let deadline = Instant::now() + self.timeout;
        let mut out = Vec::with_capacity(waits.len());
        for (i, (id, rx)) in waits.iter().enumerate() {
            match self.wait(*id, rx, deadline) {
                Ok(r) => out.push(batch_outcome(r)?),
                Err(e) => {
                    waits
                        .iter()
                        .skip(i + 1)
                        .for_each(|(id, _)| self.forget(*id));
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    /// Registers a new id as awaiting a reply, in the line of the batch
    /// whose first id is `batch` (`None`: a line of its own).
    fn expect_reply(
        &self,
        batch: Option<u64>,
    ) -> Result<(u64, mpsc::Receiver<Response>), CallError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel();
        lock(&self.state).expect(id, batch.unwrap_or(id), tx)?;
        Ok((id, rx))
    }

    fn forget(&self, id: u64) {
        lock(&self.state).pending.remove(&id);
    }

    /// Waits for the reply to `id` until `deadline`.
    fn wait(
        &self,
        id: u64,
        rx: &mpsc::Receiver<Response>,
        deadline: Instant,
    ) -> Result<Response, CallError> {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(r) => Ok(r),
            Err(RecvTimeoutError::Timeout) => {
                self.forget(id);
                Err(CallError::Timeout)
            }
            // The reader dropped our sender: the connection is gone.
            Err(RecvTimeoutError::Disconnected) => Err(lock(&self.state).disconnected()),
        }
    }

    /// Writes one message as a line; the lock keeps lines from interleaving.
    fn send<T: Serialize>(&self, message: &T) -> Result<(), CallError> {
        let bytes = serde_json::to_vec(message).map_err(|e| CallError::Encode(e.to_string()))?;
        let mut w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        framing::write_line(&mut *w, &bytes).map_err(CallError::Io)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Some(s) = &self.socket {
            // Best effort: wakes the reader thread with EOF so it exits.
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

/// One entry of [`Client::batch`].
#[derive(Debug, Clone)]
pub struct BatchEntry {
    pub(crate) method: String,
    pub(crate) params: Option<Params>,
    pub(crate) notification: bool,
}

impl BatchEntry {
    /// A call whose outcome the batch returns.
    ///
    /// # Errors
    ///
    /// `Encode` if `params` is not an array, object or `null`.
    pub fn call<P: Serialize>(method: &str, params: P) -> Result<BatchEntry, CallError> {
        Ok(BatchEntry {
            method: method.to_owned(),
            params: to_params(params)?,
            notification: false,
        })
    }

    /// A notification inside the batch.
    ///
    /// # Errors
    ///
    /// `Encode` if `params` is not an array, object or `null`.
    pub fn notify<P: Serialize>(method: &str, params: P) -> Result<BatchEntry, CallError> {
        Ok(BatchEntry {
            notification: true,
            ..BatchEntry::call(method, params)?
        })
    }
}

/// §4.2: params are structured (array or object) or absent.
pub(crate) fn to_params<P: Serialize>(params: P) -> Result<Option<Params>, CallError> {
    match serde_json::to_value(params).map_err(|e| CallError::Encode(e.to_string()))? {
        Value::Null => Ok(None),
        v => Params::from_value(v).map(Some).ok_or_else(|| {
            CallError::Encode("params must serialize to an array or an object".into())
        }),
    }
}

/// The reader thread: routes each response to its caller, then fails
/// everyone still waiting when the stream ends.
fn read_responses<R: Read>(mut reader: R, state: &Mutex<State>) {
    let mut lines = LineReader::new(DEFAULT_MAX_LINE);
    let why = loop {
        match read_outcome(lines.read_frame(&mut reader)) {
            Ok(found) => {
                for response in found {
                    let woken = lock(state).route(response);
                    for (tx, response) in woken {
                        // The caller may have timed out meanwhile; then nobody listens.
                        let _ = tx.send(response);
                    }
                }
            }
            Err(why) => break why,
        }
    };
    lock(state).close(why);
}

/// What one read of the response stream means: the responses to route,
/// or `Err` with why the connection has ended (EOF, a read error, or a
/// line over [`DEFAULT_MAX_LINE`], whose id cannot be read). Shared by
/// the blocking and async clients' readers.
pub(crate) fn read_outcome(read: io::Result<Option<Frame>>) -> Result<Vec<Response>, String> {
    match read {
        Ok(Some(Frame::Line(line))) => Ok(responses(&line)),
        Ok(Some(Frame::Oversize)) => Err(format!("a response exceeded {DEFAULT_MAX_LINE} bytes")),
        Ok(None) => Err("connection closed by peer".to_owned()),
        Err(e) => Err(format!("read failed: {e}")),
    }
}

/// One batch entry's outcome, or the error that refused the whole batch:
/// an error with a null id, which [`State::route`] gave every call of the
/// batch (and so no call of it is pending any more). Shared by the
/// blocking and async clients.
pub(crate) fn batch_outcome(response: Response) -> Result<Result<Value, RpcError>, CallError> {
    match response {
        Response {
            id: Id::Null,
            outcome: Err(e),
        } => Err(CallError::Rpc(e)),
        response => Ok(response.outcome),
    }
}

/// The responses in one line (a single one or a batch's). Anything else
/// is skipped: not ours to answer, since a server never sends requests
/// here. [`State::route`] finds who waits for each. Shared by the
/// blocking and async clients.
fn responses(line: &[u8]) -> Vec<Response> {
    let values = match serde_json::from_slice::<Value>(line) {
        Ok(Value::Array(batch)) => batch,
        Ok(v) => vec![v],
        Err(_) => Vec::new(),
    };
    values
        .into_iter()
        .filter_map(Response::from_value)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_is_send_and_sync() {
        fn assert_sync<T: Send + Sync>() {}
        assert_sync::<Client>();
    }

    #[test]
    fn scalar_params_are_refused_before_sending() {
        assert!(matches!(to_params(3), Err(CallError::Encode(_))));
        assert_eq!(to_params(()).unwrap(), None);
        assert!(matches!(
            to_params((1, 2)).unwrap(),
            Some(Params::Positional(_))
        ));
    }

    /// The channel senders are stood in for by numbers.
    #[test]
    fn a_null_id_error_goes_to_the_one_line_in_flight_only() {
        let refusal = Response::err(Id::Null, RpcError::invalid_request());
        let mut state: State<u32> = State::default();
        // One batch of two calls in flight: both get the refusal.
        state.expect(1, 1, 10).unwrap();
        state.expect(2, 1, 20).unwrap();
        let mut woken: Vec<u32> = state
            .route(refusal.clone())
            .into_iter()
            .map(|w| w.0)
            .collect();
        woken.sort_unstable();
        assert_eq!(woken, [10, 20]);
        assert!(state.pending.is_empty());
        // Two lines in flight: nobody can tell whose it is.
        state.expect(3, 3, 30).unwrap();
        state.expect(4, 4, 40).unwrap();
        assert!(state.route(refusal).is_empty());
        // A success with a null id is nobody's; a numbered one its caller's.
        assert!(state.route(Response::ok(Id::Null, Value::Null)).is_empty());
        let to_four = state.route(Response::ok(Id::from(4), Value::Null));
        assert_eq!(to_four.iter().map(|w| w.0).collect::<Vec<_>>(), [40]);
        assert_eq!(state.pending.keys().collect::<Vec<_>>(), [&3]);
    }

    #[test]
    fn eof_fails_calls_with_disconnected() {
        let client = Client::new(io::empty(), io::sink()).unwrap();
        let r: Result<i64, _> = client.call_timeout("x", (), Duration::from_secs(5));
        assert!(matches!(r, Err(CallError::Disconnected(_))), "{r:?}");
    }
}
