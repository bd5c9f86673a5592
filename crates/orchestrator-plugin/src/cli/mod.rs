//! One module per subcommand; each has clap `Args` and a `run` returning the exit status.

pub mod agents;
pub mod explain;
pub mod mcp;
pub mod run;
pub mod serve;
pub mod workspace;

use std::path::Path;
use std::process::ExitCode;

use orchestrator_plugin::{SettingsStore, StandaloneRuntime};

/// The honest answer of a subcommand that is not built yet: one line on stderr and status 2.
pub fn not_implemented(name: &str) -> ExitCode {
    eprintln!("agent-orchestrator: `{name}` is not implemented yet");
    ExitCode::from(2)
}

/// The standalone runtime of the binary: settings from the environment and the YAML file named by
/// `--config` or `AGENT_ORCHESTRATOR_CONFIG`, with the services this build provides.
pub fn build_runtime(
    config: Option<&Path>,
    sink: impl Fn(&str) + Send + Sync + 'static,
) -> orchestrator_plugin::Result<StandaloneRuntime> {
    let from_env = std::env::var_os("AGENT_ORCHESTRATOR_CONFIG").map(std::path::PathBuf::from);
    let file = config.map(Path::to_path_buf).or(from_env);
    let settings = SettingsStore::load(std::env::vars(), file.as_deref())?;
    let runtime = StandaloneRuntime::new(settings)?.with_reply_sink(sink);
    Ok(runtime)
}
