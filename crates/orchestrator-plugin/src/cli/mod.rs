//! One module per subcommand; each has clap `Args` and a `run` returning the exit status.

/// Prints to standard output like `print!`, but a reader that went away (`… | head`) ends the
/// process quietly with status 0 instead of a panic, and any other write error ends it with
/// status 1 and a message (see [`write_stdout`]).
macro_rules! out {
    ($($t:tt)*) => { $crate::cli::write_stdout(format_args!($($t)*)) };
}

/// [`out!`] with a line end.
macro_rules! outln {
    ($($t:tt)*) => { $crate::cli::write_stdout(format_args!("{}\n", format_args!($($t)*))) };
}

pub mod agents;
pub mod explain;
pub mod mcp;
pub mod run;
pub mod serve;
pub mod workspace;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use orchestrator_plugin::scratch::{ScratchConfig, ScratchStore, system_clock};
use orchestrator_plugin::services::{GitWorkspaces, ManagedPty};
use orchestrator_plugin::settings::{PtyServiceConfig, WorkspaceConfig};
use orchestrator_plugin::supervision::{Coordinator, Level, QueuedObserver};
use orchestrator_plugin::{SettingsStore, StandaloneRuntime};

/// The concrete services of the binary, for subcommands that need more than the traits.
pub struct Services {
    /// Settings as loaded.
    pub settings: SettingsStore,
    /// `PTY_SERVICE`, if it started.
    pub pty: Option<Arc<ManagedPty>>,
    /// `CODING_WORKSPACE_SERVICE`, if it opened.
    pub workspace: Option<Arc<GitWorkspaces>>,
    /// Workspace settings.
    pub ws_config: WorkspaceConfig,
}

/// Loads settings from the environment and the YAML file named by `--config` or
/// `AGENT_ORCHESTRATOR_CONFIG`, and starts the PTY service over `pty-manager` and the workspace
/// service over `git-workspace-service`. A service that cannot start is left out (its actions then
/// say it is not available) and the reason goes to `sink`.
pub fn start_services(
    config: Option<&Path>,
    sink: Arc<dyn Fn(&str) + Send + Sync>,
) -> orchestrator_plugin::Result<Services> {
    let from_env = std::env::var_os("AGENT_ORCHESTRATOR_CONFIG").map(PathBuf::from);
    let file = config.map(Path::to_path_buf).or(from_env);
    let settings = SettingsStore::load(std::env::vars(), file.as_deref())?;
    let pty_config = PtyServiceConfig::from_settings(&|k| settings.get(k))?;
    let home = settings.get("HOME").map(PathBuf::from);
    let ws_config = WorkspaceConfig::from_settings(&|k| settings.get(k), home.as_deref())?;
    let s = sink.clone();
    let pty = match ManagedPty::start(pty_config, move |t| s(t)) {
        Ok(p) => Some(Arc::new(p)),
        Err(e) => {
            sink(&format!("PTY service unavailable: {e}"));
            None
        }
    };
    let api_url = settings.get("GITHUB_API_URL");
    let oauth = settings.get("GITHUB_OAUTH_CLIENT_ID");
    let workspace = match GitWorkspaces::open_with_oauth(&ws_config, api_url.as_deref(), oauth) {
        Ok(w) => Some(Arc::new(w)),
        Err(e) => {
            sink(&format!("workspace service unavailable: {e}"));
            None
        }
    };
    Ok(Services {
        settings,
        pty,
        workspace,
        ws_config,
    })
}

