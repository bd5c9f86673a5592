//! The branch a workspace starts from when the caller names none: the remote's default branch,
//! read from what its `HEAD` points to (`git ls-remote --symref <url> HEAD`).
//!
//! Repositories whose default branch is `master`, `trunk` or anything else than `main` would
//! otherwise fail to clone (`git clone --branch main` of a repository without `main`).

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use git_workspace_service as gws;

/// How long the remote may take to answer before we give up and fall back.
const LS_REMOTE_TIMEOUT: Duration = Duration::from_secs(60);

/// Variables inherited from a surrounding git (a hook) that would point our git elsewhere.
const INHERITED_REPO_VARS: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_PREFIX",
];

/// The branch a workspace of `repo` starts from when the caller names none: what the remote's
/// `HEAD` points to (`git ls-remote --symref`, with the service's configured token as a header
/// scoped to the forge's origin), else, given a `forge` client, the forge's default branch
/// (`GET /repos/{o}/{r}`), else `main`.
pub fn default_base_branch(
    svc: &gws::WorkspaceService,
    forge: Option<&gws::forge::GitHub>,
    repo: &str,
) -> String {
    let cfg = svc.config();
    let host = &cfg.github.host;
    let Ok(url) = gws::RepoUrl::parse(repo, host) else {
        // Provisioning reports the bad repository with its reason.
        return "main".into();
    };
    let on_forge = url.provider(host) == gws::Provider::Github;
    let mut env = cfg.git.env.clone();
    if on_forge && let (Some(token), Some(origin)) = (&cfg.github_token, url.http_origin()) {
        // After any configuration entries the environment already carries.
        let n: usize = env
            .iter()
            .rev()
            .find(|(k, _)| k == "GIT_CONFIG_COUNT")
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var("GIT_CONFIG_COUNT").ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        env.extend(gws::GitAuth::basic(origin, token.expose()).env(n));
    }
    if let Some(b) = remote_head_branch(&cfg.git.program, &url.url, &env)
        .filter(|b| gws::validate_branch_name(b).is_ok())
    {
        return b;
    }
    if on_forge
        && let (Some(forge), Some((owner, name))) = (forge, url.owner_repo())
        && let Ok(b) = forge.default_branch(&owner, &name)
        && gws::validate_branch_name(&b).is_ok()
    {
        return b;
    }
    "main".into()
}

/// The branch `HEAD` points to in `git ls-remote --symref <url> HEAD` output
/// (`ref: refs/heads/<branch>\tHEAD`), if the remote reports one.
pub(crate) fn parse_symref_head(out: &str) -> Option<String> {
    out.lines().find_map(|l| {
        let (target, name) = l.strip_prefix("ref: ")?.split_once('\t')?;
        (name.trim() == "HEAD")
            .then(|| target.trim().strip_prefix("refs/heads/"))
            .flatten()
            .filter(|b| !b.is_empty())
            .map(str::to_owned)
    })
}

/// Asks the remote at `url` which branch its `HEAD` points to. `program` is git, `env` is put
/// into git's environment (a credential header scoped to the remote's origin, never the URL or
/// argv). `None` when git fails, times out, or the remote reports no symbolic `HEAD` (an empty
/// repository, a dumb transport).
pub(crate) fn remote_head_branch(
    program: &Path,
    url: &str,
    env: &[(String, String)],
) -> Option<String> {
    let mut cmd = Command::new(program);
    cmd.args(["ls-remote", "--symref", "--", url, "HEAD"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C")
        .env("GIT_ASKPASS", "");
    for v in INHERITED_REPO_VARS {
        cmd.env_remove(v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().ok()?;
    let mut stdout = child.stdout.take()?;
    // The answer is two short lines; reading on a thread keeps a chatty remote from blocking
    // the wait below on a full pipe.
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + LS_REMOTE_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let out = reader.join().ok()?;
    status
        .filter(|s| s.success())
        .and_then(|_| parse_symref_head(&out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_branch_head_points_to() {
        let table: &[(&str, Option<&str>)] = &[
            (
                "ref: refs/heads/trunk\tHEAD\n0123456789abcdef0123456789abcdef01234567\tHEAD\n",
                Some("trunk"),
            ),
            ("ref: refs/heads/release/2.x\tHEAD\n", Some("release/2.x")),
            // No symbolic HEAD (old servers, empty output): nothing to go on.
            ("0123456789abcdef0123456789abcdef01234567\tHEAD\n", None),
            ("", None),
            // A symref of another name, or to something that is not a branch.
            ("ref: refs/heads/main\trefs/remotes/origin/HEAD\n", None),
            ("ref: refs/tags/v1\tHEAD\n", None),
        ];
        for (out, want) in table {
            assert_eq!(parse_symref_head(out).as_deref(), *want, "{out:?}");
        }
    }

    #[test]
    fn asks_a_local_bare_remote() {
        let tmp = std::env::temp_dir().join(format!(
            "ao-default-branch-{}-{}",
            std::process::id(),
            crate::actions::new_id()
        ));
        let remote = tmp.join("r.git");
        let git = |args: &[&str]| {
            let ok = Command::new("git")
                .args(args)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "git {args:?}");
        };
        let r = remote.to_str().unwrap();
        git(&["init", "--bare", "-q", r]);
        git(&["--git-dir", r, "symbolic-ref", "HEAD", "refs/heads/trunk"]);
        // HEAD names trunk, but trunk has no commit yet: no answer, so the caller falls back.
        assert_eq!(remote_head_branch(Path::new("git"), r, &[]), None);
        let seed = tmp.join("seed");
        std::fs::create_dir_all(&seed).unwrap();
        let s = seed.to_str().unwrap();
        git(&["-C", s, "init", "-q"]);
        git(&[
            "-C",
            s,
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "seed",
        ]);
        git(&["-C", s, "push", "-q", r, "HEAD:refs/heads/trunk"]);
        assert_eq!(
            remote_head_branch(Path::new("git"), r, &[]).as_deref(),
            Some("trunk")
        );
        // A remote that does not exist.
        assert_eq!(
            remote_head_branch(
                Path::new("git"),
                tmp.join("nope.git").to_str().unwrap(),
                &[]
            ),
            None
        );
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
