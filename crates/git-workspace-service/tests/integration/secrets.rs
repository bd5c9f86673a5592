//! A whole run with a token: clone a github.com URL (rewritten to a local bare remote), commit,
//! push, open a PR with labels and reviewers against the fake GitHub, clean up. The exact forge
//! requests are asserted, and the token appears in no file, event, error or log line.

use git_workspace_service::credentials::UserCredential;
use git_workspace_service::{Error, FinalizeRequest, PrRequest, ProvisionRequest, Secret};
use test_support::github::FakeGitHub;

use crate::support::{Recorder, World, contains, walk};

#[test]
fn finalize_opens_a_pr_with_labels_and_reviewers_and_the_token_never_leaks() {
    let gh = FakeGitHub::start().unwrap();
    gh.add_repo("octo", "hello", "main");
    let token = gh.token();
    let w = World::new("pr");
    let bare = w.bare_remote("hello");
    w.rewrite_url("https://github.com/octo/hello.git", &bare);
    let svc = w.service(Some(&gh.base_url()));
    let rec = Recorder::attach(&svc);

    let mut req = ProvisionRequest::clone_of("https://github.com/octo/hello.git");
    req.execution_id = Some("exec-7".into());
    req.role = Some("coder".into());
    req.credential = Some(UserCredential::Pat(Secret::new(token)));
    let ws = svc.provision(req).unwrap();
    std::fs::write(ws.path.join("feature.rs"), "fn main() {}\n").unwrap();

    let title = "Add feature\nwith a newline; touch /tmp/pwned";
    let out = svc
        .finalize(
            &ws.id,
            &FinalizeRequest {
                commit_message: Some("feat: add feature".into()),
                push: true,
                force_with_lease: false,
                pr: Some(PrRequest {
                    title: title.into(),
                    body: "Body text".into(),
                    target_branch: None,
                    draft: true,
                    labels: vec!["agent".into(), "needs review".into()],
                    reviewers: vec!["alice".into(), "bob".into()],
                }),
                cleanup: false,
            },
        )
        .unwrap();
    let pr = out.pr.clone().unwrap();
    assert_eq!(pr.number, 1);
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    assert_eq!(
        w.git(&bare, &["rev-parse", &ws.branch]),
        out.commit.clone().unwrap()
    );
    assert_eq!(svc.get(&ws.id).unwrap().pr.unwrap().number, 1);

    // The exact requests, in order, each with the PAT.
    let log = gh.requests();
    let calls: Vec<(String, String)> = log
        .iter()
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    assert_eq!(
        calls,
        [
            ("POST".to_owned(), "/repos/octo/hello/pulls".to_owned()),
            (
                "POST".to_owned(),
                "/repos/octo/hello/issues/1/labels".to_owned()
            ),
            (
                "POST".to_owned(),
                "/repos/octo/hello/pulls/1/requested_reviewers".to_owned()
            ),
        ]
    );
    assert!(log.iter().all(|r| r.auth.as_deref() == Some("user")));
    assert!(
        log.iter()
            .all(|r| r.header("accept") == Some("application/vnd.github+json"))
    );
    assert!(
        log.iter()
            .all(|r| r.header("x-github-api-version") == Some("2022-11-28"))
    );
    assert_eq!(
        log[0].json(),
        serde_json::json!({"title": title, "body": "Body text", "head": "parallax/exec-7/coder", "base": "main", "draft": true})
    );
    assert_eq!(
        log[1].json(),
        serde_json::json!({"labels": ["agent", "needs review"]})
    );
    assert_eq!(
        log[2].json(),
        serde_json::json!({"reviewers": ["alice", "bob"]})
    );

    let kinds = rec.kinds();
    assert_eq!(
        kinds,
        [
            "workspace:provisioning",
            "credential:granted",
            "workspace:ready",
            "workspace:finalizing",
            "workspace:committed",
            "workspace:pushed",
            "pr:created",
        ]
    );
    let pr_event = rec.events.lock().unwrap()[6].clone();
    assert_eq!(pr_event.data["prNumber"], 1);

    // A failing forge call: the error body is surfaced, the token is not.
    gh.fail_next(
        "POST",
        "/pulls",
        422,
        &format!("Validation Failed for token {token}"),
    );
    let err = svc
        .create_pr(
            &ws.id,
            &PrRequest {
                title: "again".into(),
                ..PrRequest::default()
            },
        )
        .unwrap_err();
    assert!(matches!(err, Error::Forge { status: 422, .. }), "{err}");
    let shown = err.to_string();
    assert!(
        shown.contains("Validation Failed") && shown.contains("[redacted]"),
        "{shown}"
    );
    assert!(!shown.contains(token));

    // A second PR for the same branch is refused by GitHub; finalize reports it and the
    // workspace goes back to ready with the error recorded.
    std::fs::write(ws.path.join("more.rs"), "//\n").unwrap();
    let ws_again = svc.get(&ws.id).unwrap();
    let out2 = svc
        .finalize(
            &ws_again.id,
            &FinalizeRequest {
                commit_message: Some("more".into()),
                push: true,
                force_with_lease: false,
                pr: Some(PrRequest {
                    title: "second".into(),
                    labels: vec!["x".into()],
                    target_branch: Some("main".into()),
                    ..PrRequest::default()
                }),
                cleanup: false,
            },
        )
        .unwrap_err();
    // The branch already has an open PR: GitHub's errors[] message is in the error.
    assert!(
        out2.to_string().contains("A pull request already exists"),
        "{out2}"
    );
    let after = svc.get(&ws.id).unwrap();
    assert_eq!(after.status, git_workspace_service::registry::Status::Ready);
    assert!(after.last_error.is_some());

    // Labels failing is a warning, not an error: a worktree on its own branch gets its PR.
    let child = svc
        .add_worktree(&ws.id, ProvisionRequest::clone_of(""))
        .unwrap();
    std::fs::write(child.path.join("child.rs"), "//\n").unwrap();
    gh.fail_next("POST", "/labels", 404, "Label not found");
    let out3 = svc
        .finalize(
            &child.id,
            &FinalizeRequest {
                commit_message: Some("child work".into()),
                push: true,
                force_with_lease: false,
                pr: Some(PrRequest {
                    title: "child".into(),
                    labels: vec!["missing-label".into()],
                    ..PrRequest::default()
                }),
                cleanup: true,
            },
        )
        .unwrap();
    assert_eq!(out3.pr.unwrap().number, 2);
    assert!(
        out3.warnings.iter().any(|w| w.contains("Label not found")),
        "{:?}",
        out3.warnings
    );
    assert!(
        rec.logs
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("Label not found"))
    );
    assert!(out3.cleaned_up && !child.path.exists());

    // Force push needs permission.
    assert!(matches!(
        svc.push(&ws.id, true),
        Err(Error::NotPermitted(_))
    ));

    // The token is nowhere on disk: not in the workspace (.git/config included), not in the
    // registry, not in the base directory at all.
    for (path, bytes) in walk(&w.base).into_iter().chain(walk(&w.home)) {
        assert!(
            !contains(&bytes, token),
            "token found in {}",
            path.display()
        );
    }
    let config = std::fs::read_to_string(ws.path.join(".git/config")).unwrap();
    assert!(
        config.contains("url = https://github.com/octo/hello.git"),
        "{config}"
    );
    for e in rec.events.lock().unwrap().iter() {
        let text = e.to_json().to_string();
        assert!(!text.contains(token), "token in event {text}");
    }
    for l in rec.logs.lock().unwrap().iter() {
        assert!(!l.contains(token), "token in log {l}");
    }
    svc.cleanup(&ws.id, false).unwrap();
    let kinds = rec.kinds();
    assert_eq!(
        kinds[kinds.len() - 2..],
        ["credential:revoked", "workspace:cleaned_up"]
    );
    // Credentials: the workspace's grant is gone after cleanup.
    let cred = svc.get(&ws.id).unwrap().credential.unwrap();
    assert!(!svc.credentials().is_valid(&cred.id));
}

