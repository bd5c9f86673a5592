//! The console server: HTTP for the page, its assets and the JSON API (our own one-request-per-
//! connection threads, see `http_conn.rs`), and WebSocket (tungstenite) for live terminals, each on
//! its own threads and its own port of the same address.
//!
//! Every request needs the access token: `Authorization: Bearer <token>`, or the `HttpOnly`,
//! `SameSite=Strict` cookie the server sets when the page is first opened with `/?token=<token>`
//! (it then redirects to `/`, so the token leaves the address bar). A WebSocket may also carry the
//! token as its `token` query parameter or as an offered `Sec-WebSocket-Protocol`, and is refused
//! when its `Origin` is not this server's page. The one exception: an exact method and path a
//! [`Routes`] declares self-authenticated ([`Routes::self_authenticated`]) reaches that route
//! without the token, and the route checks its caller itself.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::json;

use crate::bridge::{Console, Control};
use crate::http::{HttpRequest, HttpResponse, RouteResponse, Routes, cookie_value, split_url};
use crate::http_conn::{RawRequest, header};
use crate::launcher::SpawnRequest;
use crate::{AccessToken, Error, Result, assets};

/// Name of the cookie that carries the token after the first page load.
pub(crate) const COOKIE: &str = "ao_console_token";

/// How the server listens.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address of the HTTP server (default `127.0.0.1:0`, a free port).
    pub bind: SocketAddr,
    /// Port of the WebSocket server on the same IP address (0 = a free port).
    pub ws_port: u16,
    /// The access token; `None` makes a random one.
    pub token: Option<AccessToken>,
    /// Allow binding an address other than loopback (the caller should warn).
    pub allow_remote: bool,
    /// Most WebSocket clients at once; more are refused.
    pub max_ws_clients: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            ws_port: 0,
            token: None,
            allow_remote: false,
            max_ws_clients: 2048,
        }
    }
}

/// State shared by the server's threads.
pub(crate) struct Shared {
    pub(crate) console: Arc<Console>,
    pub(crate) token: AccessToken,
    pub(crate) routes: Vec<Arc<dyn Routes>>,
    pub(crate) http_addr: SocketAddr,
    pub(crate) ws_addr: SocketAddr,
    pub(crate) stop: AtomicBool,
    pub(crate) ws_clients: AtomicUsize,
    pub(crate) http_conns: AtomicUsize,
    /// Streamed responses open now (bounded by `http_conn::MAX_STREAMS`).
    pub(crate) streams: AtomicUsize,
    pub(crate) max_ws_clients: usize,
}

/// A running console server. Dropping it (or [`ConsoleServer::shutdown`]) stops its threads.
pub struct ConsoleServer {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for ConsoleServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleServer")
            .field("http_addr", &self.shared.http_addr)
            .field("ws_addr", &self.shared.ws_addr)
            .finish_non_exhaustive()
    }
}

impl ConsoleServer {
    /// Binds both listeners and starts the threads. `routes` are offered every authenticated
    /// request the console itself does not answer (see [`Routes`]).
    pub fn start(
        console: Arc<Console>,
        config: ServerConfig,
        routes: Vec<Arc<dyn Routes>>,
    ) -> Result<Self> {
        if !config.bind.ip().is_loopback() && !config.allow_remote {
            return Err(Error::RemoteBindRefused(config.bind));
        }
        let token = match config.token {
            Some(t) => t,
            None => AccessToken::generate()?,
        };
        let http_listener = TcpListener::bind(config.bind).map_err(|e| {
            Error::io(
                format!("binding the console http server to {}", config.bind),
                e,
            )
        })?;
        let http_addr = http_listener
            .local_addr()
            .map_err(|e| Error::io("reading the http server address", e))?;
        let ws_bind = SocketAddr::new(config.bind.ip(), config.ws_port);
        let ws_listener = TcpListener::bind(ws_bind).map_err(|e| {
            Error::io(
                format!("binding the console websocket server to {ws_bind}"),
                e,
            )
        })?;
        let ws_addr = ws_listener
            .local_addr()
            .map_err(|e| Error::io("reading the websocket server address", e))?;
        let shared = Arc::new(Shared {
            console,
            token,
            routes,
            http_addr,
            ws_addr,
            stop: AtomicBool::new(false),
            ws_clients: AtomicUsize::new(0),
            http_conns: AtomicUsize::new(0),
            streams: AtomicUsize::new(0),
            max_ws_clients: config.max_ws_clients,
        });
        let mut threads = Vec::new();
        let http_shared = shared.clone();
        let t = std::thread::Builder::new()
            .name("console-http-accept".to_owned())
            .spawn(move || crate::http_conn::accept_loop(&http_listener, &http_shared))
            .map_err(|e| Error::io("starting the http accept thread", e))?;
        threads.push(t);
        let ws_shared = shared.clone();
        let t = std::thread::Builder::new()
            .name("console-ws-accept".to_owned())
            .spawn(move || crate::ws::accept_loop(&ws_listener, &ws_shared))
            .map_err(|e| Error::io("starting the websocket accept thread", e))?;
        threads.push(t);
        Ok(ConsoleServer { shared, threads })
    }

