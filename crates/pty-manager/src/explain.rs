//! One detection pass: a [`RuleSet`] evaluated over a [`ScreenSnapshot`] becomes an
//! [`Observation`] (what the session state machine consumes) and, for people and tests, an
//! [`Explanation`] (every rule that matched, the winner, the resulting state).

use std::sync::Arc;

use regex::Regex;
use serde::Serialize;

use crate::rules::{LoginMethod, PromptType, Response, RuleHit, RuleSet, Signal, region_text};
use crate::session::REDACTED;
use crate::snapshot::ScreenSnapshot;
use crate::stall::Normalizer;

/// Maximum size of a turn's output (tail kept).
pub const TURN_OUTPUT_MAX: usize = 64 * 1024;

/// The state one screen shows, as the fixtures label it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScreenState {
    /// Still loading, nothing to act on.
    Starting,
    /// Authentication is needed.
    LoginRequired,
    /// A dialog or question waits.
    BlockingPrompt,
    /// Idle at the input prompt, no finished turn visible.
    Ready,
    /// Working.
    Busy,
    /// A finished turn is visible and the input is idle.
    TaskComplete,
    /// The program ended (only ever known from the process, never from a screen).
    Exited,
    /// A fatal error screen.
    Error,
}

impl ScreenState {
    /// The lower-case label.
    pub fn as_str(self) -> &'static str {
        match self {
            ScreenState::Starting => "starting",
            ScreenState::LoginRequired => "login_required",
            ScreenState::BlockingPrompt => "blocking_prompt",
            ScreenState::Ready => "ready",
            ScreenState::Busy => "busy",
            ScreenState::TaskComplete => "task_complete",
            ScreenState::Exited => "exited",
            ScreenState::Error => "error",
        }
    }
}

/// A prompt rule that matched, with what the policy needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PromptHit {
    /// The rule id.
    pub rule_id: String,
    /// Prompt type.
    #[serde(rename = "type")]
    pub prompt_type: PromptType,
    /// Fixture prompt kind, if the rule names one.
    pub kind: Option<String>,
    /// The screen rows holding the match.
    pub text: String,
    /// The matched text itself (the prompt's identity for dedup).
    pub matched: String,
    /// The rule's answer, if any.
    pub response: Option<Response>,
    /// Whether the rule is marked safe.
    pub safe: bool,
    /// Whether the rule answers at most once per session.
    pub once: bool,
    /// Approval category (preset gate).
    pub category: Option<String>,
    /// Redact the response.
    pub secret: bool,
    /// Human description.
    pub description: Option<String>,
    /// Whether the rule is a session (runtime) rule rather than an adapter rule.
    pub session_rule: bool,
}

/// A login screen, with what could be extracted from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoginInfo {
    /// The rule id.
    pub rule_id: String,
    /// How to authenticate.
    pub method: LoginMethod,
    /// Login URL (the rule's `url` regex, else the first `https://` URL on screen).
    pub url: Option<String>,
    /// Device code (the rule's regex, else `[A-Z0-9]{3,}(-[A-Z0-9]{3,})+` on a row mentioning
    /// "code").
    pub device_code: Option<String>,
    /// The rows holding the match.
    pub instructions: String,
}

/// What one detection pass saw. Cheap to build: bounded regions and a 40-row hash.
#[derive(Debug, Clone)]
pub struct Observation {
    /// Adapter rule matches, in evaluation order.
    pub hits: Vec<ObservedHit>,
    /// Matching prompt rules: session rules first (insertion order), then adapter rules with a
    /// response (priority order), then report-only adapter rules.
    pub prompts: Vec<PromptHit>,
    /// The login screen, if one matched.
    pub login: Option<LoginInfo>,
    /// The running tool's name, if a `tool_running` rule matched.
    pub tool: Option<String>,
    /// Text of the first matching `busy` rule (spinner, timer and all), used to tell a live busy
    /// marker from a stale one.
    pub busy_text: Option<String>,
    /// Text of the first matching `error` rule.
    pub error_text: Option<String>,
    /// Hash of the screen with spinners, timers, counters and the cursor removed.
    pub hash: u64,
    /// The snapshot this pass read (shared, not copied).
    pub snapshot: Arc<ScreenSnapshot>,
}

