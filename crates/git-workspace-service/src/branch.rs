//! Generated branch names: `<prefix>/<execution>/<role>[-<slug>]`, every part sanitised, and the
//! inverse parse used for branches this crate did not create itself.

/// The default prefix of generated branches.
pub const DEFAULT_PREFIX: &str = "parallax";

/// The default longest slug.
pub const DEFAULT_SLUG_MAX: usize = 30;

const STOP_WORDS: &[&str] = &[
    "the", "and", "for", "with", "this", "that", "from", "have", "has", "will", "would", "could",
    "should", "been", "being", "into", "than", "then", "when", "where", "which", "while", "about",
    "after", "before",
];

/// Lower-cases `s`, turns runs of whitespace and `_` into `-`, drops everything but `[a-z0-9-]`,
/// collapses `-` runs, strips one leading and trailing `-`, then cuts to `max` bytes and strips a
/// trailing `-` again.
///
/// ```
/// assert_eq!(git_workspace_service::branch::sanitize("Senior Engineer!", None), "senior-engineer");
/// ```
pub fn sanitize(s: &str, max: Option<usize>) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.to_lowercase().chars() {
        let c = if c.is_whitespace() || c == '_' {
            '-'
        } else {
            c
        };
        if !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
            continue;
        }
        if c == '-' && out.ends_with('-') {
            continue;
        }
        out.push(c);
    }
    let mut out = out.strip_prefix('-').unwrap_or(&out).to_owned();
    if out.ends_with('-') {
        out.pop();
    }
    if let Some(max) = max {
        // Only ASCII remains, so a byte cut is a character cut.
        out.truncate(max);
        if out.ends_with('-') {
            out.pop();
        }
    }
    out
}

/// A slug from free text: the first four words longer than two characters that are not stop
/// words, joined by `-` and sanitised to `max`.
///
/// ```
/// use git_workspace_service::branch::generate_slug;
/// assert_eq!(generate_slug("Add the feature for the user", 30), "add-feature-user");
/// ```
pub fn generate_slug(text: &str, max: usize) -> String {
    let cleaned: String = text
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c.is_whitespace())
        .collect();
    let words: Vec<&str> = cleaned
        .split_whitespace()
        .filter(|w| w.len() > 2 && !STOP_WORDS.contains(w))
        .take(4)
        .collect();
    sanitize(&words.join("-"), Some(max))
}

/// The parts of a managed branch name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedBranch {
    /// The execution id (second part).
    pub execution_id: String,
    /// The role: the third part up to its first `-`.
    pub role: String,
    /// The rest of the third part after the first `-`, if any.
    pub slug: Option<String>,
}

/// Builds and recognises branch names under one prefix.
#[derive(Debug, Clone)]
pub struct BranchNaming {
    prefix: String,
    slug_max: usize,
}

impl Default for BranchNaming {
    fn default() -> Self {
        Self::new(DEFAULT_PREFIX)
    }
}

