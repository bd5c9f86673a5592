//! Git as the tests run it by hand (seeding remotes, committing as an agent would, reading what
//! landed): a fixed identity, `main` for new repositories, no system or user configuration.

use std::path::Path;
use std::process::Command;

/// Runs git in `dir`; panics on failure; returns stdout as is.
pub fn git_out(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.invalid",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// [`git_out`] with surrounding whitespace trimmed (hashes, branch names).
pub fn git(dir: &Path, args: &[&str]) -> String {
    git_out(dir, args).trim().to_owned()
}
