//! Detection rules as data: the agent manifest (schema 1), rule specs, regions, and the compiled
//! [`RuleSet`].
//!
//! Contract: `/work/notes/MANIFEST-SCHEMA.md` (schema 1). Changes to the schema are made
//! compatibly and recorded here. Compatible additions to the contract text: a rule may carry
//! `tool` (a regex with one group naming the running tool, for `tool_running`); a region may be
//! `cursor_row` (the row holding the cursor); a manifest may carry `shell: true` (a plain shell:
//! the classifier never types into it); `signal: loading` is an alias of `busy`.
//!
//! A rule set is compiled once (regexes built, rules ordered by priority) and then evaluated per
//! detection pass over a [`ScreenSnapshot`]. Every region reads a bounded part of the snapshot
//! (`bottom(N)` walks up from the last row and stops after N non-empty rows; `tail(N)` reads at
//! most N rows), so the cost of a pass does not grow with how much output the session produced.

use std::collections::BTreeMap;
use std::fmt;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::snapshot::ScreenSnapshot;
use crate::{Error, Result};

/// The manifest schema version this crate reads.
pub const MANIFEST_SCHEMA: u32 = 1;

/// Default region of a rule: the last 15 non-empty visible rows.
pub const DEFAULT_BOTTOM_ROWS: usize = 15;

/// What a rule's match says about the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// Idle at the input prompt.
    Ready,
    /// Working (spinner, "esc to interrupt", …). Also accepted as `loading`.
    #[serde(alias = "loading")]
    Busy,
    /// A dialog or question waits for an answer.
    Prompt,
    /// Authentication is needed.
    Login,
    /// A finished turn is visible and the input is idle.
    TaskComplete,
    /// A tool runs (the name may be extracted by the rule's `tool` regex).
    ToolRunning,
    /// The program is saying goodbye. Never stops a session by itself.
    ExitHint,
    /// A usage limit is shown; the agent continues by itself (neither stalled nor blocked).
    UsageLimit,
    /// A fatal error screen.
    Error,
}

impl Signal {
    /// The lower-case name used in YAML and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Ready => "ready",
            Signal::Busy => "busy",
            Signal::Prompt => "prompt",
            Signal::Login => "login",
            Signal::TaskComplete => "task_complete",
            Signal::ToolRunning => "tool_running",
            Signal::ExitHint => "exit_hint",
            Signal::UsageLimit => "usage_limit",
            Signal::Error => "error",
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which part of the screen a rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Region {
    /// The last N non-empty visible rows, top to bottom.
    Bottom(usize),
    /// Every visible row.
    Screen,
    /// The window title (OSC 0/2).
    Title,
    /// The last N rows of (rows scrolled off this turn + visible rows, trailing blank rows dropped).
    Tail(usize),
    /// The payload of the last OSC sequence with this number (only 7501 is tracked).
    Osc(u32),
    /// Hook marker rows (`<PREFIX> <json>` with a prefix containing `CLAUDE_HOOK`/`GEMINI_HOOK`);
    /// the text is the JSON of the last marker row.
    Markers,
    /// The row holding the cursor, trailing blanks trimmed (an extension of schema 1: shells and
    /// line-oriented CLIs are ready only when the cursor sits on their prompt).
    CursorRow,
}

impl Default for Region {
    fn default() -> Self {
        Region::Bottom(DEFAULT_BOTTOM_ROWS)
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Region::Bottom(n) => write!(f, "bottom({n})"),
            Region::Screen => f.write_str("screen"),
            Region::Title => f.write_str("title"),
            Region::Tail(n) => write!(f, "tail({n})"),
            Region::Osc(n) => write!(f, "osc({n})"),
            Region::Markers => f.write_str("markers"),
            Region::CursorRow => f.write_str("cursor_row"),
        }
    }
}

impl std::str::FromStr for Region {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        let bad = || Error::InvalidRegion(s.to_owned());
        let arg = |name: &str| -> Option<&str> {
            s.strip_prefix(name)?.strip_prefix('(')?.strip_suffix(')')
        };
        let num = |a: &str| a.trim().parse::<usize>().ok().filter(|n| *n > 0);
        match s {
            "screen" => return Ok(Region::Screen),
            "title" => return Ok(Region::Title),
            "markers" => return Ok(Region::Markers),
            "cursor_row" => return Ok(Region::CursorRow),
            "bottom" => return Ok(Region::default()),
            _ => {}
        }
        if let Some(a) = arg("bottom") {
            return num(a).map(Region::Bottom).ok_or_else(bad);
        }
        if let Some(a) = arg("tail") {
            return num(a).map(Region::Tail).ok_or_else(bad);
        }
        if let Some(a) = arg("osc") {
            return match a.trim().parse::<u32>() {
                Ok(7501) => Ok(Region::Osc(7501)),
                _ => Err(bad()),
            };
        }
        Err(bad())
    }
}

