//! Single sign-on through an OpenID Connect provider: the authorization code flow with PKCE and
//! a nonce (`begin` gives the browser the provider's URL; `finish` takes the `code` and `state`
//! the provider sent back, exchanges the code, validates the ID token and reads the identity
//! and groups), and what the provider's groups grant in Shoal (`grants_for`).
//!
//! It knows no HTTP framework, users, sessions or cookies: the API layer carries `state` and
//! `code` to `finish` and turns an `Identity` into a user and a session. Codes, tokens and
//! secrets never appear in its errors or logs.

mod config;
mod pending;

pub use config::{Grant, GroupRole, OidcOptions};

use crate::clock;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType,
    CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AccessTokenHash, AdditionalClaims, AuthorizationCode, Client, ClientId, ClientSecret,
    CsrfToken, EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields,
    IssuerUrl, Nonce, OAuth2TokenResponse as _, PkceCodeChallenge, RedirectUrl, RequestTokenError,
    Scope, StandardErrorResponse, StandardTokenResponse, TokenResponse as _, UserInfoClaims,
};
use pending::{Pending, Pendings, Refused};
use serde::{Deserialize, Serialize};
use shoal_types::access::Role;
use std::collections::HashMap;
use std::time::Duration;

/// Sign-ins under way at once; the oldest is dropped beyond this.
const PENDING_CAP: usize = 10_000;
/// How long a sign-in may take between `begin` and `finish`.
pub const SIGN_IN_TTL: Duration = Duration::from_secs(10 * 60);
/// Every request to the provider (discovery, keys, token, userinfo) ends within this.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(15);

/// The provider, discovered once at start, and the sign-ins under way.
pub struct Oidc {
    opts: OidcOptions,
    client: ProviderClient,
    http: openidconnect::reqwest::Client,
    pending: parking_lot::Mutex<Pendings>,
}

/// A sign-in begun: send the browser to `url`; the provider comes back with this `state`.
#[derive(Debug, Clone)]
pub struct Begun {
    pub url: String,
    pub state: String,
}

/// Who signed in, as the provider says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The provider's stable id of the user (`sub`).
    pub subject: String,
    /// The username claim, else the email, else the subject.
    pub username: String,
    /// `name`, else the username.
    pub display_name: String,
    /// Empty when the provider gives none.
    pub email: String,
    pub groups: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("OpenID Connect is misconfigured: {0}")]
    Config(String),
    #[error("cannot discover the OpenID provider {issuer:?}: {reason}; check --oidc-issuer")]
    Discovery { issuer: String, reason: String },
    #[error("unknown or already used sign-in; start the sign-in again")]
    UnknownState,
    #[error("the sign-in took longer than {} minutes; start the sign-in again", SIGN_IN_TTL.as_secs() / 60)]
    Expired,
    #[error("the OpenID provider refused the sign-in: {0}")]
    Exchange(String),
    #[error("the OpenID provider's ID token is not valid: {0}")]
    IdToken(String),
    #[error("cannot read the user's claims from the OpenID provider: {0}")]
    UserInfo(String),
}

