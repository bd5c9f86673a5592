//! The GitHub client against the fake server: issues, comments, labels, branches, default
//! branch, App installation tokens, and the credential priority that uses them.

use std::sync::Arc;

use git_workspace_service::clock::SystemClock;
use git_workspace_service::credentials::{
    CredentialKind, CredentialRequest, CredentialService, GitHubAppConfig, GrantedTo,
};
use git_workspace_service::device_flow::Permissions;
use git_workspace_service::events::EventBus;
use git_workspace_service::forge::{GitHub, GitHubConfig, IssueQuery, IssueUpdate, NewIssue};
use git_workspace_service::token_store::MemoryTokenStore;
use git_workspace_service::{Error, Redactor, RepoUrl, Secret};
use test_support::github::{DEFAULT_APP_JWT, FakeGitHub};

#[test]
fn issues_labels_comments_and_branches() {
    let gh = FakeGitHub::start().unwrap();
    gh.add_repo("o", "r", "trunk");
    for i in 0..105 {
        gh.add_branch("o", "r", &format!("parallax/e{i:03}/dev"));
    }
    let c = GitHub::new(
        GitHubConfig::with_api_url(&gh.base_url()),
        Some(Secret::new(gh.token())),
        Redactor::new(),
    );
    assert_eq!(c.default_branch("o", "r").unwrap(), "trunk");
    let branches = c.list_branches("o", "r").unwrap();
    assert_eq!(branches.len(), 106, "all pages");
    assert!(c.branch_exists("o", "r", "parallax/e001/dev").unwrap());
    c.delete_branch("o", "r", "parallax/e001/dev").unwrap();
    assert!(!c.branch_exists("o", "r", "parallax/e001/dev").unwrap());

    let issue = c
        .create_issue(
            "o",
            "r",
            &NewIssue {
                title: "Bug".into(),
                body: Some("details".into()),
                labels: vec!["bug".into()],
                assignees: vec!["alice".into()],
                milestone: None,
            },
        )
        .unwrap();
    assert_eq!(issue.number, 1);
    c.add_labels("o", "r", 1, &["p1".into(), "needs triage".into()])
        .unwrap();
    c.remove_label("o", "r", 1, "needs triage").unwrap();
    assert_eq!(c.get_issue("o", "r", 1).unwrap().labels, ["bug", "p1"]);
    c.comment("o", "r", 1, "on it").unwrap();
    assert_eq!(c.list_comments("o", "r", 1).unwrap()[0].body, "on it");
    let q = IssueQuery {
        labels: vec!["bug".into()],
        assignee: Some("alice".into()),
        ..IssueQuery::default()
    };
    assert_eq!(c.list_issues("o", "r", &q).unwrap().len(), 1);
    assert_eq!(c.close_issue("o", "r", 1).unwrap().state, "closed");
    assert!(
        c.list_issues("o", "r", &IssueQuery::default())
            .unwrap()
            .is_empty()
    );
    assert_eq!(c.reopen_issue("o", "r", 1).unwrap().state, "open");
    let u = IssueUpdate {
        title: Some("Bug (renamed)".into()),
        ..IssueUpdate::default()
    };
    assert_eq!(
        c.update_issue("o", "r", 1, &u).unwrap().title,
        "Bug (renamed)"
    );
    assert_eq!(c.current_user().unwrap(), "octo-agent");

    let log = gh.requests();
    let list = log
        .iter()
        .find(|r| r.path == "/repos/o/r/issues" && r.method == "GET")
        .unwrap();
    assert_eq!(
        list.query,
        "state=open&labels=bug&assignee=alice&per_page=100&page=1"
    );
    let del = log
        .iter()
        .find(|r| r.method == "DELETE" && r.path.contains("/labels/"))
        .unwrap();
    assert_eq!(del.path, "/repos/o/r/issues/1/labels/needs%20triage");

    // 404 for a repository the server does not have, GitHub's message surfaced.
    let e = c.get_issue("o", "missing", 1).unwrap_err();
    assert!(
        matches!(e, Error::Forge { status: 404, ref message, .. } if message == "Not Found"),
        "{e}"
    );
    // A bad token is a 401 with GitHub's message.
    let bad = GitHub::new(
        GitHubConfig::with_api_url(&gh.base_url()),
        Some(Secret::new("ghp_wrong_token_xyz")),
        Redactor::new(),
    );
    let e = bad.current_user().unwrap_err();
    assert!(
        e.to_string().contains("Bad credentials") && !e.to_string().contains("ghp_wrong_token_xyz")
    );
}

