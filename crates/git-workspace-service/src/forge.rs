//! GitHub REST over ureq: pull requests, labels, reviewers, issues, branches, the repository's
//! default branch, App installation tokens. The base URL is configurable (GitHub.com, Enterprise
//! `https://<host>/api/v3`, a loopback test server); GitHub's error bodies are surfaced, redacted.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::redact::{Redactor, Secret};
use crate::{Error, Result};

/// Environment variable naming the API base URL.
pub const GITHUB_API_URL_ENV: &str = "GITHUB_API_URL";
/// The public API.
pub const DEFAULT_API_URL: &str = "https://api.github.com";

/// Where GitHub is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubConfig {
    /// REST base URL without a trailing slash.
    pub api_url: String,
    /// Web base URL (device flow endpoints), without a trailing slash.
    pub web_url: String,
    /// The git host whose repositories belong to this forge (`github.com`).
    pub host: String,
    /// Timeout of one whole request.
    pub timeout: Duration,
}

impl Default for GitHubConfig {
    fn default() -> Self {
        Self::with_api_url(DEFAULT_API_URL)
    }
}

impl GitHubConfig {
    /// From `GITHUB_API_URL`, else the public API.
    pub fn from_env() -> Self {
        match std::env::var(GITHUB_API_URL_ENV) {
            Ok(u) if !u.trim().is_empty() => Self::with_api_url(u.trim()),
            _ => Self::default(),
        }
    }

    /// For an API base URL; the web URL and git host follow GitHub's conventions
    /// (`api.github.com` → `github.com`, `https://h/api/v3` → `https://h`); any other base (a
    /// test server) serves both and keeps `github.com` as its git host.
    pub fn with_api_url(api_url: &str) -> Self {
        let api = api_url.trim_end_matches('/').to_owned();
        let (web, host) = if api.eq_ignore_ascii_case(DEFAULT_API_URL) {
            ("https://github.com".to_owned(), "github.com".to_owned())
        } else if let Some(web) = api.strip_suffix("/api/v3") {
            let host = web
                .split_once("://")
                .map_or(web, |(_, h)| h)
                .to_ascii_lowercase();
            (web.to_owned(), host)
        } else {
            (api.clone(), "github.com".to_owned())
        };
        Self {
            api_url: api,
            web_url: web,
            host,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Builds a ureq agent: status codes are handled by us, a whole request is bounded, and a
/// loopback server is never reached through a proxy.
pub(crate) fn agent(base: &str, timeout: Duration) -> ureq::Agent {
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| base.starts_with(p));
    let mut b = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout));
    if loopback {
        b = b.proxy(None);
    }
    b.build().into()
}

/// A pull request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequest {
    /// Its number.
    pub number: u64,
    /// Web URL.
    pub url: String,
    /// `open`, `closed` or `merged`.
    pub state: String,
    /// Head branch.
    pub head: String,
    /// Base branch.
    pub base: String,
    /// Draft flag.
    pub draft: bool,
}

/// What to open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewPullRequest {
    /// Title (one argv-free JSON string; newlines are kept as text).
    pub title: String,
    /// Body.
    pub body: String,
    /// Head branch.
    pub head: String,
    /// Base branch.
    pub base: String,
    /// Open as draft.
    pub draft: bool,
}

/// An issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    /// Its number.
    pub number: u64,
    /// Title.
    pub title: String,
    /// Body.
    pub body: Option<String>,
    /// `open` or `closed`.
    pub state: String,
    /// Label names.
    pub labels: Vec<String>,
    /// Assignee logins.
    pub assignees: Vec<String>,
    /// Web URL.
    pub url: String,
}

/// A new issue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewIssue {
    /// Title.
    pub title: String,
    /// Body.
    pub body: Option<String>,
    /// Labels.
    pub labels: Vec<String>,
    /// Assignees.
    pub assignees: Vec<String>,
    /// Milestone number.
    pub milestone: Option<u64>,
}

