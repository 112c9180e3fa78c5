//! The demo's services end to end over the kernel's TCP on 127.0.0.1, served
//! by `kernel_serve_on` (the same `Services` the stack's host runs), with a
//! test double for the host view.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use demo::client::{self, HttpResponse};
use demo::kernel::{kernel_serve_on, kernel_serve_with, KernelServer, Ports};
use demo::services::rpc_service::DemoClient;
use demo::{HostInfo, Limits, Service};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// A host view with fixed, recognisable contents.
struct FakeHost;

impl HostInfo for FakeHost {
    fn sockets(&self) -> Value {
        json!([{"protocol": "tcp", "local": "10.0.0.2:80", "remote": "10.0.0.1:5000", "state": "ESTABLISHED"}])
    }

    fn stats(&self) -> Value {
        json!({"rx_packets": 42, "tx_packets": 7})
    }

    /// One packet numbered `since`, so a test sees which `since` arrived.
    fn packets(&self, since: u64) -> Value {
        json!({"next": since + 1, "packets": [{"seq": since, "flags": "S"}]})
    }
}

/// What `/stats` and the `stats` method serve from [`FakeHost`]: its
/// counters as they are, and the demo's limit counters under `"demo"`
/// (none hit yet on a fresh server).
fn served_stats() -> Value {
    let mut v = FakeHost.stats();
    v["demo"] = json!({
        "evicted": 0, "refused": 0, "head_timeouts": 0, "body_timeouts": 0,
        "idle_timeouts": 0, "write_timeouts": 0, "bytes_too_large": 0,
        "udp_echo_refused": 0,
    });
    v
}

fn server() -> KernelServer {
    kernel_serve_on(
        Ipv4Addr::LOCALHOST.into(),
        Ports::ephemeral(),
        Arc::new(FakeHost),
    )
    .expect("bind")
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s
}

fn http_addr(srv: &KernelServer) -> SocketAddr {
    srv.addr(Service::Http).expect("http")
}

fn get(srv: &KernelServer, path: &str) -> HttpResponse {
    let addr = http_addr(srv);
    client::http_get(connect(addr), &addr.to_string(), path, 64 << 20).expect("GET")
}

/// Reads one response with a Content-Length body (or none, for 204).
fn read_response<R: BufRead>(r: &mut R) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut head = Vec::new();
    loop {
        let before = head.len();
        r.read_until(b'\n', &mut head).expect("head");
        if &head[before..] == b"\r\n" {
            break;
        }
        assert!(
            head.len() > before,
            "EOF inside a head: {:?}",
            String::from_utf8_lossy(&head)
        );
    }
    let mut fields = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut fields);
    assert!(resp.parse(&head).expect("parse").is_complete());
    let headers: Vec<(String, String)> = resp
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let len = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map_or(0, |(_, v)| v.parse::<usize>().expect("length"));
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).expect("body");
    (resp.code.expect("code"), headers, body)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Sends `raw` on a fresh connection and reads one response.