    /// Where the HTTP server listens.
    pub fn http_addr(&self) -> SocketAddr {
        self.shared.http_addr
    }

    /// Where the WebSocket server listens.
    pub fn ws_addr(&self) -> SocketAddr {
        self.shared.ws_addr
    }

    /// The access token.
    pub fn token(&self) -> &AccessToken {
        &self.shared.token
    }

    /// Whether it listens on an address other than loopback.
    pub fn is_remote(&self) -> bool {
        !self.shared.http_addr.ip().is_loopback()
    }

    /// The dashboard's address with the token, to open once in a browser (print it to the person
    /// who started the server, never to a log).
    pub fn dashboard_url(&self) -> String {
        format!(
            "http://{}/?token={}",
            self.shared.http_addr,
            self.shared.token.expose()
        )
    }

    /// The console behind the server.
    pub fn console(&self) -> &Arc<Console> {
        &self.shared.console
    }

    /// Stops accepting, ends the WebSocket clients and joins the threads.
    pub fn shutdown(mut self) {
        self.stop_threads();
    }

    fn stop_threads(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accepts; the loops see the flag and end.
        for addr in [self.shared.http_addr, self.shared.ws_addr] {
            let _ = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1));
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for ConsoleServer {
    fn drop(&mut self) {
        self.stop_threads();
    }
}

/// Authenticates and answers one request.
pub(crate) fn handle(req: RawRequest, shared: &Shared) -> RouteResponse {
    let RawRequest {
        method,
        url,
        mut headers,
        body,
    } = req;
    let (path, mut query) = split_url(&url);

    // The first page load carries the token in the URL: trade it for a cookie and drop it from
    // the address bar.
    if method == "GET"
        && path == "/"
        && let Some(t) = query
            .iter()
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.clone())
    {
        if !shared.token.matches(&t) {
            return unauthorized_page().into();
        }
        let mut r = HttpResponse::bytes("text/plain; charset=utf-8", b"see /".to_vec())
            .with_header("Location", "/")
            .with_header(
                "Set-Cookie",
                &format!("{COOKIE}={t}; HttpOnly; SameSite=Strict; Path=/"),
            );
        r.status = 303;
        return r.into();
    }
    // A route that checks its own credentials (an agent's hook with its session's secret) is
    // reached without the console token, and only that route sees the request.
    let own_auth: Vec<&Arc<dyn Routes>> = shared
        .routes
        .iter()
        .filter(|r| r.self_authenticated(&method, &path))
        .collect();
    let auth = authorized(&headers, shared);
    let console_token = auth != Auth::None;
    if !console_token && own_auth.is_empty() {
        return if method == "GET" && path == "/" {
            unauthorized_page()
        } else {
            HttpResponse::error(401, "missing or wrong access token")
        }
        .into();
    }
    // The browser sends the cookie with requests other pages make too (a page on another port of
    // 127.0.0.1 is the same site), so a request that can change something and carries only the
    // cookie must come from this server's own page: browsers send Origin on every such request.
    // API clients use the bearer token and are held to it alone.
    if auth == Auth::Cookie
        && !matches!(method.as_str(), "GET" | "HEAD")
        && !header(&headers, "origin").is_some_and(|o| own_origin(o, shared))
    {
        return HttpResponse::error(
            403,
            "cookie-authenticated request from another page's origin",
        )
        .into();
    }
    // Credentials stop here: handlers (and the routes of other crates) never see them.
    headers.retain(|(k, _)| k != "authorization" && k != "cookie");
    query.retain(|(k, _)| k != "token");
    let request = HttpRequest {
        method,
        path,
        query,
        headers,
        body,
    };
    if !console_token {
        return own_auth
            .iter()
            .find_map(|r| r.respond(&request))
            .unwrap_or_else(|| HttpResponse::error(404, "Not found").into());
    }
    route(&request, shared)
}

