//! The async client: any number of tasks call at once over one connection.
//!
//! Two tasks serve a [`Client`]: a reader that routes each response to its
//! caller by id (as the blocking client's reader thread does, through the
//! same [`State`] and response parsing), and a writer that owns the write
//! half and writes each queued message whole. Callers only queue
//! messages, so a call dropped at any `.await` (cancelled, timed out)
//! never leaves half a line on the wire, and its pending entry is removed
//! by a guard.
//!
//! Failure contract as in [`crate::client`]: when the connection ends
//! every waiting call fails at once with `Disconnected`, and so does every
//! later call; a call never waits longer than its timeout.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use ::tokio::net::{TcpStream, ToSocketAddrs};
use ::tokio::sync::{mpsc, oneshot};
use ::tokio::task::JoinHandle;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::client::{
    batch_outcome, lock, read_outcome, to_params, BatchEntry, State, DEFAULT_TIMEOUT,
};
use crate::error::{CallError, RpcError};
use crate::framing::{LineReader, DEFAULT_MAX_LINE};
use crate::message::{Id, Request, Response};

/// Messages queued for the writer task before callers wait for room.
const WRITE_QUEUE: usize = 64;

type Shared = Arc<Mutex<State<oneshot::Sender<Response>>>>;

/// A JSON-RPC client on one async connection with newline framing.
/// `Send + Sync`: share it (`&Client`, `Arc<Client>`) between tasks.
/// Made inside a tokio runtime (it spawns its reader and writer tasks).
pub struct Client {
    queue: mpsc::Sender<Vec<u8>>,
    state: Shared,
    next_id: AtomicU64,
    timeout: Duration,
    reader: JoinHandle<()>,
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
    /// A client over the read and write halves of one connection.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (it spawns two tasks).
    pub fn new<R, W>(reader: R, writer: W) -> Client
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let state: Shared = Arc::default();
        let (queue, rx) = mpsc::channel(WRITE_QUEUE);
        ::tokio::spawn(write_messages(writer, rx, Arc::clone(&state)));
        let reader = ::tokio::spawn(read_responses(reader, Arc::clone(&state)));
        Client {
            queue,
            state,
            next_id: AtomicU64::new(1),
            timeout: DEFAULT_TIMEOUT,
            reader,
        }
    }

    /// A client over one stream, split with [`tokio::io::split`].
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn from_stream<S>(stream: S) -> Client
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (r, w) = ::tokio::io::split(stream);
        Client::new(r, w)
    }

    /// Connects over tokio's TCP.
    ///
    /// # Errors
    ///
    /// Connection errors.
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<Client> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (r, w) = stream.into_split();
        Ok(Client::new(r, w))
    }

    /// Sets the timeout of [`call`](Client::call).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    /// Calls `method` and waits for its result, up to the client's
    /// timeout; params as for [`crate::Client::call`].
    ///
    /// # Errors
    ///
    /// See [`CallError`].
    pub async fn call<P: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        params: P,
    ) -> Result<R, CallError> {
        self.call_timeout(method, params, self.timeout).await
    }

    /// [`call`](Client::call) with its own timeout, which covers queueing
    /// the request as well as waiting for the reply.
    ///
    /// # Errors
    ///
    /// See [`CallError`].
    pub async fn call_timeout<P: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        params: P,
        timeout: Duration,
    ) -> Result<R, CallError> {
        let params = to_params(params)?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.state).expect(id, id, tx)?;
        let _forget = Forget {
            state: &self.state,
            id,
        };
        let request = Request {
            method: method.to_owned(),
            params,
            id: Some(Id::from(id)),
        };
        let exchange = async {
            self.send(&request).await?;
            rx.await.map_err(|_| lock(&self.state).disconnected())
        };
        let response = ::tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| CallError::Timeout)??;
        let value = response.outcome?;
        serde_json::from_value(value).map_err(|e| CallError::Decode(e.to_string()))
    }

    /// Sends a notification: no id, no reply.
    ///
    /// # Errors
    ///
    /// `Encode` for bad params, `Disconnected` if the connection is gone.
    pub async fn notify<P: Serialize>(&self, method: &str, params: P) -> Result<(), CallError> {
        let request = Request {
            method: method.to_owned(),
            params: to_params(params)?,
            id: None,
        };
        if let Some(why) = &lock(&self.state).closed {
            return Err(CallError::Disconnected(why.clone()));
        }
        self.send(&request).await
    }

    /// Sends several calls and notifications as one batch (§6) and returns
    /// the outcome of each call (notifications have none), in the order
    /// given, as [`crate::Client::batch`] does; the client's timeout covers
    /// the whole batch.
    ///
    /// # Errors
    ///
    /// A `CallError` that hit the batch as a whole; per-call server errors
    /// are in the returned vector.
    pub async fn batch(
        &self,
        entries: Vec<BatchEntry>,
    ) -> Result<Vec<Result<Value, RpcError>>, CallError> {
        let mut waits = Vec::new();
        let mut forget: Vec<Forget<'_>> = Vec::new();
        let mut requests = Vec::with_capacity(entries.len());
        for entry in entries {
            let id = if entry.notification {
                None
            } else {
                let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                let (tx, rx) = oneshot::channel();
                // The batch's line is named by its first call's id.
                let line = forget.first().map_or(id, |f| f.id);
                lock(&self.state).expect(id, line, tx)?;
                forget.push(Forget {
                    state: &self.state,
                    id,
                });
                waits.push(rx);
                Some(Id::from(id))
            };
            requests.push(Request {
                method: entry.method,
                params: entry.params,
                id,
            });
        }
        let exchange = async {
            self.send(&requests).await?;
            let mut out = Vec::with_capacity(waits.len());
            for rx in waits {
                let response = rx.await.map_err(|_| lock(&self.state).disconnected())?;
                out.push(batch_outcome(response)?);
            }
            Ok(out)
        };
        ::tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| CallError::Timeout)?
    }

    /// Queues one message for the writer task.
    async fn send<T: Serialize>(&self, message: &T) -> Result<(), CallError> {
        let bytes = serde_json::to_vec(message).map_err(|e| CallError::Encode(e.to_string()))?;
        self.queue
            .send(bytes)
            .await
            .map_err(|_| lock(&self.state).disconnected())
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // The writer task ends (and shuts its half down) when the queue's
        // last sender, ours, is dropped; the reader would wait for the
        // peer, so it is stopped here.
        self.reader.abort();
    }
}

