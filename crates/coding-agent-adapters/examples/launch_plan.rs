//! Plans a launch, writes its files and prints the command line and the environment names, so a
//! recipe can be tried by hand against an installed CLI.
//!
//! `cargo run -p coding-agent-adapters --example launch_plan -- <agent> <workdir> <private-dir>
//! <home> [preset]` with the provider keys and base URLs in the usual variables. Prints one JSON
//! object `{args, env}` (values of secret variables are replaced by their names).

use coding_agent_adapters::hooks::HookEndpoint;
use coding_agent_adapters::{
    AgentType, Credentials, LaunchOptions, Registry, plan_launch, write_files,
};

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 4 {
        eprintln!("usage: launch_plan <agent> <workdir> <private-dir> <home> [preset] [hook-url]");
        std::process::exit(2);
    }
    let agent: AgentType = a[0].parse().expect("agent");
    let registry = Registry::builtin().expect("manifests");
    let mut opts = LaunchOptions {
        workdir: a[1].clone().into(),
        private_dir: Some(a[2].clone().into()),
        home: Some(a[3].clone().into()),
        preset: a.get(4).map(|p| p.parse().expect("preset")),
        credentials: Credentials::from_env(|k| std::env::var(k).ok()),
        supplied_credentials: true,
        trust_workdir: true,
        accept_onboarding: true,
        write_agent_config: true,
        ..LaunchOptions::default()
    };
    if let Some(url) = a.get(5) {
        opts.hooks =
            Some(HookEndpoint::new(url, "example", "example-token-0123456789").expect("hook"));
    }
    let spec = plan_launch(registry.get(agent), &opts).expect("plan");
    write_files(&spec.files, &spec.roots).expect("files");
    let env: serde_json::Map<String, serde_json::Value> = spec
        .env
        .iter()
        .map(|(k, v)| {
            let shown = if spec.secret_env.contains(k) {
                format!("${k}")
            } else {
                v.clone()
            };
            (k.clone(), shown.into())
        })
        .collect();
    let mut argv = vec![spec.command.clone()];
    argv.extend(spec.args.iter().cloned());
    println!(
        "{}",
        serde_json::json!({ "args": argv, "env": env, "warnings": spec.warnings })
    );
}