/// The standalone runtime of the binary over [`start_services`]. When a model is configured a
/// supervision coordinator runs too (level `autonomous`, or `ORCHESTRATOR_SUPERVISION_LEVEL`); it
/// receives every supervised session's events. Without a model, sessions report in chat instead.
pub fn build_runtime(
    config: Option<&Path>,
    sink: impl Fn(&str) + Send + Sync + 'static,
) -> orchestrator_plugin::Result<(Arc<StandaloneRuntime>, Option<Arc<Coordinator>>)> {
    let sink: Arc<dyn Fn(&str) + Send + Sync> = Arc::new(sink);
    let services = start_services(config, sink.clone())?;
    let level = services
        .settings
        .get("ORCHESTRATOR_SUPERVISION_LEVEL")
        .and_then(|l| Level::parse(&l))
        .unwrap_or_default();
    let scratch = scratch_store(&services.settings, &services.ws_config)?;
    let mut runtime = StandaloneRuntime::new(services.settings)?.with_scratch(scratch.clone());
    if let Some(p) = services.pty.clone() {
        start_scratch_sweeper(&scratch, p.clone(), sink.clone());
        runtime = runtime.with_pty(p);
    }
    if let Some(w) = services.workspace {
        if let Some(p) = &services.pty {
            start_workspace_expiry(
                &w,
                p.clone(),
                services.ws_config.workspace_ttl_ms,
                sink.clone(),
            );
        }
        runtime = runtime.with_workspace(w);
    }
    let sink_for_errors = sink.clone();
    let runtime = Arc::new(runtime.with_reply_sink(move |t| sink(t)));
    let coordinator = match (&services.pty, runtime.has_model()) {
        (Some(pty), true) => {
            let c = Arc::new(Coordinator::new(runtime.clone(), level, || {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or(0)
            }));
            match QueuedObserver::start(c.clone()) {
                Ok(q) => pty.set_event_sink(Arc::new(q)),
                Err(e) => sink_for_errors(&format!("supervision not started: {e}")),
            }
            install_classifier(pty, &runtime, sink_for_errors.clone());
            Some(c)
        }
        _ => None,
    };
    Ok((runtime, coordinator))
}

/// The plugin's HTTP API over an existing manager, for mounting on the console server that
/// `serve` starts (same manager, so the dashboard and the API see the same sessions). The
/// coordinator runs when a model is configured. Failures are reported through `sink` and leave
/// the service out (its routes then answer 503). Also returns the PTY service behind the routes:
/// hook tokens live there, so sessions whose hooks the API should accept must be started with it.
/// And the runtime behind both, whose settings say where sessions may be started.
pub fn api_routes(
    manager: Arc<pty_manager::PtyManager>,
    sink: Arc<dyn Fn(&str) + Send + Sync>,
) -> orchestrator_plugin::Result<ApiParts> {
    let from_env = std::env::var_os("AGENT_ORCHESTRATOR_CONFIG").map(PathBuf::from);
    let settings = SettingsStore::load(std::env::vars(), from_env.as_deref())?;
    let pty_config = PtyServiceConfig::from_settings(&|k| settings.get(k))?;
    let home = settings.get("HOME").map(PathBuf::from);
    let ws_config = WorkspaceConfig::from_settings(&|k| settings.get(k), home.as_deref())?;
    let s = sink.clone();
    let pty = Arc::new(ManagedPty::with_manager(manager, pty_config, move |t| {
        s(t)
    })?);
    let api_url = settings.get("GITHUB_API_URL");
    let level = settings
        .get("ORCHESTRATOR_SUPERVISION_LEVEL")
        .and_then(|l| Level::parse(&l))
        .unwrap_or_default();
    let oauth = settings.get("GITHUB_OAUTH_CLIENT_ID");
    let scratch = scratch_store(&settings, &ws_config)?;
    start_scratch_sweeper(&scratch, pty.clone(), sink.clone());
    let mut runtime = StandaloneRuntime::new(settings)?
        .with_pty(pty.clone())
        .with_scratch(scratch);
    match GitWorkspaces::open_with_oauth(&ws_config, api_url.as_deref(), oauth) {
        Ok(w) => {
            let w = Arc::new(w);
            start_workspace_expiry(&w, pty.clone(), ws_config.workspace_ttl_ms, sink.clone());
            runtime = runtime.with_workspace(w);
        }
        Err(e) => sink(&format!("workspace service unavailable: {e}")),
    }
    let s = sink.clone();
    let runtime = Arc::new(runtime.with_reply_sink(move |t| s(t)));
    let coordinator = runtime.has_model().then(|| {
        let c = Arc::new(Coordinator::new(runtime.clone(), level, || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0)
        }));
        match QueuedObserver::start(c.clone()) {
            Ok(q) => pty.set_event_sink(Arc::new(q)),
            Err(e) => sink(&format!("supervision not started: {e}")),
        }
        install_classifier(&pty, &runtime, sink.clone());
        c
    });
    let routes: Arc<dyn pty_console::Routes> = Arc::new(
        orchestrator_plugin::http_api::HttpApi::new(runtime.clone(), coordinator),
    );
    Ok(ApiParts {
        routes,
        pty,
        runtime,
    })
}

