//! Repository locations, parsed properly: the forge, the owner and the repository come from the
//! parsed host and path, never from a substring match.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// How git reaches a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// `https://host/path`.
    Https,
    /// `http://host/path` (loopback and test servers).
    Http,
    /// `ssh://[user@]host[:port]/path` or scp-like `user@host:path`.
    Ssh,
    /// `file:///path` or a local path.
    Local,
}

/// The forge a host belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// GitHub.com or the configured GitHub Enterprise host.
    Github,
    /// Any other host, or a local repository.
    Unknown,
}

/// A parsed repository location.
///
/// ```
/// use git_workspace_service::{RepoUrl, Transport};
///
/// let r = RepoUrl::parse("git@github.com:octo/hello.git", "github.com").unwrap();
/// assert_eq!(r.transport, Transport::Ssh);
/// assert_eq!(r.owner_repo(), Some(("octo".into(), "hello".into())));
/// let evil = RepoUrl::parse("https://evil.example/github.com/x", "github.com").unwrap();
/// assert_eq!(evil.host.as_deref(), Some("evil.example"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RepoUrl {
    /// What git is given (an `owner/repo` shorthand is expanded; a local path is absolute).
    pub url: String,
    /// How git reaches it.
    pub transport: Transport,
    /// Lower-cased host, `None` for local repositories.
    pub host: Option<String>,
    /// Port, if the URL names one.
    pub port: Option<u16>,
    /// The path on the host (or the local path), without a leading `/` for remote URLs.
    pub path: String,
}

impl RepoUrl {
    /// Parses `https://…`, `http://…`, `ssh://…`, `git@host:owner/repo`, `file://…`, an absolute
    /// path, a relative path starting with `./` or `../` (made absolute against the current
    /// directory), or `owner/repo` (→ `https://<forge_host>/owner/repo.git`).
    pub fn parse(input: &str, forge_host: &str) -> Result<Self> {
        let invalid = |why: &str| Error::InvalidRepo {
            repo: without_userinfo(input),
            reason: why.to_owned(),
        };
        if input.is_empty() {
            return Err(invalid("it is empty"));
        }
        if input.starts_with('-') {
            return Err(invalid("it starts with '-'"));
        }
        if input.chars().any(|c| c.is_control()) {
            return Err(invalid("it contains a control character"));
        }
        // `<transport>::<address>` makes git run a remote helper (`ext::` runs a command).
        if input.contains("::") {
            return Err(invalid(
                "remote-helper addresses (<transport>::<address>) are refused",
            ));
        }
        let lower = input.to_ascii_lowercase();
        for (scheme, transport) in [
            ("https://", Transport::Https),
            ("http://", Transport::Http),
            ("ssh://", Transport::Ssh),
        ] {
            if lower.starts_with(scheme) {
                return Self::parse_hierarchical(input, &input[scheme.len()..], transport)
                    .map_err(|why| invalid(&why));
            }
        }
        if lower.starts_with("file://") {
            let path = &input["file://".len()..];
            if !path.starts_with('/') {
                return Err(invalid("a file:// URL needs an absolute path"));
            }
            return Ok(Self::local(PathBuf::from(path), input.to_owned()));
        }
        if input.contains("://") {
            return Err(invalid("unsupported URL scheme"));
        }
        if input.starts_with('/') {
            return Ok(Self::local(PathBuf::from(input), input.to_owned()));
        }
        if input.starts_with("./") || input.starts_with("../") || input == "." || input == ".." {
            let cwd =
                std::env::current_dir().map_err(|_| invalid("the current directory is unknown"))?;
            let abs = cwd.join(input);
            let shown = abs.to_string_lossy().into_owned();
            return Ok(Self::local(abs, shown));
        }
        // scp-like `[user@]host:path`: a colon before any slash.
        if let Some((left, path)) = input.split_once(':')
            && !left.contains('/')
        {
            let host = left.rsplit_once('@').map_or(left, |(_, h)| h);
            if let Some((user, _)) = left.rsplit_once('@')
                && (user.is_empty() || !user.chars().all(is_user_char))
            {
                return Err(invalid("bad user name"));
            }
            if !valid_host(host) || path.is_empty() || path.starts_with('-') {
                return Err(invalid("bad host or path in scp-like address"));
            }
            return Ok(Self {
                url: input.to_owned(),
                transport: Transport::Ssh,
                host: Some(host.to_ascii_lowercase()),
                port: None,
                path: path.trim_start_matches('/').to_owned(),
            });
        }
        // `owner/repo` shorthand.
        let parts: Vec<&str> = input.split('/').collect();
        if parts.len() == 2 && parts.iter().all(|p| valid_name(p)) {
            let repo = parts[1].strip_suffix(".git").unwrap_or(parts[1]);
            let host = forge_host.to_ascii_lowercase();
            return Ok(Self {
                url: format!("https://{host}/{}/{repo}.git", parts[0]),
                transport: Transport::Https,
                host: Some(host),
                port: None,
                path: format!("{}/{repo}.git", parts[0]),
            });
        }
        Err(invalid(
            "expected a URL, an absolute path, ./path, or owner/repo",
        ))
    }

