//! Credentials for a repository, first source that yields wins: a user-given token (or SSH),
//! the cached OAuth token (refreshed when due), a GitHub App installation token, the device
//! flow, or nothing. Grants have a TTL and can be revoked; tokens are registered with the
//! redactor the moment they are known.

use crate::app_jwt::GitHubAppKey;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::device_flow::{self, DeviceFlowObserver, OAuthApp, Permissions};
use crate::events::{Event, EventBus, EventKind};
use crate::forge::{GitHub, GitHubConfig};
use crate::git::GitAuth;
use crate::redact::{Redactor, Secret};
use crate::token_store::TokenStore;
use crate::url::{Provider, RepoUrl, Transport};
use crate::{Error, Result};

/// Longest (and default) grant lifetime.
pub const MAX_TTL: Duration = Duration::from_secs(3600);
/// A cached token is treated as expired this long before its expiry.
const EXPIRY_MARGIN_MS: u64 = 5 * 60 * 1000;
/// A cached token is refreshed early this long before its expiry.
const REFRESH_MARGIN_MS: u64 = 10 * 60 * 1000;

/// Where a credential came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// A GitHub App installation token.
    GithubApp,
    /// An OAuth token (given, cached or from the device flow).
    Oauth,
    /// A personal access token.
    Pat,
    /// The user's own SSH setup (no token).
    SshKey,
}

impl CredentialKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GithubApp => "github_app",
            Self::Oauth => "oauth",
            Self::Pat => "pat",
            Self::SshKey => "ssh_key",
        }
    }
}

/// A credential the caller brings.
#[derive(Debug, Clone)]
pub enum UserCredential {
    /// A personal access token.
    Pat(Secret),
    /// An OAuth token.
    Oauth(Secret),
    /// Use the user's SSH setup.
    Ssh,
}

/// Who a grant is for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantedTo {
    /// The workspace.
    pub workspace_id: Option<String>,
    /// The execution.
    pub execution_id: Option<String>,
    /// The task.
    pub task_id: Option<String>,
    /// The agent session.
    pub agent_id: Option<String>,
}

/// A credential handed out (without its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Grant id.
    pub id: String,
    /// Source.
    pub kind: CredentialKind,
    /// The repository.
    pub repo: String,
    /// The forge.
    pub provider: Provider,
    /// Who holds it.
    pub granted_to: GrantedTo,
    /// What it allows (`contents:write` …).
    pub permissions: Vec<String>,
    /// Ms since epoch.
    pub created_at: u64,
    /// Ms since epoch.
    pub expires_at: u64,
    /// Ms since epoch, once revoked.
    pub revoked_at: Option<u64>,
}

/// What is asked for.
#[derive(Debug, Clone)]
pub struct CredentialRequest {
    /// The repository.
    pub repo: RepoUrl,
    /// A credential the caller brings (priority 1).
    pub user: Option<UserCredential>,
    /// Needed access.
    pub permissions: Permissions,
    /// Requested lifetime (capped at one hour).
    pub ttl: Option<Duration>,
    /// Who it is for.
    pub granted_to: GrantedTo,
    /// Go without a credential when none is found (public repositories, local remotes).
    pub optional: bool,
}

/// A GitHub App installation: a JWT the caller signed, and the installation id.
///
/// Give a JWT valid for the session (GitHub allows ≤ 10 min). To have this crate sign a fresh
/// JWT for every token request from the App's id and private key, use
/// [`CredentialService::with_app_key`] instead.
#[derive(Debug, Clone)]
pub struct GitHubAppConfig {
    /// The installation.
    pub installation_id: u64,
    /// The App's JWT.
    pub jwt: Secret,
}

/// How App installation tokens are asked for.
enum AppAuth {
    /// A JWT signed by the caller.
    Jwt(GitHubAppConfig),
    /// A JWT signed here, fresh for each request.
    Key {
        installation_id: u64,
        key: Box<GitHubAppKey>,
    },
}

/// A credential found: its kind, token (none for SSH) and the token's own expiry.
type Found = (CredentialKind, Option<Secret>, Option<u64>);

struct Held {
    grant: Grant,
    token: Option<Secret>,
}

/// Hands out and tracks credentials.
pub struct CredentialService {
    forge: GitHubConfig,
    store: Box<dyn TokenStore>,
    app: Option<AppAuth>,
    oauth: Option<(OAuthApp, Arc<dyn DeviceFlowObserver>)>,
    clock: Arc<dyn Clock>,
    redactor: Redactor,
    events: EventBus,
    grants: Mutex<BTreeMap<String, Held>>,
}

