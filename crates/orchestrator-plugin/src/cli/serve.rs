//! `agent-orchestrator serve`: the session manager, the console server and the dashboard.
//!
//! Starts a [`PtyManager`], a [`Console`] over it and a [`ConsoleServer`] on `--bind` (loopback
//! unless `--allow-remote`), opens one shell session in the current directory so the dashboard is
//! never empty, and prints the dashboard's address with the access token. Works with no agent CLI
//! installed: the spawn form always offers the built-in shell agent, and lists every agent CLI
//! with what preflight found (starting those from the dashboard is not wired yet).
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
use pty_console::{
    AccessToken, AgentChoice, Console, ConsoleServer, Launcher, ServerConfig, ShellLauncher,
    SpawnRequest,
};
use pty_manager::{PtyManager, SessionInfo};

/// The spawn form's agents: the shell agent (startable), then each agent CLI with what preflight
/// found. Starting an agent CLI from the dashboard is not wired yet, so those entries are listed
/// as not available, with the reason and what was found.
struct ServeLauncher {
    /// Filled by a background preflight (version commands can take seconds each).
    found: Arc<Mutex<Vec<AgentChoice>>>,
}

impl ServeLauncher {
    /// Starts preflight in the background (version commands as argv, 5 s timeout each); until it
    /// is done the list holds only the shell agent.
    fn new() -> Self {
        let found = Arc::new(Mutex::new(Vec::new()));
        let slot = found.clone();
        let spawned = std::thread::Builder::new()
            .name("serve-preflight".to_owned())
            .spawn(move || {
                let list = Self::preflight();
                *slot.lock().unwrap_or_else(|e| e.into_inner()) = list;
            });
        if let Err(e) = spawned {
            eprintln!("agent-orchestrator serve: could not start preflight: {e}");
        }
        ServeLauncher { found }
    }

    fn preflight() -> Vec<AgentChoice> {
        match Registry::from_env() {
            Ok(registry) => {
                let path = std::env::var_os("PATH");
                preflight_all(&registry, path.as_deref(), VERSION_TIMEOUT)
                    .into_iter()
                    .map(|r| AgentChoice {
                        agent_type: r.agent.as_str().to_owned(),
                        label: r.name.clone(),
                        available: false,
                        detail: match (&r.path, &r.version) {
                            (Some(p), v) => format!(
                                "found {} at {}; starting it from the dashboard is not implemented yet",
                                v.as_deref().unwrap_or("(version unknown)"),
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

    fn launch(&self, manager: &PtyManager, req: &SpawnRequest) -> pty_console::Result<SessionInfo> {
        ShellLauncher.launch(manager, req)
    }
}

/// Arguments of `agent-orchestrator serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address of the dashboard (HTTP); the WebSocket listens on the same IP, port `--ws-port`.
    #[arg(long, default_value = "127.0.0.1:7878")]
    pub bind: SocketAddr,
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

fn serve(args: Args) -> Result<(), String> {
    let token = token_from(&args)?;
    if !args.bind.ip().is_loopback() {
        if !args.allow_remote {
            return Err(format!(
                "{} is not a loopback address; pass --allow-remote to bind it anyway",
                args.bind
            ));
        }
        eprintln!(
            "agent-orchestrator serve: WARNING: listening on {}, reachable from other machines; \
             anyone with the token can type into every session, and traffic is not encrypted",
            args.bind
        );
    }
    let manager = Arc::new(PtyManager::new().map_err(|e| format!("starting the manager: {e}"))?);
    let console = Console::new(manager.clone(), Arc::new(ServeLauncher::new()))
        .map_err(|e| format!("starting the console: {e}"))?;
    let cwd = std::env::current_dir().map_err(|e| format!("reading the current directory: {e}"))?;
    console.set_default_workdir(cwd.clone());
    let config = ServerConfig {
        bind: args.bind,
        ws_port: args.ws_port,
        token,
        allow_remote: args.allow_remote,
        ..ServerConfig::default()
    };
    // The plugin's HTTP API (BEHAVIOR.md §10.5) on the same server, token and sessions.
    let api = super::api_routes(
        manager.clone(),
        Arc::new(|t: &str| eprintln!("agent-orchestrator serve: {t}")),
    )
    .map_err(|e| format!("starting the HTTP API: {e}"))?;
    let server = ConsoleServer::start(console.clone(), config, vec![api])
        .map_err(|e| format!("starting the server: {e}"))?;
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
