//! HTTP/1.1 on our own threads: one request per connection, answered with `Connection: close`.
//!
//! Why not tiny_http: its connection thread pool (0.12) can leave a new connection queued behind
//! idle keep-alive connections when two arrive at once (the "is a thread waiting?" check races with
//! the wake-up), so a browser loading six files in parallel sometimes never got the sixth. Reading
//! one bounded request per connection and closing it has no such state.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::http::{HttpResponse, MAX_BODY_BYTES, RouteResponse, StreamResponse, StreamWriter};
use crate::server::Shared;

/// Longest request line plus headers.
const MAX_HEAD_BYTES: usize = 32 * 1024;
/// Most HTTP connections served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 256;
/// A client must send its request (and read the answer) within this time. A streamed response's
/// client that stops reading this long ends its stream.
const IO_TIMEOUT: Duration = Duration::from_secs(15);
/// Most streamed responses open at once; more are answered 503 (streams hold a connection, and
/// this keeps most of [`MAX_CONNECTIONS`] for ordinary requests).
pub(crate) const MAX_STREAMS: usize = 64;

/// A request as read from the socket, before authentication.
#[derive(Debug)]
pub(crate) struct RawRequest {
    pub(crate) method: String,
    pub(crate) url: String,
    /// Lower-case names.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

/// Why a request could not be read; each maps to a response (or to silence).
#[derive(Debug, PartialEq, Eq)]
enum ReadFailure {
    /// The peer closed or timed out before a whole request: answer nothing.
    Gone,
    /// Answer with this status and message.
    Reject(u16, &'static str),
}

pub(crate) fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        if shared.http_conns.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            shared.http_conns.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        let shared2 = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("console-http".to_owned())
            .spawn(move || {
                serve(stream, &shared2);
                shared2.http_conns.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            shared.http_conns.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

fn serve(mut stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let read = {
        let mut reader = BufReader::new(&mut stream);
        read_request(&mut reader)
    };
    let (resp, host) = match read {
        Ok(req) => {
            let host = header(&req.headers, "host").unwrap_or_default().to_owned();
            (crate::server::handle(req, shared), host)
        }
        Err(ReadFailure::Gone) => return,
        Err(ReadFailure::Reject(status, message)) => {
            (HttpResponse::error(status, message).into(), String::new())
        }
    };
    match resp {
        RouteResponse::Whole(resp) => {
            let bytes = crate::server::render(resp, shared, &host);
            let _ = stream.write_all(&bytes);
            let _ = stream.flush();
        }
        RouteResponse::Stream(s) => {
            if shared.streams.fetch_add(1, Ordering::SeqCst) >= MAX_STREAMS {
                shared.streams.fetch_sub(1, Ordering::SeqCst);
                let busy = HttpResponse::error(503, "Too many open streams");
                let _ = stream.write_all(&crate::server::render(busy, shared, &host));
                let _ = stream.flush();
            } else {
                write_stream(&mut stream, s, shared, &host);
                shared.streams.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Write);
    // Let the peer read the answer before the socket goes: drain what it still sends, briefly.
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    while let Ok(n) = stream.read(&mut sink) {
        drained += n;
        if n == 0 || drained > MAX_BODY_BYTES * 2 {
            break;
        }
    }
}

/// Sends a streamed response's head, then lets its body write until it returns.
fn write_stream(stream: &mut TcpStream, s: StreamResponse, shared: &Shared, host: &str) {
    let head = crate::server::render_head(200, &s.content_type, &s.headers, None, shared, host);
    if stream
        .write_all(&head)
        .and_then(|()| stream.flush())
        .is_err()
    {
        return;
    }
    let mut writer = StreamWriter {
        stream,
        stop: &shared.stop,
        failed: false,
    };
    (s.body)(&mut writer);
}

pub(crate) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn read_request(reader: &mut impl BufRead) -> Result<RawRequest, ReadFailure> {
    let mut head = Vec::new();
    loop {
        let before = head.len();
        let n = reader
            .by_ref()
            .take((MAX_HEAD_BYTES + 1 - before.min(MAX_HEAD_BYTES)) as u64)
            .read_until(b'\n', &mut head)
            .map_err(|_| ReadFailure::Gone)?;
        if n == 0 {
            return Err(ReadFailure::Gone);
        }
        if head.len() > MAX_HEAD_BYTES {
            return Err(ReadFailure::Reject(431, "Request header too large"));
        }
        let line = &head[before..];
        if line == b"\r\n" || line == b"\n" {
            if before == 0 {
                // Tolerate a stray empty line before the request line (RFC 9112 §2.2).
                head.clear();
                continue;
            }
            break;
        }
    }
    let text = std::str::from_utf8(&head).map_err(|_| ReadFailure::Reject(400, "Bad request"))?;
    let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r'));
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(url), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadFailure::Reject(400, "Bad request"));
    };
    if !matches!(version, "HTTP/1.1" | "HTTP/1.0")
        || method.is_empty()
        || !method.bytes().all(|b| b.is_ascii_uppercase())
        || !url.starts_with('/')
    {
        return Err(ReadFailure::Reject(400, "Bad request"));
    }
    let mut headers = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            return Err(ReadFailure::Reject(400, "Bad request"));
        };
        // A control byte in a header (a bare CR among them) is no HTTP/1.1 a client sends.
        if line.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(ReadFailure::Reject(400, "Bad request"));
        }
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    if header(&headers, "transfer-encoding").is_some() {
        return Err(ReadFailure::Reject(411, "Length Required"));
    }
    let length = match header(&headers, "content-length") {
        None => 0,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| ReadFailure::Reject(400, "Bad request"))?,
    };
    if length > MAX_BODY_BYTES {
        return Err(ReadFailure::Reject(413, "Request body too large"));
    }
    let mut body = vec![0u8; length];
    reader
        .read_exact(&mut body)
        .map_err(|_| ReadFailure::Gone)?;
    Ok(RawRequest {
        method: method.to_owned(),
        url: url.to_owned(),
        headers,
        body,
    })
}

/// The reason phrase of the statuses this server uses.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        303 => "See Other",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> Result<RawRequest, ReadFailure> {
        read_request(&mut BufReader::new(bytes))
    }

    #[test]
    fn requests_are_parsed_with_bounded_heads_and_bodies() {
        let r = read(
            b"POST /api/x?a=1 HTTP/1.1\r\nHost: h:1\r\nContent-Length: 3\r\nX-Y:  z \r\n\r\nabcdef",
        )
        .unwrap();
        assert_eq!((r.method.as_str(), r.url.as_str()), ("POST", "/api/x?a=1"));
        assert_eq!(header(&r.headers, "x-y"), Some("z"));
        assert_eq!(r.body, b"abc");
        let cases: &[(&[u8], ReadFailure)] = &[
            (b"", ReadFailure::Gone),
            (b"GET / HTTP/1.1\r\nHost: x\r\n", ReadFailure::Gone),
            (
                b"GET / HTTP/2.0\r\n\r\n",
                ReadFailure::Reject(400, "Bad request"),
            ),
            (
                b"get / HTTP/1.1\r\n\r\n",
                ReadFailure::Reject(400, "Bad request"),
            ),
            (
                b"GET http://x/ HTTP/1.1\r\n\r\n",
                ReadFailure::Reject(400, "Bad request"),
            ),
            (
                b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
                ReadFailure::Reject(400, "Bad request"),
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                ReadFailure::Reject(411, "Length Required"),
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n",
                ReadFailure::Reject(413, "Request body too large"),
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab",
                ReadFailure::Gone,
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(
                read(bytes).unwrap_err(),
                *want,
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
        let mut huge = b"GET / HTTP/1.1\r\n".to_vec();
        huge.extend(
            std::iter::repeat_n(b"X-A: aaaaaaaaaaaaaaaaaaaa\r\n".as_slice(), 2000).flatten(),
        );
        assert_eq!(
            read(&huge).unwrap_err(),
            ReadFailure::Reject(431, "Request header too large")
        );
    }
}
