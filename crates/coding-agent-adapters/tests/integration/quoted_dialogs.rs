//! A model reply that quotes a whole dialog (question and numbered answers) is transcript, not a
//! dialog: for every agent and width the finished turn stays a finished turn.

use coding_agent_adapters::AgentType;
use pty_manager::{ScreenState, Signal};

use crate::negative::{expected_idle, explain, finished_turn};

/// Replies quoting the dialogs of every agent, as a model explaining them would.
const QUOTED: &[&[&str]] = &[
    &[
        "Claude Code will then ask:",
        "Do you want to create hello.txt?",
        "1. Yes",
        "2. Yes, allow all edits during this session (shift+tab)",
        "3. No",
    ],
    &[
        "Do you want to proceed?",
        "1. Yes",
        "2. No, and tell Claude what to do differently (esc)",
    ],
    &[
        "Bash command",
        "Do you want to proceed?",
        "❯ 1. Yes",
        "  2. No",
    ],
    &[
        "Do you want to make this edit to main.rs?",
        "1. Yes",
        "2. No",
    ],
    &[
        "Would you like to run the following command?",
        "$ npm test",
        "1. Yes, proceed (y)",
        "2. No, and tell Codex what to do differently (esc)",
        "Press enter to confirm or esc to cancel",
    ],
    &[
        "Would you like to make the following edits?",
        "1. Yes, proceed (y)",
    ],
    &[
        "Trust this folder? Codex can read, edit, and run files here.",
        "1. Trust and continue",
        "2. Back",
    ],
    &[
        "Apply this change?",
        "● 1. Allow once",
        "2. Allow for this session",
        "3. No, suggest changes (esc)",
    ],
    &[
        "Allow execution of: 'npm'?",
        "1. Allow once",
        "2. No, suggest changes (esc)",
    ],
    &[
        "Do you trust the files in this folder?",
        "1. Trust folder (repo)",
        "2. Don't trust",
    ],
    &[
        "Quick safety check: Is this a project you created or one you trust?",
        "1. Yes, I trust this folder",
        "2. No, exit",
    ],
    &[
        "Detected a custom API key in your environment",
        "Do you want to use this API key?",
        "1. Yes",
        "2. No (recommended)",
    ],
    &[
        "Choose the text style that looks best with your terminal",
        "1. Dark mode",
        "2. Light mode",
    ],
    &[
        "Security notes:",
        "1. Claude can make mistakes",
        "Press Enter to continue",
    ],
    &[
        "Select login method:",
        "1. Claude account with subscription",
        "2. Anthropic Console account",
    ],
    &[
        "Choose how you want to use Codex.",
        "1. Sign in with ChatGPT",
        "2. Sign in with Device Code",
    ],
    &[
        "How would you like to authenticate for this project?",
        "1. Sign in with Google",
        "2. Use Gemini API Key",
    ],
    &[
        "Create new file? (Y)es/(N)o [Yes]: is what aider asks,",
        "and Add .aider* to .gitignore (recommended)? (Y)es/(N)o [Yes]: too.",
    ],
    &[
        "Select authentication method:",
        "→ Use a subscription",
        "Use an API key",
    ],
    &["1. Yes", "2. No"],
    // Questions and errors drawn outside a dialog box (BEHAVIOR.md §7.3, §7.5), quoted as the
    // first row of a reply and inside it.
    &["Do you want to continue (y/n)?"],
    &[
        "When the installer asks",
        "Do you want to continue (y/n)?",
        "answer y.",
    ],
    &["Then it asks:", "Do you want to continue (y/n)?"],
    &["Error: No API key found for the selected model."],
    &[
        "Pi then prints",
        "Error: No API key found for the selected model.",
    ],
    &[
        "Error: No API key found for the selected model.",
        "Use /login to log into a provider via OAuth or API key. See:",
        "is what you get without a key; run /login first.",
    ],
    &["Interactive shell awaiting input... press tab to focus shell"],
    &[
        "Gemini shows",
        "Interactive shell awaiting input... press tab to focus shell",
    ],
];

