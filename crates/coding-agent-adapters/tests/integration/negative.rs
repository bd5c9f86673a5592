//! Screens the recordings do not cover: ordinary transcript text that merely mentions key names,
//! "exit", "Unauthorized", "OAuth" or a dialog's words must not read as a login or a prompt; other
//! spinner verbs, dialog variants and terminal widths must read as what they are.

use coding_agent_adapters::{AgentType, AnswerPolicy, Registry};
use pty_manager::{Adapter, DeclarativeAdapter, Explanation, ScreenSnapshot, ScreenState};

/// Lines a model may well write in a reply.
const TRICKY: &[&str] = &[
    "To leave, type exit or press ctrl+c twice; escape, enter, up, down and shift+tab are keys.",
    "The server answered 401 Unauthorized, so configure OAuth or set ANTHROPIC_API_KEY,",
    "OPENAI_API_KEY, GEMINI_API_KEY or OPENROUTER_API_KEY before you run /login again.",
    "If you see \"Not logged in\" or \"Invalid API key\", check the key; Do you want to proceed?",
    "Prompts look like (Y)es/(N)o [Yes]: and dialogs say Press Enter to continue or Esc to cancel.",
    "Trust this folder? and Do you trust the files in this folder? are trust questions.",
    "Usage limit reached is an error message; Unable to connect happens offline.",
];

thread_local! {
    // Compiling a manifest's rules is the slow part; each test thread does it once per agent.
    static ADAPTERS: Vec<(AgentType, DeclarativeAdapter)> = {
        let registry = Registry::builtin().unwrap();
        AgentType::ALL
            .into_iter()
            .map(|a| (a, registry.get(a).adapter(&AnswerPolicy::default()).unwrap()))
            .collect()
    };
}

pub(crate) fn explain_snap(agent: AgentType, snap: &ScreenSnapshot) -> Explanation {
    ADAPTERS.with(|all| {
        let (_, a) = all.iter().find(|(t, _)| *t == agent).unwrap();
        a.explain(snap)
    })
}

pub(crate) fn explain(agent: AgentType, text: &str, cols: u16) -> Explanation {
    explain_snap(agent, &ScreenSnapshot::from_text(text, cols, 40))
}

fn rule(cols: usize, c: char) -> String {
    std::iter::repeat_n(c, cols).collect()
}

/// An idle screen after a finished turn whose reply is `reply`, per agent.
pub(crate) fn finished_turn(agent: AgentType, reply: &[&str], cols: usize) -> String {
    let r = rule(cols, '─');
    let mut s = String::new();
    match agent {
        AgentType::Claude => {
            s += "❯ Explain the login flow\n\n";
            for (i, l) in reply.iter().enumerate() {
                s += &format!("{}{l}\n", if i == 0 { "● " } else { "  " });
            }
            s += &format!("\n✻ Cooked for 3s\n\n{r}\n❯ \n{r}\n  ? for shortcuts\n");
        }
        AgentType::Codex => {
            s += "› Explain the login flow\n\n";
            for (i, l) in reply.iter().enumerate() {
                s += &format!("{}{l}\n", if i == 0 { "• " } else { "  " });
            }
            s += "\n  Worked for 3s • 02:00\n\n› Ask Codex to do anything\n\n";
            s += "  fake-model default · /tmp/w\n  ? for shortcuts\n";
        }
        AgentType::Gemini => {
            let (top, bottom) = (rule(cols, '▄'), rule(cols, '▀'));
            s += &format!("{top}\n > Explain the login flow\n{bottom}\n");
            for (i, l) in reply.iter().enumerate() {
                s += &format!("{}{l}\n", if i == 0 { "✦ " } else { "  " });
            }
            s += &format!("\n{r}\n{top}\n >   Type your message or @path/to/file\n{bottom}\n");
            s += " /tmp/w    main    no sandbox    Auto\n";
        }
        AgentType::Aider => {
            s += "> Explain the login flow\n\n";
            for l in reply {
                s += &format!("{l}\n");
            }
            s += &format!("\nTokens: 766 sent, 10 received.\n{r}\n> ");
        }
        AgentType::Pi => {
            s += " Explain the login flow\n\n";
            for l in reply {
                s += &format!(" {l}\n");
            }
            s += &format!("\n{r}\n\n{r}\n/tmp/w (main)\n↑50 ↓10 0.0%/128k (auto)    fake-model\n");
        }
        AgentType::Hermes => {
            s += "╭─ ⚕ Hermes ──────\n";
            for l in reply {
                s += &format!("│ {l}\n");
            }
            s += "╰──────\n❯ ";
        }
        AgentType::Opencode => {
            for l in reply {
                s += &format!("  {l}\n");
            }
            s += "\n  enter send\n";
        }
    }
    s
}

pub(crate) fn expected_idle(agent: AgentType) -> ScreenState {
    match agent {
        AgentType::Opencode => ScreenState::Ready,
        _ => ScreenState::TaskComplete,
    }
}

