//! The OAuth device flow against the fake GitHub with a fake clock: no real sleeping.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use git_workspace_service::Redactor;
use git_workspace_service::clock::FakeClock;
use git_workspace_service::device_flow::{
    DeviceFlowObserver, DevicePrompt, OAuthApp, Permissions, run_device_flow,
};
use test_support::github::{DeviceStep, FakeGitHub};

#[derive(Default)]
struct Seen {
    prompts: Mutex<Vec<DevicePrompt>>,
    pending: Mutex<Vec<u64>>,
    complete: Mutex<Vec<(bool, Option<String>)>>,
}

impl DeviceFlowObserver for Seen {
    fn on_prompt(&self, p: &DevicePrompt) {
        self.prompts.lock().unwrap().push(p.clone());
    }
    fn on_pending(&self, s: u64) {
        self.pending.lock().unwrap().push(s);
    }
    fn on_complete(&self, ok: bool, _provider: &str, error: Option<&str>) {
        self.complete
            .lock()
            .unwrap()
            .push((ok, error.map(str::to_owned)));
    }
}

fn secs(v: &[u64]) -> Vec<Duration> {
    v.iter().map(|s| Duration::from_secs(*s)).collect()
}

#[test]
fn device_flow_table() {
    struct Case {
        name: &'static str,
        steps: Vec<DeviceStep>,
        interval: u64,
        expires_in: u64,
        timeout: u64,
        sleeps: &'static [u64],
        outcome: Result<&'static str, &'static str>,
    }
    let ok = |t: &str| DeviceStep::Success { token: t.into() };
    let cases = [
        Case {
            name: "pending then success",
            steps: vec![
                DeviceStep::Pending,
                DeviceStep::Pending,
                ok("gho_device_token_1"),
            ],
            interval: 5,
            expires_in: 900,
            timeout: 900,
            sleeps: &[5, 5, 5],
            outcome: Ok("gho_device_token_1"),
        },
        Case {
            name: "slow_down adds 5 s, cumulatively",
            steps: vec![
                DeviceStep::SlowDown,
                DeviceStep::SlowDown,
                DeviceStep::Pending,
                ok("gho_device_token_2"),
            ],
            interval: 5,
            expires_in: 900,
            timeout: 900,
            sleeps: &[5, 10, 15, 15],
            outcome: Ok("gho_device_token_2"),
        },
        Case {
            name: "denied",
            steps: vec![DeviceStep::Pending, DeviceStep::Denied],
            interval: 2,
            expires_in: 900,
            timeout: 900,
            sleeps: &[2, 2],
            outcome: Err("user denied authorization"),
        },
        Case {
            name: "server says expired",
            steps: vec![DeviceStep::Expired],
            interval: 5,
            expires_in: 900,
            timeout: 900,
            sleeps: &[5],
            outcome: Err("device code expired. please try again"),
        },
        Case {
            name: "expires_in passes while pending",
            steps: vec![],
            interval: 5,
            expires_in: 12,
            timeout: 900,
            sleeps: &[5, 5, 5],
            outcome: Err("device code expired"),
        },
        Case {
            name: "the flow's own timeout",
            steps: vec![],
            interval: 5,
            expires_in: 900,
            timeout: 7,
            sleeps: &[5, 5],
            outcome: Err("oauth flow timed out"),
        },
        Case {
            name: "http error is an error, not a token",
            steps: vec![DeviceStep::HttpError(500)],
            interval: 1,
            expires_in: 900,
            timeout: 900,
            sleeps: &[1],
            outcome: Err("token request returned 500"),
        },
    ];
    let gh = FakeGitHub::start().unwrap();
    for c in cases {
        gh.script_device_flow(c.steps, c.interval, c.expires_in);
        gh.clear_requests();
        let clock = FakeClock::new(0);
        let seen = Arc::new(Seen::default());
        let redactor = Redactor::new();
        let mut app = OAuthApp::github(&gh.base_url(), "client-123");
        app.timeout = Duration::from_secs(c.timeout);
        let got = run_device_flow(&app, Permissions::WRITE, &clock, seen.as_ref(), &redactor);
        assert_eq!(clock.sleeps(), secs(c.sleeps), "{}", c.name);
        match (got, c.outcome) {
            (Ok(t), Ok(want)) => {
                assert_eq!(t.access_token.expose(), want, "{}", c.name);
                assert_eq!(t.scopes, ["repo", "read:user"]);
                assert_eq!(
                    redactor.redact(want),
                    "[redacted]",
                    "token registered for redaction"
                );
            }
            (Err(e), Err(want)) => assert!(e.to_string().ends_with(want), "{}: {e}", c.name),
            (got, want) => panic!("{}: got {got:?}, want {want:?}", c.name),
        }
        let prompt = seen.prompts.lock().unwrap()[0].clone();
        assert_eq!(prompt.user_code, "WDJB-MJHT");
        assert_eq!(
            prompt.requested_permissions,
            ["contents:write", "pull_requests:write"]
        );
        assert_eq!(seen.complete.lock().unwrap().len(), 1);
        if c.name == "pending then success" {
            assert_eq!(
                *seen.pending.lock().unwrap(),
                [895, 890],
                "seconds until expiry"
            );
        }
        let reqs = gh.requests();
        assert_eq!(reqs[0].path, "/login/device/code");
        assert_eq!(reqs[0].json()["scope"], "repo read:user");
        assert_eq!(reqs[0].header("accept"), Some("application/json"));
        assert!(
            reqs[1..]
                .iter()
                .all(|r| r.path == "/login/oauth/access_token"
                    && r.json()["grant_type"] == "urn:ietf:params:oauth:grant-type:device_code")
        );
    }
}