#[test]
fn a_reply_quoting_a_dialog_is_not_a_dialog() {
    let mut failures = Vec::new();
    for agent in AgentType::ALL {
        for cols in [80usize, 120, 200] {
            for reply in QUOTED {
                let screen = finished_turn(agent, reply, cols);
                let e = explain(agent, &screen, cols as u16);
                let bad: Vec<_> = e
                    .matches
                    .iter()
                    .filter(|m| matches!(m.signal, Signal::Prompt | Signal::Login))
                    .map(|m| m.id.clone())
                    .collect();
                if e.state != expected_idle(agent) || !bad.is_empty() {
                    failures.push(format!(
                        "{agent} {cols}: {:?} {bad:?} for {:?}",
                        e.state, reply[0]
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_busy_screen_quoting_a_dialog_stays_busy() {
    // While the reply streams, the quoted dialog sits right above the spinner.
    let r = "─".repeat(100);
    for reply in QUOTED {
        let mut s = String::from("❯ Explain the dialogs\n\n");
        for (i, l) in reply.iter().enumerate() {
            s += &format!("{}{l}\n", if i == 0 { "● " } else { "  " });
        }
        s += &format!("\n✶ Pondering… (3s · esc to interrupt)\n\n{r}\n❯ \n{r}\n");
        let e = explain(AgentType::Claude, &s, 100);
        assert_eq!(
            e.state,
            ScreenState::Busy,
            "{:?}: {:?}",
            reply[0],
            e.matches
        );
    }
}

#[test]
fn a_reply_row_naming_a_notice_is_not_the_notice() {
    // Rows a reply may start with (its continuation rows are indented like a notice's).
    const ROWS: &[&str] = &[
        "Context limit reached is what Claude says when the window is full.",
        "Credit balance too low is the billing notice.",
        "Claude usage limit reached · resets 5pm is how the limit looks.",
        "Update available! Run: npm i -g @anthropic-ai/claude-code [y/n]",
        "You've hit your usage limit is Codex's notice.",
        "Error loading config.toml is Codex's config error.",
        "Unable to connect to Anthropic services",
        "Warning: No models available. Use /login is Pi's warning.",
        "litellm.AuthenticationError: is what Aider prints for a bad key.",
        "Resume this session with:",
        "To continue this session, run:",
    ];
    let mut failures = Vec::new();
    for agent in AgentType::ALL {
        for row in ROWS {
            // First row of the reply, and a continuation row (indented) after a first row.
            for reply in [&[*row][..], &["As the docs say:", row][..]] {
                let screen = finished_turn(agent, reply, 120);
                let e = explain(agent, &screen, 120);
                if e.state != expected_idle(agent) {
                    let ids: Vec<_> = e.matches.iter().map(|m| m.id.clone()).collect();
                    failures.push(format!("{agent}: {:?} {ids:?} for {row:?}", e.state));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Gemini's running tool box holding a shell command's question, the loading indicator `status`
/// below it, then the composer and footer (the layout of BEHAVIOR.md §7.3 at `cols`).
fn gemini_tool_waiting(cols: usize, box_rows: &[&str], status: &str) -> String {
    let (top, bottom, r) = ("▄".repeat(cols), "▀".repeat(cols), "─".repeat(cols));
    let inner = cols - 4;
    let mut s = format!("{top}\n > Install the dependencies\n{bottom}\n");
    s += &format!("╭{}╮\n", "─".repeat(cols - 2));
    for row in box_rows {
        s += &format!("│ {row:<inner$} │\n");
    }
    s += &format!("╰{}╯\n", "─".repeat(cols - 2));
    s += &format!(
        "{status}\n{r}\n Shift+Tab to accept edits\n{top}\n >   Type your message or @path/to/file\n{bottom}\n"
    );
    s + " /tmp/w    main    no sandbox    Auto\n"
}

#[test]
fn gemini_tool_question_is_a_prompt_only_while_the_tool_runs() {
    for cols in [80usize, 120, 200] {
        for status in [
            " ⠏ Interactive shell awaiting input... press tab to focus shell",
            " ⠏ Running the command (esc to cancel, 4s)",
        ] {
            let s = gemini_tool_waiting(
                cols,
                &[
                    "⊷  Shell  ./install.sh",
                    "",
                    "Installing 3 packages.",
                    "Do you want to continue (y/n)?",
                ],
                status,
            );
            let e = explain(AgentType::Gemini, &s, cols as u16);
            let p = e
                .prompt
                .unwrap_or_else(|| panic!("{cols} {status}: no prompt\n{s}"));
            assert_eq!(p.rule_id, "gemini.continue-yn", "{cols} {status}");
            assert_eq!(e.state, ScreenState::BlockingPrompt, "{cols}");
        }
        // The interactive-shell hint alone is a tool wait too.
        let s = gemini_tool_waiting(
            cols,
            &["⊷  Shell  ./install.sh", "Password:"],
            " ⠏ Interactive shell awaiting input... press tab to focus shell",
        );
        let e = explain(AgentType::Gemini, &s, cols as u16);
        assert_eq!(
            e.prompt.map(|p| p.rule_id).as_deref(),
            Some("gemini.interactive-shell"),
            "{cols}"
        );
        // The same box after the tool finished (no loading indicator), with the reply below: a
        // finished turn.
        let (top, bottom, r) = ("▄".repeat(cols), "▀".repeat(cols), "─".repeat(cols));
        let s = format!(
            "{top}\n > Show the script's prompt\n{bottom}\n╭{h}╮\n│ ✓  Shell  cat prompt.txt{pad}│\n│ Do you want to continue (y/n)?{pad2}│\n╰{h}╯\n✦ That is the question it asks.\n\n{r}\n{top}\n >   Type your message or @path/to/file\n{bottom}\n /tmp/w    main    no sandbox    Auto\n",
            h = "─".repeat(cols - 2),
            pad = " ".repeat(cols - 27),
            pad2 = " ".repeat(cols - 33),
        );
        let e = explain(AgentType::Gemini, &s, cols as u16);
        assert_eq!(
            e.state,
            ScreenState::TaskComplete,
            "{cols}: {:?}\n{s}",
            e.matches
        );
        // A reply quoting the question while it still streams (spinner below) is busy.
        let s = format!(
            "{top}\n > What will it ask?\n{bottom}\n✦ It will ask:\n  Do you want to continue (y/n)?\n ⠙ Thinking... (esc to cancel, 2s)\n{r}\n Shift+Tab to accept edits\n{top}\n >   Type your message or @path/to/file\n{bottom}\n /tmp/w    main    no sandbox    Auto\n"
        );
        let e = explain(AgentType::Gemini, &s, cols as u16);
        assert_eq!(e.state, ScreenState::Busy, "{cols}: {:?}", e.matches);
    }
}

/// Pi's screen after a message sent without a key (the recording `pi/exited-nokey` at `cols`):
/// the error block (text wrapped at spaces, paths broken anywhere, as Pi does), the empty editor
/// and the footer.
fn pi_no_key(cols: usize, footer: &str) -> String {
    let r = "─".repeat(cols);
    let mut s = String::from(" pi v0.73.1\n\n");
    for text in [
        "Error: No API key found for the selected model.",
        "Use /login to log into a provider via OAuth or API key. See:",
    ] {
        let mut row = String::new();
        for word in text.split(' ') {
            if !row.is_empty() && row.chars().count() + 1 + word.len() > cols - 2 {
                s += &format!(" {row}\n");
                row.clear();
            }
            if !row.is_empty() {
                row.push(' ');
            }
            row += word;
        }
        s += &format!(" {row}\n");
    }
    for doc in ["providers.md", "models.md"] {
        let path: Vec<char> =
            format!("/usr/lib/node_modules/@mariozechner/pi-coding-agent/docs/{doc}")
                .chars()
                .collect();
        for chunk in path.chunks(cols - 4) {
            s += &format!("   {}\n", chunk.iter().collect::<String>());
        }
    }
    s + &format!("\n{r}\n\n{r}\n/tmp/w (main)\n{footer}\n")
}

#[test]
fn pi_no_api_key_error_block_is_a_login_at_any_width() {
    for cols in [40usize, 50, 60, 80, 120, 200] {
        for footer in [
            "0.0%/0 (auto)    unknown",
            "0.0%/200k (auto)    claude-sonnet",
            // After earlier turns (a keyless model picked later): token counts are shown.
            "↑2.9k ↓20 1.2%/200k (auto)    claude-sonnet",
        ] {
            let s = pi_no_key(cols, footer);
            let e = explain(AgentType::Pi, &s, cols as u16);
            assert_eq!(e.state, ScreenState::LoginRequired, "{cols} {footer}\n{s}");
            assert_eq!(e.winner.as_deref(), Some("pi.no-api-key"), "{cols}");
        }
    }
    // The real screen: the recording whose last frame shows the error (labeled `exited` because
    // Pi quit silently afterwards, so the fixture test does not score it).
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/agents/pi/exited-nokey.raw");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut screen = pty_manager::Screen::new(120, 40);
    screen.process(&bytes);
    let e = crate::negative::explain_snap(AgentType::Pi, &screen.snapshot());
    // (The "No models available" warning above it matches too and comes first.)
    assert_eq!(e.state, ScreenState::LoginRequired);
    assert!(
        e.matches.iter().any(|m| m.id == "pi.no-api-key"),
        "{:?}",
        e.matches
    );
}
