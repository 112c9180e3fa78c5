//! Framing on real streams: newline-delimited JSON with split and
//! coalesced reads, garbage and oversize lines; HTTP/1.1 keep-alive,
//! `Expect: 100-continue` (RFC 9110 §10.1.1) and malformed requests.

// Test helpers outside #[test] fns: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{json, Value};

use common::{spawn_server, Framing, Scripted};
use rpc::Router;

fn router() -> Router {
    let mut r = Router::new();
    r.register("echo", |v: Value| Ok(v));
    r.register("add", |(a, b): (i64, i64)| Ok(a + b));
    r
}

const ADD: &str = r#"{"jsonrpc":"2.0","method":"add","params":[2,3],"id":1}"#;
const ADD2: &str = r#"{"jsonrpc":"2.0","method":"add","params":[10,20],"id":2}"#;

// ---- newline framing -------------------------------------------------------

#[test]
fn lines_split_into_one_byte_reads_are_reassembled() {
    let mut s = Scripted::new(format!("{ADD}\n{ADD2}\n"), 1);
    router().serve_lines(&mut s).unwrap();
    let out = s.output_json();
    assert_eq!(
        out,
        [
            json!({"jsonrpc":"2.0","result":5,"id":1}),
            json!({"jsonrpc":"2.0","result":30,"id":2})
        ]
    );
}

#[test]
fn two_requests_coalesced_in_one_read_get_two_responses() {
    let mut s = Scripted::new(format!("{ADD}\n{ADD2}\n"), 64 * 1024);
    router().serve_lines(&mut s).unwrap();
    let ids: Vec<Value> = s.output_json().iter().map(|v| v["id"].clone()).collect();
    assert_eq!(ids, [json!(1), json!(2)]);
}

#[test]
fn garbage_line_gets_parse_error_and_the_next_request_is_served() {
    let mut s = Scripted::new(format!("this is not json\n{ADD}\n"), 5);
    router().serve_lines(&mut s).unwrap();
    let out = s.output_json();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0]["error"]["code"], -32700);
    assert_eq!(out[0]["id"], Value::Null);
    assert_eq!(out[1]["result"], 5);
}

#[test]
fn oversize_line_gets_an_error_and_the_connection_continues() {
    let big = format!(
        r#"{{"jsonrpc":"2.0","method":"echo","params":["{}"],"id":9}}"#,
        "x".repeat(5000)
    );
    let mut s = Scripted::new(format!("{big}\n{ADD}\n"), 1000);
    router().with_max_message(1024).serve_lines(&mut s).unwrap();
    let out = s.output_json();
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(out[0]["error"]["code"], rpc::error::LIMIT_EXCEEDED);
    assert_eq!(out[1]["result"], 5);
}

#[test]
fn message_at_the_limit_is_served() {
    let line = format!(
        r#"{{"jsonrpc":"2.0","method":"echo","params":["{}"],"id":9}}"#,
        "x".repeat(900)
    );
    let mut s = Scripted::new(format!("{line}\n"), 100);
    router()
        .with_max_message(line.len())
        .serve_lines(&mut s)
        .unwrap();
    assert_eq!(s.output_json()[0]["result"], json!(["x".repeat(900)]));
}

#[test]
fn lines_over_tcp_loopback() {
    let addr = spawn_server(router(), Framing::Lines);
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(format!("{ADD}\n").as_bytes()).unwrap();
    let mut line = String::new();
    BufReader::new(&conn).read_line(&mut line).unwrap();
    assert_eq!(line, "{\"jsonrpc\":\"2.0\",\"result\":5,\"id\":1}\n");
}

// ---- HTTP framing ----------------------------------------------------------