#[test]
fn app_installation_tokens_are_granted_and_revoked() {
    let gh = FakeGitHub::start().unwrap();
    let r = Redactor::new();
    let bus = EventBus::new(r.clone());
    let events = bus.channel();
    let svc = CredentialService::new(
        GitHubConfig::with_api_url(&gh.base_url()),
        Box::new(MemoryTokenStore::default()),
        Arc::new(SystemClock),
        r.clone(),
        bus,
    )
    .with_app(GitHubAppConfig {
        installation_id: 42,
        jwt: Secret::new(DEFAULT_APP_JWT),
    });
    let g = svc
        .request(CredentialRequest {
            repo: RepoUrl::parse("https://github.com/o/r.git", "github.com").unwrap(),
            user: None,
            permissions: Permissions::WRITE,
            ttl: None,
            granted_to: GrantedTo::default(),
            optional: false,
        })
        .unwrap()
        .unwrap();
    assert_eq!(g.kind, CredentialKind::GithubApp);
    let token = svc.token(&g.id).unwrap();
    assert_eq!(r.redact(token.expose()), "[redacted]");
    let req = &gh.requests()[0];
    assert_eq!(req.path, "/app/installations/42/access_tokens");
    assert_eq!(req.auth.as_deref(), Some("app"));
    assert_eq!(
        req.json(),
        serde_json::json!({"permissions": {"contents": "write", "pull_requests": "write", "metadata": "read"}, "repositories": ["r"]})
    );
    // The installation's own view: every repository, across pages.
    for i in 0..130 {
        gh.add_repo("octo", &format!("r{i:03}"), "main");
    }
    let app_client = GitHub::new(
        GitHubConfig::with_api_url(&gh.base_url()),
        Some(Secret::new(DEFAULT_APP_JWT)),
        Redactor::new(),
    );
    assert_eq!(
        app_client.list_installations().unwrap(),
        [(42, "octo".to_owned())]
    );
    assert_eq!(app_client.get_installation(42).unwrap(), "octo");
    let inst = GitHub::new(
        GitHubConfig::with_api_url(&gh.base_url()),
        Some(token.clone()),
        Redactor::new(),
    );
    assert_eq!(
        inst.installation_repositories().unwrap().len(),
        130,
        "all pages, not just 100"
    );
    assert!(svc.revoke(&g.id));
    let del = gh.requests().last().cloned().unwrap();
    assert_eq!(
        (del.method.as_str(), del.path.as_str(), del.status),
        ("DELETE", "/installation/token", 204)
    );
    assert!(del.auth.unwrap().starts_with("installation-"));
    assert!(svc.token(&g.id).is_none());
    let kinds: Vec<&str> = events.try_iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["credential:granted", "credential:revoked"]);
}

#[test]
fn cached_tokens_are_refreshed_and_the_device_flow_fills_the_cache() {
    use git_workspace_service::clock::{Clock, FakeClock};
    use git_workspace_service::device_flow::{DeviceFlowObserver, DevicePrompt, OAuthApp};
    use git_workspace_service::token_store::{OAuthToken, TokenStore};
    use test_support::github::DeviceStep;

    struct Quiet;
    impl DeviceFlowObserver for Quiet {
        fn on_prompt(&self, _: &DevicePrompt) {}
    }
    #[derive(Clone, Default)]
    struct Shared(Arc<MemoryTokenStore>);
    impl TokenStore for Shared {
        fn save(&self, t: &OAuthToken) -> git_workspace_service::Result<()> {
            self.0.save(t)
        }
        fn get(&self, p: &str) -> git_workspace_service::Result<Option<OAuthToken>> {
            self.0.get(p)
        }
        fn clear(&self, p: Option<&str>) -> git_workspace_service::Result<()> {
            self.0.clear(p)
        }
        fn list(&self) -> git_workspace_service::Result<Vec<String>> {
            self.0.list()
        }
    }

    let gh = FakeGitHub::start().unwrap();
    let clock = Arc::new(FakeClock::new(10_000_000));
    let store = Shared::default();
    let r = Redactor::new();
    let svc = CredentialService::new(
        GitHubConfig::with_api_url(&gh.base_url()),
        Box::new(store.clone()),
        clock.clone(),
        r.clone(),
        EventBus::new(r.clone()),
    )
    .with_oauth(
        OAuthApp::github(&gh.base_url(), "client-1"),
        Arc::new(Quiet),
    );
    let req = || CredentialRequest {
        repo: RepoUrl::parse("https://github.com/o/r.git", "github.com").unwrap(),
        user: None,
        permissions: Permissions::WRITE,
        ttl: None,
        granted_to: GrantedTo::default(),
        optional: false,
    };

    // Nothing cached, no App: the device flow runs and its token is cached.
    gh.script_device_flow(
        vec![
            DeviceStep::Pending,
            DeviceStep::Success {
                token: "gho_from_device_1".into(),
            },
        ],
        5,
        900,
    );
    let g = svc.request(req()).unwrap().unwrap();
    assert_eq!(
        (g.kind, svc.token(&g.id).unwrap().expose()),
        (CredentialKind::Oauth, "gho_from_device_1")
    );
    assert_eq!(clock.sleeps().len(), 2);
    assert_eq!(
        store.get("github").unwrap().unwrap().access_token.expose(),
        "gho_from_device_1"
    );

    // Cached, but within ten minutes of expiry with a refresh token: refreshed; the server sends
    // no new refresh token, so the old one is kept.
    let mut cached = store.get("github").unwrap().unwrap();
    cached.expires_at = Some(clock.now_ms() + 8 * 60 * 1000);
    cached.refresh_token = Some(Secret::new("ghr_refresh_token_1"));
    store.save(&cached).unwrap();
    gh.clear_requests();
    let g2 = svc.request(req()).unwrap().unwrap();
    let fresh = svc.token(&g2.id).unwrap();
    assert!(
        fresh.expose().starts_with("gho_refreshed_"),
        "{}",
        r.redact(fresh.expose())
    );
    let refresh_call = &gh.requests()[0];
    assert_eq!(refresh_call.path, "/login/oauth/access_token");
    assert_eq!(refresh_call.json()["grant_type"], "refresh_token");
    assert_eq!(refresh_call.json()["refresh_token"], "ghr_refresh_token_1");
    let saved = store.get("github").unwrap().unwrap();
    assert_eq!(saved.refresh_token.unwrap().expose(), "ghr_refresh_token_1");
    assert_eq!(clock.sleeps().len(), 2, "no second device flow");

    // The device flow denied and nothing else available: the documented error.
    store.clear(None).unwrap();
    gh.script_device_flow(vec![DeviceStep::Denied], 1, 900);
    let e = svc.request(req()).unwrap_err();
    assert!(matches!(e, Error::NoCredentials(_)), "{e}");
    assert!(
        e.to_string()
            .contains("device flow failed or was cancelled"),
        "{e}"
    );
}
