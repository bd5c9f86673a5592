//! `agent-orchestrator serve`: the session manager, the console server and the dashboard.
//!
//! Starts a [`PtyManager`], a [`Console`] over it and a [`ConsoleServer`] on `--bind` (loopback
//! unless `--allow-remote`), opens one shell session in the current directory so the dashboard is
//! never empty, and prints the dashboard's address with the access token. Works with no agent CLI
//! installed: the spawn form always offers the built-in shell agent, and every agent CLI preflight
//! found installed (started through the plugin's PTY service); the others are listed with their
//! install command.
//!
//! The token is never taken from the command line (an argv is readable by every local user): it
//! comes from `--token-file`, else `AGENT_ORCHESTRATOR_CONSOLE_TOKEN`, else it is random. It is
//! written to a 0600 file so local tools can use it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use coding_agent_adapters::Registry;
use coding_agent_adapters::preflight::{VERSION_TIMEOUT, preflight_all};
use orchestrator_plugin::actions::workdir_allowed;
use orchestrator_plugin::runtime::Runtime;
use orchestrator_plugin::services::{ManagedPty, PtyService, SpawnRequest as PluginSpawn};
use pty_console::{
    AccessToken, AgentChoice, Console, ConsoleServer, Launcher, ServerConfig, ShellLauncher,
    SpawnRequest,
};
use pty_manager::{PtyManager, SessionInfo};

/// The spawn form's agents: the shell agent, then each agent CLI with what preflight found.
/// Installed ones are started through the plugin's PTY service ([`ManagedPty`]), the same path
/// the `CREATE_CODING_AGENT` action takes (manifest, `plan_launch`, approval preset, config
/// files, task typed after ready); the others stay listed with their install command.
struct ServeLauncher {
    /// Filled by a background preflight (version commands can take seconds each).
    found: Arc<Mutex<Vec<AgentChoice>>>,
    /// Starts agent CLIs over the console's manager.
    pty: Option<Arc<ManagedPty>>,
    /// The runtime whose settings say where sessions may start (the workspace base directory
    /// and the working directory, as for SPAWN_CODING_AGENT and the HTTP API); `None` allows
    /// any directory (tests of the launcher alone).
    runtime: Option<Arc<dyn Runtime>>,
}

impl ServeLauncher {
    /// Starts preflight in the background (version commands as argv, 5 s timeout each); until it
    /// is done the list holds only the shell agent.
    fn new(pty: Option<Arc<ManagedPty>>, runtime: Option<Arc<dyn Runtime>>) -> Self {
        let found = Arc::new(Mutex::new(Vec::new()));
        let slot = found.clone();
        let can_start = pty.is_some();
        let spawned = std::thread::Builder::new()
            .name("serve-preflight".to_owned())
            .spawn(move || {
                let list = Self::preflight(can_start);
                *slot.lock().unwrap_or_else(|e| e.into_inner()) = list;
            });
        if let Err(e) = spawned {
            eprintln!("agent-orchestrator serve: could not start preflight: {e}");
        }
        ServeLauncher {
            found,
            pty,
            runtime,
        }
    }

    fn preflight(can_start: bool) -> Vec<AgentChoice> {
        match Registry::from_env() {
            Ok(registry) => {
                let path = std::env::var_os("PATH");
                preflight_all(&registry, path.as_deref(), VERSION_TIMEOUT)
                    .into_iter()
                    .map(|r| AgentChoice {
                        agent_type: r.agent.as_str().to_owned(),
                        label: r.name.clone(),
                        available: can_start && r.path.is_some(),
                        detail: match (&r.path, &r.version) {
                            (Some(p), v) if can_start => format!(
                                "{} at {}",
                                v.as_deref().unwrap_or("(version unknown)"),
                                p.display()
                            ),
                            (Some(p), _) => format!(
                                "found at {}, but the PTY service did not start (see the log)",
                                p.display()
                            ),
                            (None, _) => format!("not installed; install: {}", r.install_command),
                        },
                    })
                    .collect()
            }
            Err(e) => {
                eprintln!("agent-orchestrator serve: agent registry: {e}");
                Vec::new()
            }
        }
    }
}

