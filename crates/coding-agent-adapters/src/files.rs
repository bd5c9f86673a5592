//! Configuration files a run needs, merged into what is already there and removable afterwards.
//!
//! Merging never clobbers a user's file: objects are merged key by key, arrays gain only the
//! items that are missing, and a scalar we replace is remembered. Every change is recorded in a
//! [`WriteRecord`] (serializable, so it can be kept with the session), and [`WriteRecord::revert`]
//! undoes exactly those changes: our keys and array items go, replaced values come back, and files
//! and directories we created are removed when nothing else is left in them.
//!
//! YAML files are re-emitted after merging, so comments in a user's YAML file do not survive;
//! JSON files are re-emitted pretty-printed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Error, Result};

/// Where a configuration file lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "root", content = "path")]
pub enum FileLocation {
    /// Relative to the session's working directory (files the CLI reads from the project).
    Workspace(PathBuf),
    /// Relative to the session's private directory (never in the repository).
    Private(PathBuf),
    /// Relative to the agent's home directory (`~/.claude.json`, …).
    Home(PathBuf),
}

/// How a file's content is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    /// A JSON object, merged.
    Json,
    /// A YAML mapping, merged.
    Yaml,
    /// Whole text (the content is a JSON string), replaced; the previous text is kept for revert.
    Text,
}

/// One file to write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigFile {
    /// Where.
    pub location: FileLocation,
    /// How.
    pub format: FileFormat,
    /// What: an object for JSON/YAML, a string for text.
    pub content: Value,
    /// Unix permission bits (e.g. `0o600` for files holding a token, `0o700` for scripts).
    pub mode: Option<u32>,
}

/// The directories [`FileLocation`]s are relative to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileRoots {
    /// The session's working directory.
    pub workspace: PathBuf,
    /// The session's private directory.
    pub private_dir: Option<PathBuf>,
    /// The home directory the agent runs with.
    pub home: Option<PathBuf>,
}

impl FileRoots {
    /// The absolute path of a location.
    pub fn resolve(&self, location: &FileLocation) -> Result<PathBuf> {
        let (root, rel) = match location {
            FileLocation::Workspace(p) => (Some(&self.workspace), p),
            FileLocation::Private(p) => (self.private_dir.as_ref(), p),
            FileLocation::Home(p) => (self.home.as_ref(), p),
        };
        if rel.is_absolute()
            || rel
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(Error::InvalidOption {
                name: "file location",
                reason: format!(
                    "{} must be relative and stay inside its root",
                    rel.display()
                ),
            });
        }
        let root = root.ok_or_else(|| Error::InvalidOption {
            name: "file location",
            reason: format!("no directory given for {location:?}"),
        })?;
        Ok(root.join(rel))
    }
}

/// One change inside a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Edit {
    /// Object keys from the top to the changed value.
    pub pointer: Vec<String>,
    /// The value before (None: the key did not exist).
    pub previous: Option<Value>,
    /// For arrays: the items we appended (the array itself was there before).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub added_items: Vec<Value>,
}

/// What was done to one file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WrittenFile {
    /// The file.
    pub path: PathBuf,
    /// Format it was written in.
    pub format: FileFormat,
    /// Whether we created it.
    pub created: bool,
    /// Directories we created for it, outermost first.
    pub created_dirs: Vec<PathBuf>,
    /// Changes inside the file (JSON/YAML).
    pub edits: Vec<Edit>,
    /// The text before we replaced it (text files that existed).
    pub previous_text: Option<String>,
}

/// Everything written for a session, to undo later.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WriteRecord {
    /// The files, in the order they were written.
    pub files: Vec<WrittenFile>,
}

fn read_doc(path: &Path, format: FileFormat) -> Result<Option<Value>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("cannot read", path, e)),
    };
    if text.trim().is_empty() {
        return Ok(Some(Value::Object(Map::new())));
    }
    let merge_err = |reason: String| Error::Merge {
        path: path.to_owned(),
        reason,
    };
    let v: Value = match format {
        FileFormat::Json => serde_json::from_str(&text).map_err(|e| merge_err(e.to_string()))?,
        FileFormat::Yaml => serde_yaml::from_str(&text).map_err(|e| merge_err(e.to_string()))?,
        FileFormat::Text => Value::String(text),
    };
    if format != FileFormat::Text && !v.is_object() {
        return Err(merge_err("the top level is not an object".to_owned()));
    }
    Ok(Some(v))
}