    fn local(path: PathBuf, url: String) -> Self {
        Self {
            path: path.to_string_lossy().into_owned(),
            url,
            transport: Transport::Local,
            host: None,
            port: None,
        }
    }

    fn parse_hierarchical(
        input: &str,
        rest: &str,
        transport: Transport,
    ) -> std::result::Result<Self, String> {
        let (authority, path) = rest.split_once('/').ok_or("no path")?;
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        if let Some(user) = userinfo {
            // Credentials never travel in a URL: they would land in `.git/config`.
            if transport != Transport::Ssh || user.contains(':') {
                return Err("credentials in the URL are refused; pass a token instead".into());
            }
            if user.is_empty() || !user.chars().all(is_user_char) {
                return Err("bad user name".into());
            }
        }
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p.parse::<u16>().map_err(|_| "bad port")?)),
            None => (hostport, None),
        };
        if !valid_host(host) {
            return Err("bad host".into());
        }
        let path = path.trim_end_matches('/');
        if path.is_empty() || path.starts_with('-') {
            return Err("no path".into());
        }
        if path.contains(['?', '#']) {
            return Err("query strings and fragments are not repository paths".into());
        }
        Ok(Self {
            url: input.to_owned(),
            transport,
            host: Some(host.to_ascii_lowercase()),
            port,
            path: path.to_owned(),
        })
    }

    /// The local path, for local repositories.
    pub fn local_path(&self) -> Option<&Path> {
        (self.transport == Transport::Local).then(|| Path::new(&self.path))
    }

    /// The forge of this repository, from its parsed host.
    pub fn provider(&self, forge_host: &str) -> Provider {
        match &self.host {
            Some(h) if h.eq_ignore_ascii_case(forge_host) => Provider::Github,
            _ => Provider::Unknown,
        }
    }

    /// `(owner, repo)` from a remote path `owner/repo(.git)`; `None` for local repositories or
    /// deeper paths.
    pub fn owner_repo(&self) -> Option<(String, String)> {
        self.host.as_ref()?;
        let path = self.path.strip_suffix(".git").unwrap_or(&self.path);
        let (owner, repo) = path.split_once('/')?;
        (valid_name(owner) && valid_name(repo)).then(|| (owner.to_owned(), repo.to_owned()))
    }

    /// A key that is equal for two spellings of the same repository (case of host, `.git`,
    /// trailing slash, ssh or https to the same host and path).
    pub fn identity(&self) -> String {
        match &self.host {
            Some(h) => {
                let p = self.path.trim_end_matches('/');
                let p = p.strip_suffix(".git").unwrap_or(p);
                format!("{h}/{}", p.to_ascii_lowercase())
            }
            None => {
                let p = Path::new(&self.path);
                let p = p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
                format!("local:{}", p.display())
            }
        }
    }

    /// `<scheme>://<host>[:port]/` for the credential header's URL match: the header is only sent
    /// to this origin. `None` for SSH and local repositories, and for plain HTTP to anything
    /// but this machine: no credential is ever sent in clear over the network.
    pub fn http_origin(&self) -> Option<String> {
        let host = self.host.as_ref()?;
        let scheme = match self.transport {
            Transport::Https => "https",
            // A credential goes over plain HTTP to this machine only (test servers): anywhere
            // else it would cross the network in clear before any redirect to HTTPS.
            Transport::Http if is_loopback(host) => "http",
            _ => return None,
        };
        Some(match self.port {
            Some(p) => format!("{scheme}://{host}:{p}/"),
            None => format!("{scheme}://{host}/"),
        })
    }
}

/// Whether `host` names this machine (`localhost`, `127.x.x.x`, `::1`).
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `scheme://user:secret@host/…` → `scheme://[redacted]@host/…`, so a refused URL that carried a
/// credential can be shown in an error without the credential.
///
/// The userinfo ends at the last `@` (a password may hold `/`, which ended it before and showed
/// the rest of the password), and a query or fragment (`?access_token=…`) is not shown at all.
fn without_userinfo(input: &str) -> String {
    let (main, query) = match input.find(['?', '#']) {
        Some(i) => (&input[..i], format!("?{}", crate::REDACTED)),
        None => (input, String::new()),
    };
    let Some((scheme, rest)) = main.split_once("://") else {
        return format!("{main}{query}");
    };
    match rest.rfind('@') {
        Some(at) => format!("{scheme}://{}{}{query}", crate::REDACTED, &rest[at..]),
        None => format!("{main}{query}"),
    }
}

