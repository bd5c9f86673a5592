//! GitHub App JWTs signed here: RS256 (RSASSA-PKCS1-v1_5 over SHA-256) with the App's private
//! key, `iat` 60 s in the past (GitHub's advice for clock drift), `exp` 9 minutes ahead (GitHub
//! refuses more than 10), `iss` the App id.

use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::sha2::Sha256;
use rsa::signature::{SignatureEncoding, Signer};

use crate::redact::{Redactor, Secret};
use crate::{Error, Result, b64};

/// Seconds `iat` is set back, so a forge clock slightly behind ours still accepts the JWT.
pub const JWT_BACKDATE_SECS: u64 = 60;
/// Seconds from now to `exp` (GitHub allows at most 10 minutes).
pub const JWT_LIFETIME_SECS: u64 = 9 * 60;

/// A GitHub App's id and RSA private key. `Debug` never shows the key, and no error made here
/// quotes the PEM.
#[derive(Clone)]
pub struct GitHubAppKey {
    app_id: String,
    key: rsa::PrivateKey,
}

impl std::fmt::Debug for GitHubAppKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubAppKey")
            .field("app_id", &self.app_id)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl GitHubAppKey {
    /// Parses the App's private key from PEM: PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1
    /// (`BEGIN RSA PRIVATE KEY`, what GitHub hands out). `redactor` learns the PEM and every
    /// line of its body, so a key pasted into some later message is still hidden.
    pub fn from_pem(app_id: impl Into<String>, pem: &str, redactor: &Redactor) -> Result<Self> {
        redactor.add_pem(pem);
        let app_id = app_id.into();
        // The numeric App id, or the App's client id (`Iv1.8a61…`, `Iv23li…`), both accepted
        // by GitHub as `iss`.
        if app_id.is_empty()
            || app_id.len() > 64
            || !app_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        {
            return Err(Error::InvalidInput {
                what: "github app id",
                reason: format!("{app_id:?} must be the numeric app id or the client id"),
            });
        }
        let pem = pem.trim();
        let key = rsa::PrivateKey::from_pkcs8_pem(pem)
            .or_else(|_| rsa::PrivateKey::from_pkcs1_pem(pem))
            // The parser's own message could quote the input; only say which kind failed.
            .map_err(|_| Error::InvalidInput {
                what: "github app private key",
                reason: format!(
                    "app {app_id}: not an RSA private key in PKCS#8 or PKCS#1 PEM (key not shown)"
                ),
            })?;
        Ok(Self { app_id, key })
    }

    /// The App id (`iss`).
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// A JWT for `now_secs` (seconds since the epoch): `iat` = now − 60, `exp` = now + 540.
    pub fn sign_jwt(&self, now_secs: u64) -> Secret {
        let header = url64(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = serde_json::json!({
            "iat": now_secs.saturating_sub(JWT_BACKDATE_SECS),
            "exp": now_secs + JWT_LIFETIME_SECS,
            "iss": self.app_id,
        });
        let input = format!("{header}.{}", url64(claims.to_string().as_bytes()));
        let signer = SigningKey::<Sha256>::new(self.key.clone());
        let sig = signer.sign(input.as_bytes()).to_bytes();
        Secret::new(format!("{input}.{}", url64(&sig)))
    }
}

/// Unpadded URL-safe base64 (RFC 4648 §5), as JWTs use.
fn url64(bytes: &[u8]) -> String {
    b64::encode(bytes)
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_safe_base64_has_no_padding_or_plus_slash() {
        assert_eq!(url64(&[0xfb, 0xff]), "-_8");
        assert_eq!(url64(b"{\"a\":1}"), "eyJhIjoxfQ");
    }

    #[test]
    fn bad_pem_is_refused_without_quoting_it() {
        let r = Redactor::new();
        let pem =
            "-----BEGIN PRIVATE KEY-----\nTm90QUtleUF0QWxsSnVzdFRleHQ=\n-----END PRIVATE KEY-----";
        let e = GitHubAppKey::from_pem("123", pem, &r)
            .unwrap_err()
            .to_string();
        assert!(!e.contains("Tm90QUtleUF0QWxsSnVzdFRleHQ"), "{e}");
        assert_eq!(
            r.redact("body Tm90QUtleUF0QWxsSnVzdFRleHQ= end"),
            "body [redacted] end"
        );
        assert!(GitHubAppKey::from_pem("12 3", pem, &r).is_err());
        assert!(GitHubAppKey::from_pem("", pem, &r).is_err());
    }

    #[test]
    fn claims_are_iat_minus_60_exp_plus_540_iss_app_id() {
        let pem = include_str!("../tests/integration/data/throwaway-test-only-github-app-key.pem");
        assert!(GitHubAppKey::from_pem("Iv1.8a61f9b3a7aba766", pem, &Redactor::new()).is_ok());
        let key = GitHubAppKey::from_pem("4242", pem, &Redactor::new()).unwrap();
        let jwt = key.sign_jwt(1_000_000);
        let claims = jwt.expose().split('.').nth(1).unwrap();
        let mut std64: String = claims
            .chars()
            .map(|c| match c {
                '-' => '+',
                '_' => '/',
                c => c,
            })
            .collect();
        while !std64.len().is_multiple_of(4) {
            std64.push('=');
        }
        let v: serde_json::Value = serde_json::from_slice(&b64::decode(&std64).unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"iat": 999_940, "exp": 1_000_540, "iss": "4242"})
        );
        assert_eq!(jwt.expose().split('.').count(), 3);
    }
}
