//! The one-shot subcommands' output: a reader that goes away early is not a crash.

use std::path::Path;
use std::process::{Command, Stdio};

/// `agent-orchestrator explain … | head -0`: the pipe is closed before the binary writes. It
/// must end quietly with status 0, not panic in `println!` (status 101, "failed printing to
/// stdout" on stderr).
#[test]
fn explain_into_a_closed_pipe_ends_quietly() {
    let capture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../coding-agent-adapters/tests/fixtures/extra/gemini/shell-wait-120x40.raw");
    assert!(capture.exists(), "missing {}", capture.display());
    for _ in 0..3 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_agent-orchestrator"))
            .args(["explain", "--json", "--agent", "gemini", "--screen"])
            .arg(&capture)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the read end at once: the child starts, reads the capture, then writes.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "status {:?}: {stderr}", out.status);
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