impl Serialize for Region {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Region {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Prompt types of BEHAVIOR.md §1.4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptType {
    /// A tool, file or command permission dialog.
    Permission,
    /// An update notice.
    Update,
    /// Terms of service / data-use question.
    Tos,
    /// Model selection.
    ModelSelect,
    /// Project / folder selection or trust.
    ProjectSelect,
    /// A configuration question (theme, release notes, …).
    Config,
    /// A login question.
    Login,
    /// A running tool waits for input.
    ToolWait,
    /// A usage-limit notice that needs an answer.
    UsageLimit,
    /// Raised by the stall classifier.
    StallClassified,
    /// Anything else.
    #[default]
    Unknown,
}

impl PromptType {
    /// The lower-case name used in events.
    pub fn as_str(self) -> &'static str {
        match self {
            PromptType::Permission => "permission",
            PromptType::Update => "update",
            PromptType::Tos => "tos",
            PromptType::ModelSelect => "model_select",
            PromptType::ProjectSelect => "project_select",
            PromptType::Config => "config",
            PromptType::Login => "login",
            PromptType::ToolWait => "tool_wait",
            PromptType::UsageLimit => "usage_limit",
            PromptType::StallClassified => "stall_classified",
            PromptType::Unknown => "unknown",
        }
    }
}

/// How a login screen wants the user to authenticate (BEHAVIOR.md §1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginMethod {
    /// An API key is asked for.
    ApiKey,
    /// The CLI's own login flow (`/login` menus).
    CliAuth,
    /// A device code to enter on a web page.
    DeviceCode,
    /// A browser OAuth flow (rules may say `oauth` or `browser`).
    #[serde(alias = "oauth", alias = "browser")]
    OauthBrowser,
    /// Not known.
    #[default]
    Unknown,
}

impl LoginMethod {
    /// The lower-case name used in events.
    pub fn as_str(self) -> &'static str {
        match self {
            LoginMethod::ApiKey => "api_key",
            LoginMethod::CliAuth => "cli_auth",
            LoginMethod::DeviceCode => "device_code",
            LoginMethod::OauthBrowser => "oauth_browser",
            LoginMethod::Unknown => "unknown",
        }
    }
}

/// Whether the program takes answers as typed text + Enter or as TUI menu keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputStyle {
    /// Full-screen or inline TUI with menus (answers are key names).
    #[default]
    Tui,
    /// Line-oriented (answers are text followed by Enter).
    Text,
}

/// What a rule answers: typed text (then Enter as a separate write) or a list of key names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseSpec {
    /// Text to type; Enter follows as its own write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Key names (BEHAVIOR.md §3.1), sent 50 ms apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<Vec<String>>,
}

/// A response in its checked form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// Type this text, then press Enter in a separate write.
    Text(String),
    /// Press these keys in order.
    Keys(Vec<String>),
}

impl Response {
    /// The response as key names, the way fixtures label answers: text `y` becomes `["y", "enter"]`
    /// (text longer than one character stays one element).
    pub fn as_key_names(&self) -> Vec<String> {
        match self {
            Response::Text(t) => vec![t.clone(), "enter".to_owned()],
            Response::Keys(k) => k.clone(),
        }
    }

    /// A short description for audit records and logs (`text:y` / `keys:down,enter`).
    pub fn describe(&self) -> String {
        match self {
            Response::Text(t) => format!("text:{t}"),
            Response::Keys(k) => format!("keys:{}", k.join(",")),
        }
    }
}

