//! Hostile inputs from chat or HTTP: refused before git runs, or passed as one argv element.

use git_workspace_service::{Error, ProvisionRequest};

use crate::support::World;

#[test]
fn hostile_repos_branches_and_titles_have_no_effect() {
    let w = World::new("inject");
    let bare = w.bare_remote("repo");
    let svc = w.service(None);
    let pwned = w.tmp.0.join("pwned");
    let marker = pwned.display().to_string();
    let repos = [
        format!("x; touch {marker}"),
        format!("--upload-pack=touch {marker}"),
        format!("-u touch {marker}"),
        format!("ssh://-oProxyCommand=touch {marker}/r"),
        format!("git@-oProxyCommand=touch {marker}:r"),
        format!("{}\ntouch {marker}", bare.display()),
        "https://x-access-token:tok@github.com/o/r".into(),
        format!("ext::sh -c touch% {marker}"),
    ];
    for repo in &repos {
        let err = svc
            .provision(ProvisionRequest::clone_of(repo.clone()))
            .unwrap_err();
        assert!(matches!(err, Error::InvalidRepo { .. }), "{repo:?}: {err}");
    }
    // A relative path that climbs out resolves to a real directory that is no repository:
    // git is asked, fails, and nothing else happens.
    let err = svc
        .provision(ProvisionRequest::clone_of("../../etc"))
        .unwrap_err();
    assert!(matches!(err, Error::Git { .. }), "{err}");

    let branches = [
        format!("x; touch {marker}"),
        format!("--upload-pack=touch {marker}"),
        "../../etc".into(),
        "a\nb".into(),
        "$(touch pwned)".into(),
    ];
    for b in &branches {
        let mut req = ProvisionRequest::clone_of(bare.display().to_string());
        req.branch_name = Some(b.clone());
        assert!(
            matches!(svc.provision(req), Err(Error::InvalidBranchName { .. })),
            "{b:?}"
        );
        let mut req = ProvisionRequest::clone_of(bare.display().to_string());
        req.base_branch = b.clone();
        assert!(
            matches!(svc.provision(req), Err(Error::InvalidBranchName { .. })),
            "{b:?}"
        );
    }
    // Generated names are sanitised, whatever the parts hold.
    let mut req = ProvisionRequest::clone_of(bare.display().to_string());
    req.execution_id = Some(format!("e1; touch {marker}"));
    req.role = Some("--upload-pack=x".into());
    req.slug = Some("../../etc".into());
    let ws = svc.provision(req).unwrap();
    assert!(ws.branch.starts_with("parallax/e1-touch-"), "{}", ws.branch);
    assert!(ws.branch.ends_with("/upload-packx-etc"), "{}", ws.branch);
    assert_eq!(ws.branch.split('/').count(), 3);

    // A commit message with a shell payload and newlines is one argv element.
    std::fs::write(ws.path.join("f.txt"), "x").unwrap();
    let msg = format!("title; touch {marker}\n\n$(touch {marker})\n`touch {marker}`");
    svc.commit(&ws.id, &msg).unwrap();
    assert_eq!(w.git(&ws.path, &["log", "-1", "--format=%B"]), msg);
    // Identity values that git would read as options are refused.
    let mut req = ProvisionRequest::clone_of(bare.display().to_string());
    req.git_user = Some(git_workspace_service::registry::GitUser {
        name: "--global".into(),
        email: "a@b".into(),
    });
    assert!(matches!(
        svc.provision(req),
        Err(Error::InvalidInput { .. })
    ));
    assert!(!pwned.exists(), "an injection attempt ran a command");
}
