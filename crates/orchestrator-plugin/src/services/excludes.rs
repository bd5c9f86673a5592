//! Keeping agent-owned files out of commits: anchored patterns in the repository's shared
//! `info/exclude`.
//!
//! Git reads `$GIT_COMMON_DIR/info/exclude` for every worktree of a repository (a worktree's own
//! git directory has no `info/exclude` of its own that git would read), so the file is found
//! through `git rev-parse --git-common-dir`, never by assuming `<workdir>/.git` is a directory.
//! Patterns are anchored at the repository's top level; in the shared file they apply to every
//! worktree of the repository, which is harmless because they name only files that agents or we
//! create (chat histories, caches, settings, hook scripts, memory files).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use coding_agent_adapters::AgentType;

use crate::{Error, Result};

/// Files an agent CLI leaves in its working directory by itself, as patterns relative to it.
/// Aider writes `.aider.chat.history.md`, `.aider.input.history` and `.aider.tags.cache.v*/`
/// (BEHAVIOR.md §7.4; we start it with `--no-gitignore`, so it never adds them to `.gitignore`
/// itself); Claude Code writes `.claude/settings.local.json` when a person picks "don't ask
/// again".
pub const AGENT_SCRATCH: &[(AgentType, &[&str])] = &[
    (AgentType::Aider, &[".aider*"]),
    (AgentType::Claude, &[".claude/settings.local.json"]),
];

/// The scratch patterns of `agent` (empty for agents that leave nothing behind).
pub fn scratch_patterns(agent: AgentType) -> &'static [&'static str] {
    AGENT_SCRATCH
        .iter()
        .find(|(a, _)| *a == agent)
        .map(|(_, p)| *p)
        .unwrap_or(&[])
}

/// Where git keeps the repository `workdir` is in, and `workdir`'s path below the top level
/// (`""` or `sub/dir/`). `None` when `workdir` is not inside a git working tree.
fn repo_of(workdir: &Path) -> Option<(PathBuf, String)> {
    let out = Command::new("git")
        .arg("-C")
        .arg(workdir)
        .args([
            "rev-parse",
            "--path-format=absolute",
            "--git-common-dir",
            "--show-prefix",
        ])
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let mut lines = text.lines();
    let common = PathBuf::from(lines.next()?.trim());
    let prefix = lines.next().unwrap_or("").trim().to_string();
    Some((common, prefix))
}

/// Adds `patterns` (relative to `workdir`, `*` allowed) to the `info/exclude` of the repository
/// `workdir` belongs to, each anchored (`/<prefix><pattern>`) and only once. Returns the exclude
/// file, or `None` when `workdir` is not in a git repository (nothing to protect).
pub fn exclude_in_repo(workdir: &Path, patterns: &[String]) -> Result<Option<PathBuf>> {
    let Some((common, prefix)) = repo_of(workdir) else {
        return Ok(None);
    };
    let info = common.join("info");
    let file = info.join("exclude");
    let io = |what: &str, e: std::io::Error| Error::Io {
        context: format!("{what} {}", file.display()),
        source: e,
    };
    std::fs::create_dir_all(&info).map_err(|e| io("creating the directory of", e))?;
    let current = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io("reading", e)),
    };
    let mut add = String::new();
    for p in patterns {
        let p = p.trim_start_matches("./").trim_start_matches('/');
        if p.is_empty() || p.contains(['\n', '\r']) || p.split('/').any(|s| s == "..") {
            return Err(Error::InvalidParameter(format!(
                "exclude pattern must be a relative path inside the workspace: {p:?}"
            )));
        }
        let line = format!("/{prefix}{p}");
        if !current.lines().any(|l| l.trim() == line) && !add.lines().any(|l| l == line) {
            add.push_str(&line);
            add.push('\n');
        }
    }
    if add.is_empty() {
        return Ok(Some(file));
    }
    if !current.is_empty() && !current.ends_with('\n') {
        add.insert(0, '\n');
    }
    // One append: agents spawned at once in worktrees of one clone share this file, and appends
    // never lose another's lines (at worst a line appears twice, which git ignores).
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
        .and_then(|mut f| f.write_all(add.as_bytes()))
        .map_err(|e| io("appending to", e))?;
    Ok(Some(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn scratch_patterns_are_per_agent() {
        assert_eq!(scratch_patterns(AgentType::Aider), &[".aider*"]);
        assert!(scratch_patterns(AgentType::Codex).is_empty());
    }

    #[test]
    fn worktrees_use_the_shared_exclude_file() {
        let tmp = std::env::temp_dir().join(format!(
            "ao-excludes-{}-{}",
            std::process::id(),
            crate::actions::new_id()
        ));
        let main = tmp.join("main");
        std::fs::create_dir_all(&main).unwrap();
        git(&main, &["init", "-q", "-b", "main"]);
        git(
            &main,
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "-q",
                "--allow-empty",
                "-m",
                "init",
            ],
        );
        let wt = tmp.join("wt");
        git(
            &main,
            &[
                "worktree",
                "add",
                "-q",
                "-b",
                "agent-1",
                wt.to_str().unwrap(),
            ],
        );
        assert!(wt.join(".git").is_file(), "a worktree's .git is a file");

        let pats = vec![".aider*".to_string(), "./.gemini/settings.json".to_string()];
        let file = exclude_in_repo(&wt, &pats).unwrap().unwrap();
        assert_eq!(
            file.canonicalize().unwrap(),
            main.join(".git/info/exclude").canonicalize().unwrap()
        );
        // Twice adds nothing new.
        exclude_in_repo(&wt, &pats).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with('/'))
                .collect::<Vec<_>>(),
            ["/.aider*", "/.gemini/settings.json"],
            "{text}"
        );

        // Git in the worktree sees neither file; a real change still shows.
        std::fs::write(wt.join(".aider.chat.history.md"), "chat").unwrap();
        std::fs::create_dir_all(wt.join(".aider.tags.cache.v4")).unwrap();
        std::fs::write(wt.join(".aider.tags.cache.v4/cache.db"), "x").unwrap();
        std::fs::create_dir_all(wt.join(".gemini")).unwrap();
        std::fs::write(wt.join(".gemini/settings.json"), "{}").unwrap();
        std::fs::write(wt.join("work.txt"), "work").unwrap();
        assert_eq!(
            git(&wt, &["status", "--porcelain", "--untracked-files=all"]),
            "?? work.txt\n"
        );

        // A subdirectory of a clone gets patterns anchored below it.
        std::fs::create_dir_all(main.join("pkg")).unwrap();
        exclude_in_repo(&main.join("pkg"), &[".aider*".into()]).unwrap();
        assert!(
            std::fs::read_to_string(&file)
                .unwrap()
                .lines()
                .any(|l| l == "/pkg/.aider*")
        );

        // Outside a repository there is nothing to do; escaping patterns are refused.
        let plain = tmp.join("plain");
        std::fs::create_dir_all(&plain).unwrap();
        assert_eq!(exclude_in_repo(&plain, &pats).unwrap(), None);
        assert!(exclude_in_repo(&wt, &["../x".into()]).is_err());
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
