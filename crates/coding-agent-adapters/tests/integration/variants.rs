//! Variants the recordings lack, table-driven: other status words, other placeholders, and
//! questions that wrap at narrow widths.

use coding_agent_adapters::AgentType;
use pty_manager::ScreenState;

use crate::negative::explain;

/// Hard-wraps `text` at `cols` like a terminal does with long output (a break anywhere).
fn wrap(text: &str, cols: usize) -> String {
    let mut out = Vec::new();
    for line in text.split('\n') {
        let chars: Vec<char> = line.chars().collect();
        if chars.is_empty() {
            out.push(String::new());
        }
        for chunk in chars.chunks(cols) {
            out.push(chunk.iter().collect());
        }
    }
    out.join("\n")
}

/// Breaks `text` into rows of at most `cols` characters at spaces, as Ink does.
fn word_wrap(text: &str, cols: usize) -> Vec<String> {
    let mut rows = vec![String::new()];
    for word in text.split(' ') {
        let last = rows.last_mut().unwrap();
        if !last.is_empty() && last.chars().count() + 1 + word.chars().count() > cols {
            rows.push(word.to_owned());
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(word);
        }
    }
    rows
}

#[test]
fn pi_spinner_with_any_status_is_busy() {
    let r = "─".repeat(100);
    for status in [
        "Working...",
        "Thinking...",
        "Compacting context...",
        "Summarizing…",
    ] {
        let s = format!(
            " Say hello\n\n ⠹ {status}\n\n{r}\n\n{r}\n/tmp/w (main)\n0.0%/128k (auto)  fake-model\n"
        );
        assert_eq!(
            explain(AgentType::Pi, &s, 100).state,
            ScreenState::Busy,
            "{status}"
        );
    }
    // A reply row that merely ends in "..." is not a spinner.
    let r = "─".repeat(100);
    let s = format!(
        " Say hello\n\n Loading...\n\n{r}\n\n{r}\n/tmp/w (main)\n↑50 ↓10 0.0%/128k (auto)  fake-model\n"
    );
    assert_eq!(
        explain(AgentType::Pi, &s, 100).state,
        ScreenState::TaskComplete
    );
}

#[test]
fn pi_no_models_warning_wrapped_at_narrow_widths_is_a_login() {
    let r = "─".repeat(60);
    let warning = " Warning: No models available. Use /login to log into a provider via OAuth or API key. See: /usr/lib/node_modules/pi/docs/providers.md";
    for cols in [40usize, 60, 80, 120] {
        let s = format!(
            "{}\n\n{r}\n\n{r}\n/tmp/w (main)\n0.0%/0 (auto)   unknown\n",
            wrap(warning, cols)
        );
        assert_eq!(
            explain(AgentType::Pi, &s, cols as u16).state,
            ScreenState::LoginRequired,
            "{cols}"
        );
    }
}

#[test]
fn gemini_finished_turn_with_any_input_bar_text() {
    let (top, bottom, r) = ("▄".repeat(100), "▀".repeat(100), "─".repeat(100));
    for bar in [
        " >   Type your message or @path/to/file",
        " >   Ask me anything",
        " > next task typed but not sent",
        " >",
    ] {
        let s = format!(
            "{top}\n > Say hello\n{bottom}\n\n✦ Hello.\n\n{r}\n{top}\n{bar}\n{bottom}\n /w  main  no sandbox  Auto\n"
        );
        let e = explain(AgentType::Gemini, &s, 100);
        assert_eq!(e.state, ScreenState::TaskComplete, "{bar}: {:?}", e.matches);
    }
    // Only the user's message and the input bar: nothing finished yet.
    let s = format!(
        "{top}\n > Say hello\n{bottom}\n\n{r}\n{top}\n >   Type your message or @path/to/file\n{bottom}\n /w\n"
    );
    assert_ne!(
        explain(AgentType::Gemini, &s, 100).state,
        ScreenState::TaskComplete
    );
}

