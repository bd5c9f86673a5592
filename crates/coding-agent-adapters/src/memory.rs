//! Memory files (the instructions a CLI reads from the workdir: `CLAUDE.md`, `AGENTS.md`,
//! `GEMINI.md`, `.aider.conventions.md`) and descriptors of the workspace files an agent uses.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::{AgentManifest, AgentType, Error, Result};

/// How to put content into a memory file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryMode {
    /// Replace the file.
    Write,
    /// Append (separated from existing content by a blank line).
    Append,
}

/// The memory file of an agent in `workdir`.
pub fn memory_file_path(manifest: &AgentManifest, workdir: &Path) -> Option<PathBuf> {
    manifest.memory_file.as_ref().map(|f| workdir.join(f))
}

/// Write or append `content` to the agent's memory file in `workdir`; returns its path.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("caa-memory-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// use coding_agent_adapters::{memory::{write_memory, MemoryMode}, AgentManifest, AgentType};
/// let claude = AgentManifest::builtin(AgentType::Claude).unwrap();
/// let path = write_memory(&claude, &dir, "Run the tests before committing.", MemoryMode::Write).unwrap();
/// assert!(path.ends_with("CLAUDE.md"));
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn write_memory(
    manifest: &AgentManifest,
    workdir: &Path,
    content: &str,
    mode: MemoryMode,
) -> Result<PathBuf> {
    let path = memory_file_path(manifest, workdir).ok_or_else(|| Error::InvalidOption {
        name: "memory",
        reason: format!("{} has no memory file", manifest.agent),
    })?;
    let mut text = String::new();
    let existing = match mode {
        MemoryMode::Append => match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(Error::io("cannot read", &path, e)),
        },
        MemoryMode::Write => String::new(),
    };
    if !existing.trim().is_empty() {
        text.push_str(existing.trim_end());
        text.push_str("\n\n");
    }
    text.push_str(content.trim_end());
    text.push('\n');
    let mut f = std::fs::File::create(&path).map_err(|e| Error::io("cannot write", &path, e))?;
    f.write_all(text.as_bytes())
        .map_err(|e| Error::io("cannot write", &path, e))?;
    Ok(path)
}

/// What a workspace file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkspaceFileKind {
    /// Instructions the agent reads.
    Memory,
    /// Configuration the agent reads (presets, hooks).
    Config,
    /// A script run by the agent (hooks).
    Script,
}

/// One file an agent reads from (or we write into) the workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkspaceFile {
    /// Path relative to the workdir.
    pub path: String,
    /// What it is.
    pub kind: WorkspaceFileKind,
    /// Whether the agent reads it automatically.
    pub auto_loaded: bool,
    /// What it does.
    pub description: String,
}

/// The workspace files of an agent (`GET /api/coding-agents/workspace-files?agentType=`).
pub fn workspace_files(manifest: &AgentManifest) -> Vec<WorkspaceFile> {
    let mut out = Vec::new();
    if let Some(m) = &manifest.memory_file {
        let auto = manifest.agent != AgentType::Aider;
        out.push(WorkspaceFile {
            path: m.clone(),
            kind: WorkspaceFileKind::Memory,
            auto_loaded: auto,
            description: if auto {
                format!("Project instructions {} reads at start", manifest.name)
            } else {
                format!(
                    "Conventions {} reads when passed with --read (done at launch)",
                    manifest.name
                )
            },
        });
    }
    let extra: &[(&str, WorkspaceFileKind, &str)] = match manifest.agent {
        AgentType::Gemini => &[
            (
                ".gemini/settings.json",
                WorkspaceFileKind::Config,
                "Project settings; hook telemetry entries are merged in for a session",
            ),
            (
                crate::hooks::GEMINI_SCRIPT,
                WorkspaceFileKind::Script,
                "Hook script that forwards Gemini CLI events to the orchestrator",
            ),
        ],
        AgentType::Opencode => &[(
            "opencode.json",
            WorkspaceFileKind::Config,
            "Project config; the approval preset's permission block is merged in",
        )],
        AgentType::Hermes => &[(
            "SOUL.md",
            WorkspaceFileKind::Memory,
            "Persona instructions Hermes reads",
        )],
        _ => &[],
    };
    for (p, k, d) in extra {
        out.push(WorkspaceFile {
            path: (*p).to_owned(),
            kind: *k,
            auto_loaded: true,
            description: (*d).to_owned(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn write_and_append() {
        let dir = TempDir::new("memory");
        let m = AgentManifest::builtin(AgentType::Codex).unwrap();
        let p = write_memory(&m, dir.path(), "one", MemoryMode::Append).unwrap();
        assert!(p.ends_with("AGENTS.md"));
        write_memory(&m, dir.path(), "two\n\n", MemoryMode::Append).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "one\n\ntwo\n");
        write_memory(&m, dir.path(), "three", MemoryMode::Write).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "three\n");
    }

    #[test]
    fn memory_file_names() {
        for (agent, file) in [
            (AgentType::Claude, "CLAUDE.md"),
            (AgentType::Codex, "AGENTS.md"),
            (AgentType::Gemini, "GEMINI.md"),
            (AgentType::Aider, ".aider.conventions.md"),
            (AgentType::Pi, "AGENTS.md"),
            (AgentType::Opencode, "AGENTS.md"),
            (AgentType::Hermes, "AGENTS.md"),
        ] {
            let m = AgentManifest::builtin(agent).unwrap();
            assert_eq!(
                memory_file_path(&m, Path::new("/w")).unwrap(),
                Path::new("/w").join(file)
            );
            let files = workspace_files(&m);
            assert_eq!(files[0].path, file);
            assert_eq!(files[0].kind, WorkspaceFileKind::Memory);
        }
        let aider = workspace_files(&AgentManifest::builtin(AgentType::Aider).unwrap());
        assert!(!aider[0].auto_loaded);
    }
}