impl ResponseSpec {
    fn check(&self, rule: &str) -> Result<Response> {
        match (&self.text, &self.keys) {
            (Some(t), None) => {
                if t.chars().any(|c| c.is_control()) {
                    return Err(Error::InvalidRule {
                        id: rule.to_owned(),
                        reason: "response text contains a control character".to_owned(),
                    });
                }
                Ok(Response::Text(t.clone()))
            }
            (None, Some(k)) if !k.is_empty() => normalize_response_keys(k)
                .map(Response::Keys)
                .map_err(|e| Error::InvalidRule {
                    id: rule.to_owned(),
                    reason: format!("response keys: {e}"),
                }),
            _ => Err(Error::InvalidRule {
                id: rule.to_owned(),
                reason: "response needs exactly one of `text` or a non-empty `keys`".to_owned(),
            }),
        }
    }
}

/// Validate a rule's key list against the key table (BEHAVIOR.md §3.1), so a typo fails at load
/// time rather than when a prompt shows. Besides key names, a rule may press one printable ASCII
/// character (`y`, `n`, `0`: menu shortcuts such as Codex's `(y)`); such a key is written as that
/// character. Bare modifiers join the next name.
pub(crate) fn normalize_response_keys(keys: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut run: Vec<&str> = Vec::new();
    for k in keys {
        let k = k.trim();
        let after_modifier = run.last().is_some_and(|p| {
            matches!(
                p.to_ascii_lowercase().as_str(),
                "ctrl"
                    | "control"
                    | "shift"
                    | "alt"
                    | "option"
                    | "opt"
                    | "meta"
                    | "cmd"
                    | "command"
            )
        });
        if is_char_key(k) && !after_modifier {
            out.extend(crate::keys::normalize_keys(&run)?);
            run.clear();
            out.push(k.to_owned());
        } else {
            run.push(k);
        }
    }
    out.extend(crate::keys::normalize_keys(&run)?);
    Ok(out)
}

/// A single printable, non-space ASCII character used as a key.
pub(crate) fn is_char_key(k: &str) -> bool {
    k.len() == 1 && k.as_bytes()[0].is_ascii_graphic()
}

fn default_region() -> Region {
    Region::default()
}

fn is_default_region(r: &Region) -> bool {
    *r == Region::default()
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

/// One rule as written in a manifest (or given at runtime).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Unique within its scope (`<type>.<name>` in manifests).
    pub id: String,
    /// What a match signals.
    pub signal: Signal,
    /// Which text the pattern reads.
    #[serde(default = "default_region", skip_serializing_if = "is_default_region")]
    pub region: Region,
    /// A Rust regex.
    pub pattern: String,
    /// Regexes that must not match the same region text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not: Vec<String>,
    /// Higher first; ties keep file order.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub priority: i32,
    /// Prompt type (for `prompt` rules).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub prompt_type: Option<PromptType>,
    /// Fixture prompt kind (`trust_folder`, `tool_permission`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The answer; absent = report only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<ResponseSpec>,
    /// Answer at most once per session.
    #[serde(default, skip_serializing_if = "is_false")]
    pub once: bool,
    /// Without `safe: true` the prompt is reported, never answered.
    #[serde(default, skip_serializing_if = "is_false")]
    pub safe: bool,
    /// Approval category for permission prompts (preset gate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Redact the response in audit records and logs.
    #[serde(default, skip_serializing_if = "is_false")]
    pub secret: bool,
    /// Human text, reported as the prompt description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Login method (for `login` rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<LoginMethod>,
    /// Regex with one group extracting the login URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Regex with one group extracting the device code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_code: Option<String>,
    /// Regex with one group naming the running tool (for `tool_running`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
}

impl RuleSpec {
    /// A rule with only the required fields set (default region, no response).
    ///
    /// ```
    /// use pty_manager::{RuleSpec, Signal};
    /// let r = RuleSpec::new("shell.ready", Signal::Ready, r"^pty> $");
    /// assert_eq!(r.region.to_string(), "bottom(15)");
    /// ```
    pub fn new(id: impl Into<String>, signal: Signal, pattern: impl Into<String>) -> Self {
        RuleSpec {
            id: id.into(),
            signal,
            region: Region::default(),
            pattern: pattern.into(),
            not: Vec::new(),
            priority: 0,
            prompt_type: None,
            kind: None,
            response: None,
            once: false,
            safe: false,
            category: None,
            secret: false,
            description: None,
            method: None,
            url: None,
            device_code: None,
            tool: None,
        }
    }

    /// Builder: set the region.
    pub fn region(mut self, region: Region) -> Self {
        self.region = region;
        self
    }