impl Oidc {
    /// Fetches the provider's discovery document and keys. Call once at start.
    pub async fn discover(opts: OidcOptions) -> Result<Oidc, Error> {
        let issuer = IssuerUrl::new(opts.issuer.clone())
            .map_err(|e| Error::Config(format!("--oidc-issuer {:?}: {e}", opts.issuer)))?;
        let redirect = RedirectUrl::new(opts.redirect_url.clone()).map_err(|e| {
            Error::Config(format!("--oidc-redirect-url {:?}: {e}", opts.redirect_url))
        })?;
        // No redirects: the provider's endpoints answer directly (and a redirect must not
        // carry a request elsewhere).
        let http = openidconnect::reqwest::ClientBuilder::new()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(PROVIDER_TIMEOUT)
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &http)
            .await
            .map_err(|e| Error::Discovery {
                issuer: opts.issuer.clone(),
                reason: chain(&e),
            })?;
        let client = ProviderClient::from_provider_metadata(
            metadata,
            ClientId::new(opts.client_id.clone()),
            opts.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect);
        if client.token_uri().is_none() {
            return Err(Error::Discovery {
                issuer: opts.issuer.clone(),
                reason: "its discovery document names no token endpoint".into(),
            });
        }
        let ttl_ms = i64::try_from(SIGN_IN_TTL.as_millis()).unwrap_or(i64::MAX);
        Ok(Oidc {
            opts,
            client,
            http,
            pending: parking_lot::Mutex::new(Pendings::new(PENDING_CAP, ttl_ms)),
        })
    }

    /// Starts a sign-in: the provider's authorization URL (with a fresh state, nonce and PKCE
    /// challenge) and its state, which `finish` takes once within `SIGN_IN_TTL`.
    pub fn begin(&self) -> Begun {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = self.client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for s in &self.opts.scopes {
            request = request.add_scope(Scope::new(s.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        let now = clock::now_ms();
        self.pending.lock().insert(
            state.secret().clone(),
            Pending {
                verifier,
                nonce,
                created_ms: now,
            },
            now,
        );
        Begun {
            url: url.to_string(),
            state: state.secret().clone(),
        }
    }

    /// Ends a sign-in: takes `state`'s entry (once), exchanges `code` with its PKCE verifier,
    /// validates the ID token (signature, issuer, audience, expiry, nonce, access token hash)
    /// and reads the identity, from userinfo for what the ID token lacks.
    pub async fn finish(&self, state: &str, code: &str) -> Result<Identity, Error> {
        self.finish_at(state, code, clock::now_ms()).await
    }

    /// `finish` at `now_ms` (tests move time forward).
    pub(crate) async fn finish_at(
        &self,
        state: &str,
        code: &str,
        now_ms: i64,
    ) -> Result<Identity, Error> {
        let pending = self
            .pending
            .lock()
            .take(state, now_ms)
            .map_err(|r| match r {
                Refused::Unknown => Error::UnknownState,
                Refused::Expired => Error::Expired,
            })?;
        let tokens = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| Error::Config(e.to_string()))?
            .set_pkce_verifier(pending.verifier)
            .request_async(&self.http)
            .await
            .map_err(|e| Error::Exchange(token_error(&e)))?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| Error::IdToken("the token response has no ID token".into()))?;
        let verifier = self.client.id_token_verifier();
        let claims = id_token
            .claims(&verifier, &pending.nonce)
            .map_err(|e| Error::IdToken(chain(&e)))?;
        if let Some(expected) = claims.access_token_hash() {
            let alg = id_token
                .signing_alg()
                .map_err(|e| Error::IdToken(chain(&e)))?;
            let key = id_token
                .signing_key(&verifier)
                .map_err(|e| Error::IdToken(chain(&e)))?;
            let actual = AccessTokenHash::from_token(tokens.access_token(), alg, key)
                .map_err(|e| Error::IdToken(chain(&e)))?;
            if actual != *expected {
                return Err(Error::IdToken(
                    "its access token hash does not match the access token".into(),
                ));
            }
        }

        let subject = claims.subject().as_str().to_owned();
        let mut found = Found::default();
        found.read(&self.opts, claims.additional_claims(), |name| {
            standard(
                claims.preferred_username(),
                claims.email(),
                claims.name(),
                name,
            )
        });
        if !found.complete()
            && let Some(info) = self.user_info(&tokens, claims.subject()).await?
        {
            found.read(&self.opts, info.additional_claims(), |name| {
                standard(info.preferred_username(), info.email(), info.name(), name)
            });
        }
        let username = found
            .username
            .or_else(|| found.email.clone())
            .unwrap_or_else(|| subject.clone());
        Ok(Identity {
            display_name: found.name.unwrap_or_else(|| username.clone()),
            username,
            email: found.email.unwrap_or_default(),
            groups: found.groups.unwrap_or_default(),
            subject,
        })
    }

    /// The userinfo claims, `None` when the provider has no userinfo endpoint.
    async fn user_info(
        &self,
        tokens: &Tokens,
        subject: &openidconnect::SubjectIdentifier,
    ) -> Result<Option<UserInfoClaims<Extra, CoreGenderClaim>>, Error> {
        let Ok(request) = self
            .client
            .user_info(tokens.access_token().clone(), Some(subject.clone()))
        else {
            return Ok(None);
        };
        request
            .request_async(&self.http)
            .await
            .map(Some)
            .map_err(|e| Error::UserInfo(user_info_error(&e)))
    }

    /// The sign-in button's text.
    pub fn label(&self) -> &str {
        &self.opts.label
    }

    /// What `groups` grant: the platform admin, and per scope name the highest role with its
    /// host selector.
    pub fn grants_for(&self, groups: &[String]) -> (bool, Vec<(String, Role, String)>) {
        self.opts.grants_for(groups)
    }
}

