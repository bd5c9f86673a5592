//! OAuth tokens at rest: in memory, or in files sealed with XChaCha20-Poly1305 (authenticated
//! encryption: a wrong key or an altered file is an error, never garbage).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chacha20poly1305::aead::Aead;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};

use crate::redact::Secret;
use crate::{Error, Result, atomic, b64};

/// Environment variable holding a store key: 64 hex digits or base64 of 32 bytes.
pub const TOKEN_KEY_ENV: &str = "AGENT_ORCHESTRATOR_TOKEN_KEY";

/// An OAuth token as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthToken {
    /// The access token.
    pub access_token: Secret,
    /// Usually `bearer`.
    pub token_type: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Expiry, ms since the epoch; `None` = does not expire.
    pub expires_at: Option<u64>,
    /// Refresh token, if the forge gave one.
    pub refresh_token: Option<Secret>,
    /// The provider, e.g. `github`.
    pub provider: String,
    /// When it was obtained, ms since the epoch.
    pub created_at: u64,
}

/// Where tokens are kept.
pub trait TokenStore: Send + Sync {
    /// Stores (replaces) the token of `token.provider`.
    fn save(&self, token: &OAuthToken) -> Result<()>;
    /// The token of `provider`, if any.
    fn get(&self, provider: &str) -> Result<Option<OAuthToken>>;
    /// Removes the token of `provider`, or all tokens.
    fn clear(&self, provider: Option<&str>) -> Result<()>;
    /// Providers with a stored token.
    fn list(&self) -> Result<Vec<String>>;
}

/// Tokens in memory only (the default).
#[derive(Debug, Default)]
pub struct MemoryTokenStore {
    tokens: Mutex<BTreeMap<String, OAuthToken>>,
}

impl TokenStore for MemoryTokenStore {
    fn save(&self, token: &OAuthToken) -> Result<()> {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token.provider.clone(), token.clone());
        Ok(())
    }
    fn get(&self, provider: &str) -> Result<Option<OAuthToken>> {
        Ok(self
            .tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(provider)
            .cloned())
    }
    fn clear(&self, provider: Option<&str>) -> Result<()> {
        let mut t = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        match provider {
            Some(p) => {
                t.remove(p);
            }
            None => t.clear(),
        }
        Ok(())
    }
    fn list(&self) -> Result<Vec<String>> {
        Ok(self
            .tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect())
    }
}

/// A 256-bit store key.
#[derive(Clone)]
pub struct TokenKey([u8; 32]);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey([redacted])")
    }
}

impl TokenKey {
    /// A key from raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A fresh random key.
    pub fn generate() -> Result<Self> {
        let mut k = [0u8; 32];
        getrandom::fill(&mut k).map_err(|e| Error::TokenStore {
            path: PathBuf::new(),
            reason: format!("no randomness: {e}"),
        })?;
        Ok(Self(k))
    }

    /// Parses 64 hex digits or base64 of 32 bytes.
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim();
        let bytes = if t.len() == 64 && t.chars().all(|c| c.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&t[2 * i..2 * i + 2], 16).ok())
                .collect::<Option<Vec<u8>>>()?
        } else {
            b64::decode(t)?
        };
        Some(Self(bytes.try_into().ok()?))
    }

    /// The key in the `AGENT_ORCHESTRATOR_TOKEN_KEY` variable, if set and valid.
    pub fn from_env() -> Option<Self> {
        Self::parse(&std::env::var(TOKEN_KEY_ENV).ok()?)
    }

    /// Reads a key file, refusing one that others can read; creates it (0600, random key) when
    /// it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self> {
        let err = |reason: String| Error::TokenStore {
            path: path.to_path_buf(),
            reason,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    let mode = std::fs::metadata(path)
                        .map_err(|e| err(format!("cannot stat key file: {e}")))?
                        .permissions()
                        .mode();
                    if mode & 0o077 != 0 {
                        return Err(err(format!(
                            "key file mode {:o} is readable by others; use 0600",
                            mode & 0o777
                        )));
                    }
                }
                Self::parse(&text)
                    .ok_or_else(|| err("key file does not hold 32 bytes (hex or base64)".into()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent() {
                    atomic::create_private_dir(dir)?;
                }
                let key = Self::generate()?;
                let hex: String = key.0.iter().map(|b| format!("{b:02x}")).collect();
                atomic::write_private(path, hex.as_bytes())?;
                Ok(key)
            }
            Err(e) => Err(err(format!("cannot read key file: {e}"))),
        }
    }
}

