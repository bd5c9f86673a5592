//! The dashboard in a real browser: headless Debian `chromium`, driven over the DevTools protocol.
//! Opens the page with the printed URL, sees a shell session's prompt rendered by xterm.js, types
//! `echo hi` + Enter into the terminal and sees `hi`; then spawns a second session from the page's
//! form and screenshots the dashboard with both (under `target/`).

use std::path::PathBuf;

use serde_json::json;

use crate::cdp::{Browser, chromium_path};
use crate::support::{Harness, has_prompt};

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

/// JavaScript: the text xterm.js rendered (DOM renderer rows) for the tile of session `id`.
fn rendered_rows(id: &str) -> String {
    format!(
        "Array.from(document.querySelectorAll('.tile[data-session=\"{id}\"] .xterm-rows > div'))\
         .map(d => d.textContent.replace(/\\u00a0/g, ' ').trimEnd())"
    )
}

#[test]
fn the_dashboard_renders_a_live_shell_and_takes_typing() {
    let Some(chromium) = chromium_path() else {
        if std::env::var_os("CI").is_some() {
            panic!(
                "chromium is not installed (/usr/bin/chromium, or set CHROMIUM): .ci/run installs \
                 it with `apt-get install -y chromium`; the dashboard browser test cannot run"
            );
        }
        eprintln!(
            "\n!!!!! SKIPPED the dashboard browser test: /usr/bin/chromium is missing \
             (apt-get install -y chromium). CI fails here instead of skipping. !!!!!\n"
        );
        return;
    };
    let h = Harness::start("browser");
    let first = h.shell("first");
    h.wait_screen(&first, "the shell prompt", has_prompt);

    let profile = std::env::temp_dir().join(format!("pty-console-chromium-{}", std::process::id()));
    let mut b = Browser::launch(&chromium, &profile, 1920, 1000);
    b.navigate(&h.server.dashboard_url());
    // The token left the address bar for a cookie.
    b.wait_for(
        "the page to load without the token in its URL",
        "location.pathname === '/' && location.search === '' && typeof Terminal === 'function'",
        "location.href",
    );
    let rows = rendered_rows(&first);
    b.wait_for(
        "the shell prompt rendered in the terminal",
        &format!("{rows}.some(l => l.startsWith('pty>'))"),
        &rows,
    );

    // Focus the terminal and type into it like a person.
    b.eval(&format!(
        "document.querySelector('.tile[data-session=\"{first}\"] .xterm-helper-textarea').focus()"
    ));
    b.insert_text("echo hi");
    b.press_enter();
    b.wait_for(
        "`hi` on its own row after the command",
        &format!("(() => {{ const r = {rows}; const i = r.findIndex(l => l.endsWith('echo hi')); return i >= 0 && r.slice(i + 1).includes('hi'); }})()"),
        &rows,
    );
    // The keystrokes went through the server into the real session.
    assert!(
        h.console
            .manager()
            .snapshot(&first)
            .unwrap()
            .lines
            .iter()
            .any(|l| l == "hi"),
        "the PTY itself printed hi"
    );
    b.screenshot(&target_dir().join("console-echo-hi.png"));

    // A second session from the spawn form.
    b.eval(&format!(
        "document.getElementById('spawn-workdir').value = {dir}; \
         document.getElementById('spawn-task').value = 'echo second-$((20+22)); ls -la /'; \
         document.querySelector('#spawn button[type=submit]').click(); true",
        dir = json!(h.dir)
    ));
    b.wait_for(
        "a second terminal with its task's output, both sessions back at their prompt",
        "(() => { const tiles = Array.from(document.querySelectorAll('.tile')); \
         const rows = t => Array.from(t.querySelectorAll('.xterm-rows > div')).map(d => d.textContent.replace(/\\u00a0/g, ' ').trimEnd()); \
         const last = t => rows(t).filter(l => l !== '').pop(); \
         return tiles.length === 2 && tiles.every(t => last(t) === 'pty>') \
           && rows(tiles[1]).includes('second-42') && rows(tiles[1]).some(l => l.endsWith(' usr')); })()",
        "Array.from(document.querySelectorAll('.tile')).map(t => t.innerText)",
    );
    // The task was typed once the shell showed its prompt: its command line shows once.
    let typed = b.eval(
        "Array.from(document.querySelectorAll('.tile'))[1].querySelectorAll('.xterm-rows > div').length          && Array.from(Array.from(document.querySelectorAll('.tile'))[1].querySelectorAll('.xterm-rows > div'))            .filter(d => d.textContent.includes('echo second-')).length",
    );
    assert_eq!(
        typed,
        json!(1),
        "the task's command line on the second tile"
    );
    // The state badges follow the sessions (status events over the sockets, the list over HTTP).
    b.wait_for(
        "both badges to read ready",
        "Array.from(document.querySelectorAll('.tile .badge')).map(e => e.textContent).join() === 'ready,ready' && document.getElementById('summary').textContent === '2 live sessions · 2 ready'",
        "[document.getElementById('summary').textContent, Array.from(document.querySelectorAll('.tile .badge')).map(e => e.textContent)]",
    );
    let live = h.console.sessions();
    assert_eq!(live.len(), 2);
    let badges =
        b.eval("Array.from(document.querySelectorAll('.tile .badge')).map(e => e.textContent)");
    assert_eq!(badges.as_array().unwrap().len(), 2, "{badges}");
    b.screenshot(&target_dir().join("dashboard-two-sessions.png"));
}