/// Fields to change on an issue; `None` leaves a field alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IssueUpdate {
    /// Title.
    pub title: Option<String>,
    /// Body.
    pub body: Option<String>,
    /// `open` or `closed`.
    pub state: Option<String>,
    /// Replaces all labels.
    pub labels: Option<Vec<String>>,
    /// Replaces all assignees.
    pub assignees: Option<Vec<String>>,
}

/// Filters for listing issues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueQuery {
    /// `open`, `closed` or `all`.
    pub state: String,
    /// Labels, all required.
    pub labels: Vec<String>,
    /// Assignee login.
    pub assignee: Option<String>,
    /// ISO 8601 time.
    pub since: Option<String>,
}

impl Default for IssueQuery {
    fn default() -> Self {
        Self {
            state: "open".into(),
            labels: Vec::new(),
            assignee: None,
            since: None,
        }
    }
}

/// A comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    /// Its id.
    pub id: u64,
    /// Text.
    pub body: String,
    /// Author login.
    pub author: Option<String>,
}

/// An installation access token.
#[derive(Debug, Clone)]
pub struct InstallationToken {
    /// The token.
    pub token: Secret,
    /// Expiry as GitHub reports it (ISO 8601).
    pub expires_at: Option<String>,
}

/// A GitHub REST client for one token.
pub struct GitHub {
    config: GitHubConfig,
    token: Option<Secret>,
    agent: ureq::Agent,
    redactor: Redactor,
}

impl std::fmt::Debug for GitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHub")
            .field("api_url", &self.config.api_url)
            .finish_non_exhaustive()
    }
}

