//! The environment a session's program starts with (BEHAVIOR.md §6.1).
//!
//! Built from nothing: an allow-list of the parent's variables, then what the adapter and the caller
//! set, then the forced terminal variables. Secrets in the parent's environment stay there unless a
//! caller names them.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};

/// Parent variables passed through by default.
pub const PASS_THROUGH: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "LC_MESSAGES",
    "TZ",
    "TMPDIR",
    "XDG_RUNTIME_DIR",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_CACHE_HOME",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
];

/// Variables never passed on: they describe the parent's terminal, not the session's.
pub const ALWAYS_REMOVED: &[&str] = &[
    "TMUX",
    "TMUX_PANE",
    "STY",
    "WINDOW",
    "WINDOWID",
    "TERMCAP",
    "COLUMNS",
    "LINES",
];

/// Builds the child's environment.
///
/// `parent` is the parent environment (`std::env::vars_os()` in production), `pass_through` extra
/// parent names to keep, `set` the adapter's then the caller's variables (later wins), `inherit`
/// opts into the whole parent environment.
pub fn build(
    parent: impl IntoIterator<Item = (OsString, OsString)>,
    inherit: bool,
    pass_through: &[String],
    set: &[(String, String)],
    session_id: &str,
) -> BTreeMap<OsString, OsString> {
    let mut env = BTreeMap::new();
    for (k, v) in parent {
        let keep = inherit
            || k.to_str().is_some_and(|name| {
                PASS_THROUGH.contains(&name) || pass_through.iter().any(|p| p == name)
            });
        if keep {
            env.insert(k, v);
        }
    }
    for (k, v) in set {
        env.insert(OsString::from(k), OsString::from(v));
    }
    for name in ALWAYS_REMOVED {
        env.remove(OsStr::new(name));
    }
    env.insert("TERM".into(), "xterm-256color".into());
    env.insert("COLORTERM".into(), "truecolor".into());
    env.insert("PARALLAX_SESSION_ID".into(), session_id.into());
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parent() -> Vec<(OsString, OsString)> {
        [
            ("PATH", "/bin"),
            ("HOME", "/h"),
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
            ("GITHUB_TOKEN", "ghp"),
            ("TMUX", "/tmp/t"),
            ("COLUMNS", "80"),
            ("TERM", "screen"),
            ("LC_ALL", "C.UTF-8"),
        ]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect()
    }

    fn get<'a>(env: &'a BTreeMap<OsString, OsString>, k: &str) -> Option<&'a str> {
        env.get(OsStr::new(k)).and_then(|v| v.to_str())
    }

    #[test]
    fn allow_list_only_by_default() {
        let env = build(parent(), false, &[], &[], "s1");
        assert_eq!(get(&env, "PATH"), Some("/bin"));
        assert_eq!(get(&env, "LC_ALL"), Some("C.UTF-8"));
        assert_eq!(get(&env, "AWS_SECRET_ACCESS_KEY"), None);
        assert_eq!(get(&env, "GITHUB_TOKEN"), None);
        assert_eq!(get(&env, "TERM"), Some("xterm-256color"));
        assert_eq!(get(&env, "COLORTERM"), Some("truecolor"));
        assert_eq!(get(&env, "PARALLAX_SESSION_ID"), Some("s1"));
    }

    #[test]
    fn caller_names_and_sets() {
        let env = build(
            parent(),
            false,
            &["GITHUB_TOKEN".into()],
            &[("PATH".into(), "/x".into()), ("MODEL".into(), "m".into())],
            "s1",
        );
        assert_eq!(get(&env, "GITHUB_TOKEN"), Some("ghp"));
        assert_eq!(get(&env, "PATH"), Some("/x"));
        assert_eq!(get(&env, "MODEL"), Some("m"));
    }

    #[test]
    fn inherit_keeps_all_but_terminal_leaks() {
        let env = build(
            parent(),
            true,
            &[],
            &[("TERM".into(), "dumb".into()), ("LINES".into(), "5".into())],
            "s1",
        );
        assert_eq!(get(&env, "AWS_SECRET_ACCESS_KEY"), Some("s3cr3t"));
        assert_eq!(get(&env, "TMUX"), None);
        assert_eq!(get(&env, "COLUMNS"), None);
        assert_eq!(get(&env, "LINES"), None);
        assert_eq!(get(&env, "TERM"), Some("xterm-256color"));
    }
}
