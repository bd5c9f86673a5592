//! The ACTIVE_WORKSPACE_CONTEXT provider text.

use std::sync::Arc;

use orchestrator_plugin::providers::{active_workspace_context, coding_agent_examples};
use orchestrator_plugin::services::pty::SessionStatus;
use orchestrator_plugin::services::{ProvisionRequest, WorkspaceService};
use orchestrator_plugin::supervision::{Coordinator, Level};

use crate::fakes::{TempDir, TestRuntime};

#[test]
fn empty_then_workspaces_sessions_and_supervision() {
    let tmp = TempDir::new("prov-ctx");
    let rt = Arc::new(TestRuntime::new(&tmp.0));
    assert_eq!(
        active_workspace_context(rt.as_ref(), None),
        "# Active Workspaces & Agents\nNo active workspaces or coding agent sessions.\nUse START_CODING_TASK to launch a new coding agent."
    );
    let w = rt
        .ws()
        .provision(ProvisionRequest {
            repo: "acme/app".into(),
            branch_name: Some("milady/x/coding-agent".into()),
            ..Default::default()
        })
        .unwrap();
    rt.ws()
        .provision(ProvisionRequest {
            repo: "acme/lib".into(),
            branch_name: Some("milady/y/coding-agent".into()),
            ..Default::default()
        })
        .unwrap();
    rt.pty().add("s1", "claude", SessionStatus::Busy, None);
    rt.pty().sessions.lock().unwrap()[0].workdir = w.path.clone();
    rt.pty().add("s2", "shell", SessionStatus::Ready, None);
    let coord = Coordinator::new(rt.clone(), Level::Confirm, || 0);
    assert_eq!(
        active_workspace_context(rt.as_ref(), Some(&coord)),
        "# Active Workspaces & Agents\n\
## Workspaces (2)\n  - \"ws-1\" → acme/app (branch: milady/x/coding-agent, claude:working)\n  - \"ws-2\" → acme/lib (branch: milady/y/coding-agent, no agents)\n\
## Standalone Sessions (1)\n  - \"s2\" (shell, idle) [session: s2]\n\
Swarm supervision: confirm (no pending items)\n\
You can interact with agents using SEND_TO_CODING_AGENT (pass sessionId), stop them with STOP_CODING_AGENT, or finalize their work with FINALIZE_WORKSPACE."
    );
    assert!(coding_agent_examples().contains("START_CODING_TASK"));
}
