//! A loopback fake GitHub: the REST endpoints `git-workspace-service` calls, the OAuth
//! device-flow endpoints with a scripted sequence of answers, and App installation tokens.
//!
//! One server answers both the API paths (`/repos/…`, `/user`, `/app/…`, `/installation/…`) and
//! the web paths (`/login/device/code`, `/login/oauth/access_token`), so a client configured with
//! `GITHUB_API_URL=<base_url>` uses it for everything.
//!
//! | Path | Behaviour |
//! |---|---|
//! | `GET /repos/{o}/{r}` | `{name, full_name, default_branch}`; 404 for a repo not added with [`FakeGitHub::add_repo`] |
//! | `GET …/branches?per_page&page`, `GET …/branches/{b}`, `DELETE …/git/refs/heads/{b}` | branches added with [`FakeGitHub::add_branch`] |
//! | `POST …/pulls`, `GET …/pulls/{n}`, `POST …/pulls/{n}/requested_reviewers` | pull requests (422 without `title`, `head` or `base`, or for a duplicate head) |
//! | `POST …/issues`, `GET …/issues?state&labels&assignee`, `GET`/`PATCH …/issues/{n}` | issues; the list includes PRs marked with `pull_request` as GitHub does |
//! | `POST …/issues/{n}/labels`, `DELETE …/issues/{n}/labels/{name}`, `POST`/`GET …/issues/{n}/comments` | labels and comments |
//! | `GET /user` | `{login}` of the token's owner |
//! | `POST /login/device/code`, `POST /login/oauth/access_token` | device flow, answers from [`FakeGitHub::script_device_flow`]; `grant_type=refresh_token` issues a fresh token |
//! | `GET /app/installations`, `GET /app/installations/{id}` | installation 42 of account `octo` (need the App JWT) |
//! | `POST /app/installations/{id}/access_tokens`, `GET /installation/repositories`, `DELETE /installation/token` | installation tokens (issued for the App JWT: [`DEFAULT_APP_JWT`], or an RS256 JWT verified with the key given to [`FakeGitHub::set_app_key`]); the repositories are every added repo, paginated |
//!
//! REST calls need `Authorization: Bearer <token>` with a token the server knows
//! ([`FakeGitHub::token`], the App JWT, or one it issued); others get 401. Every request is logged
//! with its credential redacted; [`GitHubRequest::auth`] says which known token it carried
//! (`Bearer <token>`, or `Basic base64(user:<token>)` as git sends an `extraheader`). Any other path,
//! including git's smart-HTTP `/info/refs`, is logged and answered 404, so a test can see which
//! credential git sent to this origin.
//!
//! ```
//! use test_support::github::FakeGitHub;
//!
//! let gh = FakeGitHub::start().unwrap();
//! gh.add_repo("octo", "hello", "main");
//! let mut resp = ureq::post(&format!("{}/repos/octo/hello/pulls", gh.base_url()))
//!     .header("Authorization", &format!("Bearer {}", gh.token()))
//!     .send_json(serde_json::json!({"title": "T", "head": "feature", "base": "main"}))
//!     .unwrap();
//! let pr: serde_json::Value = resp.body_mut().read_json().unwrap();
//! assert_eq!(pr["number"], 1);
//! let log = gh.requests();
//! assert_eq!(log[0].path, "/repos/octo/hello/pulls");
//! assert_eq!(log[0].auth.as_deref(), Some("user"));
//! assert_eq!(log[0].header("authorization"), Some("[redacted]"));
//! ```

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::Read;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::Error;
use crate::server::Loopback;

/// The default token REST calls must carry.
pub const DEFAULT_TOKEN: &str = "ghp_fakeLoopbackToken0123456789abcdef";
/// The default GitHub App JWT accepted by the installation-token endpoint.
pub const DEFAULT_APP_JWT: &str = "fake.app.jwt-0123456789";
/// The login `GET /user` reports.
pub const DEFAULT_LOGIN: &str = "octo-agent";

