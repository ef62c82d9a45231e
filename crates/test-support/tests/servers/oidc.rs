//! The OpenID provider, checked as a relying party sees it: through the
//! `openidconnect` crate the app signs in with (discovery, PKCE, nonce, ID
//! token verified against the JWKS), with only loopback traffic.

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse,
};
use std::time::Duration;

use reqwest::Url;
use test_support::{OidcClient, OidcProvider};

use crate::helpers::assert_error_mentions;

/// Where the app would be sent back to; nothing listens there, and nothing
/// needs to: the sign-in stops at the redirect.
const REDIRECT_URI: &str = "http://127.0.0.1:9/auth/callback";

async fn provider() -> OidcProvider {
    OidcProvider::start(OidcClient {
        redirect_uris: vec![REDIRECT_URI.to_owned()],
        ..OidcClient::default()
    })
    .await
    .unwrap()
}

/// How long the sign-in test's tokens live: not the default, so the test
/// shows the setting reaches the provider.
const TOKEN_TTL: Duration = Duration::from_secs(90);

/// An HTTP client for the relying party: no redirects followed (the
/// `openidconnect` docs' advice, against SSRF), no proxy (loopback only).
fn http_client() -> openidconnect::reqwest::Client {
    openidconnect::reqwest::Client::builder()
        .no_proxy()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

type DiscoveredClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

async fn relying_party(
    provider: &OidcProvider,
    http: &openidconnect::reqwest::Client,
) -> DiscoveredClient {
    let issuer = IssuerUrl::new(provider.issuer_url().to_owned()).unwrap();
    let metadata = CoreProviderMetadata::discover_async(issuer, http)
        .await
        .unwrap();
    CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(provider.client_id().to_owned()),
        Some(ClientSecret::new(provider.client_secret().to_owned())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT_URI.to_owned()).unwrap())
}

/// An authorization request for `openid profile email` with PKCE.
fn authorization(client: &DiscoveredClient) -> (Url, CsrfToken, Nonce, PkceCodeVerifier) {
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
    (url, state, nonce, verifier)
}

fn query(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

#[tokio::test]
async fn the_discovery_document_names_the_issuer_and_the_jwks_has_a_signing_key() {
    let provider = provider().await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();

    let discovery: serde_json::Value = http
        .get(format!(
            "{}/.well-known/openid-configuration",
            provider.issuer_url()
        ))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], provider.issuer_url());
    let ready = format!("ready {}", provider.issuer_url());
    assert!(provider.log().contains(&ready), "{}", provider.log());
    assert!(
        provider.issuer_url().starts_with("http://127.0.0.1:"),
        "{}",
        provider.issuer_url()
    );
    assert_eq!(
        discovery["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );

    let jwks_uri = discovery["jwks_uri"].as_str().unwrap();
    let jwks: serde_json::Value = http
        .get(jwks_uri)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{jwks}");
    assert_eq!(keys[0]["kty"], "RSA");
    assert_eq!(keys[0]["use"], "sig");
    assert!(keys[0].get("d").is_none(), "the JWKS leaks the private key");
}

#[tokio::test]
async fn ada_signs_in_with_code_and_pkce_and_her_id_token_verifies() {
    let provider = OidcProvider::start(OidcClient {
        redirect_uris: vec![REDIRECT_URI.to_owned()],
        token_ttl: TOKEN_TTL,
        ..OidcClient::default()
    })
    .await
    .unwrap();
    let http = http_client();
    let client = relying_party(&provider, &http).await;
    let (url, state, nonce, verifier) = authorization(&client);

    let ada = provider.user("ada");
    let back = provider
        .sign_in(&url, &ada.username, &ada.password)
        .await
        .unwrap();

    assert_eq!(
        query(&back, "state").as_deref(),
        Some(state.secret().as_str())
    );
    let code = query(&back, "code").unwrap_or_else(|| panic!("no code in {back}"));
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let id_token = tokens.id_token().expect("an ID token");
    let claims = id_token
        .claims(&client.id_token_verifier(), &nonce)
        .unwrap();
    assert_eq!(claims.subject().as_str(), "ada");
    assert_eq!(
        claims
            .name()
            .and_then(|name| name.get(None))
            .map(|n| n.as_str()),
        Some("Ada Lovelace")
    );
    assert_eq!(
        claims.email().map(|email| email.as_str()),
        Some("ada@example.test")
    );
    assert_eq!(claims.issuer().as_str(), provider.issuer_url());
    let lifetime = claims.expiration() - claims.issue_time();
    assert_eq!(lifetime.num_seconds(), TOKEN_TTL.as_secs() as i64);
}

#[tokio::test]
async fn a_wrong_password_gets_no_code() {
    let provider = provider().await;
    let http = http_client();
    let client = relying_party(&provider, &http).await;
    let (url, ..) = authorization(&client);

    let error = provider
        .sign_in(&url, "ada", &provider.user("grace").password)
        .await
        .unwrap_err();

    assert_error_mentions(&error, "Wrong username or password");
    assert!(
        provider.log().contains(r#""event":"login.failed""#),
        "{}",
        provider.log()
    );
    assert!(
        !provider.log().contains(r#""event":"login.succeeded""#),
        "{}",
        provider.log()
    );
}

#[tokio::test]
async fn an_authorization_request_without_pkce_is_refused() {
    let provider = provider().await;
    let http = http_client();
    let client = relying_party(&provider, &http).await;
    let (url, ..) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .url();

    let ada = provider.user("ada");
    let back = provider
        .sign_in(&url, &ada.username, &ada.password)
        .await
        .unwrap();

    assert_eq!(query(&back, "code"), None, "{back}");
    assert_eq!(query(&back, "error").as_deref(), Some("invalid_request"));
}
