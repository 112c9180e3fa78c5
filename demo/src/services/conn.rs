//! What the services need of a connection besides bytes ([`Conn`]):
//! closing our side, read and write timeouts, and a way to close it from
//! another thread (eviction at the connection cap). Implemented for
//! `std::net::TcpStream` and the stack's `TcpStream`; [`ConnFns`] wraps
//! any other stream.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::time::Duration;

use crate::services::registry::Closer;

/// A stream whose read timeout can be moved while it is served (the HTTP
/// server moves it to each deadline).
pub trait ReadTimeout {
    /// Sets (or with `None` clears) the read timeout.
    ///
    /// # Errors
    /// As the socket's `set_read_timeout` (a zero duration is refused).
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
}

impl<T: ReadTimeout + ?Sized> ReadTimeout for &mut T {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_read_timeout(timeout)
    }
}

/// What a connection must offer besides bytes: closing our sending side,
/// timeouts, and a way to close it from another thread. Implemented for
/// `std::net::TcpStream` and the stack's `TcpStream`; any other stream can
/// be wrapped in [`ConnFns`].
pub trait Conn: Read + Write + ReadTimeout + Send + Sized + 'static {
    /// Sends our FIN (`shutdown(Shutdown::Write)`).
    ///
    /// # Errors
    /// As the socket's shutdown.
    fn shutdown_write(&self) -> io::Result<()>;

    /// Sets (or with `None` clears) the write timeout.
    ///
    /// # Errors
    /// As the socket's `set_write_timeout`.
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;

    /// A function that closes this connection from another thread (for
    /// eviction at the connection cap), or `None` if it cannot be done.
    fn closer(&self) -> Option<Closer>;

    /// Gives up on the connection at once (after a write timeout: the
    /// peer does not read). The stack's streams send a RST and drop what
    /// is queued (`SO_LINGER` 0); std's, which have no stable linger
    /// option, shut down both ways.
    fn abort(&self);
}

impl ReadTimeout for std::net::TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        std::net::TcpStream::set_read_timeout(self, timeout)
    }
}

impl Conn for std::net::TcpStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        std::net::TcpStream::set_write_timeout(self, timeout)
    }

    fn closer(&self) -> Option<Closer> {
        let other = self.try_clone().ok()?;
        Some(Box::new(move || {
            let _ = other.shutdown(Shutdown::Both);
        }))
    }

    fn abort(&self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}

impl ReadTimeout for stack::TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        stack::TcpStream::set_read_timeout(self, timeout)
    }
}

impl Conn for stack::TcpStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        stack::TcpStream::set_write_timeout(self, timeout)
    }

    fn closer(&self) -> Option<Closer> {
        let other = self.try_clone().ok()?;
        Some(Box::new(move || {
            let _ = other.shutdown(Shutdown::Both);
        }))
    }

    fn abort(&self) {
        stack::TcpStream::abort(self);
    }
}

/// Any stream as a [`Conn`], given its shutdown and timeout as functions:
///
/// ```ignore
/// let conn = ConnFns::new(stream, |s| s.shutdown(Shutdown::Write), |s, t| s.set_read_timeout(t));
/// ```
///
/// Without [`ConnFns::with_write_timeout`] it has no write timeout, and
/// without [`ConnFns::with_closer`] it is never evicted.
pub struct ConnFns<T> {
    stream: T,
    shutdown_write: fn(&T) -> io::Result<()>,
    set_read_timeout: SetTimeout<T>,
    set_write_timeout: Option<SetTimeout<T>>,
    closer: Option<fn(&T) -> Option<Closer>>,
}

/// A stream's `set_read_timeout` or `set_write_timeout`.
type SetTimeout<T> = fn(&T, Option<Duration>) -> io::Result<()>;

impl<T> ConnFns<T> {
    /// Wraps `stream` with its two operations.
    pub fn new(
        stream: T,
        shutdown_write: fn(&T) -> io::Result<()>,
        set_read_timeout: fn(&T, Option<Duration>) -> io::Result<()>,
    ) -> ConnFns<T> {
        ConnFns {
            stream,
            shutdown_write,
            set_read_timeout,
            set_write_timeout: None,
            closer: None,
        }
    }

    /// Adds the stream's write timeout.
    #[must_use]
    pub fn with_write_timeout(mut self, f: fn(&T, Option<Duration>) -> io::Result<()>) -> Self {
        self.set_write_timeout = Some(f);
        self
    }

    /// Adds a way to close the stream from another thread.
    #[must_use]
    pub fn with_closer(mut self, f: fn(&T) -> Option<Closer>) -> Self {
        self.closer = Some(f);
        self
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &T {
        &self.stream
    }
}

impl<T: Read> Read for ConnFns<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf)
    }
}

impl<T: Write> Write for ConnFns<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.stream.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

impl<T> ReadTimeout for ConnFns<T> {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        (self.set_read_timeout)(&self.stream, timeout)
    }
}

impl<T: Read + Write + Send + 'static> Conn for ConnFns<T> {
    fn shutdown_write(&self) -> io::Result<()> {
        (self.shutdown_write)(&self.stream)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self.set_write_timeout {
            Some(f) => f(&self.stream, timeout),
            None => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this stream has no write timeout",
            )),
        }
    }

    fn closer(&self) -> Option<Closer> {
        self.closer.and_then(|f| f(&self.stream))
    }

    /// A `ConnFns` knows no abort of its stream: its write side is shut.
    fn abort(&self) {
        let _ = (self.shutdown_write)(&self.stream);
    }
}
