//! `PARALLAX_DEBUG_CAPTURE`: a session's PTY output recorded to `<dir>/<session id>/output.raw`
//! (mode 0600 in a 0700 directory: it holds whatever the agent printed). The service subscribes
//! when it spawns the session (`PtyManager::spawn_attached`), so recording starts at the program's
//! first byte, and ends when the session exits; output a slow disk could not keep up with is noted
//! in `gaps.txt` instead of stalling the session.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use pty_manager::{Attachment, OutputChunk};

use crate::{Error, Result};

/// Starts recording session `id`'s output from `attachment` under `root`; returns the session's
/// capture directory.
pub fn start(attachment: Attachment, id: &str, root: &Path) -> Result<PathBuf> {
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        || id.starts_with('.')
    {
        return Err(Error::InvalidParameter(format!(
            "session id {id:?} cannot name a capture directory"
        )));
    }
    let dir = root.join(id);
    let io = |what: String| {
        move |e: std::io::Error| Error::Io {
            context: what,
            source: e,
        }
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(io(format!("creating {}", dir.display())))?;
    let open = |name: &str| {
        let path = dir.join(name);
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(io(format!("opening {}", path.display())))
    };
    let mut output = open("output.raw")?;
    let mut gaps = open("gaps.txt")?;
    std::thread::Builder::new()
        .name("pty-capture".into())
        .spawn(move || {
            // Ends when the session exits (the manager closes its subscribers).
            while let Ok(chunk) = attachment.output.recv() {
                let ok = match chunk {
                    OutputChunk::Data(bytes) => output.write_all(&bytes).is_ok(),
                    OutputChunk::Lagged {
                        dropped_chunks,
                        dropped_bytes,
                    } => writeln!(
                        gaps,
                        "missed {dropped_bytes} bytes in {dropped_chunks} chunks"
                    )
                    .is_ok(),
                };
                if !ok {
                    return;
                }
            }
            let _ = output.flush();
        })
        .map_err(io("starting the capture thread".into()))?;
    Ok(dir)
}