#[test]
fn git_sends_the_token_only_to_its_origin_and_its_errors_are_redacted() {
    // The fake GitHub doubles as an HTTP git remote that answers 404: it logs which credential
    // git sent, and git's failure message must not show it.
    let gh = FakeGitHub::start().unwrap();
    let token = gh.token();
    let w = World::new("origin");
    let svc = w.service(Some(&gh.base_url()));
    let rec = Recorder::attach(&svc);
    let mut req = ProvisionRequest::clone_of(format!("{}/octo/hello.git", gh.base_url()));
    req.credential = Some(UserCredential::Pat(Secret::new(token)));
    let err = svc.provision(req).unwrap_err();
    let shown = err.to_string();
    assert!(matches!(err, Error::Git { .. }), "{shown}");
    assert!(!shown.contains(token));
    let log = gh.requests();
    assert!(!log.is_empty());
    assert!(log[0].path.ends_with("/info/refs"), "{:?}", log[0].path);
    assert_eq!(
        log[0].auth.as_deref(),
        Some("user"),
        "git sent the extraheader credential"
    );
    assert!(!log[0].query.contains(token) && !log[0].path.contains(token));
    for e in rec.events.lock().unwrap().iter() {
        assert!(!e.to_json().to_string().contains(token));
    }
    for (path, bytes) in walk(&w.base) {
        assert!(
            !contains(&bytes, token),
            "token found in {}",
            path.display()
        );
    }

    // The same credential is not sent to another origin: a clone from a second server gets none.
    let other = FakeGitHub::start().unwrap();
    let mut req = ProvisionRequest::clone_of(format!("{}/octo/hello.git", other.base_url()));
    req.credential = None;
    let _ = svc.provision(req);
    assert!(
        other
            .requests()
            .iter()
            .all(|r| r.auth.is_none() && r.header("authorization").is_none())
    );
}