fn post(body: &str) -> String {
    format!(
        "POST /rpc HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Reads one HTTP response (head and Content-Length body) from `r`.
fn read_response(r: &mut impl BufRead) -> (String, String) {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        assert!(
            r.read_line(&mut line).unwrap() > 0,
            "connection closed mid-response"
        );
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .map_or(0, |n| n.trim().parse().unwrap());
    let mut body = vec![0; len];
    r.read_exact(&mut body).unwrap();
    (head, String::from_utf8(body).unwrap())
}

#[test]
fn http_keep_alive_serves_two_requests_on_one_connection() {
    let addr = spawn_server(router(), Framing::Http);
    let conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut writer = conn;
    for (req, want) in [(ADD, 5), (ADD2, 30)] {
        writer.write_all(post(req).as_bytes()).unwrap();
        let (head, body) = read_response(&mut reader);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("Connection: keep-alive"), "{head}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["result"], want);
    }
}

#[test]
fn http_expect_100_continue_gets_interim_response_before_the_body_is_sent() {
    let addr = spawn_server(router(), Framing::Http);
    let conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut writer = conn;
    write!(
        writer,
        "POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        ADD.len()
    )
    .unwrap();
    // Like curl: wait for the go-ahead before sending the body.
    let mut interim = String::new();
    reader.read_line(&mut interim).unwrap();
    assert_eq!(interim, "HTTP/1.1 100 Continue\r\n");
    let mut blank = String::new();
    reader.read_line(&mut blank).unwrap();
    assert_eq!(blank, "\r\n");
    writer.write_all(ADD.as_bytes()).unwrap();
    let (head, body) = read_response(&mut reader);
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["result"], 5);
}

#[test]
fn http_expect_100_continue_with_too_large_body_is_refused_up_front() {
    let mut s = Scripted::new(
        "POST /rpc HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n",
        64,
    );
    router().with_max_message(1000).serve_http(&mut s).unwrap();
    let out = s.output_text();
    assert!(out.starts_with("HTTP/1.1 413 "), "{out}");
    assert!(!out.contains("100 Continue"), "{out}");
}

#[test]
fn malformed_http_gets_400_with_a_reason() {
    let mut s = Scripted::new("POST /rpc HTTP/1.1\r\nBad Header Line\r\n\r\n", 64);
    router().serve_http(&mut s).unwrap();
    let out = s.output_text();
    assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
    assert!(out.contains("Connection: close"), "{out}");
    assert!(out.contains("malformed HTTP request"), "{out}");
}

#[test]
fn http_wrong_method_path_and_type_get_405_404_415() {
    for (req, status) in [
        ("GET /rpc HTTP/1.1\r\n\r\n", "405"),
        ("POST /other HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "404"),
        (
            "POST /rpc HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}",
            "415",
        ),
        (
            "POST /rpc HTTP/1.1\r\nContent-Type: application/json\r\n\r\n",
            "411",
        ),
    ] {
        let mut s = Scripted::new(req, 64);
        router().serve_http(&mut s).unwrap();
        let out = s.output_text();
        assert!(
            out.starts_with(&format!("HTTP/1.1 {status} ")),
            "{req:?} -> {out}"
        );
    }
}

#[test]
fn http_notification_gets_204_and_pipelined_requests_all_answered() {
    let note = r#"{"jsonrpc":"2.0","method":"echo","params":[1]}"#;
    let mut s = Scripted::new(format!("{}{}", post(note), post(ADD)), 3);
    router().serve_http(&mut s).unwrap();
    let out = s.output_text();
    assert!(out.starts_with("HTTP/1.1 204 No Content\r\n"), "{out}");
    assert!(out.contains("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(
        out.ends_with(r#"{"jsonrpc":"2.0","result":5,"id":1}"#),
        "{out}"
    );
}

#[test]
fn http_connection_close_ends_the_connection_after_the_reply() {
    let req = post(ADD).replace(
        "Host: localhost\r\n",
        "Host: localhost\r\nConnection: close\r\n",
    );
    let mut s = Scripted::new(format!("{req}{}", post(ADD2)), 4096);
    router().serve_http(&mut s).unwrap();
    let out = s.output_text();
    assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 1, "{out}");
    assert!(out.contains("Connection: close"), "{out}");
}