/// One adapter rule that matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedHit {
    /// The rule id.
    pub id: String,
    /// Its signal.
    pub signal: Signal,
    /// Its region (as written).
    pub region: String,
    /// The rows holding the match.
    pub text: String,
}

impl Observation {
    /// Whether any adapter rule with this signal matched.
    pub fn has(&self, signal: Signal) -> bool {
        self.hits.iter().any(|h| h.signal == signal)
    }

    /// The state this screen shows, by the precedence login > prompt > error > busy (incl. usage
    /// limit) > task_complete > ready > starting.
    pub fn state(&self) -> ScreenState {
        if self.login.is_some() {
            ScreenState::LoginRequired
        } else if !self.prompts.is_empty() {
            ScreenState::BlockingPrompt
        } else if self.has(Signal::Error) {
            ScreenState::Error
        } else if self.has(Signal::Busy) || self.has(Signal::UsageLimit) {
            ScreenState::Busy
        } else if self.has(Signal::TaskComplete) {
            ScreenState::TaskComplete
        } else if self.has(Signal::Ready) {
            ScreenState::Ready
        } else {
            ScreenState::Starting
        }
    }

    /// Screen text for logs and the classifier: the last `max` chars of the visible rows.
    pub fn recent_text(&self, max: usize) -> String {
        let t = region_text(&self.snapshot, crate::rules::Region::Screen);
        tail_chars(&t, max).to_owned()
    }
}

/// A [`RuleSet`] plus what turns matches into observations (prompt-box rows, the normaliser).
///
/// Cloning is cheap and shares every compiled regex: each session of an adapter clones its
/// detector, and a `Regex` clone would get its own match-cache pool (tens of kB per regex once
/// used), so the regexes sit behind one `Arc` and all clones use the same pools.
#[derive(Debug, Clone)]
pub struct Detector {
    rules: Arc<RuleSet>,
    compiled: Arc<Compiled>,
}

/// The detector's own regexes, shared by its clones.
#[derive(Debug)]
struct Compiled {
    prompt_box: Vec<Regex>,
    normalizer: Normalizer,
    url_re: Regex,
    code_re: Regex,
}