#[test]
fn transcript_text_is_never_a_login_or_a_prompt() {
    for agent in AgentType::ALL {
        for cols in [80usize, 120, 200] {
            let screen = finished_turn(agent, TRICKY, cols);
            let e = explain(agent, &screen, cols as u16);
            assert!(
                e.login.is_none(),
                "{agent} {cols}: login {:?}\n{screen}",
                e.login
            );
            assert!(
                e.prompt.is_none(),
                "{agent} {cols}: prompt {:?}\n{screen}",
                e.prompt
            );
            assert_eq!(
                e.state,
                expected_idle(agent),
                "{agent} {cols}: {:?}\n{screen}",
                e.matches
            );
            let bad: Vec<_> = e
                .matches
                .iter()
                .filter(|m| {
                    matches!(
                        m.signal,
                        pty_manager::Signal::Prompt
                            | pty_manager::Signal::Login
                            | pty_manager::Signal::Error
                            | pty_manager::Signal::UsageLimit
                            | pty_manager::Signal::ExitHint
                    )
                })
                .map(|m| m.id.clone())
                .collect();
            assert!(bad.is_empty(), "{agent} {cols}: {bad:?}");
        }
    }
}

#[test]
fn each_tricky_line_alone_as_the_last_reply_row() {
    // The last reply row sits right above the composer, where footers and dialogs live.
    for agent in AgentType::ALL {
        for line in TRICKY {
            let screen = finished_turn(agent, &[line], 120);
            let e = explain(agent, &screen, 120);
            assert_eq!(
                e.state,
                expected_idle(agent),
                "{agent}: {line}\n{:?}",
                e.matches
            );
        }
    }
}

#[test]
fn claude_spinner_verbs_and_durations() {
    let r = rule(120, '─');
    for row in [
        "✢ Pondering…",
        "· Clauding… (5s · ↑ 1.2k tokens · esc to interrupt)",
        "✽ Sautéing…",
        "* Reticulating…",
        "✳ Hatching… (12s · thinking)",
    ] {
        let s = format!("❯ Say hello\n\n{row}\n\n{r}\n❯ \n{r}\n");
        assert_eq!(
            explain(AgentType::Claude, &s, 120).state,
            ScreenState::Busy,
            "{row}"
        );
    }
    for row in [
        "✻ Worked for 1m 5s",
        "✻ Brewed for 0s",
        "✻ Sautéed for 2h 3m",
        "✻ Baked for 45s · 3 tool uses",
    ] {
        let s = format!("❯ Say hello\n\n● Hi.\n\n{row}\n\n{r}\n❯ \n{r}\n  ? for shortcuts\n");
        let e = explain(AgentType::Claude, &s, 120);
        assert_eq!(e.state, ScreenState::TaskComplete, "{row}: {:?}", e.matches);
    }
}

#[test]
fn claude_dialog_variants() {
    let cases = [
        (
            " Bash command\n\n   npm test\n   Run the tests\n\n Do you want to proceed?\n ❯ 1. Yes\n   2. Yes, and don't ask again for npm test commands in /w\n   3. No, and tell Claude what to do differently (esc)\n",
            "claude.bash-permission",
            "command_approval",
        ),
        (
            " Edit file\n src/main.rs\n\n Do you want to make this edit to main.rs?\n ❯ 1. Yes\n   2. Yes, allow all edits during this session (shift+tab)\n   3. No\n",
            "claude.file-edit",
            "tool_permission",
        ),
        (
            " Tool use\n\n   github - create_issue(title: \"x\")\n\n Do you want to proceed?\n ❯ 1. Yes\n   2. No, and tell Claude what to do differently (esc)\n",
            "claude.tool-permission",
            "tool_permission",
        ),
        (
            " WARNING: Claude Code running in Bypass Permissions mode\n\n ❯ 1. No, exit\n   2. Yes, I accept\n",
            "claude.bypass-warning",
            "bypass_warning",
        ),
    ];
    for width in [60u16, 120, 200] {
        for (screen, id, kind) in cases {
            let e = explain(AgentType::Claude, screen, width);
            assert_eq!(e.state, ScreenState::BlockingPrompt, "{id} at {width}");
            let p = e.prompt.unwrap();
            assert_eq!(p.rule_id, id);
            assert_eq!(p.kind.as_deref(), Some(kind));
        }
    }
}

