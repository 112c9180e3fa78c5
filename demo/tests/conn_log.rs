//! Every line a connection logs names its 4-tuple: the demo serves each
//! connection inside a `conn{service, local, remote}` span, so
//! `RUST_LOG=debug` output can be read connection by connection.
//!
//! A test binary of its own, with a global subscriber: `tracing` caches
//! per call site whether anyone listens, so a subscriber set for one
//! thread while other tests run would miss call sites they reached first.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use demo::kernel::{kernel_serve_on, KernelHost, Ports};
use demo::Service;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn every_line_a_connection_logs_names_its_4_tuple() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let srv = kernel_serve_on(
        Ipv4Addr::LOCALHOST.into(),
        Ports::ephemeral(),
        Arc::new(KernelHost::new()),
    )
    .expect("bind");
    let addr = srv.addr(Service::Echo).expect("echo");
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let ours = s.local_addr().expect("local");
    s.write_all(b"hi").expect("send");
    s.shutdown(Shutdown::Write).expect("FIN");
    let mut back = Vec::new();
    s.read_to_end(&mut back).expect("echo and FIN");
    assert_eq!(back, b"hi");

    let span = format!("conn{{service=Echo local={addr} remote={ours}}}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = String::from_utf8_lossy(
            &capture
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
        .into_owned();
        let logged = |event: &str| log.lines().any(|l| l.contains(&span) && l.contains(event));
        if ["opened", "echoed n=2", "done"].into_iter().all(logged) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every event under {span} in:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
