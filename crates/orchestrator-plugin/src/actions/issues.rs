//! MANAGE_ISSUES.

use serde_json::json;

use super::{Action, ActionContext, ActionResult, Needs};
use crate::runtime::RuntimeExt;
use crate::services::{Authorization, DeviceCode, Issue, IssueQuery, IssueUpdate, NewIssue};

pub(super) const ACTION: Action = Action {
    name: "MANAGE_ISSUES",
    similes: &[
        "CREATE_ISSUE",
        "LIST_ISSUES",
        "CLOSE_ISSUE",
        "COMMENT_ISSUE",
        "UPDATE_ISSUE",
        "GET_ISSUE",
    ],
    description: "Create, list, read, update, comment on, close, reopen or label GitHub issues of a \
        repository (owner/repo or a GitHub URL).",
    examples: &[
        (
            "List the open issues in acme/app",
            "Issues in acme/app:\n#12 [open] Login fails (bug)",
        ),
        (
            "Close issue #12 in acme/app",
            "Closed issue #12: Login fails",
        ),
    ],
    schema,
    needs: Needs::Workspace,
    handler,
};

const OPERATIONS: [&str; 8] = [
    "create",
    "list",
    "get",
    "update",
    "comment",
    "close",
    "reopen",
    "add_labels",
];

fn schema() -> serde_json::Value {
    json!({
        "type": "object",
        "properties": {
            "operation": {"type": "string", "enum": OPERATIONS},
            "repo": {"type": "string", "description": "owner/repo or a GitHub URL"},
            "title": {"type": "string"},
            "body": {"type": "string", "description": "issue body, or the comment text"},
            "issueNumber": {"type": "integer"},
            "labels": {"oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}]},
            "state": {"type": "string", "enum": ["open", "closed", "all"]}
        },
        "additionalProperties": false
    })
}

fn has_word(text: &str, words: &[&str]) -> bool {
    text.split(|c: char| !c.is_ascii_alphanumeric() && c != '-')
        .any(|w| words.contains(&w))
}

/// The operation a message's text asks for (BEHAVIOR.md §10.2; reopen is checked first so
/// "re-open" is never read as "open").
pub(crate) fn infer_operation(text: &str) -> &'static str {
    let t = text.to_ascii_lowercase();
    if has_word(&t, &["reopen", "re-open"]) {
        return "reopen";
    }
    if has_word(&t, &["create", "open", "file", "submit", "make", "add"])
        && has_word(&t, &["issue", "issues"])
        && !has_word(&t, &["label", "labels", "tag", "tags"])
    {
        return "create";
    }
    if has_word(&t, &["close", "resolve"]) {
        return "close";
    }
    if has_word(&t, &["comment", "reply"]) {
        return "comment";
    }
    if has_word(&t, &["update", "edit", "modify"]) {
        return "update";
    }
    if has_word(&t, &["label", "labels", "tag", "tags"]) {
        return "add_labels";
    }
    if issue_number_in(&t).is_some() && !has_word(&t, &["list", "show", "all"]) {
        return "get";
    }
    "list"
}

fn issue_number_in(text: &str) -> Option<u64> {
    let i = text.find('#')?;
    let digits: String = text[i + 1..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// `owner/repo` from a parameter or text: a GitHub URL or a bare `owner/repo` word.
pub(crate) fn parse_repo(s: &str) -> Option<String> {
    for word in s.split_whitespace() {
        let w = word.trim_matches(|c: char| {
            matches!(
                c,
                '(' | ')' | '"' | '\'' | ',' | '.' | ';' | '`' | '<' | '>'
            )
        });
        let w = w
            .strip_prefix("https://github.com/")
            .or_else(|| w.strip_prefix("http://github.com/"))
            .or_else(|| w.strip_prefix("github.com/"))
            .unwrap_or(w);
        let parts: Vec<&str> = w.trim_end_matches('/').split('/').collect();
        if parts.len() >= 2 && (parts.len() == 2 || w != word) {
            let ok = |p: &str| {
                !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            };
            let repo = parts[1].trim_end_matches(".git");
            if ok(parts[0]) && ok(repo) {
                return Some(format!("{}/{repo}", parts[0]));
            }
        }
    }
    None
}

/// Numbered (`1.`, `2)`) or bulleted (`-`, `*`, `•`) items of a text.
fn list_items(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let rest = l
                .strip_prefix("- ")
                .or_else(|| l.strip_prefix("* "))
                .or_else(|| l.strip_prefix("• "))
                .or_else(|| {
                    let digits = l.chars().take_while(|c| c.is_ascii_digit()).count();
                    (digits > 0)
                        .then(|| &l[digits..])
                        .and_then(|r| r.strip_prefix(". ").or_else(|| r.strip_prefix(") ")))
                })?;
            let rest = rest.trim();
            (!rest.is_empty()).then(|| rest.to_string())
        })
        .collect()
}