fn render(v: &Value, format: FileFormat, path: &Path) -> Result<String> {
    Ok(match format {
        FileFormat::Json => {
            let mut s = serde_json::to_string_pretty(v).map_err(|e| Error::Merge {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
            s.push('\n');
            s
        }
        FileFormat::Yaml => serde_yaml::to_string(v).map_err(|e| Error::Merge {
            path: path.to_owned(),
            reason: e.to_string(),
        })?,
        FileFormat::Text => v.as_str().unwrap_or_default().to_owned(),
    })
}

fn write_file(path: &Path, text: &str, mode: Option<u32>) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    // Write beside the target and rename, so a crash never leaves a half-written config behind;
    // the temporary file is created with the final mode, so a token is never world-readable.
    let tmp = path.with_file_name(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    if let Some(m) = mode {
        opts.mode(m);
    }
    let mut f = opts
        .open(&tmp)
        .map_err(|e| Error::io("cannot write", &tmp, e))?;
    f.write_all(text.as_bytes())
        .map_err(|e| Error::io("cannot write", &tmp, e))?;
    if let Some(m) = mode {
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(m))
            .map_err(|e| Error::io("cannot set permissions of", &tmp, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io("cannot write", path, e))
}

fn merge(
    target: &mut Map<String, Value>,
    ours: &Map<String, Value>,
    at: &[String],
    edits: &mut Vec<Edit>,
) {
    for (k, v) in ours {
        let mut pointer = at.to_vec();
        pointer.push(k.clone());
        match (target.get_mut(k), v) {
            (None, _) => {
                target.insert(k.clone(), v.clone());
                edits.push(Edit {
                    pointer,
                    previous: None,
                    added_items: Vec::new(),
                });
            }
            (Some(Value::Object(t)), Value::Object(o)) => merge(t, o, &pointer, edits),
            (Some(Value::Array(t)), Value::Array(o)) => {
                let added: Vec<Value> = o.iter().filter(|x| !t.contains(x)).cloned().collect();
                if !added.is_empty() {
                    t.extend(added.iter().cloned());
                    edits.push(Edit {
                        pointer,
                        previous: None,
                        added_items: added,
                    });
                }
            }
            (Some(old), _) if old == v => {}
            (Some(old), _) => {
                let previous = std::mem::replace(old, v.clone());
                edits.push(Edit {
                    pointer,
                    previous: Some(previous),
                    added_items: Vec::new(),
                });
            }
        }
    }
}

fn parent_map<'a>(doc: &'a mut Value, pointer: &[String]) -> Option<&'a mut Map<String, Value>> {
    let mut cur = doc;
    for k in &pointer[..pointer.len().saturating_sub(1)] {
        cur = cur.as_object_mut()?.get_mut(k)?;
    }
    cur.as_object_mut()
}

fn undo(doc: &mut Value, edit: &Edit) {
    let Some(last) = edit.pointer.last() else {
        return;
    };
    let Some(parent) = parent_map(doc, &edit.pointer) else {
        return;
    };
    if !edit.added_items.is_empty() {
        if let Some(Value::Array(a)) = parent.get_mut(last) {
            for item in &edit.added_items {
                if let Some(i) = a.iter().position(|x| x == item) {
                    a.remove(i);
                }
            }
        }
        return;
    }
    match &edit.previous {
        None => {
            parent.remove(last);
        }
        Some(v) => {
            parent.insert(last.clone(), v.clone());
        }
    }
}

/// Write (merge) the files and return what was done. On an error, what was already written is
/// reverted before the error is returned.
pub fn write_files(files: &[ConfigFile], roots: &FileRoots) -> Result<WriteRecord> {
    let mut record = WriteRecord::default();
    for f in files {
        match write_one(f, roots) {
            Ok(Some(w)) => record.files.push(w),
            Ok(None) => {}
            Err(e) => {
                // Best effort: the original error is the one worth reporting.
                let _ = record.revert();
                return Err(e);
            }
        }
    }
    Ok(record)
}

fn write_one(f: &ConfigFile, roots: &FileRoots) -> Result<Option<WrittenFile>> {
    let path = roots.resolve(&f.location)?;
    let mut created_dirs = Vec::new();
    if let Some(parent) = path.parent() {
        let mut missing = Vec::new();
        let mut p = parent;
        while !p.exists() {
            missing.push(p.to_owned());
            match p.parent() {
                Some(q) => p = q,
                None => break,
            }
        }
        missing.reverse();
        for d in &missing {
            std::fs::create_dir(d).map_err(|e| Error::io("cannot create directory", d, e))?;
            created_dirs.push(d.clone());
        }
    }
    let existing = read_doc(&path, f.format)?;
    let created = existing.is_none();
    let (text, edits, previous_text) = match f.format {
        FileFormat::Text => {
            let new = f.content.as_str().unwrap_or_default().to_owned();
            let prev = existing.and_then(|v| v.as_str().map(str::to_owned));
            if prev.as_deref() == Some(new.as_str()) {
                return Ok(None);
            }
            (new, Vec::new(), prev)
        }
        FileFormat::Json | FileFormat::Yaml => {
            let ours = f.content.as_object().ok_or_else(|| Error::Merge {
                path: path.clone(),
                reason: "our content is not an object".to_owned(),
            })?;
            let mut doc = existing.unwrap_or_else(|| Value::Object(Map::new()));
            let mut edits = Vec::new();
            if let Some(map) = doc.as_object_mut() {
                merge(map, ours, &[], &mut edits);
            }
            if edits.is_empty() && !created {
                return Ok(None);
            }
            (render(&doc, f.format, &path)?, edits, None)
        }
    };
    write_file(&path, &text, f.mode)?;
    Ok(Some(WrittenFile {
        path,
        format: f.format,
        created,
        created_dirs,
        edits,
        previous_text,
    }))
}

impl WriteRecord {
    /// The paths written.
    pub fn paths(&self) -> Vec<&Path> {
        self.files.iter().map(|f| f.path.as_path()).collect()
    }

    /// Undo every change, newest first. Files changed since are still restored key by key; a
    /// file that is gone is skipped.
    pub fn revert(&self) -> Result<()> {
        for f in self.files.iter().rev() {
            revert_one(f)?;
        }
        Ok(())
    }
}

fn revert_one(f: &WrittenFile) -> Result<()> {
    let remove = |p: &Path| match std::fs::remove_file(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("cannot remove", p, e)),
    };
    match f.format {
        FileFormat::Text => match &f.previous_text {
            Some(t) => {
                let mode = std::fs::metadata(&f.path).ok().map(|m| {
                    use std::os::unix::fs::PermissionsExt;
                    m.permissions().mode() & 0o7777
                });
                write_file(&f.path, t, mode)?;
            }
            None => remove(&f.path)?,
        },
        FileFormat::Json | FileFormat::Yaml => {
            let Some(mut doc) = read_doc(&f.path, f.format)? else {
                return Ok(());
            };
            for e in f.edits.iter().rev() {
                undo(&mut doc, e);
            }
            let empty = doc.as_object().is_some_and(|m| m.is_empty());
            if f.created && empty {
                remove(&f.path)?;
            } else {
                let mode = std::fs::metadata(&f.path).ok().map(|m| {
                    use std::os::unix::fs::PermissionsExt;
                    m.permissions().mode() & 0o7777
                });
                write_file(&f.path, &render(&doc, f.format, &f.path)?, mode)?;
            }
        }
    }
    for d in f.created_dirs.iter().rev() {
        // Only empty directories go: anything the agent or the user put there stays.
        let _ = std::fs::remove_dir(d);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;
    use serde_json::json;

    fn roots(dir: &TempDir) -> FileRoots {
        FileRoots {
            workspace: dir.path().join("ws"),
            private_dir: Some(dir.path().join("private")),
            home: Some(dir.path().join("home")),
        }
    }

    #[test]
    fn merge_keeps_user_settings_and_revert_restores_them() {
        let dir = TempDir::new("files-merge");
        let r = roots(&dir);
        std::fs::create_dir_all(r.workspace.join(".gemini")).unwrap();
        let path = r.workspace.join(".gemini/settings.json");
        let user = json!({
            "theme": "dark",
            "general": {"defaultApprovalMode": "default", "vimMode": true},
            "tools": {"allowed": ["read_file"]}
        });
        std::fs::write(&path, serde_json::to_string(&user).unwrap()).unwrap();
        let ours = ConfigFile {
            location: FileLocation::Workspace(".gemini/settings.json".into()),
            format: FileFormat::Json,
            content: json!({
                "general": {"defaultApprovalMode": "auto_edit"},
                "tools": {"allowed": ["read_file", "glob"]},
                "hooks": {"AfterAgent": [{"matcher": "*"}]}
            }),
            mode: None,
        };
        let rec = write_files(&[ours], &r).unwrap();
        let merged: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(merged["theme"], "dark");
        assert_eq!(merged["general"]["vimMode"], true);
        assert_eq!(merged["general"]["defaultApprovalMode"], "auto_edit");
        assert_eq!(merged["tools"]["allowed"], json!(["read_file", "glob"]));
        assert!(merged["hooks"]["AfterAgent"].is_array());
        assert!(!rec.files[0].created);

        // The record survives a round trip through JSON (kept with the session).
        let rec: WriteRecord = serde_json::from_str(&serde_json::to_string(&rec).unwrap()).unwrap();
        rec.revert().unwrap();
        let back: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(back, user);
    }

    #[test]
    fn created_files_and_dirs_are_removed_on_revert() {
        let dir = TempDir::new("files-create");
        let r = roots(&dir);
        std::fs::create_dir_all(&r.workspace).unwrap();
        let files = [
            ConfigFile {
                location: FileLocation::Workspace(".gemini/hooks/hook.sh".into()),
                format: FileFormat::Text,
                content: json!("#!/bin/sh\n"),
                mode: Some(0o700),
            },
            ConfigFile {
                location: FileLocation::Workspace("cfg.yml".into()),
                format: FileFormat::Yaml,
                content: json!({"yes-always": true}),
                mode: None,
            },
        ];
        let rec = write_files(&files, &r).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let script = r.workspace.join(".gemini/hooks/hook.sh");
        assert_eq!(
            std::fs::metadata(&script).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert_eq!(
            std::fs::read_to_string(r.workspace.join("cfg.yml")).unwrap(),
            "yes-always: true\n"
        );
        rec.revert().unwrap();
        assert!(!script.exists());
        assert!(!r.workspace.join(".gemini").exists());
        assert!(!r.workspace.join("cfg.yml").exists());
        assert!(r.workspace.exists());
    }

    #[test]
    fn a_broken_user_file_is_never_overwritten() {
        let dir = TempDir::new("files-broken");
        let r = roots(&dir);
        std::fs::create_dir_all(&r.workspace).unwrap();
        std::fs::write(r.workspace.join("opencode.json"), "{ not json").unwrap();
        let f = ConfigFile {
            location: FileLocation::Workspace("opencode.json".into()),
            format: FileFormat::Json,
            content: json!({"permission": {"edit": "ask"}}),
            mode: None,
        };
        let e = write_files(&[f], &r).unwrap_err();
        assert!(e.to_string().starts_with("cannot merge into"), "{e}");
        assert_eq!(
            std::fs::read_to_string(r.workspace.join("opencode.json")).unwrap(),
            "{ not json"
        );
    }

    #[test]
    fn locations_cannot_escape_their_root() {
        let dir = TempDir::new("files-escape");
        let r = roots(&dir);
        for bad in ["../x", "/etc/passwd"] {
            assert!(
                r.resolve(&FileLocation::Workspace(bad.into())).is_err(),
                "{bad}"
            );
        }
        let no_home = FileRoots { home: None, ..r };
        assert!(
            no_home
                .resolve(&FileLocation::Home(".claude.json".into()))
                .is_err()
        );
    }

    #[test]
    fn private_files_get_their_mode() {
        let dir = TempDir::new("files-mode");
        let r = roots(&dir);
        std::fs::create_dir_all(r.private_dir.as_ref().unwrap()).unwrap();
        let f = ConfigFile {
            location: FileLocation::Private("settings.json".into()),
            format: FileFormat::Json,
            content: json!({"a": 1}),
            mode: Some(0o600),
        };
        write_files(&[f], &r).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let p = r.private_dir.unwrap().join("settings.json");
        assert_eq!(
            std::fs::metadata(p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
