//! `cargo xtask vendor-xterm`: fetches xterm.js and its fit addon from the npm registry and copies
//! the built files the dashboard needs, with their licences, into `crates/pty-console/assets/vendor/`.
//!
//! The files are committed and embedded with `include_bytes!`, so neither the dashboard nor CI ever
//! needs the network. Every program runs with an argv (`npm pack`, `tar`, `sha256sum`), never a shell.
//! A `MANIFEST.txt` beside the files records each package's version and every file's sha256, so a
//! reviewer can tell exactly what was vendored.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// One npm package to vendor: its name and which files of the tarball go where.
struct Package {
    name: &'static str,
    /// `(path inside the tarball, file name under assets/vendor/)`.
    files: &'static [(&'static str, &'static str)],
}

const PACKAGES: &[Package] = &[
    Package {
        name: "@xterm/xterm",
        files: &[
            ("package/lib/xterm.js", "xterm.js"),
            ("package/css/xterm.css", "xterm.css"),
            ("package/LICENSE", "LICENSE-xterm"),
        ],
    },
    Package {
        name: "@xterm/addon-fit",
        files: &[
            ("package/lib/addon-fit.js", "addon-fit.js"),
            ("package/LICENSE", "LICENSE-addon-fit"),
        ],
    },
];

/// Runs the task; prints what it did or what failed.
pub fn run() -> ExitCode {
    match vendor() {
        Ok(dest) => {
            eprintln!("xtask vendor-xterm: wrote {}", dest.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xtask vendor-xterm: {e}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    // xtask lives one level below the root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn vendor() -> Result<PathBuf, String> {
    let dest = workspace_root().join("crates/pty-console/assets/vendor");
    std::fs::create_dir_all(&dest).map_err(|e| format!("create {}: {e}", dest.display()))?;
    let tmp = std::env::temp_dir().join(format!("xtask-vendor-xterm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| format!("create {}: {e}", tmp.display()))?;
    let result = vendor_into(&tmp, &dest);
    let _ = std::fs::remove_dir_all(&tmp);
    result.map(|()| dest)
}

fn vendor_into(tmp: &Path, dest: &Path) -> Result<(), String> {
    let mut manifest = String::from(
        "# Vendored by `cargo xtask vendor-xterm` from the npm registry; do not edit by hand.\n",
    );
    for (i, pkg) in PACKAGES.iter().enumerate() {
        let dir = tmp.join(format!("pkg{i}"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let out = Command::new("npm")
            .args(["pack", "--silent", "--pack-destination"])
            .arg(&dir)
            .arg(pkg.name)
            .output()
            .map_err(|e| format!("could not run npm: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "npm pack {} failed: {}",
                pkg.name,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let tarball = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .map(str::trim)
            .unwrap_or_default()
            .to_owned();
        if tarball.is_empty() || tarball.contains('/') {
            return Err(format!("npm pack {} printed no tarball name", pkg.name));
        }
        let status = Command::new("tar")
            .arg("-xzf")
            .arg(dir.join(&tarball))
            .arg("-C")
            .arg(&dir)
            .status()
            .map_err(|e| format!("could not run tar: {e}"))?;
        if !status.success() {
            return Err(format!("tar could not unpack {tarball}"));
        }
        let version = package_version(&dir.join("package/package.json"))?;
        manifest.push_str(&format!("package {} {}\n", pkg.name, version));
        for (from, to) in pkg.files {
            let src = dir.join(from);
            let dst = dest.join(to);
            std::fs::copy(&src, &dst)
                .map_err(|e| format!("copy {} to {}: {e}", src.display(), dst.display()))?;
            manifest.push_str(&format!("file {to} sha256 {}\n", sha256(&dst)?));
        }
    }
    let path = dest.join("MANIFEST.txt");
    std::fs::write(&path, manifest).map_err(|e| format!("write {}: {e}", path.display()))
}

/// The `"version"` of a package.json, read without a JSON dependency: the first `"version": "…"`.
fn package_version(path: &Path) -> Result<String, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    version_field(&text).ok_or_else(|| format!("no version in {}", path.display()))
}

fn version_field(json: &str) -> Option<String> {
    let at = json.find("\"version\"")?;
    let rest = &json[at + "\"version\"".len()..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    let end = rest.find('"')?;
    Some(rest[..end].to_owned())
}

fn sha256(path: &Path) -> Result<String, String> {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .map_err(|e| format!("could not run sha256sum: {e}"))?;
    if !out.status.success() {
        return Err(format!("sha256sum {} failed", path.display()));
    }
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .map(str::to_owned)
        .ok_or_else(|| format!("sha256sum printed nothing for {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::version_field;

    #[test]
    fn version_is_read_from_package_json() {
        let json = "{\n  \"name\": \"@xterm/xterm\",\n  \"version\" : \"5.5.0\",\n  \"x\": 1 }";
        assert_eq!(version_field(json).as_deref(), Some("5.5.0"));
        assert_eq!(version_field("{\"name\": \"a\"}"), None);
    }
}