/// What [`api_routes`] builds.
pub struct ApiParts {
    /// The HTTP API's routes.
    pub routes: Arc<dyn pty_console::Routes>,
    /// The PTY service behind them.
    pub pty: Arc<ManagedPty>,
    /// The runtime behind them (settings, services).
    pub runtime: Arc<dyn orchestrator_plugin::runtime::Runtime>,
}

/// The scratch workspace records under the workspace base directory, with the retention
/// settings (an invalid one is an error).
fn scratch_store(
    settings: &SettingsStore,
    ws_config: &WorkspaceConfig,
) -> orchestrator_plugin::Result<Arc<ScratchStore>> {
    let config = ScratchConfig::from_settings(&|k| settings.get(k), &ws_config.base_dir)?;
    Ok(Arc::new(ScratchStore::new(config, system_clock)))
}

/// Applies the scratch retention every 30 s (ended tasks, expired decisions).
fn start_scratch_sweeper(
    scratch: &Arc<ScratchStore>,
    pty: Arc<ManagedPty>,
    sink: Arc<dyn Fn(&str) + Send + Sync>,
) {
    let started =
        ScratchStore::start_sweeper(scratch, pty, std::time::Duration::from_secs(30), move |e| {
            sink(e)
        });
    if let Err(e) = started {
        eprintln!("scratch retention not started: {e}");
    }
}

/// `workspaceTtlMs` (0 = never): every 10 minutes, expired workspaces that no live session works
/// in are cleaned up without force (work that is not committed and pushed is never removed).
fn start_workspace_expiry(
    ws: &Arc<GitWorkspaces>,
    pty: Arc<ManagedPty>,
    ttl_ms: u64,
    sink: Arc<dyn Fn(&str) + Send + Sync>,
) {
    use orchestrator_plugin::services::PtyService;
    if ttl_ms == 0 {
        return;
    }
    let weak = Arc::downgrade(ws);
    let started = std::thread::Builder::new()
        .name("workspace-expiry".into())
        .spawn(move || {
            loop {
                std::thread::sleep(std::time::Duration::from_secs(600));
                let Some(ws) = weak.upgrade() else { return };
                let live: Vec<PathBuf> = pty
                    .list_sessions()
                    .into_iter()
                    .filter(|s| s.status.is_live())
                    .map(|s| s.workdir)
                    .collect();
                let in_use = |p: &Path| {
                    let real = p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
                    live.iter().any(|w| {
                        w.starts_with(p) || w.canonicalize().is_ok_and(|w| w.starts_with(&real))
                    })
                };
                for (id, r) in ws.sweep_expired(ttl_ms, system_clock(), &in_use) {
                    if let Ok(true) = r {
                        sink(&format!(
                            "workspace {id} expired (workspaceTtlMs) and was removed"
                        ));
                    }
                }
            }
        });
    if let Err(e) = started {
        eprintln!("workspace expiry not started: {e}");
    }
}

/// Installs the model-backed stall classifier on the PTY service's manager.
fn install_classifier(
    pty: &ManagedPty,
    runtime: &Arc<StandaloneRuntime>,
    sink: Arc<dyn Fn(&str) + Send + Sync>,
) {
    let rt: Arc<dyn orchestrator_plugin::Runtime> = runtime.clone();
    let classifier =
        orchestrator_plugin::supervision::classifier::ModelClassifier::new(Arc::downgrade(&rt));
    if let Err(e) = pty.manager().set_classifier(Arc::new(classifier)) {
        sink(&format!("stall classifier not installed: {e}"));
    }
}

/// Writes to standard output and flushes. The one-shot subcommands print through this (via
/// `out!`/`outln!`): `println!` panics when the reader has closed the pipe.
pub fn write_stdout(text: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let written = stdout.write_fmt(text).and_then(|()| stdout.flush());
    if let Err(e) = written {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("agent-orchestrator: writing to standard output failed: {e}");
        std::process::exit(1);
    }
}