/// One answer of the device-flow token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceStep {
    /// `{"error": "authorization_pending"}`.
    Pending,
    /// `{"error": "slow_down"}`.
    SlowDown,
    /// An access token (also accepted for REST calls afterwards).
    Success {
        /// The token to hand out.
        token: String,
    },
    /// `{"error": "access_denied"}`.
    Denied,
    /// `{"error": "expired_token"}`.
    Expired,
    /// An HTTP error status with a plain body.
    HttpError(u16),
}

/// One request the server received.
#[derive(Debug, Clone)]
pub struct GitHubRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path without the query.
    pub path: String,
    /// The raw query string (empty if none).
    pub query: String,
    /// Headers, names lower-cased; `authorization` replaced by `[redacted]`.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
    /// Which known token the request carried: `user`, `app`, `installation-<n>`,
    /// `oauth-<n>`; `None` if none or unknown.
    pub auth: Option<String>,
    /// The status answered.
    pub status: u16,
}

impl GitHubRequest {
    /// The first value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Debug, Default)]
struct Repo {
    default_branch: String,
    branches: BTreeSet<String>,
    /// Issues and pull requests share GitHub's number space; PRs carry `pull_request`.
    items: BTreeMap<u64, Value>,
    comments: BTreeMap<u64, Vec<Value>>,
    next_number: u64,
}

#[derive(Debug)]
struct DeviceScript {
    steps: VecDeque<DeviceStep>,
    interval: u64,
    expires_in: u64,
}

#[derive(Debug)]
struct Failure {
    method: String,
    path_suffix: String,
    status: u16,
    message: String,
}

#[derive(Debug)]
struct State {
    tokens: BTreeMap<String, String>,
    repos: BTreeMap<String, Repo>,
    device: DeviceScript,
    failures: Vec<Failure>,
    next_token: u64,
    next_comment: u64,
    app_key: Option<AppKey>,
}

/// A GitHub App whose RS256 JWTs the server verifies.
#[derive(Debug)]
struct AppKey {
    app_id: String,
    key: rsa::pkcs1v15::VerifyingKey<rsa::sha2::Sha256>,
}

struct Shared {
    state: Mutex<State>,
    log: Mutex<Vec<GitHubRequest>>,
    base_url: String,
}

/// A running fake GitHub; stops when dropped.
pub struct FakeGitHub {
    shared: Arc<Shared>,
    server: Loopback,
}

impl std::fmt::Debug for FakeGitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeGitHub")
            .field("addr", &self.server.addr())
            .finish_non_exhaustive()
    }
}

