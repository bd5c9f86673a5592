//! Plain request and response values, and the [`Routes`] trait other crates implement to add their
//! own endpoints to the console server (the plugin mounts its HTTP API this way).

/// Largest request body the server reads (BEHAVIOR.md §10.5); larger bodies get 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// An authenticated HTTP request, already read (body bounded by [`MAX_BODY_BYTES`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path without the query string, e.g. `/api/coding-agents/abc/send`.
    pub path: String,
    /// Query parameters in order, percent-decoded (the `token` parameter is removed).
    pub query: Vec<(String, String)>,
    /// Headers with lower-case names (`authorization` and `cookie` are removed).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// The first query parameter named `name`.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first header named `name` (give it lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The path split on `/`, without empty segments: `/api/x/1` → `["api", "x", "1"]`.
    pub fn segments(&self) -> Vec<&str> {
        self.path.split('/').filter(|s| !s.is_empty()).collect()
    }

    /// The body parsed as JSON, or a 400 response saying `Invalid JSON body`.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, HttpResponse> {
        serde_json::from_slice(&self.body)
            .map_err(|_| HttpResponse::error(400, "Invalid JSON body"))
    }
}

/// What a handler answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: String,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A JSON body with this status.
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        HttpResponse {
            status,
            content_type: "application/json".to_owned(),
            headers: Vec::new(),
            body: serde_json::to_vec(value).unwrap_or_default(),
        }
    }

    /// `{"error": message}` with this status (the shape of every API error, BEHAVIOR.md §10.5).
    pub fn error(status: u16, message: &str) -> Self {
        Self::json(status, &serde_json::json!({ "error": message }))
    }

    /// Bytes with a content type, status 200.
    pub fn bytes(content_type: &str, body: Vec<u8>) -> Self {
        HttpResponse {
            status: 200,
            content_type: content_type.to_owned(),
            headers: Vec::new(),
            body,
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// What a route answers: a whole body, or a stream written over time.
pub enum RouteResponse {
    /// A response with its whole body.
    Whole(HttpResponse),
    /// Status 200 with a body the route writes while the client stays connected.
    Stream(StreamResponse),
}

impl std::fmt::Debug for RouteResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RouteResponse::Whole(r) => f.debug_tuple("Whole").field(r).finish(),
            RouteResponse::Stream(s) => f.debug_tuple("Stream").field(s).finish(),
        }
    }
}

impl From<HttpResponse> for RouteResponse {
    fn from(r: HttpResponse) -> Self {
        RouteResponse::Whole(r)
    }
}