#[test]
fn aider_questions_wrapped_at_narrow_widths_are_still_questions() {
    let questions = [
        "Add src/components/deeply/nested/module/with_a_rather_long_file_name.py to the chat? (Y)es/(N)o/(D)on't ask again [Yes]: ",
        "Allow edits to file src/components/deeply/nested/module/with_a_rather_long_name.py? (Y)es/(N)o [Yes]: ",
        "Frobnicate the repository in a way nobody has ever seen before, really? (Y)es/(N)o [No]: ",
    ];
    for q in questions {
        for cols in 40usize..=130 {
            let s = format!("> do it\n\nsome reply\n{}", wrap(q, cols));
            let e = explain(AgentType::Aider, &s, cols as u16);
            assert_eq!(
                e.state,
                ScreenState::BlockingPrompt,
                "{cols}: {q}\n{s}\n{:?}",
                e.matches
            );
        }
    }
    // An answered question, wrapped or not, is history.
    let q = wrap(
        "Add src/components/deeply/nested/module/file.py to the chat? (Y)es/(N)o [Yes]: y",
        40,
    );
    let s = format!("{q}\nTokens: 1k sent, 10 received.\n────\n> ");
    assert_eq!(
        explain(AgentType::Aider, &s, 40).state,
        ScreenState::TaskComplete
    );
}