impl Detector {
    /// A detector for these rules. `prompt_box` regexes name composer rows dropped from turn
    /// output; invalid ones are rejected by the manifest loader before this point and skipped here.
    pub fn new(rules: Arc<RuleSet>, prompt_box: &[String]) -> Self {
        Detector {
            rules,
            compiled: Arc::new(Compiled {
                prompt_box: prompt_box
                    .iter()
                    .filter_map(|p| Regex::new(p).ok())
                    .collect(),
                normalizer: Normalizer::new(),
                url_re: Regex::new(r#"https?://[^\s"'<>()\]]+"#).expect("static regex"),
                code_re: Regex::new(r"\b[A-Z0-9]{3,}(?:-[A-Z0-9]{3,})+\b").expect("static regex"),
            }),
        }
    }

    /// The adapter's rules.
    pub fn rules(&self) -> &Arc<RuleSet> {
        &self.rules
    }

    /// One detection pass. `session_rules` are evaluated first (runtime rules; only their
    /// `prompt` rules count).
    pub fn observe(
        &self,
        snap: Arc<ScreenSnapshot>,
        session_rules: Option<&RuleSet>,
    ) -> Observation {
        let eval = self.rules.evaluate(&snap);
        let mut hits = Vec::with_capacity(eval.hits.len());
        let mut prompts = Vec::new();
        let mut report_only = Vec::new();
        let mut login = None;
        let mut tool = None;
        let mut busy_text = None;
        let mut error_text = None;
        if let Some(session) = session_rules {
            for h in session.evaluate(&snap).hits {
                let rule = &session.rules()[h.rule];
                if rule.spec.signal == Signal::Prompt {
                    prompts.push(prompt_hit(session, &h, true));
                }
            }
        }
        for h in &eval.hits {
            let rule = &self.rules.rules()[h.rule];
            let spec = &rule.spec;
            hits.push(ObservedHit {
                id: spec.id.clone(),
                signal: spec.signal,
                region: spec.region.to_string(),
                text: h.text.clone(),
            });
            match spec.signal {
                Signal::Prompt => {
                    let p = prompt_hit(&self.rules, h, false);
                    if p.response.is_some() {
                        prompts.push(p);
                    } else {
                        report_only.push(p);
                    }
                }
                Signal::Login if login.is_none() => {
                    login = Some(self.login_info(&snap, h, spec.method));
                }
                Signal::ToolRunning if tool.is_none() => {
                    tool = Some(h.tool.clone().unwrap_or_else(|| h.text.trim().to_owned()));
                }
                Signal::Busy if busy_text.is_none() => busy_text = Some(h.text.clone()),
                Signal::Error if error_text.is_none() => error_text = Some(h.text.clone()),
                _ => {}
            }
        }
        prompts.extend(report_only);
        let hash = self.compiled.normalizer.hash(&snap);
        Observation {
            hits,
            prompts,
            login,
            tool,
            busy_text,
            error_text,
            hash,
            snapshot: snap,
        }
    }

    fn login_info(
        &self,
        snap: &ScreenSnapshot,
        h: &RuleHit,
        method: Option<LoginMethod>,
    ) -> LoginInfo {
        let rule = &self.rules.rules()[h.rule];
        let screen = region_text(snap, crate::rules::Region::Screen);
        let url = h.url.clone().or_else(|| {
            self.compiled
                .url_re
                .find(&h.text)
                .or_else(|| self.compiled.url_re.find(&screen))
                .map(|m| m.as_str().trim_end_matches(['.', ',', ';', ':']).to_owned())
        });
        let device_code = h.device_code.clone().or_else(|| {
            screen
                .lines()
                .filter(|l| l.to_lowercase().contains("code"))
                .find_map(|l| self.compiled.code_re.find(l).map(|m| m.as_str().to_owned()))
        });
        let method = match (method, &device_code) {
            (Some(m), _) => m,
            (None, Some(_)) => LoginMethod::DeviceCode,
            (None, None) => LoginMethod::Unknown,
        };
        LoginInfo {
            rule_id: rule.spec.id.clone(),
            method,
            url,
            device_code,
            instructions: h.text.clone(),
        }
    }

    /// A turn's output: rows scrolled off this turn, then the visible rows minus the manifest's
    /// prompt-box rows; trailing blank rows dropped; at most [`TURN_OUTPUT_MAX`] bytes (tail).
    pub fn turn_output(&self, snap: &ScreenSnapshot) -> String {
        let mut out = String::new();
        let keep = |l: &str| {
            !self
                .compiled
                .prompt_box
                .iter()
                .any(|re| re.is_match(l.trim()))
        };
        for l in snap.scrolled.iter().chain(snap.lines.iter()) {
            let l = l.trim_end();
            if keep(l) {
                out.push_str(l);
                out.push('\n');
            }
        }
        let trimmed = out.trim_end().len();
        out.truncate(trimmed);
        if out.len() > TURN_OUTPUT_MAX {
            let mut cut = out.len() - TURN_OUTPUT_MAX;
            while !out.is_char_boundary(cut) {
                cut += 1;
            }
            out.drain(..cut);
        }
        out
    }
}

fn prompt_hit(set: &RuleSet, h: &RuleHit, session_rule: bool) -> PromptHit {
    let rule = &set.rules()[h.rule];
    let spec = &rule.spec;
    PromptHit {
        rule_id: spec.id.clone(),
        prompt_type: spec.prompt_type.unwrap_or_default(),
        kind: spec.kind.clone(),
        text: h.text.clone(),
        matched: h.matched.clone(),
        response: rule.response.clone(),
        safe: spec.safe,
        once: spec.once,
        category: spec.category.clone(),
        secret: spec.secret,
        description: spec.description.clone(),
        session_rule,
    }
}

fn tail_chars(s: &str, max: usize) -> &str {
    match s.char_indices().rev().nth(max.saturating_sub(1)) {
        Some((i, _)) if max > 0 => &s[i..],
        _ if max == 0 => "",
        _ => s,
    }
}

/// One rule that matched, for an [`Explanation`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleMatch {
    /// Rule id.
    pub id: String,
    /// Signal.
    pub signal: Signal,
    /// Region as written (`bottom(15)`, `title`, …).
    pub region: String,
    /// The rows holding the match.
    pub text: String,
}