    /// Builder: answer with text (then Enter), marked safe.
    pub fn answer_text(mut self, text: impl Into<String>) -> Self {
        self.response = Some(ResponseSpec {
            text: Some(text.into()),
            keys: None,
        });
        self.safe = true;
        self
    }

    /// Builder: answer with keys, marked safe.
    pub fn answer_keys(mut self, keys: &[&str]) -> Self {
        self.response = Some(ResponseSpec {
            text: None,
            keys: Some(keys.iter().map(|k| (*k).to_owned()).collect()),
        });
        self.safe = true;
        self
    }
}

/// An agent manifest (schema 1): what a CLI is and how to read its screen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdapterManifest {
    /// Schema version; must be 1.
    pub schema: u32,
    /// Adapter type id (lower-case).
    #[serde(rename = "type")]
    pub agent_type: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Program, looked up on PATH.
    pub command: String,
    /// Arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Fixed environment variables (no secrets).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Text prompts or TUI menus.
    #[serde(default)]
    pub input_style: InputStyle,
    /// How long `ready` must hold on an unchanged screen before the session is ready.
    #[serde(default = "default_ready_settle")]
    pub ready_settle_ms: u64,
    /// How long a finished turn must hold before `task_complete`.
    #[serde(default = "default_task_settle")]
    pub task_complete_settle_ms: u64,
    /// Minimum delay between typed text and its Enter.
    #[serde(default = "default_enter_delay")]
    pub min_enter_delay_ms: u64,
    /// Highlight glyph of the selected menu option.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub menu_marker: Option<String>,
    /// Regexes of composer rows dropped from a turn's output.
    #[serde(default)]
    pub prompt_box: Vec<String>,
    /// A plain shell (the classifier never types into it).
    #[serde(default)]
    pub shell: bool,
    /// Detection rules.
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
}

fn default_ready_settle() -> u64 {
    100
}
fn default_task_settle() -> u64 {
    1500
}
fn default_enter_delay() -> u64 {
    50
}

impl AdapterManifest {
    /// Parse and check a manifest (schema, rule fields, regexes).
    pub fn from_yaml(text: &str) -> Result<Self> {
        let m: AdapterManifest =
            serde_yaml::from_str(text).map_err(|e| Error::InvalidManifest(e.to_string()))?;
        if m.schema != MANIFEST_SCHEMA {
            return Err(Error::InvalidManifest(format!(
                "unsupported schema {} (expected {MANIFEST_SCHEMA})",
                m.schema
            )));
        }
        if m.agent_type.is_empty() || m.agent_type != m.agent_type.to_lowercase() {
            return Err(Error::InvalidManifest(format!(
                "type must be a non-empty lower-case id: {:?}",
                m.agent_type
            )));
        }
        // Compile once to reject bad regexes and duplicate ids at load time.
        RuleSet::compile(&m.rules)?;
        for p in &m.prompt_box {
            Regex::new(p).map_err(|e| Error::InvalidManifest(format!("prompt_box {p:?}: {e}")))?;
        }
        Ok(m)
    }
}

/// A rule after compilation.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    /// The rule as written.
    pub spec: RuleSpec,
    /// The checked response, if any.
    pub response: Option<Response>,
    pattern: Regex,
    not: Vec<Regex>,
    url: Option<Regex>,
    device_code: Option<Regex>,
    tool: Option<Regex>,
}

impl CompiledRule {
    /// The rule id.
    pub fn id(&self) -> &str {
        &self.spec.id
    }
}

fn compile_regex(id: &str, what: &str, pattern: &str) -> Result<Regex> {
    // Multi-line so `^`/`$` anchor at row boundaries of the region text.
    regex::RegexBuilder::new(pattern)
        .multi_line(true)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| Error::InvalidRule {
            id: id.to_owned(),
            reason: format!("{what} {pattern:?}: {e}"),
        })
}

/// Rules compiled once, ordered by priority (stable), ready to evaluate per pass.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<CompiledRule>,
    /// Distinct regions read by the rules, so each region's text is built once per pass.
    regions: Vec<Region>,
}

