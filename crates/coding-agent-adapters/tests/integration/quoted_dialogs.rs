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