/// The plugin's error as the console reports it: the caller's mistakes as bad requests (400),
/// anything else as a failed launch.
fn launch_error(agent: &str, e: orchestrator_plugin::Error) -> pty_console::Error {
    use orchestrator_plugin::Error as E;
    match e {
        E::UnknownAgentType(t) => pty_console::Error::UnknownAgent(t),
        E::InvalidParameter(_) | E::AgentNotInstalled { .. } | E::SessionLimit(_) => {
            pty_console::Error::BadRequest(e.to_string())
        }
        other => pty_console::Error::Launch {
            agent: agent.to_owned(),
            reason: other.to_string(),
        },
    }
}

impl Launcher for ServeLauncher {
    fn agents(&self) -> Vec<AgentChoice> {
        let mut all = vec![ShellLauncher::choice()];
        all.extend(
            self.found
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .cloned(),
        );
        all
    }

    fn launch(
        &self,
        manager: &Arc<PtyManager>,
        req: &SpawnRequest,
    ) -> pty_console::Result<SessionInfo> {
        if let Some(rt) = &self.runtime
            && !workdir_allowed(rt.as_ref(), &req.workdir)
        {
            return Err(pty_console::Error::BadRequest(format!(
                "workdir {} is outside of allowed directories (the workspace base directory \
                 and the server's working directory)",
                req.workdir.display()
            )));
        }
        if req.agent == "shell" {
            return ShellLauncher.launch(manager, req);
        }
        let Some(pty) = &self.pty else {
            return Err(pty_console::Error::Launch {
                agent: req.agent.clone(),
                reason: "the PTY service did not start (see the log)".to_owned(),
            });
        };
        let task = req.task.trim();
        let spawn = PluginSpawn {
            agent_type: req.agent.clone(),
            name: req.name.clone(),
            workdir: req.workdir.clone(),
            initial_task: (!task.is_empty()).then(|| task.to_owned()),
            memory_content: None,
            approval_preset: None,
            credentials: Vec::new(),
            model: None,
            supervised: false,
        };
        let started = pty
            .spawn_session(spawn)
            .map_err(|e| launch_error(&req.agent, e))?;
        Ok(manager.get(&started.id)?)
    }
}

/// A PTY service over the console's manager, with the settings `run` and `mcp` read (environment
/// and `AGENT_ORCHESTRATOR_CONFIG`); `serve` itself uses the one behind its HTTP API.
#[cfg(test)]
fn agent_service(manager: Arc<PtyManager>) -> Result<ManagedPty, String> {
    let file = std::env::var_os("AGENT_ORCHESTRATOR_CONFIG").map(PathBuf::from);
    let settings = orchestrator_plugin::SettingsStore::load(std::env::vars(), file.as_deref())
        .map_err(|e| e.to_string())?;
    let config =
        orchestrator_plugin::settings::PtyServiceConfig::from_settings(&|k| settings.get(k))
            .map_err(|e| e.to_string())?;
    ManagedPty::with_manager(manager, config, |t: &str| {
        eprintln!("agent-orchestrator serve: {t}")
    })
    .map_err(|e| e.to_string())
}

/// Arguments of `agent-orchestrator serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address of the dashboard, the HTTP API and the agents' hook endpoint; the WebSocket
    /// listens on the same IP, port `--ws-port`. Default: `127.0.0.1:<SERVER_PORT>` when the
    /// `SERVER_PORT` setting is set, else `127.0.0.1:7878`.
    #[arg(long)]
    pub bind: Option<SocketAddr>,
    /// Port of the terminals' WebSocket server (0 = any free port).
    #[arg(long, default_value_t = 0)]
    pub ws_port: u16,
    /// Read the access token from this file instead of making a random one.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Where to write the token (mode 0600). Default:
    /// `$XDG_STATE_HOME/agent-orchestrator/console-token` (or `~/.local/state/…`).
    #[arg(long)]
    pub write_token: Option<PathBuf>,
    /// Allow binding an address other than loopback. Anyone who can reach it and has the token
    /// can type into every session.
    #[arg(long)]
    pub allow_remote: bool,
    /// Do not open the initial shell session.
    #[arg(long)]
    pub no_shell: bool,
}

/// Runs the subcommand; returns only on a start-up error.
pub fn run(args: Args) -> ExitCode {
    match serve(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("agent-orchestrator serve: {e}");
            ExitCode::FAILURE
        }
    }
}