fn raw(srv: &KernelServer, raw: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut s = connect(http_addr(srv));
    s.write_all(raw).expect("send");
    read_response(&mut BufReader::new(s))
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

// ---- HTTP ---------------------------------------------------------------

#[test]
fn bytes_n_is_exact_at_segment_and_buffer_edges() {
    let srv = server();
    for n in [0usize, 1, 1460, 1461, 65536, 10 << 20] {
        let r = get(&srv, &format!("/bytes/{n}"));
        assert_eq!(r.status, 200, "N={n}");
        assert_eq!(r.header("content-length"), Some(n.to_string().as_str()));
        assert_eq!(r.body.len(), n, "N={n}");
        assert!(r.body == pattern(n), "N={n}: wrong bytes");
    }
}

#[test]
fn bytes_n_refuses_what_is_not_a_number() {
    let srv = server();
    for bad in ["abc", "-1", "18446744073709551616", "1.5", ""] {
        assert_eq!(get(&srv, &format!("/bytes/{bad}")).status, 400, "{bad}");
    }
}

#[test]
fn head_of_a_huge_bytes_gives_its_length_only() {
    let srv = server();
    let mut s = connect(http_addr(&srv));
    s.write_all(b"HEAD /bytes/4294967296 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut all = String::new();
    s.read_to_string(&mut all).expect("read to close");
    assert!(all.starts_with("HTTP/1.1 200 OK\r\n"), "{all}");
    // Field names are case-insensitive (RFC 9110 §5.1); hyper sends them
    // in lower case.
    let all = all.to_ascii_lowercase();
    assert!(all.contains("content-length: 4294967296\r\n"), "{all}");
    assert!(all.ends_with("\r\n\r\n"), "a body was sent: {all}");
}

fn sha256_upload(srv: &KernelServer, body: &[u8], expect_continue: bool) -> String {
    let mut s = connect(http_addr(srv));
    let expect = if expect_continue {
        "Expect: 100-continue\r\n"
    } else {
        ""
    };
    write!(
        s,
        "POST /sha256 HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n{expect}\r\n",
        body.len()
    )
    .expect("head");
    let mut r = BufReader::new(s.try_clone().expect("clone"));
    if expect_continue {
        let mut interim = [0u8; 25];
        r.read_exact(&mut interim).expect("100 Continue");
        assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    s.write_all(body).expect("body");
    let (status, headers, text) = read_response(&mut r);
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/plain; charset=utf-8")
    );
    String::from_utf8(text).expect("utf8")
}

#[test]
fn sha256_of_5_mib_with_and_without_expect_continue() {
    let srv = server();
    let body: Vec<u8> = (0..5u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let want: String = Sha256::digest(&body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(sha256_upload(&srv, &body, false), format!("{want}\n"));
    assert_eq!(sha256_upload(&srv, &body, true), format!("{want}\n"));
    // The empty body hashes too.
    assert_eq!(
        sha256_upload(&srv, b"", false),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
    );
}

#[test]
fn keep_alive_serves_two_requests_on_one_connection() {
    let srv = server();
    let mut s = connect(http_addr(&srv));
    let mut r = BufReader::new(s.try_clone().expect("clone"));
    s.write_all(b"GET /bytes/3 HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("1st");
    let (status, headers, body) = read_response(&mut r);
    assert_eq!((status, body.as_slice()), (200, &[0u8, 1, 2][..]));
    assert_eq!(header(&headers, "connection"), None);
    s.write_all(b"GET /stats HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .expect("2nd");
    let (status, headers, body) = read_response(&mut r);
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "connection"), Some("close"));
    assert_eq!(
        serde_json::from_slice::<Value>(&body).expect("json"),
        served_stats()
    );
    // Then the server closes.
    let mut rest = Vec::new();
    assert_eq!(r.read_to_end(&mut rest).expect("eof"), 0);
}

#[test]
fn http10_gets_one_response_then_close() {
    let srv = server();
    let mut s = connect(http_addr(&srv));
    s.write_all(b"GET /bytes/2 HTTP/1.0\r\n\r\n").expect("send");
    let mut all = Vec::new();
    s.read_to_end(&mut all).expect("read to close");
    // hyper answers a 1.0 request in 1.0 (RFC 9110 §2.5 allows it).
    assert!(all.starts_with(b"HTTP/1.0 200 OK\r\n"), "{all:?}");
    assert!(all.ends_with(b"\r\n\r\n\x00\x01"));
}

#[test]
fn errors_404_405_400_413_431_say_what_was_wrong() {
    let srv = server();
    let (s, _, body) = raw(&srv, b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(s, 404);
    assert!(String::from_utf8_lossy(&body).contains("/nope"));

    let (s, h, _) = raw(&srv, b"DELETE /sha256 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!((s, header(&h, "allow")), (405, Some("POST")));
    let (s, h, _) = raw(
        &srv,
        b"POST /stats HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!((s, header(&h, "allow")), (405, Some("GET, HEAD")));

    let (s, h, _) = raw(&srv, b"GET / HTTP/1.1 extra\r\n\r\n");
    assert_eq!((s, header(&h, "connection")), (400, Some("close")));

    // 413 is decided from Content-Length, before any body is sent.
    let (s, h, body) = raw(
        &srv,
        b"POST /rpc HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\nExpect: 100-continue\r\n\r\n",
    );
    assert_eq!((s, header(&h, "connection")), (413, Some("close")));
    assert!(String::from_utf8_lossy(&body).contains("1048576"));

    let mut big = b"GET / HTTP/1.1\r\nHost: t\r\nX: ".to_vec();
    big.resize(big.len() + 20_000, b'x');
    big.extend_from_slice(b"\r\n\r\n");
    assert_eq!(raw(&srv, &big).0, 431);
}

#[test]
fn a_chunked_body_is_hashed_like_any_other() {
    let srv = server();
    let (s, _, body) = raw(
        &srv,
        b"POST /sha256 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n2\r\nbc\r\n0\r\n\r\n",
    );
    assert_eq!(s, 200);
    assert_eq!(
        String::from_utf8_lossy(&body).trim_end(),
        demo::services::routes::hex(&Sha256::digest(b"abc"))
    );
}

#[test]
fn metrics_are_prometheus_text_with_the_demos_counters() {
    use prometheus_parse::{Scrape, Value as Metric};
    let srv = server();
    // One limit hit, so a counter is not zero.
    let resp = get(&srv, &format!("/bytes/{}", u64::MAX));
    assert_eq!(resp.status, 413);
    let resp = get(&srv, "/metrics");
    assert_eq!(resp.status, 200);
    assert!(resp
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")));
    let text = String::from_utf8(resp.body).expect("UTF-8");
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("parses");
    let value = |name: &str| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name)
            .map(|s| s.value.clone())
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    assert!(matches!(value("demo_bytes_too_large_total"), Metric::Counter(n) if n == 1.0));
    assert!(matches!(value("demo_refused_total"), Metric::Counter(n) if n == 0.0));
    // The scrape's own connection is being served.
    assert!(matches!(value("demo_connections"), Metric::Gauge(n) if n >= 1.0));
    assert!(scrape.docs.contains_key("demo_evicted_total"));
}

#[test]
fn index_page_shows_the_callers_real_4_tuple() {
    let srv = server();
    let addr = http_addr(&srv);
    let s = connect(addr);
    let mine = s.local_addr().expect("local");
    let r = client::http_get(s, &addr.to_string(), "/", 1 << 20).expect("GET /");
    let text = String::from_utf8(r.body).expect("utf8");
    assert_eq!(r.status, 200);
    assert!(
        text.starts_with(&format!("you are {mine} talking to {addr}\n")),
        "{text}"
    );
    assert!(text.contains("/sockets"));
}

/// `src="..."` and `href="..."` values in `html`.
fn links(html: &str) -> Vec<&str> {
    let mut found = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for (at, _) in html.match_indices(attr) {
            let rest = &html[at + attr.len()..];
            found.push(&rest[..rest.find('"').expect("closing quote")]);
        }
    }
    found
}

#[test]
fn a_browser_gets_the_live_page_with_nothing_from_elsewhere() {
    let srv = server();
    let (status, h, body) = raw(
        &srv,
        b"GET / HTTP/1.1\r\nHost: t\r\nAccept: text/html,application/xhtml+xml,*/*;q=0.8\r\n\r\n",
    );
    assert_eq!(status, 200);
    assert_eq!(header(&h, "content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(header(&h, "vary"), Some("accept"));
    let page = String::from_utf8(body).expect("UTF-8");
    assert!(page.starts_with("<!doctype html>"), "{page}");
    let links = links(&page);
    assert!(
        links.contains(&"/live.js") && links.contains(&"/live.css"),
        "{links:?}"
    );
    for link in &links {
        assert!(link.starts_with('/') && !link.starts_with("//"), "{link}");
    }
    // What the page loads is served, and fetches nothing from elsewhere
    // either.
    for (path, kind) in [("/live.js", "text/javascript"), ("/live.css", "text/css")] {
        let r = get(&srv, path);
        assert_eq!(r.status, 200, "{path}");
        assert!(r
            .header("content-type")
            .is_some_and(|t| t.starts_with(kind)));
        let text = String::from_utf8(r.body).expect("UTF-8");
        assert!(
            !text.contains("http://") && !text.contains("https://"),
            "{path}"
        );
    }
    assert!(!page.contains("http://") && !page.contains("https://"));
}

#[test]
fn curl_still_gets_the_text_page() {
    let srv = server();
    let (status, h, body) = raw(&srv, b"GET / HTTP/1.1\r\nHost: t\r\nAccept: */*\r\n\r\n");
    assert_eq!(status, 200);
    assert_eq!(
        header(&h, "content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(header(&h, "vary"), Some("accept"));
    let text = String::from_utf8_lossy(&body);
    assert!(text.starts_with("you are "), "{text}");
    // ... which says where the live page is.
    assert!(text.contains("in a web browser"), "{text}");
}

#[test]
fn live_json_is_the_callers_4_tuple_sockets_stats_and_packets() {
    let srv = server();
    let addr = http_addr(&srv);
    let mut s = connect(addr);
    let mine = s.local_addr().expect("local");
    s.write_all(b"GET /live.json?since=41 HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("send");
    let (status, h, body) = read_response(&mut BufReader::new(s));
    assert_eq!(status, 200);
    assert_eq!(header(&h, "content-type"), Some("application/json"));
    assert_eq!(header(&h, "cache-control"), Some("no-store"));
    let got: Value = serde_json::from_slice(&body).expect("JSON");
    let want = json!({
        "you": {"local": addr.to_string(), "remote": mine.to_string()},
        "sockets": FakeHost.sockets(),
        "stats": served_stats(),
        "packets": FakeHost.packets(41),
    });
    assert_eq!(got, want);
    // Without `since`, the whole log.
    let r = get(&srv, "/live.json");
    let got: Value = serde_json::from_slice(&r.body).expect("JSON");
    assert_eq!(got["packets"], FakeHost.packets(0));
}

#[test]
fn live_json_refuses_a_since_that_is_not_a_number() {
    let srv = server();
    let r = get(&srv, "/live.json?since=soon");
    assert_eq!(r.status, 400);
    assert!(String::from_utf8_lossy(&r.body).contains("since"));
    let (s, h, _) = raw(
        &srv,
        b"POST /live.json HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!((s, header(&h, "allow")), (405, Some("GET, HEAD")));
}

#[test]
fn sockets_and_stats_are_the_hosts_json() {
    let srv = server();
    for (path, want) in [("/sockets", FakeHost.sockets()), ("/stats", served_stats())] {
        let r = get(&srv, path);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(
            serde_json::from_slice::<Value>(&r.body).expect("json"),
            want
        );
    }
}

#[test]
fn client_get_parses_a_url_and_fetches_from_our_server() {
    let srv = server();
    let url =
        client::parse_url(&format!("http://{}/bytes/1000?x=1", http_addr(&srv))).expect("url");
    let r = client::http_get(connect(url.addr), &url.authority, &url.path, 1 << 20).expect("GET");
    assert_eq!((r.status, r.reason.as_str()), (200, "OK"));
    assert_eq!(r.body, pattern(1000));
}

// ---- echo, discard, UDP echo ---------------------------------------------

#[test]
fn echo_returns_1_mib_exactly_and_closes_after_our_fin() {
    let srv = server();
    let s = connect(srv.addr(Service::Echo).expect("echo"));
    let data: Vec<u8> = (0..1u32 << 20).map(|i| (i % 253) as u8).collect();
    let mut w = s.try_clone().expect("clone");
    let sent = data.clone();
    let writer = thread::spawn(move || {
        w.write_all(&sent).expect("send");
        w.shutdown(Shutdown::Write).expect("fin");
    });
    let mut back = Vec::new();
    (&s).read_to_end(&mut back)
        .expect("read until the server's FIN");
    writer.join().expect("writer");
    assert_eq!(back.len(), data.len());
    assert!(back == data);
}

#[test]
fn discard_reads_everything_and_sends_nothing() {
    let srv = server();
    let mut s = connect(srv.addr(Service::Discard).expect("discard"));
    s.write_all(&vec![7u8; 300_000]).expect("send");
    s.shutdown(Shutdown::Write).expect("fin");
    let mut back = Vec::new();
    s.read_to_end(&mut back).expect("eof");
    assert!(back.is_empty());
}

#[test]
fn udp_echo_returns_each_datagram() {
    let srv = server();
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    for msg in [&b"hello"[..], &[0u8; 1400][..], b""] {
        sock.send_to(msg, srv.udp_echo).expect("send");
        let mut buf = [0u8; 2048];
        let (n, from) = sock.recv_from(&mut buf).expect("reply");
        assert_eq!((&buf[..n], from), (msg, srv.udp_echo));
    }
}

// ---- JSON-RPC, over lines (7070) and POST /rpc -----------------------------

/// One JSON-RPC text over a line connection; `None` if no reply came
/// before the next (marker) call's reply.
fn rpc_line(srv: &KernelServer, text: &str) -> Option<Value> {
    let mut s = connect(srv.addr(Service::Rpc).expect("rpc"));
    // A marker call after it tells "no reply" apart from "slow reply".
    write!(s, "{text}\n{{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[\"marker\"],\"id\":\"m\"}}\n").expect("send");
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).expect("reply line");
    let v: Value = serde_json::from_str(&line).expect("json line");
    if v["id"] == "m" {
        return None;
    }
    line.clear();
    r.read_line(&mut line).expect("marker line");
    assert_eq!(
        serde_json::from_str::<Value>(&line).expect("marker")["id"],
        "m"
    );
    Some(v)
}

/// One JSON-RPC text over `POST /rpc`; `None` for 204 No Content.
fn rpc_post(srv: &KernelServer, text: &str) -> Option<Value> {
    let head = format!(
        "POST /rpc HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    let (status, headers, body) = raw(srv, head.as_bytes());
    match status {
        204 => {
            assert!(body.is_empty());
            None
        }
        200 => {
            assert_eq!(header(&headers, "content-type"), Some("application/json"));
            Some(serde_json::from_slice(&body).expect("json body"))
        }
        other => panic!("status {other}"),
    }
}

fn check_rpc_methods_and_errors(call: fn(&KernelServer, &str) -> Option<Value>) {
    let srv = server();
    let ok = |text: &str| {
        let v = call(&srv, text).expect("a reply");
        assert_eq!(v["jsonrpc"], "2.0");
        assert!(v.get("error").is_none(), "{v}");
        v["result"].clone()
    };
    let code = |text: &str| call(&srv, text).expect("a reply")["error"]["code"].clone();

    assert_eq!(
        ok(r#"{"jsonrpc":"2.0","method":"echo","params":[1,"two",{"3":null}],"id":1}"#),
        json!([1, "two", {"3": null}])
    );
    assert_eq!(
        ok(r#"{"jsonrpc":"2.0","method":"echo","params":{"k":"v"},"id":"s"}"#),
        json!({"k": "v"})
    );
    let five = ok(r#"{"jsonrpc":"2.0","method":"add","params":[2,3],"id":2}"#);
    assert_eq!(five.to_string(), "5");
    assert_eq!(
        ok(r#"{"jsonrpc":"2.0","method":"add","params":{"a":0.5,"b":0.25},"id":2}"#),
        json!(0.75)
    );
    assert_eq!(
        ok(r#"{"jsonrpc":"2.0","method":"sockets","id":3}"#),
        FakeHost.sockets()
    );
    assert_eq!(
        ok(r#"{"jsonrpc":"2.0","method":"stats","params":[],"id":4}"#),
        served_stats()
    );
    let doc = ok(r#"{"jsonrpc":"2.0","method":"rpc.discover","id":5}"#).to_string();
    for m in ["\"echo\"", "\"add\"", "\"sockets\"", "\"stats\""] {
        assert!(doc.contains(m), "{m} not in {doc}");
    }

    assert_eq!(
        code(r#"{"jsonrpc":"2.0","method":"add","params":[1,2"#),
        json!(-32700)
    );
    assert_eq!(
        code(r#"{"jsonrpc":"2.0","method":7,"id":6}"#),
        json!(-32600)
    );
    assert_eq!(
        code(r#"{"jsonrpc":"1.0","method":"add","id":6}"#),
        json!(-32600)
    );
    assert_eq!(
        code(r#"{"jsonrpc":"2.0","method":"sub","params":[1,2],"id":7}"#),
        json!(-32601)
    );
    assert_eq!(
        code(r#"{"jsonrpc":"2.0","method":"add","params":["2",3],"id":8}"#),
        json!(-32602)
    );
    assert_eq!(
        code(r#"{"jsonrpc":"2.0","method":"add","params":[1,2,3],"id":8}"#),
        json!(-32602)
    );

    // A notification gets no reply at all.
    assert_eq!(
        call(&srv, r#"{"jsonrpc":"2.0","method":"add","params":[1,2]}"#),
        None
    );
    // A batch gets an array.
    let batch = call(
        &srv,
        r#"[{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1},{"jsonrpc":"2.0","method":"echo"}]"#,
    )
    .expect("batch reply");
    assert_eq!(batch, json!([{"jsonrpc": "2.0", "result": 3, "id": 1}]));
}

#[test]
fn rpc_over_lines_every_method_and_error_code() {
    check_rpc_methods_and_errors(rpc_line);
}

#[test]
fn rpc_over_post_every_method_and_error_code() {
    check_rpc_methods_and_errors(rpc_post);
}

#[test]
fn typed_client_and_cli_call_helper_talk_to_port_7070() {
    let srv = server();
    let addr = srv.addr(Service::Rpc).expect("rpc");
    let typed = DemoClient::new(rpc::Client::connect_std(addr).expect("connect"));
    assert_eq!(typed.add(2.into(), 3.into()).expect("add"), json!(5));
    assert_eq!(typed.stats().expect("stats"), served_stats());

    // As `demo call` does: one connection per call, split in two halves.
    let call = |method: &str, args: &[&str]| {
        let s = connect(addr);
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let halves = (s.try_clone().expect("clone"), s.try_clone().expect("clone"));
        let result = client::rpc_call(
            halves.0,
            halves.1,
            method,
            client::call_params(&args),
            Duration::from_secs(10),
        );
        s.shutdown(Shutdown::Both).expect("close");
        result
    };
    assert_eq!(call("add", &["2", "3"]).expect("add"), json!(5));
    assert_eq!(
        call("echo", &["x", "-1.5"]).expect("echo"),
        json!(["x", -1.5])
    );
    assert_eq!(
        call("echo", &[r#"{"a":[1]}"#]).expect("echo"),
        json!({"a": [1]})
    );
    let err = call("nope", &[]);
    assert!(
        matches!(err, Err(rpc::CallError::Rpc(ref e)) if e.code == -32601),
        "{err:?}"
    );
}

// ---- the connection bound --------------------------------------------------

#[test]
fn at_the_bound_the_longest_idle_connection_is_evicted() {
    let limits = Limits {
        max_connections: 1,
        ..Limits::default()
    };
    let srv = kernel_serve_with(
        Ipv4Addr::LOCALHOST.into(),
        Ports::ephemeral(),
        Arc::new(FakeHost),
        limits,
    )
    .expect("bind");
    let addr = srv.addr(Service::Echo).expect("echo");

    // The first connection holds the only slot while it is open.
    let mut first = connect(addr);
    first.write_all(b"x").expect("send");
    let mut one = [0u8; 1];
    first.read_exact(&mut one).expect("echoed");
    // The second takes its place: the first, now the longest idle, is
    // closed, and the second is served.
    let mut second = connect(addr);
    second.write_all(b"y").expect("send");
    second.read_exact(&mut one).expect("the newcomer is served");
    assert_eq!(&one, b"y");
    let mut rest = Vec::new();
    match first.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "{rest:?}"),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
    }
    assert_eq!(
        srv.services()
            .counters()
            .evicted
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}
