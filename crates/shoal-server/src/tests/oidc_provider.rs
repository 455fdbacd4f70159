//! Pins single sign-on against a real OpenID provider (the certified `oidc-provider` in
//! tests/oidc, started with node): a browser's walk through its login and consent forms ends in
//! an identity with the provider's username, email and groups (from the ID token, or from
//! userinfo when the ID token lacks them) and in their grants; a state is good once, for ten
//! minutes; errors never show the code. Every step has a timeout, so a missing node or a stuck
//! provider fails the test instead of hanging it.

use crate::oidc::{Error, Grant, GroupRole, Identity, Oidc, OidcOptions, SIGN_IN_TTL};
use reqwest::Url;
use shoal_types::access::Role;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::time::timeout;

/// Any one step: starting the provider, one HTTP exchange, one `finish`.
pub(super) const STEP: Duration = Duration::from_secs(30);
const CLIENT_ID: &str = "shoal-test";
const CLIENT_SECRET: &str = "shoal-test-secret-7f3a";
const REDIRECT: &str = "http://127.0.0.1:9/api/web/v1/oidc/callback";

pub(super) struct Provider {
    pub(super) issuer: String,
    _child: tokio::process::Child,
}

/// Starts tests/oidc/provider.mjs on a free port; `claims_in_id_token` puts the scopes' claims
/// in the ID token too (else they come from userinfo only).
pub(super) async fn start_provider(claims_in_id_token: bool) -> Provider {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/oidc");
    assert!(
        dir.join("node_modules/oidc-provider").is_dir(),
        "{}/node_modules is missing: run scripts/install-deps.sh (npm ci in tests/oidc)",
        dir.display()
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut child = tokio::process::Command::new("node")
        .arg("provider.mjs")
        .arg(port.to_string())
        .current_dir(&dir)
        .env("OIDC_CLIENT_ID", CLIENT_ID)
        .env("OIDC_CLIENT_SECRET", CLIENT_SECRET)
        .env("OIDC_REDIRECT_URI", REDIRECT)
        .env(
            "OIDC_CLAIMS_IN_ID_TOKEN",
            if claims_in_id_token { "1" } else { "0" },
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts (install it with scripts/install-deps.sh)");
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("oidc-provider: {line}");
        }
    });
    let mut lines = BufReader::new(stdout).lines();
    let ready = timeout(STEP, async {
        while let Some(line) = lines.next_line().await.expect("read provider stdout") {
            if line.contains("listening") {
                return true;
            }
        }
        false
    })
    .await
    .expect("the provider prints \"listening\" within the step timeout");
    assert!(
        ready,
        "the provider exited before listening (see its stderr above)"
    );
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Provider {
        issuer: format!("http://127.0.0.1:{port}"),
        _child: child,
    }
}

pub(super) fn options(issuer: &str) -> OidcOptions {
    let parse = |s: &str| GroupRole::parse(s).expect("group role");
    OidcOptions {
        issuer: issuer.into(),
        client_id: CLIENT_ID.into(),
        client_secret: Some(CLIENT_SECRET.into()),
        redirect_url: REDIRECT.into(),
        scopes: vec!["profile".into(), "email".into(), "groups".into()],
        group_roles: vec![
            parse("ops=operator@default:env!=prod"),
            parse("dev=developer@default"),
            parse("dev=viewer@web"),
            parse("admins=admin"),
        ],
        ..OidcOptions::default()
    }
}

async fn discover(p: &Provider) -> Oidc {
    timeout(STEP, Oidc::discover(options(&p.issuer)))
        .await
        .expect("discovery within the step timeout")
        .expect("discovery")
}

/// Walks the provider's pages from `url` as a browser would (cookies kept, redirects followed
/// by hand, its login form filled with `login`, its consent form confirmed) until it redirects
/// to `REDIRECT`; that redirect's `code` and `state`.
pub(super) async fn browse(url: &str, login: &str) -> (String, String) {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(STEP)
        .build()
        .expect("http client");
    let mut at = Url::parse(url).expect("authorize URL");
    let mut request = http.get(at.clone());
    for _ in 0..16 {
        let resp = request.send().await.expect("the provider answers");
        let status = resp.status();
        if status.is_redirection() {
            let location = resp
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .expect("a redirect has a Location");
            at = at.join(location).expect("Location is a URL");
            if at.as_str().starts_with(REDIRECT) {
                let q: Vec<(String, String)> = at.query_pairs().into_owned().collect();
                let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                assert_eq!(get("error"), None, "the provider refused: {q:?}");
                return (
                    get("code").expect("code in the redirect"),
                    get("state").expect("state in the redirect"),
                );
            }
            request = http.get(at.clone());
            continue;
        }
        let body = resp.text().await.expect("page body");
        assert!(status.is_success(), "{status} at {at}: {body}");
        let action = form_action(&body).unwrap_or_else(|| panic!("no form at {at}: {body}"));
        let fields: Vec<(&str, &str)> = if body.contains("name=\"login\"") {
            vec![("prompt", "login"), ("login", login), ("password", "any")]
        } else if body.contains("value=\"consent\"") {
            vec![("prompt", "consent")]
        } else {
            panic!("neither the login nor the consent form at {at}: {body}");
        };
        at = at.join(&action).expect("form action is a URL");
        request = http.post(at.clone()).form(&fields);
    }
    panic!("no redirect to {REDIRECT} after 16 pages; last at {at}");
}

/// The `action` of the page's first form, unescaped.
fn form_action(html: &str) -> Option<String> {
    let start = html.find("<form")?;
    let rest = &html[start..];
    let a = rest.find("action=\"")? + "action=\"".len();
    let end = rest[a..].find('"')?;
    Some(
        rest[a..a + end]
            .replace("&#x2F;", "/")
            .replace("&#47;", "/")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&amp;", "&"),
    )
}