#[test]
fn completion_reports_the_username_from_get_user_with_the_new_token() {
    use git_workspace_service::device_flow::{DeviceCompletion, run_device_flow_with_user};
    use git_workspace_service::forge::GitHubConfig;

    #[derive(Default)]
    struct Done(Mutex<Vec<DeviceCompletion>>);
    impl DeviceFlowObserver for Done {
        fn on_prompt(&self, _: &DevicePrompt) {}
        fn on_completed(&self, c: &DeviceCompletion) {
            self.0.lock().unwrap().push(c.clone());
        }
    }

    let gh = FakeGitHub::start().unwrap();
    let app = OAuthApp::github(&gh.base_url(), "client-123");
    let api = GitHubConfig::with_api_url(&gh.base_url());
    let redactor = Redactor::new();

    // Success: GET /user is called once, with the token the flow just obtained.
    gh.script_device_flow(
        vec![DeviceStep::Success {
            token: "gho_userflow_0001".into(),
        }],
        5,
        900,
    );
    let done = Done::default();
    let clock = FakeClock::new(0);
    let t = run_device_flow_with_user(&app, Permissions::WRITE, &clock, &done, &redactor, &api)
        .unwrap();
    assert_eq!(t.access_token.expose(), "gho_userflow_0001");
    let c = done.0.lock().unwrap().clone();
    assert_eq!(
        c,
        [DeviceCompletion {
            success: true,
            provider: "github".into(),
            username: Some(test_support::github::DEFAULT_LOGIN.into()),
            error: None,
        }]
    );
    let user_calls: Vec<_> = gh
        .requests()
        .into_iter()
        .filter(|r| r.path == "/user")
        .collect();
    assert_eq!(user_calls.len(), 1);
    let label = user_calls[0].auth.clone().unwrap();
    assert!(
        label.starts_with("oauth-"),
        "called with the new token: {label}"
    );

    // Failure: no /user call, no username, the error is reported.
    gh.clear_requests();
    gh.script_device_flow(vec![DeviceStep::Denied], 5, 900);
    let done = Done::default();
    assert!(
        run_device_flow_with_user(&app, Permissions::WRITE, &clock, &done, &redactor, &api)
            .is_err()
    );
    let c = done.0.lock().unwrap().clone();
    assert_eq!(c.len(), 1);
    assert!(!c[0].success && c[0].username.is_none());
    assert!(c[0].error.as_deref().unwrap().contains("denied"));
    assert!(gh.requests().iter().all(|r| r.path != "/user"));

    // /user failing leaves the token valid and the username unknown.
    gh.script_device_flow(
        vec![DeviceStep::Success {
            token: "gho_userflow_0002".into(),
        }],
        5,
        900,
    );
    gh.fail_next("GET", "/user", 500, "boom");
    let done = Done::default();
    assert!(
        run_device_flow_with_user(&app, Permissions::WRITE, &clock, &done, &redactor, &api).is_ok()
    );
    let c = done.0.lock().unwrap().clone();
    assert!(c[0].success && c[0].username.is_none());
}