/// How a request proved it holds the console token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    None,
    Bearer,
    /// The cookie alone (what a browser page has).
    Cookie,
}

/// A bearer token, else the console cookie.
fn authorized(headers: &[(String, String)], shared: &Shared) -> Auth {
    let bearer = header(headers, "authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if bearer.is_some_and(|t| shared.token.matches(t)) {
        return Auth::Bearer;
    }
    let cookie = headers
        .iter()
        .filter(|(k, _)| k == "cookie")
        .find_map(|(_, v)| cookie_value(v, COOKIE));
    if cookie.is_some_and(|t| shared.token.matches(t)) {
        Auth::Cookie
    } else {
        Auth::None
    }
}

/// Whether `origin` (a browser's `Origin` header) is a page of this server:
/// `http://<host>:<HTTP port>` where the host is one this server answers as. Bound to loopback:
/// `127.0.0.1`, `localhost`, `[::1]` or the bound address. Bound to one other address: that
/// address. Bound to all addresses (`--allow-remote` with 0.0.0.0 or ::): any host, the port
/// still ours (the token guards such a server).
pub(crate) fn own_origin(origin: &str, shared: &Shared) -> bool {
    let addr = shared.http_addr;
    let Some((host, port)) = origin
        .strip_prefix("http://")
        .and_then(|hp| hp.rsplit_once(':'))
    else {
        return false;
    };
    // A DNS name or IPv4 address, or a bracketed IPv6 address: nothing else (this host may go
    // into a response header).
    let name = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    let v6 = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .is_some_and(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit() || b == b':'));
    if port != addr.port().to_string() || !(name || v6) {
        return false;
    }
    let ip = addr.ip();
    ip.is_unspecified()
        || host == url_host(ip)
        || (ip.is_loopback() && matches!(host, "127.0.0.1" | "localhost" | "[::1]"))
}