#[test]
fn a_restarted_service_uses_the_configured_token_for_its_forge_host_only() {
    let w = World::new("restart-token");
    let bare = w.bare_remote("hello");
    w.rewrite_url("https://github.com/octo/hello.git", &bare);
    let token = "ghp_configured_token_987654";
    let (gh_ws, local_ws) = {
        let svc = w.service(None);
        let a = svc
            .provision(ProvisionRequest::clone_of("octo/hello"))
            .unwrap();
        let b = svc
            .provision(ProvisionRequest::clone_of(bare.display().to_string()))
            .unwrap();
        assert!(
            svc.agent_git_env(&a.id).unwrap().is_empty(),
            "no token configured, none given"
        );
        (a, b)
    };
    let mut config = w.config(None);
    config.github_token = Some(Secret::new(token));
    let svc = git_workspace_service::WorkspaceService::open(config).unwrap();
    let env = svc.agent_git_env(&gh_ws.id).unwrap();
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("GIT_CONFIG_COUNT").as_deref(), Some("1"));
    assert_eq!(
        get("GIT_CONFIG_KEY_0").as_deref(),
        Some("http.https://github.com/.extraheader")
    );
    assert!(
        get("GIT_CONFIG_VALUE_0")
            .unwrap()
            .starts_with("Authorization: Basic ")
    );
    assert_eq!(get("GH_TOKEN").as_deref(), Some(token));
    assert!(
        svc.agent_git_env(&local_ws.id).unwrap().is_empty(),
        "a local remote never gets the forge token"
    );
    // Pushing with it works (the rewrite makes the transport local) and leaves no trace.
    std::fs::write(gh_ws.path.join("f"), "x").unwrap();
    svc.commit(&gh_ws.id, "c").unwrap();
    svc.push(&gh_ws.id, false).unwrap();
    for (path, bytes) in walk(&w.base) {
        assert!(
            !contains(&bytes, token),
            "token found in {}",
            path.display()
        );
    }
}
