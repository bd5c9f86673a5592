//! OAuth tokens at rest: in memory, or in files sealed with XChaCha20-Poly1305 (authenticated
//! encryption: a wrong key or an altered file is an error, never garbage). The key is either 32
//! raw bytes or derived from a passphrase with salted Argon2id (fresh salt and nonce per write,
//! the Argon2 costs carried in the file's versioned header).

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

/// Argon2id costs for deriving a store key from a passphrase. Every passphrase-sealed file
/// records the costs it was sealed with, so a file keeps opening after the defaults change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    m_cost_kib: u32,
    t_cost: u32,
    p_cost: u32,
}

impl Default for KdfParams {
    /// 19 MiB, 2 passes, 1 lane: the OWASP minimum for Argon2id.
    fn default() -> Self {
        Self {
            m_cost_kib: 19 * 1024,
            t_cost: 2,
            p_cost: 1,
        }
    }
}

impl KdfParams {
    /// Largest memory cost a file header may ask for (1 GiB), so an altered header cannot make
    /// a read allocate without bound.
    pub const MAX_M_COST_KIB: u32 = 1 << 20;
    /// Largest pass count a file header may ask for.
    pub const MAX_T_COST: u32 = 64;
    /// Largest lane count a file header may ask for.
    pub const MAX_P_COST: u32 = 16;

    /// Costs other than the default: memory in KiB, passes, lanes. Small costs make tests
    /// fast; production stores should keep [`KdfParams::default`] or raise it.
    ///
    /// ```
    /// use git_workspace_service::token_store::KdfParams;
    /// assert!(KdfParams::new(64, 1, 1).is_ok());
    /// assert!(KdfParams::new(1, 1, 1).is_err()); // below Argon2's minimum memory
    /// ```
    pub fn new(m_cost_kib: u32, t_cost: u32, p_cost: u32) -> Result<Self> {
        let p = Self {
            m_cost_kib,
            t_cost,
            p_cost,
        };
        p.argon2().map_err(|reason| Error::InvalidInput {
            what: "argon2 parameters",
            reason,
        })?;
        Ok(p)
    }

    /// Memory cost in KiB.
    pub fn m_cost_kib(&self) -> u32 {
        self.m_cost_kib
    }
    /// Number of passes.
    pub fn t_cost(&self) -> u32 {
        self.t_cost
    }
    /// Number of lanes.
    pub fn p_cost(&self) -> u32 {
        self.p_cost
    }

    fn argon2(&self) -> std::result::Result<argon2::Argon2<'static>, String> {
        if self.m_cost_kib > Self::MAX_M_COST_KIB
            || self.t_cost > Self::MAX_T_COST
            || self.p_cost > Self::MAX_P_COST
        {
            return Err(format!(
                "m={} KiB t={} p={} exceed the limits m<={} t<={} p<={}",
                self.m_cost_kib,
                self.t_cost,
                self.p_cost,
                Self::MAX_M_COST_KIB,
                Self::MAX_T_COST,
                Self::MAX_P_COST
            ));
        }
        let params = argon2::Params::new(self.m_cost_kib, self.t_cost, self.p_cost, Some(32))
            .map_err(|e| {
                format!(
                    "m={} t={} p={}: {e}",
                    self.m_cost_kib, self.t_cost, self.p_cost
                )
            })?;
        Ok(argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            params,
        ))
    }

    /// Derives the 256-bit key for `passphrase` and `salt`.
    fn derive(&self, passphrase: &Secret, salt: &[u8]) -> std::result::Result<TokenKey, String> {
        let mut out = [0u8; 32];
        self.argon2()?
            .hash_password_into(passphrase.expose().as_bytes(), salt, &mut out)
            .map_err(|e| format!("argon2id failed: {e}"))?;
        Ok(TokenKey(out))
    }
}

/// How a [`FileTokenStore`] seals its files.
#[derive(Clone)]
enum Sealing {
    Key(TokenKey),
    Passphrase {
        passphrase: Secret,
        params: KdfParams,
    },
}