/// `ip` as the host part of a URL (an IPv6 address in brackets).
fn url_host(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

fn unauthorized_page() -> HttpResponse {
    let mut r = HttpResponse::bytes(
        "text/html; charset=utf-8",
        b"<!doctype html><title>agent-orchestrator</title><p>Open the address printed by \
          <code>agent-orchestrator serve</code> (it carries the access token).</p>"
            .to_vec(),
    );
    r.status = 401;
    r
}

/// The bytes of a response, with the security headers every answer carries and
/// `Connection: close`.
pub(crate) fn render(resp: HttpResponse, shared: &Shared, host: &str) -> Vec<u8> {
    let mut bytes = render_head(
        resp.status,
        &resp.content_type,
        &resp.headers,
        Some(resp.body.len()),
        shared,
        host,
    );
    bytes.extend_from_slice(&resp.body);
    bytes
}

/// The head of a response; without `length` the body ends when the connection closes.
pub(crate) fn render_head(
    status: u16,
    content_type: &str,
    headers: &[(String, String)],
    length: Option<usize>,
    shared: &Shared,
    host: &str,
) -> Vec<u8> {
    // The page's own host (the dashboard opens its WebSocket on it), when it is a host this
    // server answers as; else the bound address: the Host header is the client's to choose.
    let ws_host = match host.rsplit_once(':') {
        Some((h, _)) if own_origin(&format!("http://{host}"), shared) => h.to_owned(),
        _ => url_host(shared.http_addr.ip()),
    };
    let csp = format!(
        "default-src 'self'; connect-src 'self' ws://{ws_host}:{}; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        shared.ws_addr.port()
    );
    let length = length
        .map(|n| format!("Content-Length: {n}\r\n"))
        .unwrap_or_default();
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\n{length}Connection: close\r\n\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\
         Referrer-Policy: no-referrer\r\nContent-Security-Policy: {csp}\r\n",
        crate::http_conn::reason(status),
    );
    for (k, v) in headers {
        // A handler's header must not split the response.
        if k.bytes().all(|b| b.is_ascii_graphic() && b != b':')
            && !v.bytes().any(|b| b == b'\r' || b == b'\n')
        {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    out.push_str("\r\n");
    out.into_bytes()
}

fn route(req: &HttpRequest, shared: &Shared) -> RouteResponse {
    if req.method == "GET"
        && let Some((content_type, bytes)) = assets::find(&req.path)
    {
        return HttpResponse::bytes(content_type, bytes.to_vec()).into();
    }
    let seg = req.segments();
    if seg.starts_with(&["api", "console"]) {
        return console_api(req, &seg[2..], shared).into();
    }
    for r in &shared.routes {
        if let Some(resp) = r.respond(req) {
            return resp;
        }
    }
    HttpResponse::error(404, "Not found").into()
}

fn console_api(req: &HttpRequest, seg: &[&str], shared: &Shared) -> HttpResponse {
    let console = &shared.console;
    let result = match (req.method.as_str(), seg) {
        ("GET", ["config"]) => Ok(HttpResponse::json(
            200,
            &json!({
                "wsPort": shared.ws_addr.port(),
                "agents": console.agents(),
                "defaultWorkdir": console.default_workdir(),
                "version": env!("CARGO_PKG_VERSION"),
            }),
        )),
        ("GET", ["sessions"]) => {
            let list: Vec<_> = console
                .sessions()
                .into_iter()
                .map(|(s, since)| json!({ "session": s, "statusSince": since }))
                .collect();
            Ok(HttpResponse::json(200, &json!(list)))
        }
        ("GET", ["sessions", id]) => console
            .snapshot(id)
            .map(|s| HttpResponse::json(200, &s.to_json())),
        ("POST", ["sessions"]) => match req.json::<SpawnRequest>() {
            Ok(spawn) => console
                .spawn(&spawn)
                .map(|s| HttpResponse::json(201, &json!({ "session": s }))),
            Err(resp) => return resp,
        },
        ("POST", ["sessions", id, "control"]) => match req.json::<Control>() {
            Ok(c) => console
                .control(id, c)
                .map(|()| HttpResponse::json(200, &json!({ "success": true }))),
            Err(resp) => return resp,
        },
        (_, ["config"] | ["sessions"] | ["sessions", _] | ["sessions", _, "control"]) => {
            return HttpResponse::error(405, "Method not allowed");
        }
        _ => return HttpResponse::error(404, "Not found"),
    };
    result.unwrap_or_else(|e| error_response(&e))
}

/// The status and `{error}` body for an error.
pub(crate) fn error_response(e: &Error) -> HttpResponse {
    use pty_manager::Error as M;
    let status = match e {
        Error::Unauthorized => 401,
        Error::ForeignOrigin { .. } => 403,
        Error::BadRequest(_) | Error::UnknownAgent(_) | Error::InvalidToken => 400,
        Error::StalePrompt(_) => 409,
        Error::RuleNotFound(_) | Error::Manager(M::SessionNotFound(_)) => 404,
        Error::Manager(
            M::UnknownKey(_)
            | M::InvalidId(_)
            | M::InvalidSize { .. }
            | M::WorkdirNotFound(_)
            | M::InvalidRule { .. }
            | M::InvalidRegion(_),
        ) => 400,
        Error::Manager(M::SessionExists(_) | M::SessionNotRunning(_) | M::NoDetection(_)) => 409,
        _ => 500,
    };
    HttpResponse::error(status, &e.to_string())
}