fn token_from(args: &Args) -> Result<Option<AccessToken>, String> {
    if let Some(path) = &args.token_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading the token file {}: {e}", path.display()))?;
        return AccessToken::from_config(text.trim())
            .map(Some)
            .map_err(|e| format!("token file {}: {e}", path.display()));
    }
    match std::env::var("AGENT_ORCHESTRATOR_CONSOLE_TOKEN") {
        Ok(t) if !t.is_empty() => AccessToken::from_config(t.trim())
            .map(Some)
            .map_err(|e| format!("AGENT_ORCHESTRATOR_CONSOLE_TOKEN: {e}")),
        _ => Ok(None),
    }
}

fn token_path(args: &Args) -> Option<PathBuf> {
    if let Some(p) = &args.write_token {
        return Some(p.clone());
    }
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(state.join("agent-orchestrator").join("console-token"))
}

/// The address to listen on: `--bind`, else loopback on `SERVER_PORT` (environment or the
/// configuration file), else loopback port 7878.
fn bind_address(args: &Args) -> Result<SocketAddr, String> {
    if let Some(b) = args.bind {
        return Ok(b);
    }
    let file = std::env::var_os("AGENT_ORCHESTRATOR_CONFIG").map(PathBuf::from);
    let settings = orchestrator_plugin::SettingsStore::load(std::env::vars(), file.as_deref())
        .map_err(|e| e.to_string())?;
    let port = match settings.get("SERVER_PORT").filter(|p| !p.trim().is_empty()) {
        None => 7878,
        Some(p) => p
            .trim()
            .parse::<u16>()
            .map_err(|_| format!("invalid setting SERVER_PORT: {p:?} is not a port number"))?,
    };
    Ok(SocketAddr::from(([127, 0, 0, 1], port)))
}

