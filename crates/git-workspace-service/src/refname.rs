//! Branch-name validation with the rules of `git check-ref-format --branch`, in Rust, so a
//! hostile name is refused before any git process sees it.

use crate::{Error, Result};

/// Longest branch name accepted; far beyond any generated name, short enough for every filesystem.
const MAX_LEN: usize = 200;

/// Checks that `name` is a valid branch name for git and safe as an argv element.
///
/// Rules (from `git check-ref-format`): no empty component, no component starting with `.` or
/// ending with `.lock`; no `..`, `@{`, `//`; no ASCII control character, space, `~ ^ : ? * [ \`;
/// not starting or ending with `/`, not ending with `.`; not `@` or `HEAD`. In addition a name
/// may not start with `-`, which git would read as an option.
///
/// ```
/// use git_workspace_service::validate_branch_name;
///
/// assert!(validate_branch_name("parallax/exec-1/engineer").is_ok());
/// assert!(validate_branch_name("--upload-pack=x").is_err());
/// assert!(validate_branch_name("a..b").is_err());
/// ```
pub fn validate_branch_name(name: &str) -> Result<()> {
    let bad = |reason: &str| {
        Err(Error::InvalidBranchName {
            name: name.to_owned(),
            reason: reason.to_owned(),
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > MAX_LEN {
        return bad("it is longer than 200 bytes");
    }
    if name.starts_with('-') {
        return bad("it starts with '-'");
    }
    if name == "@" || name == "HEAD" {
        return bad("it is reserved");
    }
    if let Some(c) = name.chars().find(|&c| {
        c.is_ascii_control() || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\')
    }) {
        return bad(&format!("it contains the forbidden character {c:?}"));
    }
    if name.contains("..") {
        return bad("it contains '..'");
    }
    if name.contains("@{") {
        return bad("it contains '@{'");
    }
    if name.starts_with('/') || name.ends_with('/') || name.contains("//") {
        return bad("it has an empty path component");
    }
    if name.ends_with('.') {
        return bad("it ends with '.'");
    }
    for component in name.split('/') {
        if component.starts_with('.') {
            return bad("a component starts with '.'");
        }
        if component.ends_with(".lock") {
            return bad("a component ends with '.lock'");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_git_check_ref_format_branch() {
        let table: &[(&str, bool)] = &[
            ("main", true),
            ("feature/x", true),
            ("parallax/exec-1/engineer-auth", true),
            ("v1.2", true),
            ("a@b", true),
            ("", false),
            ("-x", false),
            ("--upload-pack=touch /tmp/pwned", false),
            ("x; touch /tmp/pwned", false),
            ("a..b", false),
            ("../../etc", false),
            ("a/.hidden", false),
            ("a.lock", false),
            ("a/b.lock/c", false),
            ("/a", false),
            ("a/", false),
            ("a//b", false),
            ("a.", false),
            ("a@{1}", false),
            ("@", false),
            ("HEAD", false),
            ("a b", false),
            ("a\nb", false),
            ("a~1", false),
            ("a^", false),
            ("a:b", false),
            ("a?", false),
            ("a*", false),
            ("a[b", false),
            ("a\\b", false),
            ("a\u{7f}", false),
        ];
        for (name, ok) in table {
            assert_eq!(validate_branch_name(name).is_ok(), *ok, "{name:?}");
        }
    }

    /// The same table through the real `git check-ref-format --branch`, so the Rust rules cannot
    /// drift from git's (skipped quietly only if git is missing, which CI never is). `@` is left
    /// out: `--branch` expands it to the current branch, while we refuse it outright.
    #[test]
    fn agrees_with_git_itself() {
        let names = [
            "main",
            "feature/x",
            "v1.2",
            "a@b",
            "a..b",
            "a/.hidden",
            "a.lock",
            "/a",
            "a/",
            "a//b",
            "a.",
            "a@{1}",
            "a b",
            "a~1",
            "a^",
            "a:b",
            "a?",
            "a*",
            "a[b",
            "a\\b",
        ];
        for name in names {
            let Ok(out) = std::process::Command::new("git")
                .args(["check-ref-format", "--branch", name])
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .output()
            else {
                return;
            };
            assert_eq!(
                validate_branch_name(name).is_ok(),
                out.status.success(),
                "{name:?}"
            );
        }
    }
}
