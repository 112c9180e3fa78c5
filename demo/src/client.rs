//! The client side of the story, over any byte stream: a minimal HTTP/1.1
//! GET (`demo get URL`) and a JSON-RPC call (`demo call ADDR METHOD ..`).
//!
//! Bounds: a response head is at most [`MAX_RESPONSE_HEAD`] bytes, a body
//! at most the `max_body` the caller passes (the CLI uses
//! [`DEFAULT_MAX_BODY`]); a chunk-size line at most 1 KiB.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde_json::Value;

/// The largest response head accepted.
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// The body size `demo get` accepts.
pub const DEFAULT_MAX_BODY: u64 = 64 * 1024 * 1024;

/// The most response header fields accepted.
const MAX_FIELDS: usize = 100;

/// A parsed `http://HOST[:PORT]/PATH` URL, HOST a literal IPv4 address or
/// a bracketed IPv6 one (`[fd00::2]`): the demo has no resolver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// Where to connect.
    pub addr: SocketAddr,
    /// The `Host` field value: the authority as written.
    pub authority: String,
    /// The request target (path and query), at least `/`.
    pub path: String,
}

/// Parses `http://IPV4[:PORT][/PATH]` or `http://[IPV6][:PORT][/PATH]`.
///
/// # Errors
/// A message saying what is wrong with the URL.
pub fn parse_url(url: &str) -> Result<HttpUrl, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url:?}: only http:// URLs are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    // An IPv6 host is bracketed (RFC 3986 §3.2.2), so its colons are not
    // the port's.
    let (host, port) =
        match authority.strip_prefix('[') {
            Some(bracketed) => {
                let (h, after) = bracketed
                    .split_once(']')
                    .ok_or_else(|| format!("{url:?}: no ']' after the IPv6 address"))?;
                match after {
                    "" => (h, None),
                    p => (
                        h,
                        Some(p.strip_prefix(':').ok_or_else(|| {
                            format!("{url:?}: ':' expected after the IPv6 address")
                        })?),
                    ),
                }
            }
            None => match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            },
        };
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| format!("{url:?}: bad port {p:?}"))?,
        None => 80,
    };
    let ip: IpAddr = host.parse().map_err(|_| {
        format!("{url:?}: the host must be an address like 10.0.0.1 or [fd00::2] (no DNS)")
    })?;
    if ip.is_ipv6() != authority.starts_with('[') {
        return Err(format!(
            "{url:?}: an IPv6 host is written in brackets, [fd00::2]"
        ));
    }
    Ok(HttpUrl {
        addr: SocketAddr::new(ip, port),
        authority: authority.to_owned(),
        path: path.to_owned(),
    })
}

/// A complete HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// The header fields in order, as sent.
    pub headers: Vec<(String, String)>,
    /// The body, decoded from chunked if it was.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first field named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `GET path` with `Host: authority` and `Connection: close` on
/// `stream` and reads the whole response: by `Content-Length`, chunked, or
/// until the server closes.
///
/// # Errors
/// I/O errors; `InvalidData` for a malformed response or one over the
/// bounds.
pub fn http_get<S: Read + Write>(
    mut stream: S,
    authority: &str,
    path: &str,
    max_body: u64,
) -> io::Result<HttpResponse> {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: demo\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes())?;
    stream.flush()?;
    let mut reader = BufReader::new(stream);
    loop {
        let head = read_head(&mut reader)?;
        let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
        let mut parsed = httparse::Response::new(&mut fields);
        match parsed.parse(&head) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => return Err(invalid("incomplete response head")),
            Err(e) => return Err(invalid(&format!("malformed response: {e}"))),
        }
        let status = parsed.code.unwrap_or(0);
        // RFC 9110 §15.2: skip interim responses.
        if (100..200).contains(&status) {
            continue;
        }
        let headers: Vec<(String, String)> = parsed
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_owned(),
                    String::from_utf8_lossy(h.value).trim().to_owned(),
                )
            })
            .collect();
        let mut resp = HttpResponse {
            status,
            reason: parsed.reason.unwrap_or("").to_owned(),
            headers,
            body: Vec::new(),
        };
        resp.body = read_body(&mut reader, &resp, max_body)?;
        return Ok(resp);
    }
}