impl FakeGitHub {
    /// Starts a server on `127.0.0.1:0` accepting [`DEFAULT_TOKEN`] and [`DEFAULT_APP_JWT`].
    pub fn start() -> Result<Self, Error> {
        let mut server = Loopback::bind("fake github")?;
        let addr = server.addr();
        let mut tokens = BTreeMap::new();
        tokens.insert(DEFAULT_TOKEN.to_owned(), "user".to_owned());
        tokens.insert(DEFAULT_APP_JWT.to_owned(), "app".to_owned());
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                tokens,
                repos: BTreeMap::new(),
                device: DeviceScript {
                    steps: VecDeque::new(),
                    interval: 5,
                    expires_in: 900,
                },
                failures: Vec::new(),
                next_token: 1,
                next_comment: 1,
                app_key: None,
            }),
            log: Mutex::new(Vec::new()),
            base_url: format!("http://{addr}"),
        });
        let handler_shared = shared.clone();
        server.serve(move |request| handle(request, &handler_shared))?;
        Ok(Self { shared, server })
    }

    /// `http://127.0.0.1:<port>`: the API base URL and the web base URL.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The user token REST calls may carry.
    pub fn token(&self) -> &'static str {
        DEFAULT_TOKEN
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes the server accept App JWTs signed with the private half of `public_key_pem`
    /// (SPKI `BEGIN PUBLIC KEY` or PKCS#1 `BEGIN RSA PUBLIC KEY`) for App `app_id`, verified by
    /// [`verify_app_jwt_with`]'s rules against the real time. Panics on a malformed key (a test
    /// setup error).
    pub fn set_app_key(&self, app_id: &str, public_key_pem: &str) {
        let key = app_key(app_id, public_key_pem).expect("a valid RSA public key PEM");
        self.state().app_key = Some(key);
    }

    /// Accepts another token, reported as `label` in [`GitHubRequest::auth`].
    pub fn add_token(&self, token: &str, label: &str) {
        self.state()
            .tokens
            .insert(token.to_owned(), label.to_owned());
    }

    /// Creates a repository with its default branch.
    pub fn add_repo(&self, owner: &str, repo: &str, default_branch: &str) {
        let mut s = self.state();
        let r = s.repos.entry(format!("{owner}/{repo}")).or_default();
        r.default_branch = default_branch.to_owned();
        r.branches.insert(default_branch.to_owned());
        r.next_number = r.next_number.max(1);
    }

    /// Adds a branch to a repository (created if needed, default branch `main`).
    pub fn add_branch(&self, owner: &str, repo: &str, branch: &str) {
        let mut s = self.state();
        let r = s
            .repos
            .entry(format!("{owner}/{repo}"))
            .or_insert_with(|| Repo {
                default_branch: "main".into(),
                next_number: 1,
                ..Repo::default()
            });
        r.branches.insert(branch.to_owned());
    }

    /// The branches of a repository.
    pub fn branches(&self, owner: &str, repo: &str) -> Vec<String> {
        self.state()
            .repos
            .get(&format!("{owner}/{repo}"))
            .map(|r| r.branches.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The pull requests of a repository, as JSON, by number.
    pub fn pulls(&self, owner: &str, repo: &str) -> Vec<Value> {
        self.items(owner, repo, true)
    }

    /// The issues (not PRs) of a repository, as JSON, by number.
    pub fn issues(&self, owner: &str, repo: &str) -> Vec<Value> {
        self.items(owner, repo, false)
    }

    fn items(&self, owner: &str, repo: &str, pulls: bool) -> Vec<Value> {
        self.state()
            .repos
            .get(&format!("{owner}/{repo}"))
            .map(|r| {
                r.items
                    .values()
                    .filter(|v| v.get("pull_request").is_some() == pulls)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Marks a pull request merged.
    pub fn merge_pull(&self, owner: &str, repo: &str, number: u64) {
        if let Some(v) = self
            .state()
            .repos
            .get_mut(&format!("{owner}/{repo}"))
            .and_then(|r| r.items.get_mut(&number))
        {
            v["merged"] = json!(true);
            v["state"] = json!("closed");
            v["merged_at"] = json!("2026-01-01T00:00:00Z");
        }
    }

    /// Sets the answers of successive device-flow token polls, and the `interval` and
    /// `expires_in` the device-code endpoint reports. With no steps left, polls get `Pending`.
    pub fn script_device_flow(&self, steps: Vec<DeviceStep>, interval: u64, expires_in: u64) {
        let mut s = self.state();
        s.device = DeviceScript {
            steps: steps.into(),
            interval,
            expires_in,
        };
    }

    /// Makes the next request whose method is `method` and whose path ends with `path_suffix`
    /// fail with `status` and GitHub's error body `{"message": message}` (once).
    pub fn fail_next(&self, method: &str, path_suffix: &str, status: u16, message: &str) {
        self.state().failures.push(Failure {
            method: method.to_owned(),
            path_suffix: path_suffix.to_owned(),
            status,
            message: message.to_owned(),
        });
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<GitHubRequest> {
        self.shared
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        self.shared
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

fn handle(mut request: tiny_http::Request, shared: &Shared) {
    let method = request.method().as_str().to_owned();
    let url = request.url().to_owned();
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p.to_owned(), q.to_owned()),
        None => (url.clone(), String::new()),
    };
    let mut headers = Vec::new();
    let mut bearer = None;
    for h in request.headers() {
        let name = h.field.as_str().as_str().to_ascii_lowercase();
        let value = h.value.as_str().to_owned();
        if name == "authorization" {
            bearer = value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("token "))
                .map(str::to_owned)
                .or_else(|| basic_password(&value));
            headers.push((name, "[redacted]".to_owned()));
        } else {
            headers.push((name, value));
        }
    }
    let mut body = String::new();
    let _ = request
        .as_reader()
        .take(8 * 1024 * 1024)
        .read_to_string(&mut body);
    let (status, reply, auth) = {
        let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        let auth = bearer.as_ref().and_then(|t| {
            st.tokens.get(t).cloned().or_else(|| {
                let key = st.app_key.as_ref()?;
                verify_app_jwt(key, t, unix_now()).ok()?;
                Some("app".to_owned())
            })
        });
        let (status, reply) = route(
            &mut st,
            shared,
            &method,
            &path,
            &query,
            &body,
            auth.as_deref(),
            bearer.as_deref(),
        );
        (status, reply, auth)
    };
    shared
        .log
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(GitHubRequest {
            method,
            path,
            query,
            headers,
            body,
            auth,
            status,
        });
    let text = if reply.is_null() {
        String::new()
    } else {
        reply.to_string()
    };
    let resp = tiny_http::Response::from_string(text)
        .with_status_code(status)
        .with_header(
            tiny_http::Header::from_bytes(
                &b"Content-Type"[..],
                &b"application/json; charset=utf-8"[..],
            )
            .expect("static header"),
        );
    let _ = request.respond(resp);
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Checks an App JWT as GitHub does: header `{"alg":"RS256","typ":"JWT"}`, an RS256 signature
/// by the App's key, `iss` = the App id, `iat` not in the future (60 s of drift allowed), `exp`
/// in the future and at most 10 minutes ahead. The error says which check failed.
pub fn verify_app_jwt_with(
    app_id: &str,
    public_key_pem: &str,
    jwt: &str,
    now: u64,
) -> Result<(), String> {
    verify_app_jwt(&app_key(app_id, public_key_pem)?, jwt, now)
}

fn app_key(app_id: &str, public_key_pem: &str) -> Result<AppKey, String> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::pkcs8::DecodePublicKey;
    let pem = public_key_pem.trim();
    let key = rsa::PublicKey::from_public_key_pem(pem)
        .or_else(|_| rsa::PublicKey::from_pkcs1_pem(pem))
        .map_err(|e| format!("not an RSA public key PEM: {e}"))?;
    Ok(AppKey {
        app_id: app_id.to_owned(),
        key: rsa::pkcs1v15::VerifyingKey::new(key),
    })
}

fn verify_app_jwt(key: &AppKey, jwt: &str, now: u64) -> Result<(), String> {
    use rsa::signature::Verifier;
    let parts: Vec<&str> = jwt.split('.').collect();
    let [header, claims, sig] = parts.as_slice() else {
        return Err("not three dot-separated parts".into());
    };
    let header: Value = url64_decode(header)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("header is not base64url JSON")?;
    if header != json!({"alg": "RS256", "typ": "JWT"}) {
        return Err(format!("header {header} is not RS256/JWT"));
    }
    let sig = url64_decode(sig).ok_or("signature is not base64url")?;
    let sig = rsa::pkcs1v15::Signature::try_from(sig.as_slice())
        .map_err(|e| format!("bad signature encoding: {e}"))?;
    let signed = &jwt[..jwt.rfind('.').unwrap_or(0)];
    key.key
        .verify(signed.as_bytes(), &sig)
        .map_err(|_| "signature does not verify with the app's public key".to_owned())?;
    let claims: Value = url64_decode(claims)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("claims are not base64url JSON")?;
    let (Some(iat), Some(exp)) = (claims["iat"].as_u64(), claims["exp"].as_u64()) else {
        return Err(format!("claims {claims} lack numeric iat/exp"));
    };
    let iss = match &claims["iss"] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Err("claims lack iss".into()),
    };
    if iss != key.app_id {
        return Err(format!("iss {iss} is not app {}", key.app_id));
    }
    if iat > now + 60 {
        return Err(format!("iat {iat} is in the future (now {now})"));
    }
    if exp <= now {
        return Err(format!("exp {exp} has passed (now {now})"));
    }
    if exp > now + 600 {
        return Err(format!(
            "exp {exp} is more than 10 minutes ahead (now {now})"
        ));
    }
    Ok(())
}

fn url64_decode(s: &str) -> Option<Vec<u8>> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes() {
        bits = (bits << 6) | A.iter().position(|&a| a == c)? as u32;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    Some(out)
}

/// The password of `Basic base64(user:password)` (how git sends `x-access-token:<token>`).
fn basic_password(value: &str) -> Option<String> {
    let enc = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in enc.trim().bytes().take_while(|&c| c != b'=') {
        bits = (bits << 6) | A.iter().position(|&a| a == c)? as u32;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    let text = String::from_utf8(out).ok()?;
    text.split_once(':').map(|(_, p)| p.to_owned())
}

/// GitHub's pagination of a list request: `(items to skip, page size)` from `page` (1-based,
/// default 1) and `per_page` (default 30).
fn page_window(query: &str) -> (usize, usize) {
    let per: usize = query_param(query, "per_page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let page: usize = query_param(query, "page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    ((page - 1) * per, per)
}

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then_some(v)
    })
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn err(status: u16, message: &str) -> (u16, Value) {
    (
        status,
        json!({"message": message, "documentation_url": "https://docs.github.com/rest"}),
    )
}

#[allow(clippy::too_many_arguments)]
fn route(
    st: &mut State,
    shared: &Shared,
    method: &str,
    path: &str,
    query: &str,
    body: &str,
    auth: Option<&str>,
    bearer: Option<&str>,
) -> (u16, Value) {
    if let Some(i) = st
        .failures
        .iter()
        .position(|f| f.method == method && path.ends_with(&f.path_suffix))
    {
        let f = st.failures.remove(i);
        return err(f.status, &f.message);
    }
    let input: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    // Web endpoints of the device flow need no token.
    match (method, segs.as_slice()) {
        ("POST", ["login", "device", "code"]) => {
            if input["client_id"].as_str().unwrap_or_default().is_empty() {
                return err(400, "client_id required");
            }
            return (
                200,
                json!({
                    "device_code": "fake-device-code-0001",
                    "user_code": "WDJB-MJHT",
                    "verification_uri": format!("{}/login/device", shared.base_url),
                    "expires_in": st.device.expires_in,
                    "interval": st.device.interval,
                }),
            );
        }
        ("POST", ["login", "oauth", "access_token"]) => {
            if input["grant_type"] == "refresh_token" {
                let n = st.next_token;
                st.next_token += 1;
                let token = format!("gho_refreshed_{n:04}_abcdef");
                st.tokens.insert(token.clone(), format!("oauth-{n}"));
                return (
                    200,
                    json!({"access_token": token, "token_type": "bearer", "scope": "repo,read:user", "expires_in": 28800}),
                );
            }
            if input["grant_type"] != "urn:ietf:params:oauth:grant-type:device_code"
                || input["device_code"] != "fake-device-code-0001"
            {
                return (200, json!({"error": "incorrect_device_code"}));
            }
            let step = st.device.steps.pop_front().unwrap_or(DeviceStep::Pending);
            return match step {
                DeviceStep::Pending => (200, json!({"error": "authorization_pending"})),
                DeviceStep::SlowDown => (
                    200,
                    json!({"error": "slow_down", "interval": st.device.interval + 5}),
                ),
                DeviceStep::Denied => (200, json!({"error": "access_denied"})),
                DeviceStep::Expired => (200, json!({"error": "expired_token"})),
                DeviceStep::HttpError(code) => (code, json!({"message": "server error"})),
                DeviceStep::Success { token } => {
                    let n = st.next_token;
                    st.next_token += 1;
                    st.tokens.insert(token.clone(), format!("oauth-{n}"));
                    (
                        200,
                        json!({"access_token": token, "token_type": "bearer", "scope": "repo,read:user"}),
                    )
                }
            };
        }
        _ => {}
    }
    let Some(auth) = auth else {
        return err(401, "Bad credentials");
    };
    match (method, segs.as_slice()) {
        ("GET", ["user"]) => (200, json!({"login": DEFAULT_LOGIN, "id": 1})),
        ("POST", ["app", "installations", id, "access_tokens"]) => {
            if auth != "app" {
                return err(401, "A JSON web token could not be decoded");
            }
            let n = st.next_token;
            st.next_token += 1;
            let token = format!("ghs_installation_{n:04}_abcdef");
            st.tokens.insert(token.clone(), format!("installation-{n}"));
            (
                201,
                json!({"token": token, "expires_at": "2099-01-01T00:00:00Z", "installation_id": id, "permissions": input["permissions"], "repositories": input["repositories"]}),
            )
        }
        ("GET", ["app", "installations"]) if auth == "app" => {
            (200, json!([{"id": 42, "account": {"login": "octo"}}]))
        }
        ("GET", ["app", "installations", id]) if auth == "app" => match id.parse::<u64>() {
            Ok(42) => (200, json!({"id": 42, "account": {"login": "octo"}})),
            _ => err(404, "Not Found"),
        },
        ("GET", ["installation", "repositories"]) => {
            if !auth.starts_with("installation-") {
                return err(403, "not an installation token");
            }
            let (skip, per) = page_window(query);
            let names: Vec<&String> = st.repos.keys().collect();
            let list: Vec<Value> = names
                .iter()
                .skip(skip)
                .take(per)
                .map(|n| json!({"full_name": n}))
                .collect();
            (
                200,
                json!({"total_count": names.len(), "repositories": list}),
            )
        }
        ("DELETE", ["installation", "token"]) => {
            if !auth.starts_with("installation-") {
                return err(403, "not an installation token");
            }
            if let Some(t) = bearer {
                st.tokens.remove(t);
            }
            (204, Value::Null)
        }
        (_, ["repos", owner, repo, rest @ ..]) => {
            let full = format!("{owner}/{repo}");
            let next_comment = &mut st.next_comment;
            let Some(r) = st.repos.get_mut(&full) else {
                return err(404, "Not Found");
            };
            repo_route(
                r,
                next_comment,
                &shared.base_url,
                &full,
                method,
                rest,
                query,
                &input,
            )
        }
        _ => err(404, "Not Found"),
    }
}

#[allow(clippy::too_many_arguments)]
fn repo_route(
    r: &mut Repo,
    next_comment: &mut u64,
    base: &str,
    full: &str,
    method: &str,
    rest: &[&str],
    query: &str,
    input: &Value,
) -> (u16, Value) {
    let html = |kind: &str, n: u64| format!("{base}/{full}/{kind}/{n}");
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let label_objs = |names: &[String]| -> Value {
        json!(names.iter().map(|n| json!({"name": n})).collect::<Vec<_>>())
    };
    match (method, rest) {
        ("GET", []) => (
            200,
            json!({"name": full.split('/').nth(1), "full_name": full, "default_branch": r.default_branch}),
        ),
        ("GET", ["branches"]) => {
            let (skip, per) = page_window(query);
            let list: Vec<Value> = r
                .branches
                .iter()
                .skip(skip)
                .take(per)
                .map(|b| json!({"name": b}))
                .collect();
            (200, json!(list))
        }
        ("GET", ["branches", b @ ..]) => {
            let name = decode(&b.join("/"));
            if r.branches.contains(&name) {
                (200, json!({"name": name}))
            } else {
                err(404, "Branch not found")
            }
        }
        ("DELETE", ["git", "refs", "heads", b @ ..]) => {
            let name = decode(&b.join("/"));
            if r.branches.remove(&name) {
                (204, Value::Null)
            } else {
                err(422, "Reference does not exist")
            }
        }
        ("POST", ["pulls"]) => {
            let (Some(title), Some(head), Some(base_ref)) = (
                input["title"].as_str(),
                input["head"].as_str(),
                input["base"].as_str(),
            ) else {
                return err(422, "Validation Failed");
            };
            if r.items.values().any(|v| {
                v.get("pull_request").is_some() && v["head"]["ref"] == head && v["state"] == "open"
            }) {
                return (
                    422,
                    json!({"message": "Validation Failed", "errors": [{"message": format!("A pull request already exists for {head}.")}]}),
                );
            }
            let n = r.next_number;
            r.next_number += 1;
            let v = json!({
                "number": n, "html_url": html("pull", n), "state": "open", "title": title,
                "body": input["body"], "draft": input["draft"].as_bool().unwrap_or(false),
                "head": {"ref": head}, "base": {"ref": base_ref}, "merged": false,
                "labels": [], "requested_reviewers": [], "pull_request": {"url": html("pull", n)},
            });
            r.items.insert(n, v.clone());
            (201, v)
        }
        ("GET", ["pulls", n]) => match n.parse::<u64>().ok().and_then(|n| r.items.get(&n)) {
            Some(v) if v.get("pull_request").is_some() => (200, v.clone()),
            _ => err(404, "Not Found"),
        },
        ("POST", ["pulls", n, "requested_reviewers"]) => {
            let Some(v) = n.parse::<u64>().ok().and_then(|n| r.items.get_mut(&n)) else {
                return err(404, "Not Found");
            };
            let reviewers = strings(&input["reviewers"]);
            v["requested_reviewers"] = json!(
                reviewers
                    .iter()
                    .map(|l| json!({"login": l}))
                    .collect::<Vec<_>>()
            );
            (201, v.clone())
        }
        ("POST", ["issues"]) => {
            let Some(title) = input["title"].as_str().filter(|t| !t.is_empty()) else {
                return err(422, "Validation Failed");
            };
            let n = r.next_number;
            r.next_number += 1;
            let labels = strings(&input["labels"]);
            let assignees = strings(&input["assignees"]);
            let v = json!({
                "number": n, "html_url": html("issues", n), "state": "open", "title": title,
                "body": input["body"], "labels": label_objs(&labels),
                "assignees": assignees.iter().map(|a| json!({"login": a})).collect::<Vec<_>>(),
                "milestone": input["milestone"],
            });
            r.items.insert(n, v.clone());
            (201, v)
        }
        ("GET", ["issues"]) => {
            let state = query_param(query, "state").unwrap_or("open");
            let want_labels: Vec<String> = query_param(query, "labels")
                .map(|l| {
                    decode(l)
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            let assignee = query_param(query, "assignee").map(decode);
            let (skip, per) = page_window(query);
            let list: Vec<Value> = r
                .items
                .values()
                .filter(|v| state == "all" || v["state"] == state)
                .filter(|v| {
                    let have: Vec<&str> = v["labels"]
                        .as_array()
                        .map(|a| a.iter().filter_map(|l| l["name"].as_str()).collect())
                        .unwrap_or_default();
                    want_labels.iter().all(|w| have.contains(&w.as_str()))
                })
                .filter(|v| {
                    assignee.as_ref().is_none_or(|a| {
                        v["assignees"]
                            .as_array()
                            .is_some_and(|x| x.iter().any(|u| u["login"] == a.as_str()))
                    })
                })
                .skip(skip)
                .take(per)
                .cloned()
                .collect();
            (200, json!(list))
        }
        ("GET", ["issues", n]) => match n.parse::<u64>().ok().and_then(|n| r.items.get(&n)) {
            Some(v) => (200, v.clone()),
            None => err(404, "Not Found"),
        },
        ("PATCH", ["issues", n]) => {
            let Some(v) = n.parse::<u64>().ok().and_then(|n| r.items.get_mut(&n)) else {
                return err(404, "Not Found");
            };
            for k in ["title", "body", "state"] {
                if let Some(x) = input.get(k) {
                    v[k] = x.clone();
                }
            }
            if let Some(l) = input.get("labels") {
                v["labels"] = label_objs(&strings(l));
            }
            if let Some(a) = input.get("assignees") {
                v["assignees"] = json!(
                    strings(a)
                        .iter()
                        .map(|a| json!({"login": a}))
                        .collect::<Vec<_>>()
                );
            }
            (200, v.clone())
        }
        ("POST", ["issues", n, "labels"]) => {
            let Some(v) = n.parse::<u64>().ok().and_then(|n| r.items.get_mut(&n)) else {
                return err(404, "Not Found");
            };
            let mut have: Vec<String> = v["labels"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|l| l["name"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            for l in strings(&input["labels"]) {
                if !have.contains(&l) {
                    have.push(l);
                }
            }
            v["labels"] = label_objs(&have);
            (200, v["labels"].clone())
        }
        ("DELETE", ["issues", n, "labels", name]) => {
            let Some(v) = n.parse::<u64>().ok().and_then(|n| r.items.get_mut(&n)) else {
                return err(404, "Not Found");
            };
            let name = decode(name);
            let have: Vec<String> = v["labels"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|l| l["name"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            if !have.contains(&name) {
                return err(404, "Label does not exist");
            }
            let kept: Vec<String> = have.into_iter().filter(|l| *l != name).collect();
            v["labels"] = label_objs(&kept);
            (200, v["labels"].clone())
        }
        ("POST", ["issues", n, "comments"]) => {
            let Some(n) = n.parse::<u64>().ok().filter(|n| r.items.contains_key(n)) else {
                return err(404, "Not Found");
            };
            let id = *next_comment;
            *next_comment += 1;
            let c = json!({"id": id, "body": input["body"], "user": {"login": DEFAULT_LOGIN}});
            r.comments.entry(n).or_default().push(c.clone());
            (201, c)
        }
        ("GET", ["issues", n, "comments"]) => {
            match n.parse::<u64>().ok().filter(|n| r.items.contains_key(n)) {
                Some(n) => (200, json!(r.comments.get(&n).cloned().unwrap_or_default())),
                None => err(404, "Not Found"),
            }
        }
        _ => err(404, "Not Found"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unauthorised_requests_get_401_and_device_steps_run_in_order() {
        let gh = FakeGitHub::start().unwrap();
        let r = ureq::get(&format!("{}/user", gh.base_url())).call();
        assert!(matches!(r, Err(ureq::Error::StatusCode(401))));
        gh.script_device_flow(
            vec![
                DeviceStep::SlowDown,
                DeviceStep::Success {
                    token: "gho_x123456".into(),
                },
            ],
            1,
            60,
        );
        let poll = || -> Value {
            ureq::post(&format!("{}/login/oauth/access_token", gh.base_url()))
                .send_json(json!({"client_id": "c", "device_code": "fake-device-code-0001", "grant_type": "urn:ietf:params:oauth:grant-type:device_code"}))
                .unwrap()
                .body_mut()
                .read_json()
                .unwrap()
        };
        assert_eq!(poll()["error"], "slow_down");
        assert_eq!(poll()["access_token"], "gho_x123456");
        assert_eq!(poll()["error"], "authorization_pending");
        let mut me = ureq::get(&format!("{}/user", gh.base_url()))
            .header("Authorization", "Bearer gho_x123456")
            .call()
            .unwrap();
        assert_eq!(
            me.body_mut().read_json::<Value>().unwrap()["login"],
            DEFAULT_LOGIN
        );
        assert_eq!(
            gh.requests().last().unwrap().auth.as_deref(),
            Some("oauth-1")
        );
    }
}