async fn sign_in(oidc: &Oidc, login: &str) -> Identity {
    let begun = oidc.begin();
    let (code, state) = timeout(STEP, browse(&begun.url, login))
        .await
        .expect("the walk through the provider within the step timeout");
    assert_eq!(
        state, begun.state,
        "the provider returns the state it was given"
    );
    timeout(STEP, oidc.finish(&state, &code))
        .await
        .expect("finish within the step timeout")
        .expect("finish")
}

async fn check_sign_ins(claims_in_id_token: bool) {
    let p = start_provider(claims_in_id_token).await;
    let oidc = discover(&p).await;
    assert_eq!(oidc.label(), "SSO");

    let begun = oidc.begin();
    let url = Url::parse(&begun.url).expect("authorize URL");
    assert!(begun.url.starts_with(&p.issuer), "{}", begun.url);
    let q: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let has = |k: &str, v: &str| q.iter().any(|(n, x)| n == k && (v.is_empty() || x == v));
    assert!(has("code_challenge_method", "S256"), "{q:?}");
    assert!(has("code_challenge", "") && has("nonce", "") && has("state", &begun.state));
    assert!(has("scope", "openid profile email groups"), "{q:?}");

    let alice = sign_in(&oidc, "alice").await;
    assert_eq!(
        alice,
        Identity {
            subject: "alice".into(),
            username: "alice".into(),
            display_name: "Alice".into(),
            email: "alice@example.test".into(),
            groups: vec!["ops".into()],
        }
    );
    assert_eq!(
        oidc.grants_for(&alice.groups),
        (
            false,
            vec![("default".into(), Role::Operator, "env!=prod".into())]
        )
    );

    let bob = sign_in(&oidc, "bob").await;
    assert_eq!(bob.username, "bob");
    assert_eq!(bob.email, "bob@example.test");
    assert_eq!(bob.groups, vec!["dev".to_string(), "admins".to_string()]);
    assert_eq!(
        oidc.grants_for(&bob.groups),
        (
            true,
            vec![
                ("default".into(), Role::Developer, String::new()),
                ("web".into(), Role::Viewer, String::new()),
            ]
        )
    );
    // An unknown login signs in with no groups and is granted nothing.
    let carol = sign_in(&oidc, "carol").await;
    assert_eq!((carol.username.as_str(), carol.groups.len()), ("carol", 0));
    assert_eq!(oidc.grants_for(&carol.groups), (false, vec![]));
}

#[tokio::test]
async fn signs_in_with_claims_from_userinfo() {
    check_sign_ins(false).await;
}

#[tokio::test]
async fn signs_in_with_claims_in_the_id_token() {
    check_sign_ins(true).await;
}

#[tokio::test]
async fn a_state_is_good_once_and_for_a_limited_time() {
    let p = start_provider(false).await;
    let oidc = discover(&p).await;
    let finish = |state: String, code: String| {
        let oidc = &oidc;
        async move {
            timeout(STEP, oidc.finish(&state, &code))
                .await
                .expect("finish within the step timeout")
        }
    };

    // A state that was never issued.
    let wrong = finish("not-a-state".into(), "whatever".into()).await;
    assert!(matches!(wrong, Err(Error::UnknownState)), "{wrong:?}");

    // A real state and code, used twice: the second time the state is gone.
    let begun = oidc.begin();
    let (code, state) = timeout(STEP, browse(&begun.url, "alice"))
        .await
        .expect("walk");
    assert!(finish(state.clone(), code.clone()).await.is_ok());
    let again = finish(state, code).await;
    assert!(matches!(again, Err(Error::UnknownState)), "{again:?}");

    // A good state with a code the provider never issued: refused, and the error does not
    // show the code.
    let begun = oidc.begin();
    let bad_code = "forged-code-0123456789";
    let forged = finish(begun.state, bad_code.into()).await;
    match forged {
        Err(e @ Error::Exchange(_)) => {
            assert!(!e.to_string().contains(bad_code), "{e}")
        }
        other => panic!("want an exchange error, got {other:?}"),
    }

    // Expired: a sign-in finished (as if) a second after its TTL. The provider's code is fine;
    // the state is not.
    let begun = oidc.begin();
    let (code, state) = timeout(STEP, browse(&begun.url, "alice"))
        .await
        .expect("walk");
    let later = crate::clock::now_ms() + SIGN_IN_TTL.as_millis() as i64 + 1_000;
    let late = timeout(STEP, oidc.finish_at(&state, &code, later))
        .await
        .expect("finish within the step timeout");
    assert!(matches!(late, Err(Error::Expired)), "{late:?}");
    assert!(!format!("{late:?}").contains(&code));
}

/// The API layer keeps an `Oidc` in its shared state and awaits it in handlers on a
/// multi-threaded runtime: it and its futures must be `Send` (and it `Sync`).
const _: fn(&'static Oidc) = shareable_across_tasks;
fn shareable_across_tasks(oidc: &'static Oidc) {
    fn send<T: Send>(_: T) {}
    fn sync<T: Send + Sync>() {}
    sync::<Oidc>();
    send(oidc.finish("state", "code"));
    send(Oidc::discover(options("https://id.example")));
}

#[test]
fn grants_only_from_listed_groups() {
    let o = options("http://127.0.0.1:1");
    assert!(o.validate().is_ok());
    assert!(matches!(o.group_roles[3].grant, Grant::Admin));
    assert_eq!(o.grants_for(&["admins".into()]), (true, vec![]));
}