/// The sealed file format.
#[derive(Serialize, Deserialize)]
struct Sealed {
    version: u32,
    alg: String,
    nonce: String,
    ciphertext: String,
}

const ALG: &str = "xchacha20poly1305";

/// Tokens in `<dir>/<provider>.token`: directory 0700, files 0600 written atomically, each
/// sealed with its own random nonce and the provider name as associated data (a file renamed to
/// another provider does not open).
pub struct FileTokenStore {
    dir: PathBuf,
    key: Option<TokenKey>,
    plaintext: bool,
}

impl std::fmt::Debug for FileTokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileTokenStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl FileTokenStore {
    /// A store in `dir` sealed with `key`.
    pub fn new(dir: impl Into<PathBuf>, key: TokenKey) -> Self {
        Self {
            dir: dir.into(),
            key: Some(key),
            plaintext: false,
        }
    }

    /// A store without a key: it refuses to write unless `plaintext` is set.
    pub fn without_key(dir: impl Into<PathBuf>, plaintext: bool) -> Self {
        Self {
            dir: dir.into(),
            key: None,
            plaintext,
        }
    }

    fn file(&self, provider: &str) -> Result<PathBuf> {
        if provider.is_empty()
            || !provider
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(Error::InvalidInput {
                what: "provider name",
                reason: format!("{provider:?} must be [A-Za-z0-9_-]+"),
            });
        }
        Ok(self.dir.join(format!("{provider}.token")))
    }

    fn err(&self, path: &Path, reason: &str) -> Error {
        Error::TokenStore {
            path: path.to_path_buf(),
            reason: reason.to_owned(),
        }
    }
}

impl TokenStore for FileTokenStore {
    fn save(&self, token: &OAuthToken) -> Result<()> {
        let path = self.file(&token.provider)?;
        let json = serde_json::to_vec(token).map_err(|source| Error::Json {
            path: path.clone(),
            source,
        })?;
        let body = match &self.key {
            Some(key) => {
                let mut nonce = [0u8; 24];
                getrandom::fill(&mut nonce)
                    .map_err(|e| self.err(&path, &format!("no randomness: {e}")))?;
                let cipher = XChaCha20Poly1305::new(&key.0.into());
                let ct = cipher
                    .encrypt(
                        &XNonce::from(nonce),
                        chacha20poly1305::aead::Payload {
                            msg: &json,
                            aad: token.provider.as_bytes(),
                        },
                    )
                    .map_err(|_| self.err(&path, "encryption failed"))?;
                serde_json::to_vec(&Sealed {
                    version: 1,
                    alg: ALG.into(),
                    nonce: b64::encode(&nonce),
                    ciphertext: b64::encode(&ct),
                })
                .map_err(|source| Error::Json {
                    path: path.clone(),
                    source,
                })?
            }
            None if self.plaintext => json,
            None => {
                return Err(self.err(
                    &path,
                    "no key configured; refusing to write a token in plain text",
                ));
            }
        };
        atomic::create_private_dir(&self.dir)?;
        atomic::write_private(&path, &body)
    }

