//! JSON-RPC over the stack's own `TcpStream`, against the Linux kernel
//! through a real TUN device: the `rpc` crate runs unchanged over our
//! sockets, as server (the kernel calls us) and as client (we call the
//! kernel), with calls from several threads in flight on one connection.

mod common;

use std::net::TcpListener as KernelListener;
use std::sync::Arc;
use std::thread;

use serde_json::{json, Value};

use common::{can_run, host_addr, test_config, NetNs};
use rpc::{Client, Router};
use stack::{TcpListener, TcpStream};

fn router() -> Router {
    let mut r = Router::new().with_info("kernel-rpc-test", "1");
    r.register("add", |(a, b): (i64, i64)| Ok(a + b));
    r.register("echo", |v: Value| Ok(v));
    r
}

#[test]
fn kernel_client_calls_our_server_from_eight_threads() {
    if !can_run("kernel_client_calls_our_server_from_eight_threads") {
        return;
    }
    let ns = NetNs::new("rpcsrv");
    let stack = ns.start_stack(test_config());
    let listener = TcpListener::bind(&stack, (stack.addr(), 7070)).unwrap();
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        router().serve_lines(&stream).unwrap();
    });

    let results = ns.kernel(|| {
        let client = Arc::new(Client::connect_std("10.0.0.2:7070").unwrap());
        let five: i64 = client.call("add", [2, 3]).unwrap();
        let workers: Vec<_> = (0..8)
            .map(|t| {
                let client = Arc::clone(&client);
                thread::spawn(move || {
                    (0..200).all(|i| {
                        let v = json!({"thread": t, "call": i});
                        client.call::<_, Value>("echo", &v).unwrap() == v
                    })
                })
            })
            .collect();
        let all_matched = workers.into_iter().all(|w| w.join().unwrap());
        (five, all_matched)
    });
    assert_eq!(results, (5, true));
    server.join().unwrap();
    stack.shutdown();
}

#[test]
fn our_client_calls_a_kernel_server() {
    if !can_run("our_client_calls_a_kernel_server") {
        return;
    }
    let ns = NetNs::new("rpccli");
    let stack = ns.start_stack(test_config());
    let kernel = ns.kernel(|| KernelListener::bind("10.0.0.1:7070").unwrap());
    let server = thread::spawn(move || {
        let (stream, _) = kernel.accept().unwrap();
        router().serve_lines(stream).unwrap();
    });

    let stream = TcpStream::connect(&stack, host_addr(7070)).unwrap();
    let client = Client::new(stream.try_clone().unwrap(), stream.try_clone().unwrap()).unwrap();
    let sum: i64 = client.call("add", [40, 2]).unwrap();
    assert_eq!(sum, 42);
    let err = client.call::<_, Value>("nope", ()).unwrap_err();
    assert!(err.to_string().contains("-32601"), "{err}");
    // Like a std socket, the connection lives while any clone does: end it
    // with a FIN so the server sees end-of-file.
    drop(client);
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    server.join().unwrap();
    stack.shutdown();
}