impl RuleSet {
    /// Compile rules: regexes built, responses checked, duplicate ids rejected, ordered by priority
    /// (higher first; ties keep the given order).
    ///
    /// ```
    /// use pty_manager::{RuleSet, RuleSpec, ScreenSnapshot, Signal};
    /// let set = RuleSet::compile(&[RuleSpec::new("shell.ready", Signal::Ready, r"^pty>$")]).unwrap();
    /// let snap = ScreenSnapshot::from_text("$ ls\npty> ", 80, 24);
    /// assert_eq!(set.evaluate(&snap).hits[0].rule, 0);
    /// ```
    pub fn compile(specs: &[RuleSpec]) -> Result<Self> {
        let mut seen = std::collections::HashSet::new();
        let mut rules = Vec::with_capacity(specs.len());
        for spec in specs {
            if spec.id.trim().is_empty() {
                return Err(Error::InvalidRule {
                    id: spec.id.clone(),
                    reason: "empty id".to_owned(),
                });
            }
            if !seen.insert(spec.id.clone()) {
                return Err(Error::InvalidRule {
                    id: spec.id.clone(),
                    reason: "duplicate id".to_owned(),
                });
            }
            let id = &spec.id;
            let response = spec.response.as_ref().map(|r| r.check(id)).transpose()?;
            if response.is_some() && spec.signal != Signal::Prompt {
                return Err(Error::InvalidRule {
                    id: id.clone(),
                    reason: format!("a {} rule cannot have a response", spec.signal),
                });
            }
            let opt = |what: &str, p: &Option<String>| -> Result<Option<Regex>> {
                p.as_deref().map(|p| compile_regex(id, what, p)).transpose()
            };
            rules.push(CompiledRule {
                pattern: compile_regex(id, "pattern", &spec.pattern)?,
                not: spec
                    .not
                    .iter()
                    .map(|p| compile_regex(id, "not", p))
                    .collect::<Result<_>>()?,
                url: opt("url", &spec.url)?,
                device_code: opt("device_code", &spec.device_code)?,
                tool: opt("tool", &spec.tool)?,
                response,
                spec: spec.clone(),
            });
        }
        rules.sort_by_key(|r| std::cmp::Reverse(r.spec.priority));
        let mut regions = Vec::new();
        for r in &rules {
            if !regions.contains(&r.spec.region) {
                regions.push(r.spec.region);
            }
        }
        Ok(RuleSet { rules, regions })
    }

    /// The compiled rules in evaluation order.
    pub fn rules(&self) -> &[CompiledRule] {
        &self.rules
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Evaluate every rule over the snapshot. Each region's text is built once.
    pub fn evaluate(&self, snap: &ScreenSnapshot) -> Evaluation {
        let texts: Vec<(Region, String)> = self
            .regions
            .iter()
            .map(|r| (*r, region_text(snap, *r)))
            .collect();
        let text_of = |r: Region| -> &str {
            texts
                .iter()
                .find(|(k, _)| *k == r)
                .map(|(_, t)| t.as_str())
                .unwrap_or("")
        };
        let mut hits = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let text = text_of(rule.spec.region);
            let Some(m) = rule.pattern.find(text) else {
                continue;
            };
            if rule.not.iter().any(|n| n.is_match(text)) {
                continue;
            }
            let extract = |re: &Option<Regex>| -> Option<String> {
                let re = re.as_ref()?;
                let c = re.captures(text)?;
                c.get(1)
                    .or_else(|| c.get(0))
                    .map(|m| m.as_str().trim().to_owned())
            };
            hits.push(RuleHit {
                rule: i,
                matched: m.as_str().to_owned(),
                text: matched_rows(text, m.start(), m.end()),
                url: extract(&rule.url),
                device_code: extract(&rule.device_code),
                tool: extract(&rule.tool),
            });
        }
        Evaluation { hits }
    }
}

/// One rule that matched in a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleHit {
    /// Index into [`RuleSet::rules`].
    pub rule: usize,
    /// The region rows that hold the match (whole rows, joined by `\n`).
    pub text: String,
    /// The matched text itself (stable while a row is still being drawn).
    pub matched: String,
    /// Login URL extracted by the rule's `url` regex.
    pub url: Option<String>,
    /// Device code extracted by the rule's `device_code` regex.
    pub device_code: Option<String>,
    /// Tool name extracted by the rule's `tool` regex.
    pub tool: Option<String>,
}

/// Every rule that matched in one pass, in evaluation order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evaluation {
    /// The matches, highest priority first.
    pub hits: Vec<RuleHit>,
}

