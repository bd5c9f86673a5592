//! The OAuth 2.0 device authorization grant (RFC 8628) against GitHub: ask for a user code,
//! show it, poll at the server's interval (`slow_down` adds 5 s each time), stop at expiry,
//! denial or timeout. Time comes from a [`Clock`], so tests run the whole flow without sleeping.

use std::time::Duration;

use serde_json::{Value, json};

use crate::clock::Clock;
use crate::forge::{GitHub, GitHubConfig, agent};
use crate::redact::{Redactor, Secret};
use crate::token_store::OAuthToken;
use crate::{Error, Result};

/// The grant type of a device-code token request.
pub const DEVICE_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Access levels, as GitHub App permissions name them.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// No access.
    #[default]
    None,
    /// Read.
    Read,
    /// Read and write.
    Write,
}

/// What a credential must allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Permissions {
    /// Repository contents (clone, push).
    pub contents: Level,
    /// Pull requests.
    pub pull_requests: Level,
}

impl Permissions {
    /// Clone, push and open pull requests.
    pub const WRITE: Self = Self {
        contents: Level::Write,
        pull_requests: Level::Write,
    };
    /// Clone only.
    pub const READ: Self = Self {
        contents: Level::Read,
        pull_requests: Level::None,
    };

    /// `contents:write`-style names.
    pub fn names(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, l) in [
            ("contents", self.contents),
            ("pull_requests", self.pull_requests),
        ] {
            match l {
                Level::None => {}
                Level::Read => out.push(format!("{name}:read")),
                Level::Write => out.push(format!("{name}:write")),
            }
        }
        out
    }

    /// OAuth scopes: contents write → `repo`; contents read → `public_repo`; pull requests
    /// without `repo` → `public_repo`; always `read:user`.
    pub fn oauth_scopes(&self) -> Vec<String> {
        let mut s: Vec<String> = Vec::new();
        match self.contents {
            Level::Write => s.push("repo".into()),
            Level::Read => s.push("public_repo".into()),
            Level::None => {}
        }
        if self.pull_requests != Level::None
            && !s.iter().any(|x| x == "repo")
            && !s.iter().any(|x| x == "public_repo")
        {
            s.push("public_repo".into());
        }
        s.push("read:user".into());
        s
    }
}

/// An OAuth App for the device flow.
#[derive(Debug, Clone)]
pub struct OAuthApp {
    /// Web base (`https://github.com` or the Enterprise host), no trailing slash.
    pub web_url: String,
    /// The OAuth App's client id.
    pub client_id: String,
    /// Its secret, if the app needs one.
    pub client_secret: Option<Secret>,
    /// The provider name stored with tokens.
    pub provider: String,
    /// Give up after this long (default 900 s).
    pub timeout: Duration,
}

impl OAuthApp {
    /// A GitHub OAuth App at `web_url`.
    pub fn github(web_url: &str, client_id: &str) -> Self {
        Self {
            web_url: web_url.trim_end_matches('/').to_owned(),
            client_id: client_id.to_owned(),
            client_secret: None,
            provider: "github".into(),
            timeout: Duration::from_secs(900),
        }
    }
}

/// What the user must see to authorise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePrompt {
    /// The provider.
    pub provider: String,
    /// Where to go.
    pub verification_uri: String,
    /// What to type there.
    pub user_code: String,
    /// Seconds the code stays valid.
    pub expires_in: u64,
    /// The permissions asked for.
    pub requested_permissions: Vec<String>,
}

/// Callbacks of one device flow.
pub trait DeviceFlowObserver: Send + Sync {
    /// Show the code to the user.
    fn on_prompt(&self, prompt: &DevicePrompt);
    /// Still waiting; seconds until the code expires.
    fn on_pending(&self, _seconds_remaining: u64) {}
    /// Finished: success, the provider, and the error message if it failed.
    fn on_complete(&self, _success: bool, _provider: &str, _error: Option<&str>) {}
    /// Finished, with the GitHub username when it is known. The default forwards to
    /// [`DeviceFlowObserver::on_complete`], so observers written before usernames keep working;
    /// implement this one to see the username.
    fn on_completed(&self, completion: &DeviceCompletion) {
        self.on_complete(
            completion.success,
            &completion.provider,
            completion.error.as_deref(),
        );
    }
}

