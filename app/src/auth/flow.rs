//! The authorization code flow with PKCE against the provider discovered
//! from `OIDC_ISSUER_URL`, through the `openidconnect` crate: it checks the
//! ID token's signature (the provider's JWKS), issuer, audience, expiry and
//! nonce; nothing here reads a JWT by hand.
//!
//! Discovery runs in the background from start-up, retried with backoff,
//! so the app serves (and `/healthz` answers) while the provider is down;
//! until it has worked, sign-in answers 503.
//!
//! The provider's signing keys are read at discovery, and again when an ID
//! token names a key id they do not have (the provider rotated its keys),
//! at most once a minute ([`super::key_refresh`]).

use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant, SystemTime};

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreIdTokenClaims, CoreJsonWebKeySet,
    CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, SignatureVerificationError, TokenResponse,
};
use reqwest::Url;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::OidcSettings;
use super::key_refresh::KeyRefresh;
use super::session::unix_seconds;
use crate::domain::Person;

/// How long a browser may take at the provider before the sign-in it
/// started is stale.
pub const SIGN_IN_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// The client as discovery leaves it: an authorization endpoint for sure,
/// a token and a user-info endpoint if the provider named them.
type DiscoveredClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Why a sign-in did not end in a session. The messages are for the
/// person signing in; causes that could help an attacker are logged only.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error(
        "Sign-in is not available yet: the identity provider has not answered. Try again shortly."
    )]
    Unavailable,
    #[error("The identity provider did not sign you in ({0}). Sign in again.")]
    Provider(String),
    #[error("This sign-in was not started here, or took too long. Sign in again.")]
    StaleOrForeign,
    #[error("The identity provider's answer could not be verified. Sign in again.")]
    Unverified(#[source] anyhow::Error),
}

/// What the sign-in cookie keeps between `/auth/login` and
/// `/auth/callback`: only this browser can finish the sign-in it started.
#[derive(Debug, Serialize, Deserialize)]
pub struct PendingSignIn {
    state: String,
    nonce: String,
    verifier: String,
    /// Unix seconds.
    expires: u64,
}

impl PendingSignIn {
    /// Whether `state` (from the provider's redirect) is this sign-in's,
    /// and it is not stale.
    pub fn matches(&self, state: &str, now: SystemTime) -> bool {
        unix_seconds(now) < self.expires
            && subtle::ConstantTimeEq::ct_eq(self.state.as_bytes(), state.as_bytes()).into()
    }
}

/// What discovery found: the metadata (where the keys are) and the client
/// made from it with the keys last read.
struct Discovered {
    metadata: CoreProviderMetadata,
    redirect: RedirectUrl,
    /// Replaced whole when the keys are read again.
    client: RwLock<Arc<DiscoveredClient>>,
}

/// The provider, once discovered.
#[derive(Clone)]
pub struct Provider {
    settings: Arc<OidcSettings>,
    discovered: Arc<OnceLock<Discovered>>,
    /// Held while the keys are read again, so that sign-ins waiting on the
    /// same new key id wait for that one read instead of refusing.
    key_refresh: Arc<tokio::sync::Mutex<KeyRefresh>>,
    http: openidconnect::reqwest::Client,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("issuer", &self.settings.issuer.as_str())
            .field("discovered", &self.discovered.get().is_some())
            .finish_non_exhaustive()
    }
}

impl Provider {
    pub fn new(settings: Arc<OidcSettings>) -> Provider {
        let http = openidconnect::reqwest::Client::builder()
            // The `openidconnect` docs' advice: a redirect followed by the
            // client could be steered to an internal address (SSRF).
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .expect("the TLS backend initializes");
        Provider {
            settings,
            discovered: Arc::default(),
            key_refresh: Arc::default(),
            http,
        }
    }

    /// Reads the discovery document and keys until it works (or shutdown).
    /// Keys the provider rotates in later are read when a token names one
    /// ([`Provider::verify`]).
    pub async fn discover(self, shutdown: CancellationToken) {
        let issuer = match IssuerUrl::new(
            self.settings
                .issuer
                .as_str()
                .trim_end_matches('/')
                .to_owned(),
        ) {
            Ok(issuer) => issuer,
            Err(e) => {
                tracing::error!(error = %e, "OIDC_ISSUER_URL is not an issuer URL; sign-in stays unavailable");
                return;
            }
        };
        let policy = service_kit::backoff::exponential(
            Duration::from_millis(500),
            Duration::from_secs(30),
            None,
        );
        let discovery = service_kit::backoff::retry(
            "OpenID provider discovery",
            policy,
            |_| true,
            || CoreProviderMetadata::discover_async(issuer.clone(), &self.http),
        );
        let metadata = tokio::select! {
            () = shutdown.cancelled() => return,
            metadata = discovery => match metadata {
                Ok(metadata) => metadata,
                Err(e) => {
                    tracing::error!(error = %service_kit::backoff::chain(&e), "OpenID provider discovery gave up");
                    return;
                }
            },
        };
        let redirect = match RedirectUrl::new(self.settings.redirect_uri()) {
            Ok(redirect) => redirect,
            Err(e) => {
                tracing::error!(error = %e, "PUBLIC_URL does not make a redirect URI; sign-in stays unavailable");
                return;
            }
        };
        let client = self.client_for(metadata.clone(), redirect.clone());
        let discovered = Discovered {
            metadata,
            redirect,
            client: RwLock::new(Arc::new(client)),
        };
        if self.discovered.set(discovered).is_ok() {
            tracing::info!(issuer = %issuer.as_str(), "OpenID provider discovered; sign-in is available");
        }
    }