#[test]
fn codex_gemini_aider_variants() {
    let e = explain(
        AgentType::Codex,
        "  Would you like to make the following edits?\n\n  src/lib.rs (+2 -1)\n\n› 1. Yes, proceed (y)\n  2. No, and tell Codex what to do differently (esc)\n\n  Press enter to confirm or esc to cancel\n",
        80,
    );
    assert_eq!(e.prompt.unwrap().rule_id, "codex.edit-approval");
    let e = explain(
        AgentType::Codex,
        "› Fix it\n\n• Working (1m 02s • esc to interrupt)\n\n› Ask Codex to do anything\n",
        80,
    );
    assert_eq!(e.state, ScreenState::Busy);
    let b = rule(78, '─');
    let e = explain(
        AgentType::Gemini,
        &format!(
            "╭{b}╮\n│ ? Shell npm test [current working directory /w]\n│   npm test\n│ Allow execution of: 'npm'?\n│\n│ ● 1. Allow once\n│   2. Allow for this session\n│   3. No, suggest changes (esc)\n╰{b}╯\n"
        ),
        80,
    );
    let p = e.prompt.unwrap();
    assert_eq!(
        (p.rule_id.as_str(), p.kind.as_deref()),
        ("gemini.allow-execution", Some("command_approval"))
    );
    for (last, id, answer) in [
        (
            "Run shell command? (Y)es/(N)o/(D)on't ask again [Yes]: ",
            "aider.run-shell",
            ["y", "enter"],
        ),
        (
            "Add src/x.py to the chat? (Y)es/(N)o/(D)on't ask again [Yes]: ",
            "aider.edit-files",
            ["y", "enter"],
        ),
        (
            "Add URL to the chat? (Y)es/(N)o/(D)on't ask again [Yes]: ",
            "aider.add-url",
            ["y", "enter"],
        ),
    ] {
        let e = explain(
            AgentType::Aider,
            &format!("> do it\n\nsome reply\n{last}"),
            120,
        );
        let p = e.prompt.unwrap_or_else(|| panic!("{last}"));
        assert_eq!(p.rule_id, id, "{last}");
        assert_eq!(p.answer, answer);
    }
    // An answered question is history, not a prompt.
    let e = explain(
        AgentType::Aider,
        "Create new file? (Y)es/(N)o [Yes]: y\nApplied edit to x\n────\n> ",
        120,
    );
    assert_eq!(e.state, ScreenState::TaskComplete);
    // Another unknown yes/no question is reported, never answered.
    let e = explain(
        AgentType::Aider,
        "Frobnicate the repo? (Y)es/(N)o [No]: ",
        120,
    );
    let p = e.prompt.unwrap();
    assert_eq!(p.rule_id, "aider.question");
    assert!(p.answer.is_empty());
}

#[test]
fn aider_ready_is_only_the_cursor_row_prompt() {
    // A line ending with ">" in output is not a prompt (upstream's mistake).
    let e = explain(AgentType::Aider, "Aider v0.86.2\nVec<String>\n<div>", 120);
    assert_eq!(e.state, ScreenState::Starting);
    for p in ["> ", "ask> ", "architect> "] {
        let e = explain(AgentType::Aider, &format!("Aider v0.86.2\n────\n{p}"), 120);
        assert_eq!(e.state, ScreenState::Ready, "{p}");
    }
}

#[test]
fn aider_streaming_reply_is_busy_until_the_token_report() {
    let streaming = "Aider v0.86.2\n────\n> Explain the code\n\nThe function reads the file and\n";
    assert_eq!(
        explain(AgentType::Aider, streaming, 120).state,
        ScreenState::Busy
    );
    // Slash-command output returns to the prompt without a token report: not busy.
    let help = "> /help\n/add    Add files to the chat\n/exit   Exit the application\n────\n> ";
    assert_eq!(
        explain(AgentType::Aider, help, 120).state,
        ScreenState::Ready
    );
    let done = "> Explain the code\n\nIt reads the file.\n\nTokens: 1.2k sent, 85 received. Cost: $0.01 message.\n────\n> ";
    assert_eq!(
        explain(AgentType::Aider, done, 120).state,
        ScreenState::TaskComplete
    );
}

#[test]
fn claude_second_ctrl_c_hint_is_not_a_prompt() {
    let r = rule(120, '─');
    let s = format!("● Hi.\n\n✻ Cooked for 3s\n\n{r}\n❯ \n{r}\n  Press Ctrl-C again to exit\n");
    let e = explain(AgentType::Claude, &s, 120);
    assert!(e.prompt.is_none());
    assert_eq!(e.state, ScreenState::TaskComplete);
    // A multi-line composer is still the composer.
    let s = format!("{r}\n❯ first line\n  second line\n{r}\n  ? for shortcuts\n");
    assert_eq!(
        explain(AgentType::Claude, &s, 120).state,
        ScreenState::Ready
    );
}

#[test]
fn gemini_long_reply_that_scrolled_off_is_still_a_finished_turn() {
    let (top, bottom, r) = (rule(120, '▄'), rule(120, '▀'), rule(120, '─'));
    let mut visible = String::new();
    for i in 0..30 {
        visible += &format!("  line {i} of a long answer\n");
    }
    visible += &format!(
        "\n{r}\n{top}\n >   Type your message or @path/to/file\n{bottom}\n /w  main  no sandbox  Auto\n"
    );
    let mut snap = ScreenSnapshot::from_text(&visible, 120, 40);
    snap.scrolled = vec![
        top.clone(),
        " > Explain everything".into(),
        bottom.clone(),
        "✦ Here is the long answer:".into(),
    ];
    let e = explain_snap(AgentType::Gemini, &snap);
    assert_eq!(e.state, ScreenState::TaskComplete, "{:?}", e.matches);
    snap.scrolled.clear();
    assert_eq!(
        explain_snap(AgentType::Gemini, &snap).state,
        ScreenState::Ready
    );
}