#[test]
fn aider_wrapped_questions_keep_their_kind() {
    // (question, rule that must win, prompt kind). Paths long enough to wrap at 80 and 120
    // columns; at every width in between a row break falls somewhere else (inside a word, on a
    // space at the last column, before a space at the first).
    let long = "src/components/settings/advanced/notifications/preferences/NotificationPreferencesPanel_with_a_long_name.py";
    let cases = [
        (
            format!(
                "Add {long} to the chat? (Y)es/(N)o/(A)ll/(S)kip all/(D)on't ask again [Yes]: "
            ),
            "aider.edit-files",
            "tool_permission",
        ),
        (
            format!("Allow edits to file {long}? (Y)es/(N)o [Yes]: "),
            "aider.edit-files",
            "tool_permission",
        ),
        (
            "Allow edits to file that has not been added to the chat? (Y)es/(N)o [Yes]: "
                .to_owned(),
            "aider.edit-files",
            "tool_permission",
        ),
        (
            "Add URL to the chat? (Y)es/(N)o/(A)ll/(S)kip all/(D)on't ask again [Yes]: ".to_owned(),
            "aider.add-url",
            "tool_permission",
        ),
        (
            "Add command output to the chat? (Y)es/(N)o/(D)on't ask again [Yes]: ".to_owned(),
            "aider.add-command-output",
            "tool_permission",
        ),
    ];
    let mut failures = Vec::new();
    for (q, id, kind) in &cases {
        for cols in 40usize..=200 {
            let s = format!("> do it\n\nsome reply\n{}", wrap(q, cols));
            let e = explain(AgentType::Aider, &s, cols as u16);
            let got = e
                .prompt
                .as_ref()
                .map(|p| (p.rule_id.clone(), p.kind.clone()));
            if e.state != ScreenState::BlockingPrompt
                || got != Some((id.to_string(), Some(kind.to_string())))
            {
                failures.push(format!("{cols}: {q:?} -> {:?} {got:?}", e.state));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn aider_wrapped_question_through_the_screen_model_keeps_its_kind() {
    // The bytes Aider writes (a line-mode program: the question, no cursor moves) replayed
    // through the terminal emulator, so the rows are the emulator's own wrapped rows.
    let long = "src/components/settings/advanced/notifications/preferences/NotificationPreferencesPanel_with_a_long_name.py";
    for cols in [80u16, 120] {
        let bytes = format!(
            "> do it\r\n\r\nsome reply\r\n\r\nAdd {long} to the chat? (Y)es/(N)o/(A)ll/(S)kip all/(D)on't ask again [Yes]: "
        );
        let mut screen = pty_manager::Screen::new(cols, 24);
        screen.process(bytes.as_bytes());
        let snap = screen.snapshot();
        assert!(
            snap.lines.iter().filter(|l| !l.trim().is_empty()).count() >= 4,
            "{cols}: the question should wrap: {:?}",
            snap.lines
        );
        let e = crate::negative::explain_snap(AgentType::Aider, &snap);
        let p = e
            .prompt
            .unwrap_or_else(|| panic!("{cols}: no prompt {:?}", snap.lines));
        assert_eq!(
            (p.rule_id.as_str(), p.kind.as_deref(), p.answer.clone()),
            (
                "aider.edit-files",
                Some("tool_permission"),
                vec!["y".to_owned(), "enter".to_owned()]
            ),
            "{cols}"
        );
    }
}

#[test]
fn aider_wrapped_question_rules_match_no_more_than_the_question() {
    let long = "src/components/settings/advanced/notifications/preferences/NotificationPreferencesPanel.py";
    for cols in [80usize, 120, 200] {
        // An answered question is history, wrapped or not.
        let s = format!(
            "> do it\n{}\nTokens: 1k sent, 10 received.\n────\n> ",
            wrap(
                &format!("Add {long} to the chat? (Y)es/(N)o/(D)on't ask again [Yes]: y"),
                cols
            )
        );
        assert_eq!(
            explain(AgentType::Aider, &s, cols as u16).state,
            ScreenState::TaskComplete,
            "{cols}"
        );
        // A reply row starting "Add " above another question does not make that question a
        // request to add files: the unknown question stays report-only.
        let s = format!(
            "> do it\nAdd the parser module next\n{}",
            wrap(
                "Frobnicate the repository in a way nobody has seen before, to the chat? (Y)es/(N)o [No]: ",
                cols
            )
        );
        let e = explain(AgentType::Aider, &s, cols as u16);
        assert_eq!(
            e.prompt.map(|p| p.rule_id).as_deref(),
            Some("aider.question"),
            "{cols}"
        );
        // A file name with spaces is recognised while it stays on the question's first row; once
        // it wraps the question is still blocked but report-only (never answered as a file).
        let q = "Add docs/a name with spaces.md to the chat? (Y)es/(N)o [Yes]: ";
        let e = explain(AgentType::Aider, &format!("> do it\n{q}"), cols as u16);
        assert_eq!(
            e.prompt.map(|p| p.rule_id).as_deref(),
            Some("aider.edit-files"),
            "{cols}"
        );
        let q = format!(
            "Add docs/{} spaces.md to the chat? (Y)es/(N)o [Yes]: ",
            "a name with ".repeat(cols / 10)
        );
        let e = explain(
            AgentType::Aider,
            &format!("> do it\n{}", wrap(&q, cols)),
            cols as u16,
        );
        assert_eq!(e.state, ScreenState::BlockingPrompt, "{cols}");
        assert_eq!(
            e.prompt.map(|p| p.rule_id).as_deref(),
            Some("aider.question"),
            "{cols}"
        );
        // A file question after an answered one is its own question (the file name never
        // reaches back over the earlier "?").
        let s = format!(
            "> do it\n{}\n{}",
            wrap(
                &format!("Add {long} to the chat? (Y)es/(N)o [Yes]: y"),
                cols
            ),
            wrap(
                "Run shell command? (Y)es/(N)o/(D)on't ask again [Yes]: ",
                cols
            )
        );
        let e = explain(AgentType::Aider, &s, cols as u16);
        assert_eq!(
            e.prompt.map(|p| p.rule_id).as_deref(),
            Some("aider.run-shell"),
            "{cols}"
        );
        let ids: Vec<_> = e.matches.iter().map(|m| m.id.as_str()).collect();
        assert!(!ids.contains(&"aider.edit-files"), "{cols}: {ids:?}");
        // A question about something else that merely ends in "to the chat?" after an "Add"
        // row is not a file question either when a "?" sits between them.
        let s = format!(
            "> do it\nAdd it? Maybe.\n{}",
            wrap(
                "Should I paste the summary to the chat? (Y)es/(N)o [No]: ",
                cols
            )
        );
        let e = explain(AgentType::Aider, &s, cols as u16);
        assert_eq!(
            e.prompt.map(|p| p.rule_id).as_deref(),
            Some("aider.question"),
            "{cols}"
        );
    }
}

#[test]
fn claude_file_dialog_with_a_long_path_wrapped_at_narrow_widths() {
    let path = "src/components/settings/advanced/NotificationPreferencesPanel.tsx";
    for (question, id) in [
        (
            format!("Do you want to create {path}?"),
            "claude.file-create",
        ),
        (
            format!("Do you want to make this edit to {path}?"),
            "claude.file-edit",
        ),
    ] {
        for cols in [50usize, 60, 80, 120] {
            // Ink wraps at spaces: the path moves to the next row when it does not fit.
            let rows = word_wrap(&question, cols - 1);
            let s = format!(
                "● Write({path})\n\n{}\n Create file\n {path}\n\n {}\n ❯ 1. Yes\n   2. Yes, allow all edits during this session (shift+tab)\n   3. No\n\n Esc to cancel · Tab to amend\n",
                "─".repeat(cols),
                rows.join("\n ")
            );
            let e = explain(AgentType::Claude, &s, cols as u16);
            let p = e.prompt.unwrap_or_else(|| panic!("{cols}: no prompt\n{s}"));
            assert_eq!(p.rule_id, id, "{cols}");
        }
    }
}

#[test]
fn gemini_spinner_phrases_at_any_width_are_busy_without_the_title() {
    let phrases = [
        "Thinking...",
        "Counting electrons...",
        "Constructing additional pylons while reticulating the remaining splines...",
    ];
    for phrase in phrases {
        for cols in [40usize, 50, 60, 70, 80, 120] {
            let (top, bottom) = ("▄".repeat(cols), "▀".repeat(cols));
            let status = format!(" ⠙ {phrase} (esc to cancel, 12s)");
            // Ink breaks the long row at a space.
            let rows = word_wrap(&status, cols);
            let s = format!(
                "{top}\n > Say hello\n{bottom}\n\n{}\n{}\n Shift+Tab to accept edits\n{top}\n >   Type your message or @path/to/file\n{bottom}\n /w  no sandbox\n",
                rows.join("\n"),
                "─".repeat(cols)
            );
            let e = explain(AgentType::Gemini, &s, cols as u16);
            assert_eq!(e.state, ScreenState::Busy, "{cols}: {phrase}\n{s}");
        }
    }
}

#[test]
fn claude_not_logged_in_footer_at_any_width() {
    for (cols, footer) in [
        (
            60usize,
            "  ? for shortcuts   Not logged in · Run /login\n  ● high · /effort",
        ),
        (
            80,
            "  ? for shortcuts · ← for agents    Not logged in · Run /login  ● high",
        ),
        (
            120,
            "  ? for shortcuts · ← for agents                    Not logged in · Run /login",
        ),
    ] {
        let r = "─".repeat(cols);
        let s = format!("{r}\n❯ \n{r}\n{footer}\n");
        let e = explain(AgentType::Claude, &s, cols as u16);
        assert_eq!(e.state, ScreenState::LoginRequired, "{cols}");
    }
    // The transcript form stays on screen after a successful login: not a login.
    let r = "─".repeat(100);
    let s = format!(
        "❯ hi\n  ⎿  Not logged in · Please run /login\n\n✻ Brewed for 0s\n\n{r}\n❯ \n{r}\n  ? for shortcuts\n"
    );
    assert_ne!(
        explain(AgentType::Claude, &s, 100).state,
        ScreenState::LoginRequired
    );
}
