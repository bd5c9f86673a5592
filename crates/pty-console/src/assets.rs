//! The dashboard's files, embedded at build time (no network at run time).

/// `(URL path, content type, bytes)` of every static file the server serves.
pub(crate) const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "/",
        "text/html; charset=utf-8",
        include_bytes!("../assets/dashboard.html"),
    ),
    (
        "/assets/dashboard.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/dashboard.js"),
    ),
    (
        "/assets/dashboard.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/dashboard.css"),
    ),
    (
        "/assets/vendor/xterm.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/vendor/xterm.js"),
    ),
    (
        "/assets/vendor/xterm.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/vendor/xterm.css"),
    ),
    (
        "/assets/vendor/addon-fit.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/vendor/addon-fit.js"),
    ),
    (
        "/assets/vendor/LICENSE-xterm",
        "text/plain; charset=utf-8",
        include_bytes!("../assets/vendor/LICENSE-xterm"),
    ),
    (
        "/assets/vendor/LICENSE-addon-fit",
        "text/plain; charset=utf-8",
        include_bytes!("../assets/vendor/LICENSE-addon-fit"),
    ),
];

/// The embedded file at `path`, with its content type.
pub(crate) fn find(path: &str) -> Option<(&'static str, &'static [u8])> {
    ASSETS
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, t, b)| (*t, *b))
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_asset_is_present_and_non_empty() {
        for (path, _, bytes) in super::ASSETS {
            assert!(!bytes.is_empty(), "{path}");
        }
        assert!(super::find("/assets/vendor/xterm.js").is_some());
        assert!(super::find("/etc/passwd").is_none());
    }
}
