//! Fixtures: a temporary directory, an isolated git environment, a bare remote seeded with `main`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use git_workspace_service::events::Event;
use git_workspace_service::forge::GitHubConfig;
use git_workspace_service::{GitConfig, Options, ServiceConfig, WorkspaceService};

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let mut b = [0u8; 8];
        getrandom_fill(&mut b);
        let name: String = b.iter().map(|x| format!("{x:02x}")).collect();
        let p = std::env::temp_dir().join(format!("gws-{tag}-{name}"));
        std::fs::create_dir_all(&p).unwrap();
        // Canonical, so path comparisons hold where the temp dir is a symlink (macOS).
        Self(p.canonicalize().unwrap())
    }
}

fn getrandom_fill(b: &mut [u8]) {
    // No extra dev-dependency: the clock and a counter are unique enough for temp names.
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        ^ (u64::from(std::process::id()) << 32)
        ^ N.fetch_add(1, Ordering::SeqCst)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    b.copy_from_slice(&t.to_le_bytes()[..b.len()]);
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An isolated world: HOME, a global git config file, a base directory for workspaces.
pub struct World {
    pub tmp: TempDir,
    pub home: PathBuf,
    pub global_config: PathBuf,
    pub base: PathBuf,
}

impl World {
    pub fn new(tag: &str) -> Self {
        let tmp = TempDir::new(tag);
        let home = tmp.0.join("home");
        std::fs::create_dir_all(&home).unwrap();
        let global_config = home.join(".gitconfig");
        std::fs::write(
            &global_config,
            "[init]\n\tdefaultBranch = main\n[protocol \"file\"]\n\tallow = always\n",
        )
        .unwrap();
        let base = tmp.0.join("workspaces");
        Self {
            home,
            global_config,
            base,
            tmp,
        }
    }

    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("HOME".into(), self.home.display().to_string()),
            (
                "XDG_CONFIG_HOME".into(),
                self.home.join(".config").display().to_string(),
            ),
            (
                "GIT_CONFIG_GLOBAL".into(),
                self.global_config.display().to_string(),
            ),
            ("GIT_CONFIG_NOSYSTEM".into(), "1".into()),
            // A CI machine's proxy must not capture git's requests to the loopback fake GitHub.
            ("no_proxy".into(), "127.0.0.1,localhost".into()),
            ("NO_PROXY".into(), "127.0.0.1,localhost".into()),
        ]
    }

    /// Runs git in `cwd` with the world's environment and a fixed identity; panics on failure.
    pub fn git(&self, cwd: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(cwd)
            .envs(self.env())
            .env("GIT_AUTHOR_NAME", "Fixture")
            .env("GIT_AUTHOR_EMAIL", "fixture@example.invalid")
            .env("GIT_COMMITTER_NAME", "Fixture")
            .env("GIT_COMMITTER_EMAIL", "fixture@example.invalid")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// A bare repository `<name>.git` whose `main` has one commit with README.md.
    pub fn bare_remote(&self, name: &str) -> PathBuf {
        let seed = self.tmp.0.join(format!("{name}-seed"));
        std::fs::create_dir_all(&seed).unwrap();
        self.git(&seed, &["init", "-q", "-b", "main"]);
        std::fs::write(seed.join("README.md"), "# fixture\n").unwrap();
        self.git(&seed, &["add", "README.md"]);
        self.git(&seed, &["commit", "-q", "-m", "initial"]);
        let bare = self.tmp.0.join(format!("{name}.git"));
        self.git(
            &self.tmp.0,
            &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
        );
        self.git(&seed, &["push", "-q", bare.to_str().unwrap(), "main"]);
        bare
    }

    /// Makes git fetch `url` from `target` (`url.<target>.insteadOf`), in the global config file.
    pub fn rewrite_url(&self, url: &str, target: &Path) {
        let mut cfg = std::fs::read_to_string(&self.global_config).unwrap();
        cfg.push_str(&format!(
            "[url \"file://{}\"]\n\tinsteadOf = {url}\n",
            target.display()
        ));
        std::fs::write(&self.global_config, cfg).unwrap();
    }

    pub fn config(&self, api_url: Option<&str>) -> ServiceConfig {
        let mut c = ServiceConfig::new(&self.base);
        c.git = GitConfig {
            program: "git".into(),
            env: self.env(),
        };
        c.github = match api_url {
            Some(u) => GitHubConfig::with_api_url(u),
            None => GitHubConfig::with_api_url("http://127.0.0.1:9"),
        };
        c
    }

    pub fn service(&self, api_url: Option<&str>) -> WorkspaceService {
        WorkspaceService::open_with(self.config(api_url), Options::default()).unwrap()
    }
}

/// Collects events and log lines of a service.
pub struct Recorder {
    pub events: Arc<Mutex<Vec<Event>>>,
    pub logs: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    pub fn attach(svc: &WorkspaceService) -> Self {
        let events = Arc::new(Mutex::new(Vec::new()));
        let logs = Arc::new(Mutex::new(Vec::new()));
        let e = events.clone();
        svc.events().subscribe(Box::new(move |ev| {
            e.lock().unwrap().push(ev.clone());
            Ok(())
        }));
        let l = logs.clone();
        svc.events().on_log(Box::new(move |line| {
            l.lock().unwrap().push(line.to_owned())
        }));
        Self { events, logs }
    }

    pub fn kinds(&self) -> Vec<&'static str> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.kind.as_str())
            .collect()
    }
}

/// Every file under `dir` (following no symlinks), as (path, bytes).
pub fn walk(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() {
                out.push((p.clone(), std::fs::read(&p).unwrap_or_default()));
            }
        }
    }
    out
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}
