//! GitHub App JWTs signed by this crate from an App id and a private key, checked by the fake
//! GitHub's RS256 verifier (signature with the public key, header, iss, iat, exp), then
//! exchanged for an installation token. The PEMs under `data/` are a throwaway RSA key made
//! for these tests only (`openssl genpkey`), never used anywhere else.

use std::sync::Arc;

use git_workspace_service::app_jwt::GitHubAppKey;
use git_workspace_service::clock::SystemClock;
use git_workspace_service::credentials::{
    CredentialKind, CredentialRequest, CredentialService, GrantedTo,
};
use git_workspace_service::device_flow::Permissions;
use git_workspace_service::events::EventBus;
use git_workspace_service::forge::GitHubConfig;
use git_workspace_service::token_store::MemoryTokenStore;
use git_workspace_service::{Error, Redactor, RepoUrl};
use test_support::github::{FakeGitHub, verify_app_jwt_with};

const PKCS8: &str = include_str!("data/throwaway-test-only-github-app-key.pem");
const PKCS1: &str = include_str!("data/throwaway-test-only-github-app-key.pkcs1.pem");
const PUBLIC: &str = include_str!("data/throwaway-test-only-github-app-key.pub.pem");

#[test]
fn signed_jwt_verifies_with_the_public_key_and_carries_the_claims() {
    let r = Redactor::new();
    let key = GitHubAppKey::from_pem("12345", PKCS8, &r).unwrap();
    let now = 1_800_000_000;
    let jwt = key.sign_jwt(now);
    let jwt = jwt.expose();
    assert_eq!(
        jwt.split('.').next().unwrap(),
        "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9",
        "header {{\"alg\":\"RS256\",\"typ\":\"JWT\"}}"
    );
    assert_eq!(verify_app_jwt_with("12345", PUBLIC, jwt, now), Ok(()));
    // PKCS#1 (GitHub's download format) gives the same key: PKCS#1 v1.5 signatures are
    // deterministic.
    let pkcs1 = GitHubAppKey::from_pem("12345", PKCS1, &r).unwrap();
    assert_eq!(pkcs1.sign_jwt(now).expose(), jwt);
    // The claims, by the time window they open: exp = now + 540 (≤ 10 min ahead of the
    // forge's clock from now − 60 on), iat = now − 60 (not in the future by more than 60 s).
    let table: &[(&str, u64, bool)] = &[
        ("at issue", now, true),
        ("earliest: exp exactly 10 min ahead", now - 60, true),
        ("exp more than 10 min ahead", now - 61, false),
        ("just before exp", now + 539, true),
        ("after exp", now + 540, false),
    ];
    for (name, at, ok) in table {
        assert_eq!(
            verify_app_jwt_with("12345", PUBLIC, jwt, *at).is_ok(),
            *ok,
            "{name}: {:?}",
            verify_app_jwt_with("12345", PUBLIC, jwt, *at)
        );
    }
    let other = verify_app_jwt_with("999", PUBLIC, jwt, now).unwrap_err();
    assert!(other.contains("iss"), "{other}");
    // Any altered byte breaks the signature.
    let mut parts: Vec<String> = jwt.split('.').map(str::to_owned).collect();
    let first = if parts[1].starts_with('e') { "f" } else { "e" };
    parts[1].replace_range(0..1, first);
    let bad = verify_app_jwt_with("12345", PUBLIC, &parts.join("."), now).unwrap_err();
    assert!(bad.contains("signature"), "{bad}");
}

#[test]
fn the_private_key_is_redacted_and_never_quoted() {
    let r = Redactor::new();
    let key = GitHubAppKey::from_pem("12345", PKCS8, &r).unwrap();
    assert!(!format!("{key:?}").contains("MII"), "{key:?}");
    let line = PKCS8.lines().nth(3).unwrap();
    assert_eq!(r.redact(&format!("x {line} y")), "x [redacted] y");
    assert_eq!(r.redact(PKCS8.trim()), "[redacted]");
    // A broken key: refused, and the error quotes none of it.
    let broken = PKCS8.replacen(line, "AAAA", 1);
    let e = GitHubAppKey::from_pem("12345", &broken, &Redactor::new())
        .unwrap_err()
        .to_string();
    for l in broken.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!e.contains(l), "{e}");
    }
}

fn service(gh: &FakeGitHub, r: &Redactor, bus: EventBus, app_id: &str) -> CredentialService {
    let key = GitHubAppKey::from_pem(app_id, PKCS8, r).unwrap();
    CredentialService::new(
        GitHubConfig::with_api_url(&gh.base_url()),
        Box::new(MemoryTokenStore::default()),
        Arc::new(SystemClock),
        r.clone(),
        bus,
    )
    .with_app_key(42, key)
}

fn request() -> CredentialRequest {
    CredentialRequest {
        repo: RepoUrl::parse("https://github.com/o/r.git", "github.com").unwrap(),
        user: None,
        permissions: Permissions::READ,
        ttl: None,
        granted_to: GrantedTo::default(),
        optional: false,
    }
}

#[test]
fn installation_tokens_from_an_app_key() {
    let gh = FakeGitHub::start().unwrap();
    gh.set_app_key("12345", PUBLIC);
    let r = Redactor::new();
    let bus = EventBus::new(r.clone());
    let events = bus.channel();
    let svc = service(&gh, &r, bus, "12345");
    let g = svc.request(request()).unwrap().unwrap();
    assert_eq!(g.kind, CredentialKind::GithubApp);
    assert!(svc.token(&g.id).unwrap().expose().starts_with("ghs_"));
    let req = &gh.requests()[0];
    assert_eq!(req.path, "/app/installations/42/access_tokens");
    assert_eq!(
        req.auth.as_deref(),
        Some("app"),
        "the fake verified the JWT"
    );
    assert_eq!(
        req.json()["permissions"],
        serde_json::json!({"contents": "read", "metadata": "read"})
    );
    for e in events.try_iter() {
        let text = e.to_json().to_string();
        assert!(!text.contains(PKCS8.lines().nth(1).unwrap()), "{text}");
    }

    // A JWT whose iss is another App is refused by the forge: no credential.
    let gh2 = FakeGitHub::start().unwrap();
    gh2.set_app_key("12345", PUBLIC);
    let r2 = Redactor::new();
    let svc2 = service(&gh2, &r2, EventBus::new(r2.clone()), "777");
    match svc2.request(request()) {
        Err(Error::NoCredentials(_)) => {}
        other => panic!("expected no credentials, got {other:?}"),
    }
    let req = &gh2.requests()[0];
    assert_eq!((req.status, req.auth.as_deref()), (401, None));
}