/// The rows of `text` that overlap the byte range `start..end`.
fn matched_rows(text: &str, start: usize, end: usize) -> String {
    let from = text[..start].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let to = text[end..]
        .find('\n')
        .map(|i| end + i)
        .unwrap_or(text.len());
    text[from..to].to_owned()
}

/// The text a region reads from a snapshot: rows (trailing blanks trimmed) joined by `\n`.
///
/// ```
/// use pty_manager::{region_text, Region, ScreenSnapshot};
/// let s = ScreenSnapshot::from_text("a\n\nb\nc", 80, 24);
/// assert_eq!(region_text(&s, Region::Bottom(2)), "b\nc");
/// ```
pub fn region_text(snap: &ScreenSnapshot, region: Region) -> String {
    match region {
        Region::Bottom(n) => {
            let mut rows: Vec<&str> = Vec::with_capacity(n);
            for line in snap.lines.iter().rev() {
                let l = line.trim_end();
                if l.is_empty() {
                    continue;
                }
                rows.push(l);
                if rows.len() == n {
                    break;
                }
            }
            rows.reverse();
            rows.join("\n")
        }
        Region::Screen => {
            let end = snap
                .lines
                .iter()
                .rposition(|l| !l.trim_end().is_empty())
                .map(|i| i + 1)
                .unwrap_or(0);
            let rows: Vec<&str> = snap.lines[..end].iter().map(|l| l.trim_end()).collect();
            rows.join("\n")
        }
        Region::Title => snap.title.clone(),
        Region::Tail(n) => {
            let end = snap
                .lines
                .iter()
                .rposition(|l| !l.trim_end().is_empty())
                .map(|i| i + 1)
                .unwrap_or(0);
            let visible = &snap.lines[..end];
            let from_visible = visible.len().min(n);
            let from_scrolled = (n - from_visible).min(snap.scrolled.len());
            let scrolled = &snap.scrolled[snap.scrolled.len() - from_scrolled..];
            let rows: Vec<&str> = scrolled
                .iter()
                .chain(&visible[visible.len() - from_visible..])
                .map(|l| l.trim_end())
                .collect();
            rows.join("\n")
        }
        Region::Osc(_) => snap.osc7501.clone().unwrap_or_default(),
        Region::CursorRow => snap
            .lines
            .get(snap.cursor.0 as usize)
            .map(|l| l.trim_end().to_owned())
            .unwrap_or_default(),
        Region::Markers => {
            // Hook marker rows may scroll off quickly; read the visible rows and this turn's
            // scrolled rows from the bottom and stop at the first valid marker.
            let is_marker = |l: &&String| -> bool {
                let l = l.trim();
                l.split_once(' ')
                    .map(|(p, j)| {
                        (p.contains("CLAUDE_HOOK") || p.contains("GEMINI_HOOK"))
                            && j.trim_start().starts_with('{')
                            && j.trim_end().ends_with('}')
                    })
                    .unwrap_or(false)
            };
            snap.lines
                .iter()
                .rev()
                .chain(snap.scrolled.iter().rev().take(200))
                .find(is_marker)
                .and_then(|l| l.trim().split_once(' ').map(|(_, j)| j.trim().to_owned()))
                .unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_parse_and_print() {
        for (text, want) in [
            ("bottom(15)", Region::Bottom(15)),
            ("bottom(3)", Region::Bottom(3)),
            ("screen", Region::Screen),
            ("title", Region::Title),
            ("tail(200)", Region::Tail(200)),
            ("osc(7501)", Region::Osc(7501)),
            ("markers", Region::Markers),
            ("cursor_row", Region::CursorRow),
        ] {
            let r: Region = text.parse().unwrap();
            assert_eq!(r, want);
            assert_eq!(r.to_string(), text);
        }
        for bad in ["bottom(0)", "bottom(x)", "osc(7)", "lines", "tail()"] {
            assert!(bad.parse::<Region>().is_err(), "{bad}");
        }
    }

    #[test]
    fn bottom_skips_empty_rows_and_reads_only_n() {
        let s = ScreenSnapshot::from_text("one\n\ntwo\n\n\nthree\n", 80, 10);
        assert_eq!(region_text(&s, Region::Bottom(2)), "two\nthree");
        assert_eq!(region_text(&s, Region::Bottom(15)), "one\ntwo\nthree");
        assert_eq!(region_text(&s, Region::Screen), "one\n\ntwo\n\n\nthree");
    }

    #[test]
    fn tail_joins_scrolled_rows() {
        let mut s = ScreenSnapshot::from_text("c\nd", 80, 5);
        s.scrolled = vec!["a".into(), "b".into()];
        assert_eq!(region_text(&s, Region::Tail(3)), "b\nc\nd");
        assert_eq!(region_text(&s, Region::Tail(10)), "a\nb\nc\nd");
        assert_eq!(region_text(&s, Region::Tail(1)), "d");
    }

    #[test]
    fn markers_take_the_last_valid_row() {
        let s = ScreenSnapshot::from_text(
            "PARALLAX_CLAUDE_HOOK {\"event\":\"PreToolUse\"}\nnoise\nPARALLAX_CLAUDE_HOOK {\"event\":\"Stop\"}\nPARALLAX_CLAUDE_HOOK {broken",
            80,
            10,
        );
        assert_eq!(region_text(&s, Region::Markers), "{\"event\":\"Stop\"}");
    }

    #[test]
    fn unknown_rule_keys_are_errors_but_unknown_top_level_keys_are_not() {
        let ok = "schema: 1\ntype: x\ncommand: x\ninstall: {npm: x}\nrules:\n  - id: x.r\n    signal: ready\n    pattern: 'a'\n";
        assert!(AdapterManifest::from_yaml(ok).is_ok());
        let typo = "schema: 1\ntype: x\ncommand: x\nrules:\n  - id: x.r\n    signal: ready\n    patern: 'a'\n";
        assert!(AdapterManifest::from_yaml(typo).is_err());
        let schema = "schema: 2\ntype: x\ncommand: x\n";
        assert!(AdapterManifest::from_yaml(schema).is_err());
    }

    #[test]
    fn compile_rejects_bad_rules() {
        let bad_re = RuleSpec::new("a", Signal::Ready, "(");
        assert!(RuleSet::compile(&[bad_re]).is_err());
        let dup = RuleSpec::new("a", Signal::Ready, "x");
        assert!(RuleSet::compile(&[dup.clone(), dup]).is_err());
        let resp_on_ready = RuleSpec::new("a", Signal::Ready, "x").answer_text("y");
        assert!(RuleSet::compile(&[resp_on_ready]).is_err());
        let mut both = RuleSpec::new("a", Signal::Prompt, "x");
        both.response = Some(ResponseSpec {
            text: Some("y".into()),
            keys: Some(vec!["enter".into()]),
        });
        assert!(RuleSet::compile(&[both]).is_err());
        let ctrl = RuleSpec::new("a", Signal::Prompt, "x").answer_text("y\r");
        assert!(RuleSet::compile(&[ctrl]).is_err());
        let typo = RuleSpec::new("a", Signal::Prompt, "x").answer_keys(&["entr"]);
        assert!(RuleSet::compile(&[typo]).is_err());
        let ok = RuleSpec::new("a", Signal::Prompt, "x").answer_keys(&["Down", "ctrl", "c", "y"]);
        let set = RuleSet::compile(&[ok]).unwrap();
        assert_eq!(
            set.rules()[0].response,
            Some(Response::Keys(vec![
                "down".into(),
                "ctrl+c".into(),
                "y".into()
            ]))
        );
    }

    #[test]
    fn priority_orders_and_ties_keep_order() {
        let mut hi = RuleSpec::new("hi", Signal::Busy, "x");
        hi.priority = 5;
        let set = RuleSet::compile(&[
            RuleSpec::new("a", Signal::Ready, "x"),
            hi,
            RuleSpec::new("b", Signal::Ready, "x"),
        ])
        .unwrap();
        let ids: Vec<&str> = set.rules().iter().map(|r| r.id()).collect();
        assert_eq!(ids, ["hi", "a", "b"]);
    }

    #[test]
    fn not_guard_and_matched_rows() {
        let mut r = RuleSpec::new("p", Signal::Prompt, r"Create new file\?");
        r.not = vec!["^> $".into()];
        let set = RuleSet::compile(&[r]).unwrap();
        let s = ScreenSnapshot::from_text("x\nCreate new file? (Y)es/(N)o [Yes]:\n", 80, 10);
        let e = set.evaluate(&s);
        assert_eq!(e.hits.len(), 1);
        assert_eq!(e.hits[0].text, "Create new file? (Y)es/(N)o [Yes]:");
    }
}