    /// This app as the provider's client, trusting the keys in `metadata`.
    fn client_for(
        &self,
        metadata: CoreProviderMetadata,
        redirect: RedirectUrl,
    ) -> DiscoveredClient {
        CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            Some(ClientSecret::new(
                self.settings.client_secret.expose_secret().to_owned(),
            )),
        )
        .set_redirect_uri(redirect)
    }

    /// The client with the keys last read; 503 until discovery has worked.
    fn client(&self) -> Result<Arc<DiscoveredClient>, SignInError> {
        let discovered = self.discovered.get().ok_or(SignInError::Unavailable)?;
        Ok(Arc::clone(
            &discovered
                .client
                .read()
                .expect("the client lock is never poisoned"),
        ))
    }

    /// Where to send the browser to sign in, and what to keep until it
    /// comes back.
    pub fn begin(&self, now: SystemTime) -> Result<(Url, PendingSignIn), SignInError> {
        let client = self.client()?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("profile".to_owned()))
            .add_scope(Scope::new("email".to_owned()))
            .set_pkce_challenge(challenge)
            .url();
        let pending = PendingSignIn {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
            expires: unix_seconds(now) + SIGN_IN_TIMEOUT.as_secs(),
        };
        Ok((url, pending))
    }

    /// Exchanges `code` (with the PKCE verifier) and verifies the ID token.
    /// The caller has checked `state` ([`PendingSignIn::matches`]).
    pub async fn finish(
        &self,
        pending: PendingSignIn,
        code: String,
    ) -> Result<Person, SignInError> {
        let client = self.client()?;
        let unverified = |e: anyhow::Error| SignInError::Unverified(e);
        let tokens = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| unverified(anyhow::Error::new(e).context("no token endpoint")))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| unverified(anyhow::Error::new(e).context("exchanging the code")))?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| unverified(anyhow::anyhow!("the token response has no ID token")))?;
        self.verify(id_token, &Nonce::new(pending.nonce)).await
    }

    /// Who `id_token` says signed in, if its signature (the provider's
    /// JWKS), issuer, audience (this client), expiry and `nonce` hold. A
    /// key id the keys do not have makes them be read again first, at most
    /// once per [`super::key_refresh::REREAD_INTERVAL`].
    pub async fn verify(
        &self,
        id_token: &CoreIdToken,
        nonce: &Nonce,
    ) -> Result<Person, SignInError> {
        let claims = match self.claims(id_token, nonce)? {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                self.reread_keys().await;
                self.claims(id_token, nonce)?
            }
            verified => verified,
        }
        .map_err(|e| {
            SignInError::Unverified(anyhow::Error::new(e).context("verifying the ID token"))
        })?;
        let subject = claims.subject().as_str().to_owned();
        let name = claims
            .name()
            .and_then(|name| name.get(None))
            .map(|name| name.as_str().to_owned())
            .or_else(|| claims.preferred_username().map(|u| u.as_str().to_owned()))
            .or_else(|| claims.email().map(|e| e.as_str().to_owned()))
            .filter(|name| !name.trim().is_empty())
            .unwrap_or_else(|| subject.clone());
        // Parsed here, once: a session holds only a person every change it
        // makes can record as its actor.
        Person::parse(&subject, &name).map_err(|e| {
            SignInError::Unverified(anyhow::Error::new(e).context("the ID token's claims"))
        })
    }

    /// `id_token`'s claims checked against the keys last read.
    fn claims(
        &self,
        id_token: &CoreIdToken,
        nonce: &Nonce,
    ) -> Result<Result<CoreIdTokenClaims, ClaimsVerificationError>, SignInError> {
        let client = self.client()?;
        Ok(id_token.claims(&client.id_token_verifier(), nonce).cloned())
    }

    /// Reads the provider's keys again, unless that was done less than
    /// [`super::key_refresh::REREAD_INTERVAL`] ago. A failed read leaves the
    /// keys as they were.
    async fn reread_keys(&self) {
        let Some(discovered) = self.discovered.get() else {
            return;
        };
        let mut refresh = self.key_refresh.lock().await;
        if !refresh.claim(Instant::now()) {
            return;
        }
        match CoreJsonWebKeySet::fetch_async(discovered.metadata.jwks_uri(), &self.http).await {
            Ok(keys) => {
                let count = keys.keys().len();
                let metadata = discovered.metadata.clone().set_jwks(keys);
                let client = self.client_for(metadata, discovered.redirect.clone());
                *discovered
                    .client
                    .write()
                    .expect("the client lock is never poisoned") = Arc::new(client);
                tracing::info!(
                    oidc.keys = count,
                    "an ID token named a key id not read yet; the OpenID provider's keys were read again"
                );
            }
            Err(e) => tracing::warn!(
                error = %service_kit::backoff::chain(&e),
                "reading the OpenID provider's keys again failed; keeping the keys read before"
            ),
        }
    }
}