/// How a device flow ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCompletion {
    /// A token was obtained.
    pub success: bool,
    /// The provider.
    pub provider: String,
    /// The login of the token's owner (`GET /user` with the new token); `None` when the flow
    /// failed, no API was given ([`run_device_flow`]), or `GET /user` failed (the token still
    /// counts: the username is a courtesy for the prompt, not a condition of success).
    pub username: Option<String>,
    /// The error message, when it failed.
    pub error: Option<String>,
}

fn post(app: &OAuthApp, path: &str, body: &Value, redactor: &Redactor) -> Result<(u16, Value)> {
    let url = format!("{}{path}", app.web_url);
    let http_err = |m: String| Error::Http {
        method: "POST",
        url: url.clone(),
        message: redactor.redact(&m),
    };
    let mut resp = agent(&app.web_url, Duration::from_secs(30))
        .post(&url)
        .header("Accept", "application/json")
        .header("User-Agent", "agent-orchestrator")
        .send_json(body)
        .map_err(|e| http_err(e.to_string()))?;
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| http_err(e.to_string()))?;
    let v = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok((status, v))
}

fn token_from(
    v: &Value,
    app: &OAuthApp,
    now_ms: u64,
    old_refresh: Option<&Secret>,
    redactor: &Redactor,
) -> Option<OAuthToken> {
    let access = v["access_token"].as_str().filter(|s| !s.is_empty())?;
    redactor.add_token(access);
    let refresh = v["refresh_token"]
        .as_str()
        .map(Secret::new)
        .or_else(|| old_refresh.cloned());
    if let Some(r) = &refresh {
        redactor.add(r.expose());
    }
    Some(OAuthToken {
        access_token: Secret::new(access),
        token_type: v["token_type"].as_str().unwrap_or("bearer").to_owned(),
        scopes: v["scope"]
            .as_str()
            .unwrap_or_default()
            .split([',', ' '])
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        expires_at: v["expires_in"].as_u64().map(|s| now_ms + s * 1000),
        refresh_token: refresh,
        provider: app.provider.clone(),
        created_at: now_ms,
    })
}

/// Runs the device flow to a token or an error. Every outcome is also reported through
/// [`DeviceFlowObserver::on_completed`], without a username (no API is known here; see
/// [`run_device_flow_with_user`]).
pub fn run_device_flow(
    app: &OAuthApp,
    permissions: Permissions,
    clock: &dyn Clock,
    observer: &dyn DeviceFlowObserver,
    redactor: &Redactor,
) -> Result<OAuthToken> {
    run_flow(app, permissions, clock, observer, redactor, None)
}

/// Like [`run_device_flow`], and on success asks `api` for `GET /user` with the new token so the
/// completion reports the GitHub username.
pub fn run_device_flow_with_user(
    app: &OAuthApp,
    permissions: Permissions,
    clock: &dyn Clock,
    observer: &dyn DeviceFlowObserver,
    redactor: &Redactor,
    api: &GitHubConfig,
) -> Result<OAuthToken> {
    run_flow(app, permissions, clock, observer, redactor, Some(api))
}

fn run_flow(
    app: &OAuthApp,
    permissions: Permissions,
    clock: &dyn Clock,
    observer: &dyn DeviceFlowObserver,
    redactor: &Redactor,
    api: Option<&GitHubConfig>,
) -> Result<OAuthToken> {
    let result = device_flow_inner(app, permissions, clock, observer, redactor);
    let completion = match &result {
        Ok(token) => DeviceCompletion {
            success: true,
            provider: app.provider.clone(),
            username: api.and_then(|api| {
                GitHub::new(
                    api.clone(),
                    Some(token.access_token.clone()),
                    redactor.clone(),
                )
                .current_user()
                .ok()
            }),
            error: None,
        },
        Err(e) => DeviceCompletion {
            success: false,
            provider: app.provider.clone(),
            username: None,
            error: Some(e.to_string()),
        },
    };
    observer.on_completed(&completion);
    result
}

