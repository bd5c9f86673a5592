//! Helpers shared by the handlers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::Error;
use crate::runtime::{Runtime, RuntimeExt};
use crate::services::{PtyService, SessionInfo, WorkspaceInfo, WorkspaceService};
use crate::settings::WorkspaceConfig;

use super::ActionContext;

const FORGES: [&str; 3] = ["github.com", "gitlab.com", "bitbucket.org"];

/// The first `https://(github.com|gitlab.com|bitbucket.org)/owner/repo` in `text`, without a
/// trailing `.git`, slash or punctuation.
pub fn first_forge_url(text: &str) -> Option<String> {
    for word in text.split_whitespace() {
        let w = word.trim_matches(|c: char| {
            matches!(
                c,
                '<' | '>' | '(' | ')' | '"' | '\'' | ',' | '.' | ';' | '`'
            )
        });
        let Some(rest) = w.strip_prefix("https://") else {
            continue;
        };
        let mut parts = rest.split('/');
        let (Some(host), Some(owner), Some(repo)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let repo = repo.trim_end_matches(".git");
        let ok = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if FORGES.contains(&host) && ok(owner) && ok(repo) {
            return Some(format!("https://{host}/{owner}/{repo}"));
        }
    }
    None
}

const STOP_WORDS: [&str; 7] = ["the", "and", "for", "with", "that", "this", "from"];

/// `<repo name>/<first 3 words>` or `scratch/<words>`: lower-case, `[^a-z0-9\s-]` removed,
/// words longer than 2 chars that are not stop words.
pub fn make_label(repo: Option<&str>, task: &str) -> String {
    let cleaned: String = task
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c.is_whitespace() || *c == '-')
        .collect();
    let words: Vec<&str> = cleaned
        .split_whitespace()
        .filter(|w| w.len() > 2 && !STOP_WORDS.contains(w))
        .take(3)
        .collect();
    let tail = if words.is_empty() {
        "task".to_string()
    } else {
        words.join("-")
    };
    match repo {
        Some(r) => {
            let name = r
                .trim_end_matches('/')
                .trim_end_matches(".git")
                .rsplit(['/', ':'])
                .next()
                .unwrap_or(r);
            format!("{name}/{tail}")
        }
        None => format!("scratch/{tail}"),
    }
}

/// A random UUID v4 from the OS's random source.
pub fn uuid_v4() -> String {
    use std::io::Read;
    let mut b = [0u8; 16];
    let filled = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok();
    if !filled {
        // No /dev/urandom: time and pid still make a unique directory name on this machine.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b[..16].copy_from_slice(&(t ^ ((std::process::id() as u128) << 64)).to_le_bytes());
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The workspace configuration, with `~` expanded from `HOME` as the runtime reports it.
pub fn workspace_config(rt: &dyn Runtime) -> Result<WorkspaceConfig, Error> {
    let home = rt.get_setting("HOME").map(PathBuf::from);
    WorkspaceConfig::from_settings(&|k| rt.get_setting(k), home.as_deref())
}

/// Roots a spawn's workdir must lie in: the workspace base dir and the process's cwd, resolved.
pub fn allowed_roots(rt: &dyn Runtime) -> Vec<PathBuf> {
    let mut roots = Vec::new();
    if let Ok(c) = workspace_config(rt) {
        roots.push(c.base_dir.canonicalize().unwrap_or(c.base_dir));
    }
    if let Ok(cwd) = std::env::current_dir() {
        roots.push(cwd.canonicalize().unwrap_or(cwd));
    }
    roots
}

/// Whether `path`'s real path lies inside one of `roots` (symlinks resolved, so `..` and links
/// cannot step out).
pub fn inside_roots(path: &Path, roots: &[PathBuf]) -> bool {
    match path.canonicalize() {
        Ok(real) => roots.iter().any(|r| real.starts_with(r)),
        Err(_) => false,
    }
}

/// The session a call means: parameter, then the conversation's current one, then the most
/// recent live one.
pub fn default_session(
    ctx: &ActionContext<'_>,
    pty: &Arc<dyn PtyService>,
) -> Option<Result<SessionInfo, String>> {
    if let Some(id) = ctx.str_param("sessionId") {
        return Some(pty.get_session(&id).ok_or(id));
    }
    if let Some(id) = ctx.memory.session(&ctx.message.room_id)
        && let Some(s) = pty.get_session(&id).filter(|s| s.status.is_live())
    {
        return Some(Ok(s));
    }
    pty.list_sessions()
        .into_iter()
        .filter(|s| s.status.is_live())
        .max_by_key(|s| s.created_at_ms)
        .map(Ok)
}

/// The workspace a call means: parameter, then the conversation's current one, then the most
/// recent (BEHAVIOR.md §10.2; the service lists oldest first).
pub fn default_workspace(
    ctx: &ActionContext<'_>,
    ws: &Arc<dyn WorkspaceService>,
    param: &str,
) -> Option<Result<WorkspaceInfo, String>> {
    if let Some(id) = ctx.str_param(param) {
        return Some(ws.get(&id).ok_or(id));
    }
    if let Some(w) = ctx
        .memory
        .workspace(&ctx.message.room_id)
        .and_then(|id| ws.get(&id))
    {
        return Some(Ok(w));
    }
    ws.list().into_iter().last().map(Ok)
}

/// The PTY service, for handlers that already checked it in their first line.
pub fn pty(ctx: &ActionContext<'_>) -> Option<Arc<dyn PtyService>> {
    ctx.runtime.pty()
}

/// The text of a spawn failure: the install hint for a missing CLI, else `<prefix><err>`.
pub fn spawn_failure(err: &Error, prefix: &str) -> String {
    match err {
        Error::AgentNotInstalled {
            display_name,
            install_command,
            docs_url,
        } => format!(
            "{display_name} CLI is not installed.\nInstall with: {install_command}\nDocs: {docs_url}"
        ),
        other => format!("{prefix}{other}"),
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forge_urls_are_found_in_text() {
        let table = [
            (
                "fix https://github.com/acme/app.git please",
                Some("https://github.com/acme/app"),
            ),
            (
                "see (https://gitlab.com/a/b).",
                Some("https://gitlab.com/a/b"),
            ),
            (
                "https://example.com/a/b and https://bitbucket.org/x/y",
                Some("https://bitbucket.org/x/y"),
            ),
            ("https://github.com/acme", None),
            ("no url", None),
        ];
        for (t, want) in table {
            assert_eq!(first_forge_url(t).as_deref(), want, "{t}");
        }
    }

    #[test]
    fn labels_follow_the_word_rules() {
        let table = [
            (
                Some("https://github.com/acme/app"),
                "Fix the login bug in auth",
                "app/fix-login-bug",
            ),
            (
                None,
                "Add a test for the parser!",
                "scratch/add-test-parser",
            ),
            (None, "do it", "scratch/task"),
            (
                Some("/tmp/remote.git"),
                "write README",
                "remote/write-readme",
            ),
        ];
        for (repo, task, want) in table {
            assert_eq!(make_label(repo, task), want);
        }
    }

    #[test]
    fn uuids_are_v4_shaped_and_distinct() {
        let a = uuid_v4();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert_ne!(a, uuid_v4());
    }
}