    fn get(&self, provider: &str) -> Result<Option<OAuthToken>> {
        let path = self.file(provider)?;
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(Error::Io {
                    op: "read",
                    path,
                    source,
                });
            }
        };
        let json = match (&self.key, serde_json::from_slice::<Sealed>(&bytes)) {
            (Some(key), Ok(sealed)) => {
                if sealed.version != 1 || sealed.alg != ALG {
                    return Err(self.err(&path, "unknown format version"));
                }
                let nonce: [u8; 24] = b64::decode(&sealed.nonce)
                    .and_then(|n| n.try_into().ok())
                    .ok_or_else(|| self.err(&path, "bad nonce"))?;
                let ct = b64::decode(&sealed.ciphertext)
                    .ok_or_else(|| self.err(&path, "bad ciphertext"))?;
                XChaCha20Poly1305::new(&key.0.into())
                    .decrypt(
                        &XNonce::from(nonce),
                        chacha20poly1305::aead::Payload {
                            msg: &ct,
                            aad: provider.as_bytes(),
                        },
                    )
                    .map_err(|_| self.err(&path, "cannot decrypt: wrong key or altered file"))?
            }
            (Some(_), Err(_)) => return Err(self.err(&path, "not a sealed token file")),
            (None, Ok(_)) => return Err(self.err(&path, "file is sealed but no key is configured")),
            (None, Err(_)) if self.plaintext => bytes,
            (None, Err(_)) => {
                return Err(self.err(&path, "plain-text token file but plaintext is not allowed"));
            }
        };
        serde_json::from_slice(&json)
            .map(Some)
            .map_err(|source| Error::Json { path, source })
    }

    fn clear(&self, provider: Option<&str>) -> Result<()> {
        let names = match provider {
            Some(p) => vec![p.to_owned()],
            None => self.list()?,
        };
        for p in names {
            let path = self.file(&p)?;
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(Error::Io {
                        op: "remove",
                        path,
                        source,
                    });
                }
            }
        }
        Ok(())
    }

    fn list(&self) -> Result<Vec<String>> {
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(Error::Io {
                    op: "list",
                    path: self.dir.clone(),
                    source,
                });
            }
        };
        let mut out: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_suffix(".token")
                    .map(str::to_owned)
            })
            .collect();
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(p: &str) -> OAuthToken {
        OAuthToken {
            access_token: Secret::new("gho_storetest123"),
            token_type: "bearer".into(),
            scopes: vec!["repo".into()],
            expires_at: Some(10),
            refresh_token: None,
            provider: p.into(),
            created_at: 1,
        }
    }

    fn tmp() -> PathBuf {
        let mut n = [0u8; 8];
        getrandom::fill(&mut n).unwrap();
        std::env::temp_dir().join(format!(
            "gws-ts-{}",
            n.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ))
    }

    #[test]
    fn sealed_round_trip_modes_wrong_key_and_tamper() {
        let dir = tmp();
        let key = TokenKey::generate().unwrap();
        let store = FileTokenStore::new(&dir, key.clone());
        store.save(&token("github")).unwrap();
        assert_eq!(store.get("github").unwrap(), Some(token("github")));
        assert_eq!(store.list().unwrap(), vec!["github".to_string()]);
        let file = dir.join("github.token");
        let raw = std::fs::read_to_string(&file).unwrap();
        assert!(!raw.contains("gho_storetest123"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
                0o600
            );
            assert_eq!(
                std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
                0o700
            );
        }
        let other = FileTokenStore::new(&dir, TokenKey::generate().unwrap());
        assert!(other.get("github").is_err());
        // Flip one ciphertext character.
        let mut sealed: serde_json::Value = serde_json::from_str(&raw).unwrap();
        let ct = sealed["ciphertext"].as_str().unwrap().to_owned();
        let flipped = if ct.starts_with('A') {
            format!("B{}", ct.strip_prefix('A').unwrap_or(&ct))
        } else {
            format!("A{}", &ct[1..])
        };
        sealed["ciphertext"] = flipped.into();
        std::fs::write(&file, sealed.to_string()).unwrap();
        assert!(store.get("github").is_err());
        // Renamed to another provider: the associated data no longer matches.
        store.save(&token("github")).unwrap();
        std::fs::copy(&file, dir.join("gitlab.token")).unwrap();
        assert!(store.get("gitlab").is_err());
        store.clear(None).unwrap();
        assert!(store.list().unwrap().is_empty());
        assert!(
            FileTokenStore::without_key(&dir, false)
                .save(&token("github"))
                .is_err()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn key_parsing_and_key_file_mode() {
        let hex = "00".repeat(32);
        assert!(TokenKey::parse(&hex).is_some());
        assert!(TokenKey::parse(&b64::encode(&[7u8; 32])).is_some());
        assert!(TokenKey::parse("short").is_none());
        let dir = tmp();
        let path = dir.join("key");
        let k1 = TokenKey::load_or_create(&path).unwrap();
        let k2 = TokenKey::load_or_create(&path).unwrap();
        assert_eq!(k1.0, k2.0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(TokenKey::load_or_create(&path).is_err());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