/// The body of a streamed response, written on the connection's own thread.
pub type StreamBody = Box<dyn FnOnce(&mut StreamWriter<'_>) + Send>;

/// A status-200 response whose body is produced over time (server-sent events). The server sends
/// the head without a length and with `Connection: close`, then calls `body` on the connection's
/// thread; the response ends when `body` returns, and the connection is closed.
pub struct StreamResponse {
    /// `Content-Type`, e.g. `text/event-stream`.
    pub content_type: String,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Writes the body; must return soon after [`StreamWriter::is_closed`] turns true or a write
    /// fails, so that a departed client frees its thread.
    pub body: StreamBody,
}

impl StreamResponse {
    /// A stream of this content type written by `body`.
    pub fn new(
        content_type: &str,
        body: impl FnOnce(&mut StreamWriter<'_>) + Send + 'static,
    ) -> Self {
        StreamResponse {
            content_type: content_type.to_owned(),
            headers: Vec::new(),
            body: Box::new(body),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

impl std::fmt::Debug for StreamResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamResponse")
            .field("content_type", &self.content_type)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

/// Where a [`StreamResponse`] writes its body: the client's connection.
pub struct StreamWriter<'a> {
    pub(crate) stream: &'a mut std::net::TcpStream,
    pub(crate) stop: &'a std::sync::atomic::AtomicBool,
    pub(crate) failed: bool,
}

impl std::fmt::Debug for StreamWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamWriter")
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl StreamWriter<'_> {
    /// Writes and flushes `bytes`. An error means the client is gone (or stopped reading for the
    /// server's write timeout); the body should return.
    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        if self.failed {
            return Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        }
        let r = self
            .stream
            .write_all(bytes)
            .and_then(|()| self.stream.flush());
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    /// Whether the stream should end: the client closed its side of the connection, a write
    /// failed, or the server is shutting down. Does not block.
    pub fn is_closed(&mut self) -> bool {
        use std::sync::atomic::Ordering;
        if self.failed || self.stop.load(Ordering::SeqCst) {
            return true;
        }
        if self.stream.set_nonblocking(true).is_err() {
            return true;
        }
        let mut probe = [0u8; 1];
        let closed = match self.stream.peek(&mut probe) {
            // End of stream: the client is gone.
            Ok(0) => true,
            // The client sent something more (nothing is expected): still connected.
            Ok(_) => false,
            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
        };
        if self.stream.set_nonblocking(false).is_err() {
            return true;
        }
        closed
    }
}

/// Extra endpoints mounted on the console server. The server authenticates every request first
/// (token, body size), serves its own paths (`/`, `/assets/…`, `/api/console/…`), and offers every
/// other request to each registered `Routes` in order; the first `Some` answers. No match is 404.
/// A route that checks its own credentials says so with [`Routes::self_authenticated`].
///
/// ```
/// use pty_console::{HttpRequest, HttpResponse, Routes};
///
/// struct Hello;
/// impl Routes for Hello {
///     fn handle(&self, req: &HttpRequest) -> Option<HttpResponse> {
///         (req.method == "GET" && req.path == "/api/hello")
///             .then(|| HttpResponse::json(200, &serde_json::json!({"hello": "world"})))
///     }
/// }
/// ```
pub trait Routes: Send + Sync {
    /// Answers the request, or `None` when the path is not one of these routes.
    fn handle(&self, req: &HttpRequest) -> Option<HttpResponse>;

    /// Like [`Routes::handle`], but may answer with a [`StreamResponse`]. The server calls this
    /// one; the default answers with [`Routes::handle`]'s whole body. Override it for routes that
    /// stream (and keep `handle` answering the rest).
    fn respond(&self, req: &HttpRequest) -> Option<RouteResponse> {
        self.handle(req).map(RouteResponse::Whole)
    }

    /// Whether this exact `method` and `path` (no query, compared byte for byte) authenticate
    /// their callers themselves, so the server lets them through without its access token (a
    /// webhook an agent calls with its own per-session secret). Such a request goes to this
    /// `Routes` only, never to the console's own paths or to other routes; its body is bounded as
    /// usual. The default is `false`: everything needs the token.
    fn self_authenticated(&self, method: &str, path: &str) -> bool {
        let _ = (method, path);
        false
    }
}

/// Percent-decodes a query component (`+` is a space).
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits `/path?a=1&b=2` into the path and its decoded parameters.
pub(crate) fn split_url(url: &str) -> (String, Vec<(String, String)>) {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let params = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    (path.to_owned(), params)
}

/// The value of cookie `name` in a `Cookie:` header.
pub(crate) fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_and_decode() {
        let (p, q) = split_url("/ws?session=a%2Db&token=x+y&flag");
        assert_eq!(p, "/ws");
        assert_eq!(
            q,
            vec![
                ("session".into(), "a-b".into()),
                ("token".into(), "x y".into()),
                ("flag".into(), String::new())
            ]
        );
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
    }

    #[test]
    fn cookies_are_found_by_name() {
        let h = "a=1; ao_console_token=secret; b=2";
        assert_eq!(cookie_value(h, "ao_console_token"), Some("secret"));
        assert_eq!(cookie_value(h, "c"), None);
    }
}