impl BranchNaming {
    /// Names under `prefix` (sanitised), slugs at most [`DEFAULT_SLUG_MAX`] long.
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: sanitize(prefix, None),
            slug_max: DEFAULT_SLUG_MAX,
        }
    }

    /// Changes the longest slug.
    pub fn with_slug_max(mut self, max: usize) -> Self {
        self.slug_max = max;
        self
    }

    /// The sanitised prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix>/<execution>/<role>[-<slug>]`, each part sanitised; `None` when the execution id
    /// or the role sanitise to nothing (no valid name can be made from them).
    ///
    /// ```
    /// use git_workspace_service::branch::BranchNaming;
    /// let n = BranchNaming::default();
    /// assert_eq!(n.generate("exec-123", "engineer", Some("auth-feature")).unwrap(),
    ///            "parallax/exec-123/engineer-auth-feature");
    /// ```
    pub fn generate(&self, execution_id: &str, role: &str, slug: Option<&str>) -> Option<String> {
        let exec = sanitize(execution_id, None);
        let role = sanitize(role, None);
        if exec.is_empty() || role.is_empty() || self.prefix.is_empty() {
            return None;
        }
        let slug = slug
            .map(|s| sanitize(s, Some(self.slug_max)))
            .filter(|s| !s.is_empty());
        Some(match slug {
            Some(slug) => format!("{}/{exec}/{role}-{slug}", self.prefix),
            None => format!("{}/{exec}/{role}", self.prefix),
        })
    }

    /// Whether `branch` starts with `<prefix>/`.
    pub fn is_managed(&self, branch: &str) -> bool {
        branch
            .strip_prefix(self.prefix.as_str())
            .is_some_and(|rest| rest.starts_with('/'))
    }

    /// Splits a managed name back into its parts; `None` for foreign names.
    pub fn parse(&self, branch: &str) -> Option<ParsedBranch> {
        if !self.is_managed(branch) {
            return None;
        }
        let parts: Vec<&str> = branch.split('/').collect();
        if parts.len() < 3 || parts[1].is_empty() || parts[2].is_empty() {
            return None;
        }
        let (role, slug) = match parts[2].split_once('-') {
            Some((role, slug)) => (role.to_owned(), Some(slug.to_owned())),
            None => (parts[2].to_owned(), None),
        };
        Some(ParsedBranch {
            execution_id: parts[1].to_owned(),
            role,
            slug,
        })
    }

    /// The branches in `branches` that belong to `execution_id`.
    pub fn filter_by_execution<'a>(
        &self,
        branches: impl IntoIterator<Item = &'a str>,
        execution_id: &str,
    ) -> Vec<&'a str> {
        let head = format!("{}/{}/", self.prefix, sanitize(execution_id, None));
        branches
            .into_iter()
            .filter(|b| b.starts_with(&head))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behavior_vectors() {
        let n = BranchNaming::default();
        let table: &[(&str, &str, Option<&str>, &str)] = &[
            ("exec-123", "engineer", None, "parallax/exec-123/engineer"),
            (
                "exec-123",
                "engineer",
                Some("auth-feature"),
                "parallax/exec-123/engineer-auth-feature",
            ),
            (
                "exec-123",
                "Senior Engineer!",
                None,
                "parallax/exec-123/senior-engineer",
            ),
            (
                "Exec 1_2; rm -rf /",
                "dev",
                None,
                "parallax/exec-1-2-rm-rf/dev",
            ),
        ];
        for (exec, role, slug, want) in table {
            assert_eq!(n.generate(exec, role, *slug).as_deref(), Some(*want));
            crate::validate_branch_name(want).unwrap();
        }
        let short = BranchNaming::default().with_slug_max(20);
        assert_eq!(
            short
                .generate(
                    "exec-123",
                    "engineer",
                    Some("this-is-a-very-long-slug-that-should-be-truncated")
                )
                .unwrap(),
            "parallax/exec-123/engineer-this-is-a-very-long"
        );
        assert_eq!(n.generate("!!!", "dev", None), None);
        assert_eq!(
            generate_slug("Add the feature for the user", 30),
            "add-feature-user"
        );
        assert_eq!(
            generate_slug("Fix bug #123 in auth!", 30),
            "fix-bug-123-auth"
        );
    }

    #[test]
    fn parse_and_is_managed_round_trip() {
        let n = BranchNaming::new("milady");
        let name = n.generate("e1", "coding", Some("agent")).unwrap();
        assert!(n.is_managed(&name));
        assert_eq!(
            n.parse(&name),
            Some(ParsedBranch {
                execution_id: "e1".into(),
                role: "coding".into(),
                slug: Some("agent".into())
            })
        );
        assert_eq!(n.parse("milady/e1/dev").unwrap().slug, None);
        assert!(!n.is_managed("miladyx/e1/dev"));
        assert_eq!(n.parse("milady/e1"), None);
        assert_eq!(n.parse("main"), None);
        assert_eq!(
            n.filter_by_execution(
                ["milady/e1/a", "milady/e2/a", "main", "milady/e1/b-c"],
                "e1"
            ),
            vec!["milady/e1/a", "milady/e1/b-c"]
        );
    }
}