impl std::fmt::Debug for CredentialService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialService").finish_non_exhaustive()
    }
}

/// A random id, UUID v4 shaped.
pub(crate) fn new_id() -> String {
    let mut b = [0u8; 16];
    // getrandom failing means the OS has no entropy source; a time-based fallback keeps ids
    // unique within the process, which is all the registry needs.
    if getrandom::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        b = t.to_le_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

impl CredentialService {
    /// A service for `forge`, caching OAuth tokens in `store`.
    pub fn new(
        forge: GitHubConfig,
        store: Box<dyn TokenStore>,
        clock: Arc<dyn Clock>,
        redactor: Redactor,
        events: EventBus,
    ) -> Self {
        Self {
            forge,
            store,
            app: None,
            oauth: None,
            clock,
            redactor,
            events,
            grants: Mutex::new(BTreeMap::new()),
        }
    }

    /// Enables GitHub App installation tokens (priority 3).
    pub fn with_app(mut self, app: GitHubAppConfig) -> Self {
        self.redactor.add(app.jwt.expose());
        self.app = Some(AppAuth::Jwt(app));
        self
    }

    /// Enables GitHub App installation tokens (priority 3), signing an RS256 App JWT with `key`
    /// for each token request (`iat` now − 60 s, `exp` now + 9 min by the service's clock).
    pub fn with_app_key(mut self, installation_id: u64, key: GitHubAppKey) -> Self {
        self.app = Some(AppAuth::Key {
            installation_id,
            key: Box::new(key),
        });
        self
    }

    /// Enables the OAuth device flow (priority 4) and refreshing cached tokens.
    pub fn with_oauth(mut self, app: OAuthApp, observer: Arc<dyn DeviceFlowObserver>) -> Self {
        self.oauth = Some((app, observer));
        self
    }

    /// Finds a credential for `req`. `Ok(None)`: nothing is needed or found and the request is
    /// optional (or the repository is reached over SSH or locally).
    pub fn request(&self, req: CredentialRequest) -> Result<Option<Grant>> {
        let now = self.clock.now_ms();
        let ttl = req.ttl.unwrap_or(MAX_TTL).min(MAX_TTL);
        let github = req.repo.provider(&self.forge.host) == Provider::Github;
        let found: Option<Found> = match &req.user {
            Some(UserCredential::Pat(t)) => Some((CredentialKind::Pat, Some(t.clone()), None)),
            Some(UserCredential::Oauth(t)) => Some((CredentialKind::Oauth, Some(t.clone()), None)),
            Some(UserCredential::Ssh) => Some((CredentialKind::SshKey, None, None)),
            None if matches!(req.repo.transport, Transport::Local | Transport::Ssh) => None,
            None if github => self.find_for_github(&req, now)?,
            None => None,
        };
        let Some((kind, token, token_expiry)) = found else {
            if req.optional || matches!(req.repo.transport, Transport::Local | Transport::Ssh) {
                return Ok(None);
            }
            let mut msg = req.repo.url.clone();
            if self.oauth.is_some() {
                msg.push_str(". oauth device flow failed or was cancelled");
            }
            return Err(Error::NoCredentials(msg));
        };
        if let Some(t) = &token {
            self.redactor.add_token(t.expose());
        }
        let mut expires_at = now + ttl.as_millis() as u64;
        if let Some(e) = token_expiry {
            expires_at = expires_at.min(e);
        }
        let grant = Grant {
            id: new_id(),
            kind,
            repo: req.repo.url.clone(),
            provider: req.repo.provider(&self.forge.host),
            granted_to: req.granted_to.clone(),
            permissions: req.permissions.names(),
            created_at: now,
            expires_at,
            revoked_at: None,
        };
        self.grants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                grant.id.clone(),
                Held {
                    grant: grant.clone(),
                    token,
                },
            );
        self.emit(EventKind::CredentialGranted, &grant);
        Ok(Some(grant))
    }

    fn find_for_github(&self, req: &CredentialRequest, now: u64) -> Result<Option<Found>> {
        // (2) The cached OAuth token, refreshed when close to expiry.
        if let Some(cached) = self.store.get("github")? {
            let due = cached
                .expires_at
                .is_some_and(|e| now + REFRESH_MARGIN_MS > e);
            let expired = cached
                .expires_at
                .is_some_and(|e| now + EXPIRY_MARGIN_MS > e);
            let mut usable = (!expired).then(|| cached.clone());
            if due
                && let Some((app, _)) = &self.oauth
                && cached.refresh_token.is_some()
            {
                match device_flow::refresh_token(app, &cached, self.clock.as_ref(), &self.redactor)
                {
                    Ok(fresh) => {
                        self.store.save(&fresh)?;
                        usable = Some(fresh);
                    }
                    Err(e) => self.events.log(&format!("oauth token refresh failed: {e}")),
                }
            }
            if let Some(t) = usable {
                self.redactor.add_token(t.access_token.expose());
                return Ok(Some((
                    CredentialKind::Oauth,
                    Some(t.access_token),
                    t.expires_at,
                )));
            }
        }
        // (3) A GitHub App installation token.
        if let Some(app) = &self.app {
            let (installation_id, jwt) = match app {
                AppAuth::Jwt(c) => (c.installation_id, c.jwt.clone()),
                AppAuth::Key {
                    installation_id,
                    key,
                } => {
                    let jwt = key.sign_jwt(self.clock.now_ms() / 1000);
                    self.redactor.add(jwt.expose());
                    (*installation_id, jwt)
                }
            };
            let write = req.permissions.contents == device_flow::Level::Write;
            let perms = if write {
                serde_json::json!({"contents": "write", "pull_requests": "write", "metadata": "read"})
            } else {
                serde_json::json!({"contents": "read", "metadata": "read"})
            };
            let repos: Vec<String> = req
                .repo
                .owner_repo()
                .map(|(_, r)| vec![r])
                .unwrap_or_default();
            let gh = GitHub::new(self.forge.clone(), Some(jwt), self.redactor.clone());
            match gh.create_installation_token(installation_id, &repos, &perms) {
                Ok(t) => return Ok(Some((CredentialKind::GithubApp, Some(t.token), None))),
                Err(e) => self.events.log(&format!("github app token failed: {e}")),
            }
        }
        // (4) The device flow.
        if let Some((app, observer)) = &self.oauth {
            match device_flow::run_device_flow_with_user(
                app,
                req.permissions,
                self.clock.as_ref(),
                observer.as_ref(),
                &self.redactor,
                &self.forge,
            ) {
                Ok(t) => {
                    self.store.save(&t)?;
                    return Ok(Some((
                        CredentialKind::Oauth,
                        Some(t.access_token),
                        t.expires_at,
                    )));
                }
                Err(e) => self.events.log(&format!("oauth device flow failed: {e}")),
            }
        }
        Ok(None)
    }

    fn emit(&self, kind: EventKind, g: &Grant) {
        self.events.emit(Event {
            kind,
            workspace_id: g.granted_to.workspace_id.clone().unwrap_or_default(),
            credential_id: Some(g.id.clone()),
            execution_id: g.granted_to.execution_id.clone(),
            timestamp: self.clock.now_ms(),
            data: serde_json::json!({"type": g.kind.as_str(), "repo": g.repo}),
            error: None,
        });
    }

    /// The grant, if known.
    pub fn get(&self, id: &str) -> Option<Grant> {
        self.grants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .map(|h| h.grant.clone())
    }

    /// Known, not revoked, not expired.
    pub fn is_valid(&self, id: &str) -> bool {
        let now = self.clock.now_ms();
        self.get(id)
            .is_some_and(|g| g.revoked_at.is_none() && now < g.expires_at)
    }

    /// The token of a valid grant.
    pub fn token(&self, id: &str) -> Option<Secret> {
        if !self.is_valid(id) {
            return None;
        }
        self.grants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .and_then(|h| h.token.clone())
    }

    /// The git environment credential of a valid grant, scoped to `repo`'s HTTP origin.
    pub fn git_auth(&self, id: &str, repo: &RepoUrl) -> Option<GitAuth> {
        let origin = repo.http_origin()?;
        Some(GitAuth::basic(origin, self.token(id)?.expose()))
    }

    /// Revokes a grant at once; App tokens are also revoked at GitHub. `false` if unknown or
    /// already revoked.
    pub fn revoke(&self, id: &str) -> bool {
        let now = self.clock.now_ms();
        let (grant, token) = {
            let mut g = self.grants.lock().unwrap_or_else(|e| e.into_inner());
            let Some(h) = g.get_mut(id) else { return false };
            if h.grant.revoked_at.is_some() {
                return false;
            }
            h.grant.revoked_at = Some(now);
            (h.grant.clone(), h.token.take())
        };
        if grant.kind == CredentialKind::GithubApp
            && let Some(t) = token
        {
            let gh = GitHub::new(self.forge.clone(), Some(t), self.redactor.clone());
            if let Err(e) = gh.delete_installation_token() {
                self.events
                    .log(&format!("revoking installation token failed: {e}"));
            }
        }
        self.emit(EventKind::CredentialRevoked, &grant);
        true
    }

    /// Revokes every grant of an execution; returns how many.
    pub fn revoke_for_execution(&self, execution_id: &str) -> usize {
        let ids: Vec<String> = self
            .grants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|h| h.grant.granted_to.execution_id.as_deref() == Some(execution_id))
            .map(|h| h.grant.id.clone())
            .collect();
        ids.iter().filter(|id| self.revoke(id)).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;
    use crate::token_store::{MemoryTokenStore, OAuthToken};

    fn svc(clock: Arc<FakeClock>) -> (CredentialService, std::sync::mpsc::Receiver<Event>) {
        let r = Redactor::new();
        let bus = EventBus::new(r.clone());
        let rx = bus.channel();
        let s = CredentialService::new(
            GitHubConfig::default(),
            Box::new(MemoryTokenStore::default()),
            clock,
            r,
            bus,
        );
        (s, rx)
    }

    fn req(repo: &str, user: Option<UserCredential>, optional: bool) -> CredentialRequest {
        CredentialRequest {
            repo: RepoUrl::parse(repo, "github.com").unwrap(),
            user,
            permissions: Permissions::WRITE,
            ttl: Some(Duration::from_secs(7200)),
            granted_to: GrantedTo {
                execution_id: Some("e1".into()),
                ..GrantedTo::default()
            },
            optional,
        }
    }

    #[test]
    fn priority_ttl_revoke_and_scoping() {
        let clock = Arc::new(FakeClock::new(1_000_000));
        let (s, rx) = svc(clock.clone());
        let g = s
            .request(req(
                "https://github.com/o/r",
                Some(UserCredential::Pat(Secret::new("ghp_user_given"))),
                false,
            ))
            .unwrap()
            .unwrap();
        assert_eq!(g.kind, CredentialKind::Pat);
        assert_eq!(
            g.expires_at - g.created_at,
            3_600_000,
            "ttl capped at one hour"
        );
        let auth = s
            .git_auth(
                &g.id,
                &RepoUrl::parse("https://github.com/o/r", "github.com").unwrap(),
            )
            .unwrap();
        assert_eq!(auth.origin(), "https://github.com/");
        assert!(s.is_valid(&g.id));
        clock.advance(Duration::from_secs(3601));
        assert!(!s.is_valid(&g.id) && s.token(&g.id).is_none());

        // Cached OAuth beats nothing; expired cache (within 5 min of expiry) is skipped.
        s.store
            .save(&OAuthToken {
                access_token: Secret::new("gho_cached_tok"),
                token_type: "bearer".into(),
                scopes: vec![],
                expires_at: Some(clock.now_ms() + 20 * 60 * 1000),
                refresh_token: None,
                provider: "github".into(),
                created_at: 0,
            })
            .unwrap();
        let g2 = s
            .request(req("https://github.com/o/r", None, false))
            .unwrap()
            .unwrap();
        assert_eq!(g2.kind, CredentialKind::Oauth);
        assert_eq!(s.token(&g2.id).unwrap().expose(), "gho_cached_tok");
        clock.advance(Duration::from_secs(16 * 60));
        assert!(
            s.request(req("https://github.com/o/r", None, false))
                .is_err()
        );
        assert_eq!(
            s.request(req("https://github.com/o/r", None, true))
                .unwrap(),
            None
        );

        // Host decided by parsing: no cached GitHub token for a look-alike.
        assert_eq!(
            s.request(req("https://evil.example/github.com/x", None, true))
                .unwrap(),
            None
        );
        assert_eq!(s.request(req("/srv/x.git", None, false)).unwrap(), None);

        assert_eq!(s.revoke_for_execution("e1"), 2);
        assert!(!s.revoke(&g2.id));
        let kinds: Vec<&str> = rx.try_iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "credential:granted",
                "credential:granted",
                "credential:revoked",
                "credential:revoked"
            ]
        );
        assert_eq!(new_id().len(), 36);
    }
}
