//! What each coding-agent CLI looks like and needs.
//!
//! - [`manifest`]: one YAML manifest per agent (detection rules for `pty-manager`, launch data),
//!   embedded and overridable ([`Registry`]).
//! - [`policy`]: which dialogs may be answered automatically ([`AnswerPolicy`]).
//! - [`preset`]: approval presets → each CLI's flags and config ([`approval_config`]).
//! - [`files`]: config files merged without clobbering, recorded, removable ([`write_files`]).
//! - [`launch`]: command, args, environment, task delivery and files of one run ([`plan_launch`]).
//! - [`memory`]: memory files (`CLAUDE.md`, `AGENTS.md`, …) and workspace file descriptors.
//! - [`preflight`]: installed? which version? how to install ([`preflight::preflight`]).
//! - [`models`]: model recommendations from the available credentials.
//! - [`hooks`]: hook telemetry settings for Claude and Gemini and the parser of what they report.
//!
//! ```
//! use coding_agent_adapters::{AgentType, AnswerPolicy, ApprovalPreset, Registry};
//! use pty_manager::{Adapter, Screen, ScreenState};
//!
//! let registry = Registry::builtin().unwrap();
//! let claude = registry.get(AgentType::Claude);
//! let adapter = claude.adapter(&AnswerPolicy::for_preset(ApprovalPreset::Permissive)).unwrap();
//! let mut screen = Screen::new(120, 40);
//! screen.process("─".repeat(120).as_bytes());
//! screen.process(b"\r\n\xe2\x9d\xaf \r\n");
//! screen.process("─".repeat(120).as_bytes());
//! assert_eq!(adapter.explain(&screen.snapshot()).state, ScreenState::Ready);
//! ```
#![deny(missing_docs)]

mod agent;
mod error;
pub mod files;
pub mod hooks;
pub mod launch;
pub mod manifest;
pub mod memory;
pub mod models;
pub mod policy;
pub mod preflight;
pub mod preset;

pub use agent::AgentType;
pub use error::Error;
pub use files::{ConfigFile, FileFormat, FileLocation, FileRoots, WriteRecord, write_files};
pub use launch::{Credentials, LaunchOptions, LaunchSpec, TaskDelivery, plan_launch};
pub use manifest::{AgentManifest, Provider, Registry};
pub use policy::AnswerPolicy;
pub use preset::{
    ApprovalConfig, ApprovalPreset, Decision, PresetContext, ToolCategory, approval_config,
};

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
pub(crate) mod testutil {
    use std::path::{Path, PathBuf};

    /// A directory under the system temp dir, removed on drop.
    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new(tag: &str) -> Self {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let p = std::env::temp_dir().join(format!(
                "caa-{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