/// The claims Shoal reads, from the ID token and then userinfo; the first found wins.
#[derive(Default)]
struct Found {
    username: Option<String>,
    email: Option<String>,
    name: Option<String>,
    groups: Option<Vec<String>>,
}

impl Found {
    fn complete(&self) -> bool {
        self.username.is_some()
            && self.email.is_some()
            && self.name.is_some()
            && self.groups.is_some()
    }

    /// Reads from `extra` (every claim by name) or, for the standard claims, `standard`.
    fn read(
        &mut self,
        opts: &OidcOptions,
        extra: &Extra,
        standard: impl Fn(&str) -> Option<String>,
    ) {
        let text = |name: &str| {
            extra
                .claims
                .get(name)
                .and_then(|v| v.as_str().map(str::to_owned))
                .or_else(|| standard(name))
                .filter(|s| !s.is_empty())
        };
        if self.username.is_none() {
            self.username = text(&opts.username_claim);
        }
        if self.email.is_none() {
            self.email = text("email");
        }
        if self.name.is_none() {
            self.name = text("name");
        }
        if self.groups.is_none() {
            self.groups = extra.claims.get(&opts.groups_claim).and_then(groups_of);
        }
    }
}

/// A groups claim: an array of strings, or one string.
fn groups_of(v: &serde_json::Value) -> Option<Vec<String>> {
    match v {
        serde_json::Value::Array(items) => Some(
            items
                .iter()
                .filter_map(|g| g.as_str().map(str::to_owned))
                .collect(),
        ),
        serde_json::Value::String(g) => Some(vec![g.clone()]),
        _ => None,
    }
}

fn standard(
    preferred_username: Option<&openidconnect::EndUserUsername>,
    email: Option<&openidconnect::EndUserEmail>,
    name: Option<&openidconnect::LocalizedClaim<openidconnect::EndUserName>>,
    claim: &str,
) -> Option<String> {
    match claim {
        "preferred_username" => preferred_username.map(|u| u.as_str().to_owned()),
        "email" => email.map(|e| e.as_str().to_owned()),
        "name" => name
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().to_owned()),
        _ => None,
    }
}

/// Every claim of the ID token and userinfo, by name: the groups and username claims are
/// configurable.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
struct Extra {
    #[serde(flatten)]
    claims: HashMap<String, serde_json::Value>,
}
impl AdditionalClaims for Extra {}

type Tokens = StandardTokenResponse<
    IdTokenFields<
        Extra,
        EmptyExtraTokenFields,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    >,
    CoreTokenType,
>;

/// A client discovered from provider metadata: authorization endpoint set, token and userinfo
/// endpoints as the provider says.
type ProviderClient = Client<
    Extra,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    Tokens,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// A token endpoint failure, without the response body (it may hold tokens).
fn token_error<RE: std::error::Error + 'static>(
    e: &RequestTokenError<RE, StandardErrorResponse<CoreErrorResponseType>>,
) -> String {
    match e {
        RequestTokenError::ServerResponse(r) => match r.error_description() {
            Some(d) => format!("{} ({d})", r.error().as_ref()),
            None => r.error().as_ref().to_owned(),
        },
        RequestTokenError::Request(re) => format!("cannot reach its token endpoint: {}", chain(re)),
        RequestTokenError::Parse(..) => "its token response is not readable".into(),
        RequestTokenError::Other(s) => s.clone(),
    }
}

/// A userinfo failure, without the response body.
fn user_info_error<RE: std::error::Error + 'static>(
    e: &openidconnect::UserInfoError<RE>,
) -> String {
    use openidconnect::UserInfoError as U;
    match e {
        U::ClaimsVerification(v) => chain(v),
        U::Parse(_) => "its userinfo response is not readable".into(),
        U::Request(re) => format!("cannot reach its userinfo endpoint: {}", chain(re)),
        U::Response(status, _, _) => format!("its userinfo endpoint answered {status}"),
        U::Other(s) => s.clone(),
        _ => "its userinfo endpoint failed".into(),
    }
}

/// An error and its causes, joined by ": ".
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cause = c.source();
    }
    s
}