fn is_user_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && !host.starts_with(['-', '.'])
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '[' | ']' | ':'))
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(['.', '-'])
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::type_complexity)]
    fn table() {
        let gh = "github.com";
        let ok: &[(&str, Transport, Option<&str>, Option<(&str, &str)>)] = &[
            (
                "https://github.com/o/r.git",
                Transport::Https,
                Some("github.com"),
                Some(("o", "r")),
            ),
            (
                "https://GitHub.com/o/r",
                Transport::Https,
                Some("github.com"),
                Some(("o", "r")),
            ),
            (
                "http://127.0.0.1:8080/o/r",
                Transport::Http,
                Some("127.0.0.1"),
                Some(("o", "r")),
            ),
            (
                "ssh://git@github.com/o/r.git",
                Transport::Ssh,
                Some("github.com"),
                Some(("o", "r")),
            ),
            (
                "ssh://git@host:2222/o/r.git",
                Transport::Ssh,
                Some("host"),
                Some(("o", "r")),
            ),
            (
                "git@github.com:o/r.git",
                Transport::Ssh,
                Some("github.com"),
                Some(("o", "r")),
            ),
            (
                "o/r",
                Transport::Https,
                Some("github.com"),
                Some(("o", "r")),
            ),
            ("/srv/git/r.git", Transport::Local, None, None),
            ("file:///srv/git/r.git", Transport::Local, None, None),
            (
                "https://evil.example/github.com/x",
                Transport::Https,
                Some("evil.example"),
                Some(("github.com", "x")),
            ),
        ];
        for (input, transport, host, owner_repo) in ok {
            let r = RepoUrl::parse(input, gh).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.transport, *transport, "{input}");
            assert_eq!(r.host.as_deref(), *host, "{input}");
            assert_eq!(
                r.owner_repo(),
                owner_repo.map(|(o, r)| (o.to_string(), r.to_string())),
                "{input}"
            );
        }
        assert_eq!(
            RepoUrl::parse("o/r", gh).unwrap().url,
            "https://github.com/o/r.git"
        );
        let bad = [
            "",
            "--upload-pack=touch /tmp/pwned",
            "-x",
            "https://user:tok@github.com/o/r",
            "https://tok@github.com/o/r",
            "x; touch /tmp/pwned",
            "ftp://h/x",
            "https://github.com/",
            "https://github.com/o/r\n",
            "git@github.com:-oProxyCommand=x",
            "ssh://-oProxyCommand=x/r",
            "file://relative",
            "ext::sh -c touch% /tmp/pwned",
            "fd::17",
        ];
        for input in bad {
            assert!(RepoUrl::parse(input, gh).is_err(), "{input:?}");
        }
    }

    #[test]
    fn refused_credentials_are_not_echoed() {
        let e = RepoUrl::parse(
            "https://x-access-token:ghp_secret99@github.com/o/r",
            "github.com",
        )
        .unwrap_err();
        let shown = e.to_string();
        assert!(!shown.contains("ghp_secret99"), "{shown}");
        assert!(
            shown.contains("https://[redacted]@github.com/o/r"),
            "{shown}"
        );
        for (url, secret) in [
            ("https://u:pa/ss@github.com/o/r", "ss@"),
            ("https://github.com/o/r?access_token=ghp_q55", "ghp_q55"),
            ("https://github.com/o/r#ghp_f66", "ghp_f66"),
        ] {
            let shown = RepoUrl::parse(url, "github.com").unwrap_err().to_string();
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn credentials_never_go_over_plain_http_off_this_machine() {
        let origin = |s: &str| RepoUrl::parse(s, "github.com").unwrap().http_origin();
        assert_eq!(
            origin("https://github.com/o/r").as_deref(),
            Some("https://github.com/")
        );
        assert_eq!(origin("http://github.com/o/r"), None);
        assert_eq!(origin("http://10.0.0.5:8080/o/r"), None);
        assert_eq!(
            origin("http://127.0.0.1:8080/o/r").as_deref(),
            Some("http://127.0.0.1:8080/")
        );
        assert_eq!(
            origin("http://localhost/o/r").as_deref(),
            Some("http://localhost/")
        );
        assert_eq!(origin("git@github.com:o/r"), None);
    }

    #[test]
    fn provider_by_parsed_host_only() {
        let gh = "github.com";
        let p = |s: &str| RepoUrl::parse(s, gh).unwrap().provider(gh);
        assert_eq!(p("https://github.com/o/r"), Provider::Github);
        assert_eq!(p("git@github.com:o/r"), Provider::Github);
        assert_eq!(p("https://evil.example/github.com/x"), Provider::Unknown);
        assert_eq!(p("https://github.com.evil.example/o/r"), Provider::Unknown);
        assert_eq!(p("/srv/github.com/r"), Provider::Unknown);
    }

    #[test]
    fn identity_ignores_spelling() {
        let gh = "github.com";
        let a = RepoUrl::parse("https://GitHub.com/O/R.git", gh).unwrap();
        let b = RepoUrl::parse("git@github.com:o/r", gh).unwrap();
        assert_eq!(a.identity(), b.identity());
        assert_eq!(a.http_origin().as_deref(), Some("https://github.com/"));
    }
}