fn serve(mut args: Args) -> Result<(), String> {
    let token = token_from(&args)?;
    let bind = bind_address(&args)?;
    args.bind = Some(bind);
    if !bind.ip().is_loopback() {
        if !args.allow_remote {
            return Err(format!(
                "{bind} is not a loopback address; pass --allow-remote to bind it anyway"
            ));
        }
        eprintln!(
            "agent-orchestrator serve: WARNING: listening on {}, reachable from other machines; \
             anyone with the token can type into every session, and traffic is not encrypted",
            bind
        );
    }
    let manager = Arc::new(PtyManager::new().map_err(|e| format!("starting the manager: {e}"))?);
    // The plugin's HTTP API (BEHAVIOR.md §10.5) on the same server, token and sessions. Its PTY
    // service also starts the spawn form's agent CLIs, so their hook tokens are the ones the
    // hooks endpoint checks.
    let super::ApiParts {
        routes: api,
        pty,
        runtime,
    } = super::api_routes(
        manager.clone(),
        Arc::new(|t: &str| eprintln!("agent-orchestrator serve: {t}")),
    )
    .map_err(|e| format!("starting the HTTP API: {e}"))?;
    let console = Console::new(
        manager.clone(),
        Arc::new(ServeLauncher::new(Some(pty.clone()), Some(runtime))),
    )
    .map_err(|e| format!("starting the console: {e}"))?;
    let cwd = std::env::current_dir().map_err(|e| format!("reading the current directory: {e}"))?;
    console.set_default_workdir(cwd.clone());
    let config = ServerConfig {
        bind,
        ws_port: args.ws_port,
        token,
        allow_remote: args.allow_remote,
        ..ServerConfig::default()
    };
    let server = ConsoleServer::start(console.clone(), config, vec![api])
        .map_err(|e| format!("starting the server: {e}"))?;
    // Claude and Gemini sessions started from now on report hooks here, authenticated by their
    // own per-session token (the console server lets this one path through without its token).
    pty.set_hook_url(format!(
        "http://{}{}",
        server.http_addr(),
        orchestrator_plugin::http_api::HOOKS_PATH
    ));
    if let Some(path) = token_path(&args) {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        match server.token().write_to_file(&path) {
            Ok(()) => eprintln!(
                "agent-orchestrator serve: token written to {}",
                path.display()
            ),
            Err(e) => eprintln!("agent-orchestrator serve: {e}"),
        }
    }
    if !args.no_shell {
        let req = SpawnRequest {
            agent: "shell".to_owned(),
            workdir: cwd,
            task: String::new(),
            name: Some("shell".to_owned()),
        };
        if let Err(e) = console.spawn(&req) {
            eprintln!("agent-orchestrator serve: could not open the shell session: {e}");
        }
    }
    eprintln!(
        "agent-orchestrator serve: dashboard on http://{} (websocket port {}); open this address once, it carries the access token:",
        server.http_addr(),
        server.ws_addr().port()
    );
    // The one place the token is shown: the terminal of the person who started the server.
    println!("{}", server.dashboard_url());
    // Serve until the process is stopped; dropping the manager then ends every session.
    loop {
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The launcher over a real manager and PTY service: the shell agent starts, an unknown agent
    /// is the caller's mistake (`UnknownAgent`, 400), and a missing service is said plainly.
    #[test]
    fn the_launcher_starts_shells_and_refuses_unknown_agents() {
        let manager = Arc::new(PtyManager::new().unwrap());
        let dir = std::env::temp_dir();
        let req = |agent: &str| SpawnRequest {
            agent: agent.to_owned(),
            workdir: dir.clone(),
            task: String::new(),
            name: None,
        };
        let with = ServeLauncher {
            found: Arc::default(),
            pty: Some(Arc::new(agent_service(manager.clone()).unwrap())),
            runtime: None,
        };
        let shell = with.launch(&manager, &req("shell")).unwrap();
        assert_eq!(shell.agent_type, "shell");
        let err = with.launch(&manager, &req("nonesuch")).unwrap_err();
        assert!(
            matches!(&err, pty_console::Error::UnknownAgent(a) if a == "nonesuch"),
            "{err}"
        );
        let without = ServeLauncher {
            found: Arc::default(),
            pty: None,
            runtime: None,
        };
        let err = without.launch(&manager, &req("claude")).unwrap_err();
        assert!(
            err.to_string()
                .contains("could not start agent claude: the PTY service did not start"),
            "{err}"
        );
        manager.stop_all(Some(std::time::Duration::from_millis(200)));
    }

    /// The spawn form starts sessions only where SPAWN_CODING_AGENT and the HTTP API would:
    /// inside the workspace base directory or the server's working directory.
    #[test]
    fn the_launcher_keeps_spawns_inside_the_allowed_directories() {
        let tmp = std::env::temp_dir().join(format!(
            "serve-roots-{}",
            orchestrator_plugin::actions::new_id()
        ));
        let (base, outside) = (tmp.join("ws"), tmp.join("elsewhere"));
        std::fs::create_dir_all(base.join("task")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        let settings = orchestrator_plugin::SettingsStore::from_pairs([
            ("HOME", tmp.display().to_string()),
            (
                "CODING_WORKSPACE_CONFIG",
                serde_json::json!({"baseDir": base.display().to_string()}).to_string(),
            ),
        ]);
        let runtime: Arc<dyn Runtime> =
            Arc::new(orchestrator_plugin::StandaloneRuntime::new(settings).unwrap());
        let manager = Arc::new(PtyManager::new().unwrap());
        let launcher = ServeLauncher {
            found: Arc::default(),
            pty: Some(Arc::new(agent_service(manager.clone()).unwrap())),
            runtime: Some(runtime),
        };
        let req = |agent: &str, workdir: PathBuf| SpawnRequest {
            agent: agent.to_owned(),
            workdir,
            task: String::new(),
            name: None,
        };
        for agent in ["shell", "claude"] {
            for dir in [outside.clone(), base.join("task/../../elsewhere")] {
                let err = launcher.launch(&manager, &req(agent, dir)).unwrap_err();
                assert!(
                    matches!(&err, pty_console::Error::BadRequest(m) if m.contains("outside of allowed directories")),
                    "{agent}: {err}"
                );
            }
        }
        assert!(manager.list(None, None).is_empty(), "nothing started");
        let inside = launcher
            .launch(&manager, &req("shell", base.join("task")))
            .unwrap();
        assert_eq!(inside.agent_type, "shell");
        manager.stop_all(Some(std::time::Duration::from_millis(200)));
        let _ = std::fs::remove_dir_all(&tmp);
    }

    #[test]
    fn plugin_errors_map_to_console_errors() {
        use orchestrator_plugin::Error as E;
        let bad = launch_error("claude", E::InvalidParameter("workdir x".into()));
        assert!(matches!(bad, pty_console::Error::BadRequest(_)), "{bad}");
        let limit = launch_error("claude", E::SessionLimit(2));
        assert!(
            matches!(limit, pty_console::Error::BadRequest(_)),
            "{limit}"
        );
        let unknown = launch_error("x", E::UnknownAgentType("x".into()));
        assert!(matches!(unknown, pty_console::Error::UnknownAgent(_)));
    }
}