/// The prompt an [`Explanation`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PromptInfo {
    /// Winning prompt rule.
    pub rule_id: String,
    /// Fixture prompt kind (`trust_folder`, …), if the rule names one.
    pub kind: Option<String>,
    /// Prompt type (§1.4).
    #[serde(rename = "type")]
    pub prompt_type: PromptType,
    /// The prompt's rows.
    pub text: String,
    /// The rule's answer as key names (`text: y` → `["y", "enter"]`); empty if report-only;
    /// `<redacted>` in place of a secret rule's text or keys.
    pub answer: Vec<String>,
    /// Whether the rule is marked safe (whether it would be answered also depends on policy).
    pub safe: bool,
    /// Human description.
    pub description: Option<String>,
}

/// Which rules match one screen and what state follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// The resulting state.
    pub state: ScreenState,
    /// The rule that decided the state, if any.
    pub winner: Option<String>,
    /// Every adapter rule that matched, in evaluation order.
    pub matches: Vec<RuleMatch>,
    /// The prompt, when the state is `blocking_prompt`.
    pub prompt: Option<PromptInfo>,
    /// The login screen, when the state is `login_required`.
    pub login: Option<LoginInfo>,
    /// Running tool, if a `tool_running` rule matched.
    pub tool: Option<String>,
}

impl Explanation {
    /// Build from an observation.
    pub fn from_observation(obs: &Observation) -> Self {
        let state = obs.state();
        let first = |s: Signal| {
            obs.hits
                .iter()
                .find(|h| h.signal == s)
                .map(|h| h.id.clone())
        };
        let winner = match state {
            ScreenState::LoginRequired => obs.login.as_ref().map(|l| l.rule_id.clone()),
            ScreenState::BlockingPrompt => obs.prompts.first().map(|p| p.rule_id.clone()),
            ScreenState::Error => first(Signal::Error),
            ScreenState::Busy => first(Signal::Busy).or_else(|| first(Signal::UsageLimit)),
            ScreenState::TaskComplete => first(Signal::TaskComplete),
            ScreenState::Ready => first(Signal::Ready),
            ScreenState::Starting | ScreenState::Exited => None,
        };
        let prompt = (state == ScreenState::BlockingPrompt)
            .then(|| obs.prompts.first())
            .flatten()
            .map(|p| PromptInfo {
                rule_id: p.rule_id.clone(),
                kind: p.kind.clone(),
                prompt_type: p.prompt_type,
                text: p.text.clone(),
                // A secret answer (a password) is not shown: explanations go to logs and UIs.
                answer: match &p.response {
                    Some(Response::Text(_)) if p.secret => {
                        vec![REDACTED.to_owned(), "enter".to_owned()]
                    }
                    Some(Response::Keys(_)) if p.secret => vec![REDACTED.to_owned()],
                    Some(r) => r.as_key_names(),
                    None => Vec::new(),
                },
                safe: p.safe,
                description: p.description.clone(),
            });
        Explanation {
            state,
            winner,
            matches: obs
                .hits
                .iter()
                .map(|h| RuleMatch {
                    id: h.id.clone(),
                    signal: h.signal,
                    region: h.region.clone(),
                    text: h.text.clone(),
                })
                .collect(),
            prompt,
            login: obs.login.clone(),
            tool: obs.tool.clone(),
        }
    }
}