/// Reads lines up to and including the empty line that ends a head.
fn read_head<R: BufRead>(reader: &mut R) -> io::Result<Vec<u8>> {
    let mut head = Vec::new();
    loop {
        let before = head.len();
        let limit = (MAX_RESPONSE_HEAD - before) as u64;
        let n = reader.by_ref().take(limit).read_until(b'\n', &mut head)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before a complete response head",
            ));
        }
        let line = head.get(before..).unwrap_or(&[]);
        if line == b"\r\n" || line == b"\n" {
            return Ok(head);
        }
        if head.len() >= MAX_RESPONSE_HEAD {
            return Err(invalid("response head too large"));
        }
    }
}

/// Reads the body as RFC 9112 §6.3 says its length is determined.
fn read_body<R: BufRead>(reader: &mut R, resp: &HttpResponse, max: u64) -> io::Result<Vec<u8>> {
    if resp.status == 204 || resp.status == 304 {
        return Ok(Vec::new());
    }
    let chunked = resp
        .header("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    if chunked {
        return read_chunked(reader, max);
    }
    let limit = match resp.header("content-length") {
        Some(v) => {
            let n: u64 = v.parse().map_err(|_| invalid("invalid Content-Length"))?;
            if n > max {
                return Err(invalid(&format!(
                    "body of {n} bytes is over the {max} byte limit"
                )));
            }
            Some(n)
        }
        None => None,
    };
    let mut body = Vec::new();
    let n = reader
        .by_ref()
        .take(limit.unwrap_or(max + 1))
        .read_to_end(&mut body)? as u64;
    match limit {
        Some(want) if n < want => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("body ended after {n} of {want} bytes"),
        )),
        None if n > max => Err(invalid(&format!("body is over the {max} byte limit"))),
        _ => Ok(body),
    }
}

/// Decodes a chunked body (RFC 9112 §7.1), ignoring extensions and trailers.
fn read_chunked<R: BufRead>(reader: &mut R, max: u64) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = read_line(reader)?;
        let size_hex = line.split(';').next().unwrap_or("").trim();
        let size = u64::from_str_radix(size_hex, 16).map_err(|_| invalid("bad chunk size"))?;
        if size == 0 {
            // Trailer fields, then the empty line.
            while !read_line(reader)?.is_empty() {}
            return Ok(body);
        }
        if body.len() as u64 + size > max {
            return Err(invalid(&format!("body is over the {max} byte limit")));
        }
        let got = reader.by_ref().take(size).read_to_end(&mut body)? as u64;
        if got < size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "chunk cut short",
            ));
        }
        if !read_line(reader)?.is_empty() {
            return Err(invalid("chunk not followed by CRLF"));
        }
    }
}