/// Starts a program that asks `Proceed? [y/N]` on the cursor row, with a manifest whose prompt rule
/// (no automatic answer) makes the session `blocked`.
struct Asker;

impl pty_console::Launcher for Asker {
    fn agents(&self) -> Vec<pty_console::AgentChoice> {
        Vec::new()
    }

    fn launch(
        &self,
        manager: &std::sync::Arc<pty_manager::PtyManager>,
        req: &pty_console::SpawnRequest,
    ) -> pty_console::Result<pty_manager::SessionInfo> {
        let adapter = pty_manager::DeclarativeAdapter::from_yaml(
            r#"
schema: 1
type: asker
command: /bin/sh
args: ["-c", "printf 'Proceed? [y/N] '; read a; echo answered-$a; sleep 60"]
rules:
  - { id: asker.proceed, signal: prompt, pattern: 'Proceed\? \[y/N\]', region: cursor_row, type: permission, response: { text: y } }
"#,
        )?;
        let cfg =
            pty_manager::SpawnConfig::with_adapter(std::sync::Arc::new(adapter)).cwd(&req.workdir);
        Ok(manager.spawn(cfg)?)
    }
}

#[test]
fn a_prompt_waiting_for_a_person_is_highlighted_in_the_dashboard() {
    let Some(chromium) = chromium_path() else {
        if std::env::var_os("CI").is_some() {
            panic!(
                "chromium is not installed (/usr/bin/chromium, or set CHROMIUM): .ci/run installs it"
            );
        }
        eprintln!(
            "\n!!!!! SKIPPED the blocked-prompt browser test: /usr/bin/chromium is missing !!!!!\n"
        );
        return;
    };
    let dir = std::env::temp_dir().join(format!("pty-console-asker-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let manager = std::sync::Arc::new(pty_manager::PtyManager::new().unwrap());
    let console = pty_console::Console::new(manager.clone(), std::sync::Arc::new(Asker)).unwrap();
    let server = pty_console::ConsoleServer::start(
        console.clone(),
        pty_console::ServerConfig::default(),
        Vec::new(),
    )
    .unwrap();
    let req = pty_console::SpawnRequest {
        agent: "asker".into(),
        workdir: dir.clone(),
        task: String::new(),
        name: Some("asker".into()),
    };
    let id = console.spawn(&req).unwrap().id;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while manager.get(&id).unwrap().status != pty_manager::SessionStatus::Blocked {
        assert!(
            std::time::Instant::now() < deadline,
            "the session never became blocked: {:?}",
            manager.get(&id).unwrap()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    let profile =
        std::env::temp_dir().join(format!("pty-console-chromium-asker-{}", std::process::id()));
    let mut b = Browser::launch(&chromium, &profile, 1400, 800);
    b.navigate(&server.dashboard_url());
    let tile = format!("document.querySelector('.tile[data-session=\"{id}\"]')");
    b.wait_for(
        "the blocked tile with its prompt bar",
        &format!(
            "(() => {{ const t = {tile}; return !!t && t.classList.contains('blocked') && \
             !t.querySelector('.prompt').hidden && \
             t.querySelector('.prompt-text').textContent.includes('Proceed?') && \
             t.querySelector('.badge').textContent === 'blocked'; }})()"
        ),
        &format!("[document.getElementById('summary').textContent, typeof Terminal, performance.getEntriesByType('resource').map(e => e.name + ' ' + e.responseStatus + ' ' + e.duration), {tile} && {tile}.outerHTML]"),
    );
    b.screenshot(&target_dir().join("console-blocked-prompt.png"));
    // Approve types the rule's suggested answer (it is not `safe`, so only a person may send it).
    b.wait_for(
        "approve to offer the suggested answer",
        &format!("{tile}.querySelector('.approve').title === 'sends text:y'"),
        &format!("{tile}.querySelector('.approve').outerHTML"),
    );
    b.eval(&format!("{tile}.querySelector('.approve').click(); true"));
    b.wait_for(
        "the answer, the highlight gone and who answered",
        &format!(
            "(() => {{ const t = {tile}; return !t.classList.contains('blocked') && t.querySelector('.prompt').hidden && \
             t.querySelector('.message').textContent.includes('approved by console: sent text:y') && \
             Array.from(t.querySelectorAll('.xterm-rows > div')).some(d => d.textContent.includes('answered-y')); }})()"
        ),
        &format!("{tile}.outerHTML"),
    );
    assert_ne!(
        manager.get(&id).unwrap().status,
        pty_manager::SessionStatus::Blocked
    );
    let audit = console.snapshot(&id).unwrap().audit;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].rule_id, "supervisor:human");
    assert_eq!(audit[0].sent, "text:y");
    b.screenshot(&target_dir().join("console-prompt-approved.png"));
    drop(b);
    manager.stop_all(Some(std::time::Duration::from_millis(500)));
    let _ = std::fs::remove_dir_all(&dir);
}