fn labels_text(labels: &[String]) -> String {
    labels.join(", ")
}

fn handler(ctx: &mut ActionContext<'_>) -> ActionResult {
    let Some(ws) = ctx.runtime.workspace() else {
        return ActionResult::fail("Workspace Service is not available.");
    };
    let operation = ctx
        .str_param("operation")
        .map(|o| o.to_ascii_lowercase())
        .unwrap_or_else(|| infer_operation(&ctx.message.text).to_string());
    if !OPERATIONS.contains(&operation.as_str()) {
        return ActionResult::fail(format!(
            "Unknown operation: {operation}. Use: create, list, get, update, comment, close, reopen, add_labels"
        ));
    }
    // A repository or issue number given as a parameter is used or refused, never swapped for
    // one the message text happens to mention.
    let repo_param = ctx.str_param("repo");
    if let Some(r) = &repo_param
        && parse_repo(r).is_none()
    {
        return ActionResult::fail(format!(
            "Repository {r:?} is not owner/repo or a GitHub URL."
        ));
    }
    let repo = repo_param
        .and_then(|r| parse_repo(&r))
        .or_else(|| parse_repo(&ctx.message.text))
        .or_else(|| {
            ctx.memory
                .repo(&ctx.message.room_id)
                .and_then(|r| parse_repo(&r))
        });
    let Some(repo) = repo else {
        return ActionResult::fail(
            "Please specify a repository (e.g., owner/repo or a GitHub URL).",
        );
    };
    // Only the operations on one issue read a number (models send placeholders to the others).
    let uses_number = !matches!(operation.as_str(), "create" | "list");
    let number = match ctx.param("issueNumber").filter(|_| uses_number) {
        Some(v) => match v.as_u64().or_else(|| {
            v.as_str()
                .and_then(|s| s.trim().trim_start_matches('#').parse().ok())
        }) {
            Some(n) if n > 0 => Some(n),
            _ => {
                return ActionResult::fail(format!(
                    "Issue number {v} is not a positive whole number."
                ));
            }
        },
        None => issue_number_in(&ctx.message.text),
    };
    let ask = |code: &DeviceCode, then: &str| {
        format!(
            "I need GitHub access to manage issues. Please authorize me:\n\nGo to: {}\nEnter code: **{}**\n\nThis code expires in {} minutes. {then}",
            code.verification_uri,
            code.user_code,
            code.expires_in_secs.div_ceil(60)
        )
    };
    // The person sees whose account the agent now acts as.
    let authorized = |ctx: &mut ActionContext<'_>, login: Option<String>| match login {
        Some(login) => ctx.progress(&format!("Authorized as {login}.")),
        None => ctx.progress("Authorized with GitHub."),
    };
    if ctx.progress == super::Progress::Collected {
        // The person would see a code only when this call returns, so it returns with it; the
        // flow goes on in the background, and the next call finds how it ended.
        match ws.forge_authorization() {
            Ok(Authorization::Ready) => {}
            // Only a flow that blocks until the person authorized: never from a caller that
            // cannot show the code first (it would hold an MCP server for up to 15 minutes).
            Err(crate::Error::NotImplemented(_))
                if !ws.has_forge_token()
                    && ctx.runtime.get_setting("GITHUB_OAUTH_CLIENT_ID").is_some() =>
            {
                return ActionResult::fail(
                    "GitHub access required, and this workspace service can only run the device flow by waiting for the person, which this call cannot do. Set GITHUB_TOKEN (PAT), or authorize through the chat or CLI.",
                );
            }
            Err(crate::Error::NotImplemented(_)) => {}
            Ok(Authorization::Waiting(code)) => {
                // The next call may name no repository.
                ctx.memory.set_repo(&ctx.message.room_id, &repo);
                return ActionResult {
                    success: false,
                    text: ask(
                        &code,
                        "Ask me again once you have authorized; I'll keep the code open until then.",
                    ),
                    data: json!({"authorization": {
                        "verificationUri": code.verification_uri,
                        "userCode": code.user_code,
                        "expiresInSecs": code.expires_in_secs,
                    }}),
                };
            }
            Ok(Authorization::Authorized(login)) => authorized(ctx, login),
            Ok(Authorization::Failed(e)) => {
                return ActionResult::fail(format!("Issue operation failed: {e}"));
            }
            Err(e) => return ActionResult::fail(format!("Issue operation failed: {e}")),
        }
    }
    if !ws.has_forge_token() {
        if ctx.runtime.get_setting("GITHUB_OAUTH_CLIENT_ID").is_none() {
            return ActionResult::fail(
                "GitHub access required but no credentials available. Set GITHUB_TOKEN (PAT) or GITHUB_OAUTH_CLIENT_ID (for OAuth device flow).",
            );
        }
        // The code is shown as soon as the flow has it; the call then waits for the person.
        let result = ws.authorize_forge(&mut |code| {
            ctx.progress(&ask(code, "I'll wait for you to complete authorization..."))
        });
        match result {
            Ok(login) => authorized(ctx, login),
            Err(e) => return ActionResult::fail(format!("Issue operation failed: {e}")),
        }
    }
    ctx.memory.set_repo(&ctx.message.room_id, &repo);
    let labels = ctx.list_param("labels");
    let fail = |e: crate::Error| ActionResult::fail(format!("Issue operation failed: {e}"));
    let issue_json = |i: &Issue| json!(i);
    match operation.as_str() {
        "create" => {
            let body = ctx.str_param("body").unwrap_or_default();
            let Some(title) = ctx.str_param("title") else {
                let items = list_items(&ctx.message.text);
                if items.len() >= 2 {
                    let mut created = Vec::new();
                    for item in &items {
                        let new = NewIssue {
                            title: item.clone(),
                            body: body.clone(),
                            labels: labels.clone().unwrap_or_default(),
                        };
                        match ws.create_issue(&repo, &new) {
                            Ok(i) => created.push(i),
                            Err(e) => return fail(e),
                        }
                    }
                    let lines: Vec<String> = created
                        .iter()
                        .map(|i| format!("#{}: {}\n  {}", i.number, i.title, i.url))
                        .collect();
                    return ActionResult::ok(
                        format!("Created {} issues:\n{}", created.len(), lines.join("\n")),
                        json!({"issues": created}),
                    );
                }
                return ActionResult::fail("Issue title is required for create.");
            };
            let new = NewIssue {
                title,
                body,
                labels: labels.unwrap_or_default(),
            };
            match ws.create_issue(&repo, &new) {
                Ok(i) => ActionResult::ok(
                    format!("Created issue #{}: {}\n{}", i.number, i.title, i.url),
                    issue_json(&i),
                ),
                Err(e) => fail(e),
            }
        }
        "list" => {
            let state = ctx
                .str_param("state")
                .map(|s| s.to_ascii_lowercase())
                .filter(|s| ["open", "closed", "all"].contains(&s.as_str()))
                .unwrap_or_else(|| "open".into());
            let q = IssueQuery {
                state: state.clone(),
                labels: labels.unwrap_or_default(),
            };
            match ws.list_issues(&repo, &q) {
                Ok(list) if list.is_empty() => ActionResult::ok(
                    format!("No {state} issues found in {repo}."),
                    json!({"issues": []}),
                ),
                Ok(list) => {
                    let lines: Vec<String> = list
                        .iter()
                        .map(|i| {
                            let l = if i.labels.is_empty() {
                                String::new()
                            } else {
                                format!(" ({})", labels_text(&i.labels))
                            };
                            format!("#{} [{}] {}{l}", i.number, i.state, i.title)
                        })
                        .collect();
                    ActionResult::ok(
                        format!("Issues in {repo}:\n{}", lines.join("\n")),
                        json!({"issues": list}),
                    )
                }
                Err(e) => fail(e),
            }
        }
        op => {
            let Some(n) = number else {
                return ActionResult::fail(match op {
                    "comment" => "Issue number and comment body are required.",
                    "add_labels" => "Issue number and labels are required.",
                    _ => "Issue number is required.",
                });
            };
            match op {
                "get" => match ws.get_issue(&repo, n) {
                    Ok(i) => {
                        let l = if i.labels.is_empty() {
                            "none".to_string()
                        } else {
                            labels_text(&i.labels)
                        };
                        ActionResult::ok(
                            format!(
                                "Issue #{}: {} [{}]\n\n{}\n\nLabels: {l}\n{}",
                                i.number, i.title, i.state, i.body, i.url
                            ),
                            issue_json(&i),
                        )
                    }
                    Err(e) => fail(e),
                },
                "update" => {
                    let update = IssueUpdate {
                        title: ctx.str_param("title"),
                        body: ctx.str_param("body"),
                        state: ctx
                            .str_param("state")
                            .filter(|s| s == "open" || s == "closed"),
                        labels: labels.clone(),
                    };
                    match ws.update_issue(&repo, n, &update) {
                        Ok(i) => ActionResult::ok(
                            format!("Updated issue #{}: {}", i.number, i.title),
                            issue_json(&i),
                        ),
                        Err(e) => fail(e),
                    }
                }
                "comment" => {
                    let Some(body) = ctx.str_param("body") else {
                        return ActionResult::fail("Issue number and comment body are required.");
                    };
                    match ws.add_comment(&repo, n, &body) {
                        Ok(url) => ActionResult::ok(
                            format!("Added comment to issue #{n}: {url}"),
                            json!({"url": url}),
                        ),
                        Err(e) => fail(e),
                    }
                }
                "close" | "reopen" => {
                    let (state, verb) = if op == "close" {
                        ("closed", "Closed")
                    } else {
                        ("open", "Reopened")
                    };
                    let update = IssueUpdate {
                        state: Some(state.into()),
                        ..IssueUpdate::default()
                    };
                    match ws.update_issue(&repo, n, &update) {
                        Ok(i) => ActionResult::ok(
                            format!("{verb} issue #{}: {}", i.number, i.title),
                            issue_json(&i),
                        ),
                        Err(e) => fail(e),
                    }
                }
                _ => {
                    let Some(labels) = labels else {
                        return ActionResult::fail("Issue number and labels are required.");
                    };
                    match ws.add_labels(&repo, n, &labels) {
                        Ok(all) => ActionResult::ok(
                            format!("Added labels [{}] to issue #{n}", labels.join(", ")),
                            json!({"labels": all}),
                        ),
                        Err(e) => fail(e),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_inferred_from_text() {
        let table = [
            ("please re-open issue #4", "reopen"),
            ("reopen #4", "reopen"),
            ("open an issue about the crash", "create"),
            ("file issues for these", "create"),
            ("close issue #3, it is fixed", "close"),
            ("resolve #3", "close"),
            ("reply on #3 saying thanks", "comment"),
            ("edit issue #3", "update"),
            ("tag #3 as bug", "add_labels"),
            ("add labels bug to issue #3", "add_labels"),
            ("what does issue #7 say", "get"),
            ("show all issues mentioning #7", "list"),
            ("what's open in acme/app", "list"),
        ];
        for (text, want) in table {
            assert_eq!(infer_operation(text), want, "{text}");
        }
    }

    #[test]
    fn repos_are_parsed_from_urls_and_shorthand() {
        let table = [
            ("acme/app", Some("acme/app")),
            (
                "issues in https://github.com/acme/app/issues please",
                Some("acme/app"),
            ),
            ("github.com/acme/app.git", Some("acme/app")),
            ("no repo here", None),
        ];
        for (t, want) in table {
            assert_eq!(parse_repo(t).as_deref(), want, "{t}");
        }
    }

    #[test]
    fn list_items_accept_numbers_and_bullets() {
        assert_eq!(
            list_items("Create issues:\n1. Fix login\n2) Add tests\n- Write docs\nnot an item"),
            ["Fix login", "Add tests", "Write docs"]
        );
    }
}