/// One line of at most 1 KiB, without its line ending.
fn read_line<R: BufRead>(reader: &mut R) -> io::Result<String> {
    let mut line = Vec::new();
    reader.by_ref().take(1024).read_until(b'\n', &mut line)?;
    if line.last() != Some(&b'\n') {
        return Err(invalid("line too long or cut short"));
    }
    let text = String::from_utf8(line).map_err(|_| invalid("line is not UTF-8"))?;
    Ok(text.trim_end_matches(['\r', '\n']).to_owned())
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

/// The params of `demo call ADDR METHOD ARGS..`: no args is no params; one
/// arg that is a JSON array or object is the params as given; otherwise a
/// positional array where each arg that parses as a JSON number is that
/// number and anything else is a string.
pub fn call_params(args: &[String]) -> Option<Value> {
    if args.is_empty() {
        return None;
    }
    if let [one] = args {
        if let Ok(v @ (Value::Array(_) | Value::Object(_))) = serde_json::from_str::<Value>(one) {
            return Some(v);
        }
    }
    Some(Value::Array(
        args.iter()
            .map(|a| match serde_json::from_str::<Value>(a) {
                Ok(n @ Value::Number(_)) => n,
                _ => Value::String(a.clone()),
            })
            .collect(),
    ))
}

/// Calls `method` with `params` over a connection's read and write halves
/// (newline-delimited JSON-RPC, like port 7070) and returns the result.
///
/// # Errors
/// [`rpc::CallError`]: the server's error object, a timeout, or a lost
/// connection.
pub fn rpc_call<R, W>(
    reader: R,
    writer: W,
    method: &str,
    params: Option<Value>,
    timeout: Duration,
) -> Result<Value, rpc::CallError>
where
    R: Read + Send + 'static,
    W: Write + Send + 'static,
{
    let client = rpc::Client::new(reader, writer)
        .map_err(rpc::CallError::Io)?
        .with_timeout(timeout);
    match params {
        Some(p) => client.call(method, p),
        None => client.call(method, ()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn url_forms() {
        let u = parse_url("http://10.0.0.1:8000/a/b?c=1").expect("url");
        assert_eq!(u.addr, "10.0.0.1:8000".parse().expect("addr"));
        assert_eq!(
            (u.authority.as_str(), u.path.as_str()),
            ("10.0.0.1:8000", "/a/b?c=1")
        );
        let u = parse_url("http://10.0.0.1").expect("url");
        assert_eq!((u.addr.port(), u.path.as_str()), (80, "/"));
        let u = parse_url("http://[fd00::2]:8080/x").expect("url");
        assert_eq!(u.addr, "[fd00::2]:8080".parse().expect("addr"));
        assert_eq!(u.authority, "[fd00::2]:8080");
        let u = parse_url("http://[fd00::2]").expect("url");
        assert_eq!((u.addr.port(), u.path.as_str()), (80, "/"));
        for bad in [
            "https://10.0.0.1/",
            "http://example.com/",
            "http://10.0.0.1:99999/",
            "10.0.0.1",
            "http://fd00::2/",
            "http://[fd00::2/",
            "http://[fd00::2]x/",
            "http://[10.0.0.1]/",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn params_from_args() {
        let s = |v: &[&str]| v.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
        assert_eq!(call_params(&[]), None);
        assert_eq!(call_params(&s(&["2", "3"])), Some(json!([2, 3])));
        assert_eq!(
            call_params(&s(&["2.5", "x", "true"])),
            Some(json!([2.5, "x", "true"]))
        );
        assert_eq!(call_params(&s(&[r#"{"a":1}"#])), Some(json!({"a": 1})));
        assert_eq!(call_params(&s(&["[1,2]"])), Some(json!([1, 2])));
        assert_eq!(call_params(&s(&["7"])), Some(json!([7])));
    }

    /// A server's bytes to read; what the client writes is dropped.
    struct Canned(io::Cursor<Vec<u8>>);

    impl Read for Canned {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.0.read(buf)
        }
    }

    impl Write for Canned {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn get(resp: &str) -> io::Result<HttpResponse> {
        http_get(
            Canned(io::Cursor::new(resp.as_bytes().to_vec())),
            "h",
            "/",
            100,
        )
    }

    #[test]
    fn chunked_and_interim_and_eof_bodies() {
        let r = get("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n")
            .expect("chunked");
        assert_eq!((r.status, r.body.as_slice()), (200, &b"abcde"[..]));
        let r = get("HTTP/1.0 200 OK\r\n\r\nuntil eof").expect("eof body");
        assert_eq!(r.body, b"until eof");
        let r = get("HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nnoEXTRA").expect("cl");
        assert_eq!(
            (r.status, r.reason.as_str(), r.body.as_slice()),
            (404, "Not Found", &b"no"[..])
        );
    }

    #[test]
    fn bounds_and_truncation_are_errors() {
        assert!(get("HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n").is_err());
        assert!(get("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab").is_err());
        assert!(get(&format!("HTTP/1.1 200 OK\r\n\r\n{}", "x".repeat(101))).is_err());
        assert!(get("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n").is_err());
        assert!(get("garbage\r\n\r\n").is_err());
    }
}