/// The sealed file format. Version 1: a raw key, no `kdf`. Version 2: the key comes from a
/// passphrase; `kdf` names Argon2id, its costs and the file's own salt.
#[derive(Serialize, Deserialize)]
struct Sealed {
    version: u32,
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kdf: Option<KdfHeader>,
    nonce: String,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
struct KdfHeader {
    alg: String,
    m_cost_kib: u32,
    t_cost: u32,
    p_cost: u32,
    salt: String,
}

const ALG: &str = "xchacha20poly1305";
const KDF_ALG: &str = "argon2id-v19";
const SALT_LEN: usize = 16;

/// Tokens in `<dir>/<provider>.token`: directory 0700, files 0600 written atomically, each
/// sealed with its own random nonce and the provider name as associated data (a file renamed to
/// another provider does not open).
pub struct FileTokenStore {
    dir: PathBuf,
    key: Option<Sealing>,
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
            key: Some(Sealing::Key(key)),
            plaintext: false,
        }
    }

    /// A store in `dir` whose key comes from `passphrase` by Argon2id with the default costs
    /// ([`KdfParams::default`]); every write draws a fresh salt and nonce.
    ///
    /// ```
    /// use git_workspace_service::token_store::FileTokenStore;
    /// assert!(FileTokenStore::with_passphrase("/tmp/tokens", "").is_err());
    /// ```
    pub fn with_passphrase(dir: impl Into<PathBuf>, passphrase: impl Into<String>) -> Result<Self> {
        Self::with_passphrase_params(dir, passphrase, KdfParams::default())
    }

    /// Like [`FileTokenStore::with_passphrase`] with other Argon2id costs for new writes (reads
    /// use the costs in each file's header, within [`KdfParams`]' limits).
    pub fn with_passphrase_params(
        dir: impl Into<PathBuf>,
        passphrase: impl Into<String>,
        params: KdfParams,
    ) -> Result<Self> {
        let passphrase = passphrase.into();
        if passphrase.is_empty() {
            return Err(Error::InvalidInput {
                what: "token store passphrase",
                reason: "must not be empty".into(),
            });
        }
        Ok(Self {
            dir: dir.into(),
            key: Some(Sealing::Passphrase {
                passphrase: Secret::new(passphrase),
                params,
            }),
            plaintext: false,
        })
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
            Some(sealing) => {
                let mut nonce = [0u8; 24];
                getrandom::fill(&mut nonce)
                    .map_err(|e| self.err(&path, &format!("no randomness: {e}")))?;
                let (key, kdf) = match sealing {
                    Sealing::Key(key) => (key.clone(), None),
                    Sealing::Passphrase { passphrase, params } => {
                        let mut salt = [0u8; SALT_LEN];
                        getrandom::fill(&mut salt)
                            .map_err(|e| self.err(&path, &format!("no randomness: {e}")))?;
                        let key = params
                            .derive(passphrase, &salt)
                            .map_err(|e| self.err(&path, &e))?;
                        let header = KdfHeader {
                            alg: KDF_ALG.into(),
                            m_cost_kib: params.m_cost_kib,
                            t_cost: params.t_cost,
                            p_cost: params.p_cost,
                            salt: b64::encode(&salt),
                        };
                        (key, Some(header))
                    }
                };
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
                    version: if kdf.is_some() { 2 } else { 1 },
                    alg: ALG.into(),
                    kdf,
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
            (Some(sealing), Ok(sealed)) => {
                if sealed.alg != ALG {
                    return Err(self.err(&path, "unknown cipher"));
                }
                let key = match (sealed.version, &sealed.kdf, sealing) {
                    (1, None, Sealing::Key(key)) => key.clone(),
                    (2, Some(h), Sealing::Passphrase { passphrase, .. }) => {
                        if h.alg != KDF_ALG {
                            return Err(self.err(&path, "unknown key derivation"));
                        }
                        let params = KdfParams {
                            m_cost_kib: h.m_cost_kib,
                            t_cost: h.t_cost,
                            p_cost: h.p_cost,
                        };
                        let salt = b64::decode(&h.salt)
                            .filter(|s| s.len() >= 8)
                            .ok_or_else(|| self.err(&path, "bad salt"))?;
                        params
                            .derive(passphrase, &salt)
                            .map_err(|e| self.err(&path, &e))?
                    }
                    (1, None, Sealing::Passphrase { .. }) => {
                        return Err(self.err(
                            &path,
                            "file is sealed with a raw key but a passphrase is configured",
                        ));
                    }
                    (2, Some(_), Sealing::Key(_)) => {
                        return Err(self.err(
                            &path,
                            "file is sealed with a passphrase but a raw key is configured",
                        ));
                    }
                    _ => return Err(self.err(&path, "unknown format version")),
                };
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
                    .map_err(|_| Error::TokenStoreUnseal { path: path.clone() })?
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

    fn fast() -> KdfParams {
        KdfParams::new(64, 1, 1).unwrap()
    }

    #[test]
    fn passphrase_round_trip_wrong_passphrase_tamper_and_fresh_salt() {
        let dir = tmp();
        let store = FileTokenStore::with_passphrase_params(&dir, "correct horse", fast()).unwrap();
        store.save(&token("github")).unwrap();
        assert_eq!(store.get("github").unwrap(), Some(token("github")));
        let file = dir.join("github.token");
        let first = std::fs::read_to_string(&file).unwrap();
        assert!(!first.contains("gho_storetest123") && !first.contains("correct horse"));
        let header: serde_json::Value = serde_json::from_str(&first).unwrap();
        assert_eq!(header["version"], 2);
        assert_eq!(header["kdf"]["alg"], KDF_ALG);
        assert_eq!(header["kdf"]["m_cost_kib"], 64);
        assert_eq!(header["kdf"]["t_cost"], 1);

        // A second write of the same token: fresh salt, fresh nonce, other ciphertext.
        store.save(&token("github")).unwrap();
        let second: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert_ne!(header["kdf"]["salt"], second["kdf"]["salt"]);
        assert_ne!(header["nonce"], second["nonce"]);
        assert_ne!(header["ciphertext"], second["ciphertext"]);
        // Reads use the costs in the header, not the reader's defaults.
        let default_costs = FileTokenStore::with_passphrase(&dir, "correct horse").unwrap();
        assert_eq!(default_costs.get("github").unwrap(), Some(token("github")));

        // Wrong passphrase: a typed error, and the file is left exactly as it was.
        let before = std::fs::read(&file).unwrap();
        let wrong = FileTokenStore::with_passphrase_params(&dir, "wrong horse", fast()).unwrap();
        match wrong.get("github") {
            Err(Error::TokenStoreUnseal { path }) => assert_eq!(path, file),
            other => panic!("expected TokenStoreUnseal, got {other:?}"),
        }
        assert_eq!(std::fs::read(&file).unwrap(), before);
        let msg = wrong.get("github").unwrap_err().to_string();
        assert!(!msg.contains("horse"), "{msg}");

        // A raw-key store refuses a passphrase file (and the reverse) with a clear reason.
        let raw = FileTokenStore::new(&dir, TokenKey::generate().unwrap());
        assert!(
            matches!(raw.get("github"), Err(Error::TokenStore { ref reason, .. }) if reason.contains("passphrase"))
        );

        // Altered ciphertext, salt or cost: a typed error.
        let alter = |field: &[&str], value: serde_json::Value| {
            let mut v: serde_json::Value = serde_json::from_slice(&before).unwrap();
            let mut slot = &mut v;
            for f in field {
                slot = &mut slot[*f];
            }
            *slot = value;
            std::fs::write(&file, v.to_string()).unwrap();
            store.get("github")
        };
        // `before` is the file as the wrong-passphrase read found it; alter one field at a time.
        let header_before: serde_json::Value = serde_json::from_slice(&before).unwrap();
        let ct_before = header_before["ciphertext"].as_str().unwrap();
        let flipped_before = format!(
            "{}{}",
            if ct_before.starts_with('A') { 'B' } else { 'A' },
            &ct_before[1..]
        );
        assert!(matches!(
            alter(&["ciphertext"], flipped_before.into()),
            Err(Error::TokenStoreUnseal { .. })
        ));
        assert!(matches!(
            alter(&["kdf", "salt"], b64::encode(&[9u8; 16]).into()),
            Err(Error::TokenStoreUnseal { .. })
        ));
        assert!(matches!(
            alter(&["kdf", "t_cost"], 2.into()),
            Err(Error::TokenStoreUnseal { .. })
        ));
        // An altered header cannot make a read allocate without bound.
        assert!(matches!(
            alter(&["kdf", "m_cost_kib"], u32::MAX.into()),
            Err(Error::TokenStore { .. })
        ));
        std::fs::write(&file, &before).unwrap();
        assert_eq!(store.get("github").unwrap(), Some(token("github")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn passphrase_and_costs_are_validated() {
        assert!(FileTokenStore::with_passphrase(tmp(), "").is_err());
        assert!(KdfParams::new(1, 1, 1).is_err());
        assert!(KdfParams::new(64, 0, 1).is_err());
        assert!(KdfParams::new(KdfParams::MAX_M_COST_KIB + 1, 1, 1).is_err());
        let d = KdfParams::default();
        assert_eq!((d.m_cost_kib(), d.t_cost(), d.p_cost()), (19 * 1024, 2, 1));
        let dbg = format!(
            "{:?}",
            FileTokenStore::with_passphrase(tmp(), "s3cret-pass").unwrap()
        );
        assert!(!dbg.contains("s3cret-pass"));
    }
}