/// Explain one screen with a rule set: every rule that matched, the winner, the state.
///
/// ```
/// use pty_manager::{explain, RuleSet, RuleSpec, ScreenSnapshot, ScreenState, Signal};
/// let mut trust = RuleSpec::new("x.trust", Signal::Prompt, r"Trust this folder\?").answer_keys(&["enter"]);
/// trust.kind = Some("trust_folder".into());
/// let rules = RuleSet::compile(&[RuleSpec::new("x.ready", Signal::Ready, r"^> $"), trust]).unwrap();
/// let e = explain(&rules, &ScreenSnapshot::from_text("Trust this folder?\n1. Yes\n2. No", 120, 40));
/// assert_eq!(e.state, ScreenState::BlockingPrompt);
/// let p = e.prompt.unwrap();
/// assert_eq!((p.kind.as_deref(), p.answer), (Some("trust_folder"), vec!["enter".to_string()]));
/// ```
pub fn explain(rules: &RuleSet, snap: &ScreenSnapshot) -> Explanation {
    let detector = Detector::new(Arc::new(rules.clone()), &[]);
    Explanation::from_observation(&detector.observe(Arc::new(snap.clone()), None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{Region, RuleSpec};

    fn rules() -> RuleSet {
        let mut login = RuleSpec::new("a.login", Signal::Login, "Open this link");
        login.region = Region::Screen;
        RuleSet::compile(&[
            RuleSpec::new("a.ready", Signal::Ready, r"(?m)^> ?$"),
            RuleSpec::new("a.busy", Signal::Busy, r"esc to interrupt"),
            RuleSpec::new("a.done", Signal::TaskComplete, r"Worked for \d+s"),
            RuleSpec::new("a.err", Signal::Error, r"Unable to connect"),
            RuleSpec::new("a.ask", Signal::Prompt, r"\(Y\)es/\(N\)o"),
            login,
        ])
        .unwrap()
    }

    #[test]
    fn precedence_table() {
        let r = rules();
        for (screen, want, winner) in [
            ("hello", ScreenState::Starting, None),
            ("banner\n>", ScreenState::Ready, Some("a.ready")),
            (
                "Worked for 3s\n>",
                ScreenState::TaskComplete,
                Some("a.done"),
            ),
            (
                "• Working (esc to interrupt)\n>",
                ScreenState::Busy,
                Some("a.busy"),
            ),
            ("Unable to connect\n>", ScreenState::Error, Some("a.err")),
            (
                "Create file? (Y)es/(N)o [Yes]:",
                ScreenState::BlockingPrompt,
                Some("a.ask"),
            ),
            (
                "Open this link in your browser and enter this code\nhttps://auth.example/device\nABCD-1234 (code)\n(Y)es/(N)o",
                ScreenState::LoginRequired,
                Some("a.login"),
            ),
        ] {
            let e = explain(&r, &ScreenSnapshot::from_text(screen, 120, 40));
            assert_eq!(e.state, want, "{screen}");
            assert_eq!(e.winner.as_deref(), winner, "{screen}");
        }
    }

    #[test]
    fn login_extracts_url_and_device_code() {
        let e = explain(
            &rules(),
            &ScreenSnapshot::from_text(
                "Open this link in your browser and enter this code\n  https://auth.example/device.\n  Your code: WXYZ-9876\nOpen settings",
                120,
                40,
            ),
        );
        let l = e.login.unwrap();
        assert_eq!(l.url.as_deref(), Some("https://auth.example/device"));
        assert_eq!(l.device_code.as_deref(), Some("WXYZ-9876"));
        assert_eq!(l.method, LoginMethod::DeviceCode);
        // A word that merely looks like a code on a row that does not mention "code" is not one,
        // and lower-case words are never a code ("Open" upstream).
        let e = explain(
            &rules(),
            &ScreenSnapshot::from_text("Open this link\nABC-DEF\nopen-the-code", 120, 40),
        );
        assert_eq!(e.login.unwrap().device_code, None);
    }

    #[test]
    fn turn_output_drops_prompt_box_rows() {
        let d = Detector::new(Arc::new(rules()), &["^─+$".into(), "^>".into()]);
        let mut s = ScreenSnapshot::from_text("answer line\n────\n> \n", 80, 6);
        s.scrolled = vec!["earlier".into()];
        assert_eq!(d.turn_output(&s), "earlier\nanswer line");
    }

    #[test]
    fn tail_chars_counts_chars() {
        assert_eq!(tail_chars("héllo", 3), "llo");
        assert_eq!(tail_chars("hé", 5), "hé");
        assert_eq!(tail_chars("hé", 0), "");
    }
}