/// Percent-encodes one path segment (branch names contain `/`, labels contain spaces). A
/// segment of dots only is encoded too, so that `..` cannot climb to another endpoint
/// (`DELETE …/git/refs/heads/..` would name the repository).
pub(crate) fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let dots = !s.is_empty() && s.bytes().all(|b| b == b'.');
    for b in s.bytes() {
        let plain =
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~') || b == b'.' && !dots;
        if plain {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl GitHub {
    /// A client; `token` is registered with `redactor` so it cannot leak through an error.
    pub fn new(config: GitHubConfig, token: Option<Secret>, redactor: Redactor) -> Self {
        if let Some(t) = &token {
            redactor.add_token(t.expose());
        }
        Self {
            agent: agent(&config.api_url, config.timeout),
            config,
            token,
            redactor,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &GitHubConfig {
        &self.config
    }

    fn repo_path(owner: &str, repo: &str) -> String {
        format!("/repos/{}/{}", encode_segment(owner), encode_segment(repo))
    }

    /// One request; returns the parsed JSON body (`Null` for 204).
    fn call(&self, method: &'static str, path: &str, body: Option<&Value>) -> Result<Value> {
        let url = format!("{}{path}", self.config.api_url);
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .header("User-Agent", "agent-orchestrator");
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {}", t.expose()));
        }
        let http_err = |message: String| Error::Http {
            method,
            url: url.clone(),
            message: self.redactor.redact(&message),
        };
        let result = match body {
            Some(b) => {
                let bytes = serde_json::to_vec(b).map_err(|e| http_err(e.to_string()))?;
                let req = req
                    .header("Content-Type", "application/json")
                    .body(bytes)
                    .map_err(|e| http_err(e.to_string()))?;
                self.agent.run(req)
            }
            None => {
                let req = req.body(()).map_err(|e| http_err(e.to_string()))?;
                self.agent.run(req)
            }
        };
        let mut resp = result.map_err(|e| http_err(e.to_string()))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(32 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| http_err(e.to_string()))?;
        let json: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text.clone()))
        };
        if !(200..300).contains(&status) {
            return Err(Error::Forge {
                method,
                url,
                status,
                message: error_message(&json, &self.redactor),
            });
        }
        Ok(json)
    }

    /// `POST /repos/{o}/{r}/pulls`.
    pub fn create_pull(&self, owner: &str, repo: &str, pr: &NewPullRequest) -> Result<PullRequest> {
        let v = self.call(
            "POST",
            &format!("{}/pulls", Self::repo_path(owner, repo)),
            Some(&json!({"title": pr.title, "body": pr.body, "head": pr.head, "base": pr.base, "draft": pr.draft})),
        )?;
        Ok(pull_from(&v))
    }

    /// `GET /repos/{o}/{r}/pulls/{n}`; state `merged` when merged.
    pub fn get_pull(&self, owner: &str, repo: &str, number: u64) -> Result<PullRequest> {
        let v = self.call(
            "GET",
            &format!("{}/pulls/{number}", Self::repo_path(owner, repo)),
            None,
        )?;
        Ok(pull_from(&v))
    }

    /// `POST /repos/{o}/{r}/pulls/{n}/requested_reviewers`.
    pub fn request_reviewers(
        &self,
        owner: &str,
        repo: &str,
        number: u64,
        reviewers: &[String],
    ) -> Result<()> {
        self.call(
            "POST",
            &format!(
                "{}/pulls/{number}/requested_reviewers",
                Self::repo_path(owner, repo)
            ),
            Some(&json!({ "reviewers": reviewers })),
        )?;
        Ok(())
    }

    /// `POST /repos/{o}/{r}/issues/{n}/labels` (issues and PRs alike).
    pub fn add_labels(
        &self,
        owner: &str,
        repo: &str,
        number: u64,
        labels: &[String],
    ) -> Result<()> {
        self.call(
            "POST",
            &format!("{}/issues/{number}/labels", Self::repo_path(owner, repo)),
            Some(&json!({ "labels": labels })),
        )?;
        Ok(())
    }

    /// `DELETE /repos/{o}/{r}/issues/{n}/labels/{name}`.
    pub fn remove_label(&self, owner: &str, repo: &str, number: u64, label: &str) -> Result<()> {
        self.call(
            "DELETE",
            &format!(
                "{}/issues/{number}/labels/{}",
                Self::repo_path(owner, repo),
                encode_segment(label)
            ),
            None,
        )?;
        Ok(())
    }

    /// `POST /repos/{o}/{r}/issues`.
    pub fn create_issue(&self, owner: &str, repo: &str, issue: &NewIssue) -> Result<Issue> {
        let mut body =
            json!({"title": issue.title, "labels": issue.labels, "assignees": issue.assignees});
        if let Some(b) = &issue.body {
            body["body"] = json!(b);
        }
        if let Some(m) = issue.milestone {
            body["milestone"] = json!(m);
        }
        let v = self.call(
            "POST",
            &format!("{}/issues", Self::repo_path(owner, repo)),
            Some(&body),
        )?;
        Ok(issue_from(&v))
    }

    /// `GET /repos/{o}/{r}/issues/{n}`.
    pub fn get_issue(&self, owner: &str, repo: &str, number: u64) -> Result<Issue> {
        let v = self.call(
            "GET",
            &format!("{}/issues/{number}", Self::repo_path(owner, repo)),
            None,
        )?;
        Ok(issue_from(&v))
    }

    /// `GET /repos/{o}/{r}/issues?…&per_page=100`, all pages, pull requests filtered out.
    pub fn list_issues(&self, owner: &str, repo: &str, q: &IssueQuery) -> Result<Vec<Issue>> {
        let mut query = format!("state={}", encode_segment(&q.state));
        if !q.labels.is_empty() {
            query.push_str(&format!("&labels={}", encode_segment(&q.labels.join(","))));
        }
        if let Some(a) = &q.assignee {
            query.push_str(&format!("&assignee={}", encode_segment(a)));
        }
        if let Some(s) = &q.since {
            query.push_str(&format!("&since={}", encode_segment(s)));
        }
        let mut out = Vec::new();
        for page in 1.. {
            let v = self.call(
                "GET",
                &format!(
                    "{}/issues?{query}&per_page=100&page={page}",
                    Self::repo_path(owner, repo)
                ),
                None,
            )?;
            let items = v.as_array().cloned().unwrap_or_default();
            let n = items.len();
            out.extend(
                items
                    .iter()
                    .filter(|i| i.get("pull_request").is_none())
                    .map(issue_from),
            );
            if n < 100 {
                break;
            }
        }
        Ok(out)
    }

    /// `PATCH /repos/{o}/{r}/issues/{n}`.
    pub fn update_issue(
        &self,
        owner: &str,
        repo: &str,
        number: u64,
        u: &IssueUpdate,
    ) -> Result<Issue> {
        let mut body = serde_json::Map::new();
        if let Some(t) = &u.title {
            body.insert("title".into(), json!(t));
        }
        if let Some(b) = &u.body {
            body.insert("body".into(), json!(b));
        }
        if let Some(s) = &u.state {
            body.insert("state".into(), json!(s));
        }
        if let Some(l) = &u.labels {
            body.insert("labels".into(), json!(l));
        }
        if let Some(a) = &u.assignees {
            body.insert("assignees".into(), json!(a));
        }
        let v = self.call(
            "PATCH",
            &format!("{}/issues/{number}", Self::repo_path(owner, repo)),
            Some(&Value::Object(body)),
        )?;
        Ok(issue_from(&v))
    }

    /// Closes an issue.
    pub fn close_issue(&self, owner: &str, repo: &str, number: u64) -> Result<Issue> {
        let u = IssueUpdate {
            state: Some("closed".into()),
            ..IssueUpdate::default()
        };
        self.update_issue(owner, repo, number, &u)
    }

    /// Reopens an issue.
    pub fn reopen_issue(&self, owner: &str, repo: &str, number: u64) -> Result<Issue> {
        let u = IssueUpdate {
            state: Some("open".into()),
            ..IssueUpdate::default()
        };
        self.update_issue(owner, repo, number, &u)
    }

    /// `POST /repos/{o}/{r}/issues/{n}/comments`.
    pub fn comment(&self, owner: &str, repo: &str, number: u64, body: &str) -> Result<Comment> {
        let v = self.call(
            "POST",
            &format!("{}/issues/{number}/comments", Self::repo_path(owner, repo)),
            Some(&json!({ "body": body })),
        )?;
        Ok(comment_from(&v))
    }

    /// `GET /repos/{o}/{r}/issues/{n}/comments?per_page=100`.
    pub fn list_comments(&self, owner: &str, repo: &str, number: u64) -> Result<Vec<Comment>> {
        let v = self.call(
            "GET",
            &format!(
                "{}/issues/{number}/comments?per_page=100",
                Self::repo_path(owner, repo)
            ),
            None,
        )?;
        Ok(v.as_array()
            .map(|a| a.iter().map(comment_from).collect())
            .unwrap_or_default())
    }

    /// The repository's default branch (`GET /repos/{o}/{r}`).
    pub fn default_branch(&self, owner: &str, repo: &str) -> Result<String> {
        let v = self.call("GET", &Self::repo_path(owner, repo), None)?;
        Ok(v["default_branch"].as_str().unwrap_or("main").to_owned())
    }

    /// Whether a branch exists (`GET …/branches/{b}`; 404 → false).
    pub fn branch_exists(&self, owner: &str, repo: &str, branch: &str) -> Result<bool> {
        match self.call(
            "GET",
            &format!(
                "{}/branches/{}",
                Self::repo_path(owner, repo),
                encode_segment(branch)
            ),
            None,
        ) {
            Ok(_) => Ok(true),
            Err(Error::Forge { status: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// All branch names (`GET …/branches?per_page=100&page=N`, every page).
    pub fn list_branches(&self, owner: &str, repo: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for page in 1.. {
            let v = self.call(
                "GET",
                &format!(
                    "{}/branches?per_page=100&page={page}",
                    Self::repo_path(owner, repo)
                ),
                None,
            )?;
            let items = v.as_array().cloned().unwrap_or_default();
            out.extend(
                items
                    .iter()
                    .filter_map(|b| b["name"].as_str().map(str::to_owned)),
            );
            if items.len() < 100 {
                break;
            }
        }
        Ok(out)
    }

    /// `DELETE …/git/refs/heads/{b}`.
    pub fn delete_branch(&self, owner: &str, repo: &str, branch: &str) -> Result<()> {
        // The ref path keeps its slashes; each part is encoded.
        let refpath: Vec<String> = branch.split('/').map(encode_segment).collect();
        self.call(
            "DELETE",
            &format!(
                "{}/git/refs/heads/{}",
                Self::repo_path(owner, repo),
                refpath.join("/")
            ),
            None,
        )?;
        Ok(())
    }

    /// `POST /app/installations/{id}/access_tokens`; this client's token must be the App's JWT.
    pub fn create_installation_token(
        &self,
        installation_id: u64,
        repositories: &[String],
        permissions: &Value,
    ) -> Result<InstallationToken> {
        let mut body = json!({ "permissions": permissions });
        if !repositories.is_empty() {
            body["repositories"] = json!(repositories);
        }
        let v = self.call(
            "POST",
            &format!("/app/installations/{installation_id}/access_tokens"),
            Some(&body),
        )?;
        let token = v["token"].as_str().ok_or_else(|| Error::Forge {
            method: "POST",
            url: format!(
                "{}/app/installations/{installation_id}/access_tokens",
                self.config.api_url
            ),
            status: 200,
            message: "response has no token".into(),
        })?;
        self.redactor.add_token(token);
        Ok(InstallationToken {
            token: Secret::new(token),
            expires_at: v["expires_at"].as_str().map(str::to_owned),
        })
    }

    /// `GET /app/installations`: installation ids and account logins (this client's token must
    /// be the App's JWT).
    pub fn list_installations(&self) -> Result<Vec<(u64, String)>> {
        let v = self.call("GET", "/app/installations?per_page=100", None)?;
        Ok(v.as_array()
            .map(|a| {
                a.iter()
                    .map(|i| {
                        (
                            i["id"].as_u64().unwrap_or(0),
                            i["account"]["login"]
                                .as_str()
                                .unwrap_or_default()
                                .to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// `GET /app/installations/{id}`: the installation's account login.
    pub fn get_installation(&self, installation_id: u64) -> Result<String> {
        let v = self.call(
            "GET",
            &format!("/app/installations/{installation_id}"),
            None,
        )?;
        Ok(v["account"]["login"]
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// `GET /installation/repositories?per_page=100&page=N`, every page: the `owner/repo` names
    /// this (installation) token can reach.
    pub fn installation_repositories(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for page in 1.. {
            let v = self.call(
                "GET",
                &format!("/installation/repositories?per_page=100&page={page}"),
                None,
            )?;
            let items = v["repositories"].as_array().cloned().unwrap_or_default();
            out.extend(
                items
                    .iter()
                    .filter_map(|r| r["full_name"].as_str().map(str::to_owned)),
            );
            let total = v["total_count"].as_u64().unwrap_or(0) as usize;
            if items.len() < 100 || out.len() >= total {
                break;
            }
        }
        Ok(out)
    }

    /// `DELETE /installation/token`: revokes this client's (installation) token.
    pub fn delete_installation_token(&self) -> Result<()> {
        self.call("DELETE", "/installation/token", None)?;
        Ok(())
    }

    /// `GET /user`: the login of the token's owner.
    pub fn current_user(&self) -> Result<String> {
        let v = self.call("GET", "/user", None)?;
        Ok(v["login"].as_str().unwrap_or_default().to_owned())
    }
}

/// GitHub's `message` plus any `errors[].message`/`code`, or the raw body, redacted. A raw body
/// is cut to 500 characters after redaction: cut first, a secret across the cut kept its head.
fn error_message(body: &Value, redactor: &Redactor) -> String {
    let mut msg = match body.get("message").and_then(Value::as_str) {
        Some(m) => m.to_owned(),
        None => match body {
            Value::String(s) => redactor.redact(s).chars().take(500).collect(),
            Value::Null => "empty body".into(),
            other => redactor
                .redact(&other.to_string())
                .chars()
                .take(500)
                .collect(),
        },
    };
    if let Some(errs) = body.get("errors").and_then(Value::as_array) {
        let parts: Vec<String> = errs
            .iter()
            .map(|e| {
                e.get("message")
                    .or_else(|| e.get("code"))
                    .and_then(Value::as_str)
                    .map_or_else(|| e.to_string(), str::to_owned)
            })
            .collect();
        if !parts.is_empty() {
            msg.push_str(&format!(" ({})", parts.join("; ")));
        }
    }
    redactor.redact(&msg)
}

fn pull_from(v: &Value) -> PullRequest {
    let merged = v["merged"].as_bool().unwrap_or(false) || v["merged_at"].is_string();
    PullRequest {
        number: v["number"].as_u64().unwrap_or(0),
        url: v["html_url"].as_str().unwrap_or_default().to_owned(),
        state: if merged {
            "merged".into()
        } else {
            v["state"].as_str().unwrap_or("open").to_owned()
        },
        head: v["head"]["ref"].as_str().unwrap_or_default().to_owned(),
        base: v["base"]["ref"].as_str().unwrap_or_default().to_owned(),
        draft: v["draft"].as_bool().unwrap_or(false),
    }
}

fn issue_from(v: &Value) -> Issue {
    let names = |key: &str, field: &str| -> Vec<String> {
        v[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x[field].as_str().or_else(|| x.as_str()).map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    Issue {
        number: v["number"].as_u64().unwrap_or(0),
        title: v["title"].as_str().unwrap_or_default().to_owned(),
        body: v["body"].as_str().map(str::to_owned),
        state: v["state"].as_str().unwrap_or("open").to_owned(),
        labels: names("labels", "name"),
        assignees: names("assignees", "login"),
        url: v["html_url"].as_str().unwrap_or_default().to_owned(),
    }
}

fn comment_from(v: &Value) -> Comment {
    Comment {
        id: v["id"].as_u64().unwrap_or(0),
        body: v["body"].as_str().unwrap_or_default().to_owned(),
        author: v["user"]["login"].as_str().map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_from_api_url() {
        let c = GitHubConfig::with_api_url("https://api.github.com/");
        assert_eq!(
            (c.web_url.as_str(), c.host.as_str()),
            ("https://github.com", "github.com")
        );
        let c = GitHubConfig::with_api_url("https://ghe.corp/api/v3");
        assert_eq!(
            (c.web_url.as_str(), c.host.as_str()),
            ("https://ghe.corp", "ghe.corp")
        );
        let c = GitHubConfig::with_api_url("http://127.0.0.1:9/");
        assert_eq!(c.web_url, "http://127.0.0.1:9");
        assert_eq!(encode_segment("a b/c"), "a%20b%2Fc");
        assert_eq!(encode_segment("v1.2"), "v1.2");
        assert_eq!(encode_segment(".."), "%2E%2E");
        assert_eq!(encode_segment("."), "%2E");
    }

    #[test]
    fn error_bodies_are_summarised() {
        let v = json!({"message": "Validation Failed", "errors": [{"message": "A pull request already exists"}, {"code": "missing"}]});
        assert_eq!(
            error_message(&v, &Redactor::new()),
            "Validation Failed (A pull request already exists; missing)"
        );
    }

    /// A secret across the 500-character cut of a raw body is redacted whole, not cut first.
    #[test]
    fn a_long_body_is_redacted_before_it_is_cut() {
        let r = Redactor::new();
        let secret = "ghp_0123456789abcdefghijABCDEFGHIJ";
        r.add(secret);
        let body = Value::String(format!("{}{secret} tail", "x".repeat(490)));
        let msg = error_message(&body, &r);
        assert!(!msg.contains("ghp_0123"), "{msg}");
        assert!(msg.chars().count() <= 500);
    }
}