/// Removes a call's pending entry however the call ends (answered, timed
/// out, or its future dropped).
struct Forget<'a> {
    state: &'a Mutex<State<oneshot::Sender<Response>>>,
    id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        lock(self.state).pending.remove(&self.id);
    }
}

/// The reader task: routes each response to its caller, then fails
/// everyone still waiting when the stream ends.
async fn read_responses<R: AsyncRead + Unpin>(mut reader: R, state: Shared) {
    let mut lines = LineReader::new(DEFAULT_MAX_LINE);
    let why = loop {
        match read_outcome(lines.read_frame_async(&mut reader).await) {
            Ok(found) => {
                for response in found {
                    let woken = lock(&state).route(response);
                    for (tx, response) in woken {
                        // The caller may have given up meanwhile.
                        let _ = tx.send(response);
                    }
                }
            }
            Err(why) => break why,
        }
    };
    lock(&state).close(why);
}

/// The writer task: writes each queued message as one line. A write
/// error ends the connection for every caller.
async fn write_messages<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut queue: mpsc::Receiver<Vec<u8>>,
    state: Shared,
) {
    while let Some(message) = queue.recv().await {
        if let Err(e) = super::server::write_line(&mut writer, &message).await {
            lock(&state).close(format!("write failed: {e}"));
            return;
        }
    }
    // The client was dropped: say goodbye with a FIN.
    let _ = writer.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_is_send_and_sync() {
        fn assert_sync<T: Send + Sync>() {}
        assert_sync::<Client>();
    }
}
