//! Helpers shared by the integration tests: an in-memory stream and a
//! loopback server.

// Test helpers: a failed unwrap is a failed test.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread;

use rpc::Router;

/// A scripted stream: reads come from `input` at most `chunk` bytes at a
/// time, writes are collected in `output`.
pub struct Scripted {
    input: Vec<u8>,
    pos: usize,
    chunk: usize,
    pub output: Vec<u8>,
}

impl Scripted {
    pub fn new(input: impl Into<Vec<u8>>, chunk: usize) -> Scripted {
        Scripted {
            input: input.into(),
            pos: 0,
            chunk,
            output: Vec::new(),
        }
    }

    pub fn output_text(&self) -> String {
        String::from_utf8(self.output.clone()).unwrap()
    }

    /// Output lines parsed as JSON.
    pub fn output_json(&self) -> Vec<serde_json::Value> {
        self.output_text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Read for Scripted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.chunk.min(buf.len()).min(self.input.len() - self.pos);
        buf[..n].copy_from_slice(&self.input[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for Scripted {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Which framing a test server speaks.
#[derive(Clone, Copy)]
pub enum Framing {
    Lines,
    Http,
}

/// Serves `router` on 127.0.0.1 (ephemeral port), one thread per connection.
pub fn spawn_server(router: Router, framing: Framing) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Arc::new(router);
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let router = Arc::clone(&router);
            thread::spawn(move || {
                let _ = match framing {
                    Framing::Lines => router.serve_lines(stream),
                    Framing::Http => router.serve_http(stream),
                };
            });
        }
    });
    addr
}