fn device_flow_inner(
    app: &OAuthApp,
    permissions: Permissions,
    clock: &dyn Clock,
    observer: &dyn DeviceFlowObserver,
    redactor: &Redactor,
) -> Result<OAuthToken> {
    let fail = |m: &str| Error::DeviceFlow(m.to_owned());
    let scope = permissions.oauth_scopes().join(" ");
    let (status, v) = post(
        app,
        "/login/device/code",
        &json!({"client_id": app.client_id, "scope": scope}),
        redactor,
    )?;
    if !(200..300).contains(&status) {
        return Err(fail(&format!(
            "device code request returned {status}: {}",
            redactor.redact(&v.to_string())
        )));
    }
    let (Some(device_code), Some(user_code), Some(uri)) = (
        v["device_code"].as_str(),
        v["user_code"].as_str(),
        v["verification_uri"].as_str(),
    ) else {
        return Err(fail(
            "device code response lacks device_code, user_code or verification_uri",
        ));
    };
    redactor.add(device_code);
    let expires_in = v["expires_in"].as_u64().unwrap_or(900);
    let mut interval = v["interval"].as_u64().unwrap_or(5);
    observer.on_prompt(&DevicePrompt {
        provider: app.provider.clone(),
        verification_uri: uri.to_owned(),
        user_code: user_code.to_owned(),
        expires_in,
        requested_permissions: permissions.names(),
    });
    let start = clock.now_ms();
    let expiry = start + expires_in * 1000;
    let timeout = start + app.timeout.as_millis() as u64;
    let mut body = json!({"client_id": app.client_id, "device_code": device_code, "grant_type": DEVICE_GRANT_TYPE});
    if let Some(s) = &app.client_secret {
        body["client_secret"] = json!(s.expose());
    }
    loop {
        clock.sleep(Duration::from_secs(interval));
        let now = clock.now_ms();
        if now >= expiry {
            return Err(fail("device code expired"));
        }
        if now >= timeout {
            return Err(fail("oauth flow timed out"));
        }
        let (status, v) = post(app, "/login/oauth/access_token", &body, redactor)?;
        match v["error"].as_str() {
            Some("authorization_pending") => {
                observer.on_pending((expiry - now) / 1000);
                continue;
            }
            Some("slow_down") => {
                interval += 5;
                observer.on_pending((expiry - now) / 1000);
                continue;
            }
            Some("expired_token") => return Err(fail("device code expired. please try again")),
            Some("access_denied") => return Err(fail("user denied authorization")),
            Some(other) => {
                let desc = v["error_description"].as_str().unwrap_or(other);
                return Err(fail(&redactor.redact(desc)));
            }
            None => {}
        }
        if !(200..300).contains(&status) {
            return Err(fail(&format!("token request returned {status}")));
        }
        return token_from(&v, app, now, None, redactor)
            .ok_or_else(|| fail("token response has no access_token"));
    }
}

/// Exchanges a refresh token; keeps the old refresh token if none comes back.
pub fn refresh_token(
    app: &OAuthApp,
    token: &OAuthToken,
    clock: &dyn Clock,
    redactor: &Redactor,
) -> Result<OAuthToken> {
    let Some(refresh) = &token.refresh_token else {
        return Err(Error::DeviceFlow("token has no refresh token".into()));
    };
    let mut body = json!({"client_id": app.client_id, "grant_type": "refresh_token", "refresh_token": refresh.expose()});
    if let Some(s) = &app.client_secret {
        body["client_secret"] = json!(s.expose());
    }
    let (status, v) = post(app, "/login/oauth/access_token", &body, redactor)?;
    if !(200..300).contains(&status) || v.get("error").is_some() {
        return Err(Error::DeviceFlow(format!(
            "refresh returned {status}: {}",
            redactor.redact(v["error"].as_str().unwrap_or("no token"))
        )));
    }
    let mut t = token_from(&v, app, clock.now_ms(), Some(refresh), redactor)
        .ok_or_else(|| Error::DeviceFlow("refresh response has no access_token".into()))?;
    if t.scopes.is_empty() {
        t.scopes = token.scopes.clone();
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_follow_permissions() {
        let table: &[(Permissions, &[&str])] = &[
            (Permissions::WRITE, &["repo", "read:user"]),
            (Permissions::READ, &["public_repo", "read:user"]),
            (
                Permissions {
                    contents: Level::None,
                    pull_requests: Level::Write,
                },
                &["public_repo", "read:user"],
            ),
            (Permissions::default(), &["read:user"]),
        ];
        for (p, want) in table {
            assert_eq!(p.oauth_scopes(), *want);
        }
        assert_eq!(
            Permissions::WRITE.names(),
            ["contents:write", "pull_requests:write"]
        );
    }
}
