//! Sign-in with `AUTH=oidc` against a real OpenID provider (panva's
//! `oidc-provider` on loopback): the whole browser round trip through
//! `/auth/login`, the provider's form and `/auth/callback`, then what a
//! session, its absence, a forged one and a missing CSRF token may do.

use std::sync::Arc;
use std::time::Duration;

use app::auth::{Auth, OidcSettings, SignInError};
use app::rate_limit::RateLimit;
use app::write_marker::CookieKey;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    RedirectUrl, Scope, TokenResponse,
};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{StatusCode, Url};
use secrecy::SecretString;
use test_support::{OidcClient, OidcProvider, eventually, free_port};
use tokio_util::sync::CancellationToken;

use crate::helpers::{DEADLINE, TestApp, spawn_app_adjusted, spawn_binary};

const KEY: &str = "sign-in-test-cookie-key-0123456789abcdef";

/// The provider and the app on a port chosen first, so that the provider
/// knows the app's redirect URI before the app starts.
struct SignInApp {
    app: TestApp,
    provider: OidcProvider,
    /// A browser: keeps cookies, follows no redirects.
    browser: reqwest::Client,
}

struct Options {
    session_lifetime: Duration,
    anonymous_read: bool,
    cookie_key: &'static str,
    write_limit: Option<RateLimit>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            session_lifetime: Duration::from_secs(3600),
            anonymous_read: false,
            cookie_key: KEY,
            write_limit: None,
        }
    }
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn settings(issuer: &str, port: u16, client: &OidcClient, options: &Options) -> Auth {
    Auth::Oidc(Box::new(OidcSettings {
        issuer: issuer.parse().unwrap(),
        client_id: client.client_id.clone(),
        client_secret: SecretString::from(client.client_secret.clone()),
        public_url: format!("http://127.0.0.1:{port}").parse().unwrap(),
        session_lifetime: options.session_lifetime,
        anonymous_read: options.anonymous_read,
    }))
}

async fn spawn(options: Options) -> SignInApp {
    let port = free_port();
    let client = OidcClient {
        redirect_uris: vec![format!("http://127.0.0.1:{port}/auth/callback")],
        ..OidcClient::default()
    };
    let provider = OidcProvider::start(client.clone()).await.unwrap();
    let auth = settings(provider.issuer_url(), port, &client, &options);
    let app = spawn_app_adjusted(|config| {
        config.listen = ([127, 0, 0, 1], port).into();
        config.cookie_key = Some(CookieKey::parse(options.cookie_key).unwrap());
        config.auth = auth;
        config.write_limit = options.write_limit;
    })
    .await;
    let app = SignInApp {
        app,
        provider,
        browser: browser(),
    };
    // Discovery runs in the background: wait for sign-in to be offered
    // (asked without the browser, which must not keep a sign-in cookie).
    let probe = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    eventually(DEADLINE, "sign-in to become available", || async {
        let response = probe.get(app.app.url("/auth/login")).send().await.unwrap();
        (response.status() == StatusCode::SEE_OTHER).then_some(())
    })
    .await
    .unwrap();
    app
}

impl SignInApp {
    async fn get(&self, path: &str) -> reqwest::Response {
        self.browser.get(self.app.url(path)).send().await.unwrap()
    }

    async fn page(&self) -> String {
        let response = self.get("/").await;
        assert_eq!(response.status(), StatusCode::OK);
        response.text().await.unwrap()
    }

    /// `/auth/login` → the provider's form as `user` → the redirect back,
    /// not yet followed.
    async fn to_callback(&self, user: &str) -> Url {
        to_callback(
            &self.browser,
            &self.app.url("/auth/login"),
            &self.provider,
            user,
        )
        .await
    }

    /// Signs `user` in; the browser keeps the session.
    async fn sign_in(&self, user: &str) {
        let back = self.to_callback(user).await;
        let response = self.browser.get(back).send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "{}",
            response.text().await.unwrap()
        );
        assert_eq!(location(&response), "/");
    }

    /// A page form post, with `csrf` when given.
    async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.browser
            .post(self.app.url(path))
            .header("sec-fetch-site", "same-origin")
            .form(form)
            .send()
            .await
            .unwrap()
    }
}

fn location(response: &reqwest::Response) -> &str {
    response.headers()[LOCATION].to_str().unwrap()
}

/// The CSRF token in a page's forms.
fn csrf(page: &str) -> String {
    let marker = r#"name="csrf" value=""#;
    let start = page
        .find(marker)
        .unwrap_or_else(|| panic!("no csrf field in {page}"))
        + marker.len();
    page[start..start + page[start..].find('"').unwrap()].to_owned()
}

/// The session cookie the app set in `response`, as `name=value`.
fn session_cookie(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| {
            value.starts_with("docket_session=") && !value.starts_with("docket_session=;")
        })
        .and_then(|value| value.split(';').next())
        .expect("a session cookie")
        .to_owned()
}

#[tokio::test]
async fn ada_signs_in_writes_and_sees_her_name() {
    let app = spawn(Options::default()).await;

    app.sign_in("ada").await;
    let page = app.page().await;
    assert!(page.contains("Ada Lovelace"), "{page}");
    assert!(page.contains(r#"data-test="sign-out""#), "{page}");

    let response = app
        .post("/todos", &[("text", "Buy milk"), ("csrf", &csrf(&page))])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.app.todo_count().await, 1);
    assert!(app.page().await.contains("Buy milk"));
    // The change is hers: the row records the person her ID token named.
    let created_by: serde_json::Value =
        sqlx::query_scalar("select created_by from todos where text = 'Buy milk'")
            .fetch_one(&app.app.db)
            .await
            .unwrap();
    assert_eq!(created_by, ada());
}

/// How a change Ada made records her (`events::Actor`, as stored).
fn ada() -> serde_json::Value {
    serde_json::to_value(events::Actor::Person {
        subject: "ada".into(),
        name: "Ada Lovelace".into(),
    })
    .unwrap()
}

#[tokio::test]
async fn an_anonymous_write_is_sent_to_sign_in_and_changes_nothing() {
    let app = spawn(Options::default()).await;

    let plain = app.post("/todos", &[("text", "Buy milk")]).await;
    assert_eq!(plain.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&plain), "/auth/login");

    let htmx = app
        .browser
        .post(app.app.url("/todos"))
        .header("hx-request", "true")
        .form(&[("text", "Buy milk")])
        .send()
        .await
        .unwrap();
    assert_eq!(htmx.headers()["hx-redirect"], "/auth/login");
    assert_eq!(app.app.todo_count().await, 0);

    let page = app.page().await;
    assert!(page.contains(r#"data-test="sign-in-page""#), "{page}");
    assert!(!page.contains("new-todo"), "{page}");
}

#[tokio::test]
async fn a_callback_with_another_state_is_refused() {
    let app = spawn(Options::default()).await;
    let mut back = app.to_callback("ada").await;
    let pairs: Vec<(String, String)> = back
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" {
                "forged".to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    back.query_pairs_mut().clear().extend_pairs(pairs);

    let response = app.browser.get(back).send().await.unwrap();

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let page = response.text().await.unwrap();
    assert!(page.contains("was not started here"), "{page}");
    assert!(app.page().await.contains(r#"data-test="sign-in-page""#));
}

#[tokio::test]
async fn an_error_from_the_provider_is_a_clear_page() {
    let app = spawn(Options::default()).await;
    app.get("/auth/login").await;

    let response = app.get("/auth/callback?error=access_denied&state=x").await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let page = response.text().await.unwrap();
    assert!(
        page.contains("did not sign you in (access_denied)"),
        "{page}"
    );
}

#[tokio::test]
async fn a_write_without_the_csrf_token_is_refused() {
    let app = spawn(Options::default()).await;
    app.sign_in("ada").await;
    let token = csrf(&app.page().await);

    let missing = app.post("/todos", &[("text", "Buy milk")]).await;
    let wrong = app
        .post("/todos", &[("text", "Buy milk"), ("csrf", &token[1..])])
        .await;

    for response in [missing, wrong] {
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let page = response.text().await.unwrap();
        assert!(page.contains("reload the page"), "{page}");
    }
    assert_eq!(app.app.todo_count().await, 0);
}

#[tokio::test]
async fn sign_out_ends_the_session() {
    let app = spawn(Options::default()).await;
    app.sign_in("ada").await;
    let token = csrf(&app.page().await);

    let response = app.post("/auth/logout", &[("csrf", &token)]).await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let page = app.page().await;
    assert!(page.contains(r#"data-test="sign-in-page""#), "{page}");
    let write = app
        .post("/todos", &[("text", "Buy milk"), ("csrf", &token)])
        .await;
    assert_eq!(location(&write), "/auth/login");
}

#[tokio::test]
async fn a_session_ends_after_its_lifetime_even_if_the_browser_keeps_the_cookie() {
    let app = spawn(Options {
        session_lifetime: Duration::from_secs(2),
        ..Options::default()
    })
    .await;
    let back = app.to_callback("ada").await;
    let session = session_cookie(&app.browser.get(back).send().await.unwrap());
    let page = |cookie: String| {
        let request = plain().get(app.app.url("/")).header(COOKIE, cookie);
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let first = page(session.clone()).await;
    assert!(first.contains("Ada Lovelace"), "{first}");
    let token = csrf(&first);

    // Past `Max-Age` a browser drops the cookie; a client may not, so the
    // expiry inside the value is what counts.
    tokio::time::sleep(Duration::from_secs(3)).await;

    assert!(
        page(session.clone())
            .await
            .contains(r#"data-test="sign-in-page""#)
    );
    let write = plain()
        .post(app.app.url("/todos"))
        .header(COOKIE, session)
        .form(&[("text", "Buy milk"), ("csrf", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&write), "/auth/login");
    assert_eq!(app.app.todo_count().await, 0);
}

/// A client that sends only the cookies it is given.
fn plain() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn altered_cookies_and_cookies_from_another_deployment_are_no_session() {
    let app = spawn(Options::default()).await;
    let back = app.to_callback("ada").await;
    let response = app.browser.get(back).send().await.unwrap();
    let genuine = session_cookie(&response);
    // Another deployment: the same provider settings, another COOKIE_KEY.
    let other = spawn(Options {
        cookie_key: "another-deployment-key-0123456789abcdef",
        ..Options::default()
    })
    .await;

    let (name, value) = genuine.split_once('=').unwrap();
    let mut altered = value.as_bytes().to_vec();
    let middle = altered.len() / 2;
    altered[middle] = if altered[middle] == b'A' { b'B' } else { b'A' };
    let altered = format!("{name}={}", String::from_utf8(altered).unwrap());
    let made_up = format!(r#"{name}={{"subject":"ada","name":"Ada","expires":99999999999}}"#);

    let plain = plain();
    let looks = |app: &SignInApp, cookie: &str| {
        let request = plain
            .get(app.app.url("/"))
            .header(COOKIE, cookie.to_owned());
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    assert!(
        looks(&app, &genuine).await.contains("Ada Lovelace"),
        "the genuine one works"
    );
    for (what, target, cookie) in [
        ("altered", &app, &altered),
        ("made up", &app, &made_up),
        ("another deployment's", &other, &genuine),
    ] {
        let page = looks(target, cookie).await;
        assert!(
            page.contains(r#"data-test="sign-in-page""#),
            "{what}: {page}"
        );
        assert!(!page.contains("Ada Lovelace"), "{what}: {page}");
    }
}

#[tokio::test]
async fn with_anonymous_read_the_lists_show_without_the_form() {
    let app = spawn(Options {
        anonymous_read: true,
        ..Options::default()
    })
    .await;
    app.app.create_todo("Water plants").await;

    let page = app.page().await;

    assert!(page.contains("Water plants"), "{page}");
    assert!(!page.contains(r#"id="new-todo""#), "{page}");
    assert!(!page.contains("Delete"), "{page}");
    assert!(page.contains(r#"data-test="sign-in""#), "{page}");
    let fragment = app.get("/fragments/todo-lists").await;
    assert_eq!(fragment.status(), StatusCode::OK);
}

#[tokio::test]
async fn without_anonymous_read_the_lists_and_events_need_a_sign_in() {
    let app = spawn(Options::default()).await;

    assert_eq!(
        app.get("/fragments/todo-lists").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.get("/events").await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn api_reads_need_a_token_with_auth_oidc() {
    let app = spawn(Options::default()).await;
    let id = app.app.create_todo("Water plants").await;

    for path in ["/api/todos".to_owned(), format!("/api/todos/{id}")] {
        assert_eq!(
            app.get(&path).await.status(),
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
        let with_token = app
            .app
            .api(reqwest::Method::GET, &path)
            .send()
            .await
            .unwrap();
        assert_eq!(with_token.status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn while_the_provider_is_down_the_app_serves_and_sign_in_is_503() {
    let nowhere = free_port();
    let port = free_port();
    let client = OidcClient {
        redirect_uris: vec![format!("http://127.0.0.1:{port}/auth/callback")],
        ..OidcClient::default()
    };
    let auth = settings(
        &format!("http://127.0.0.1:{nowhere}"),
        port,
        &client,
        &Options::default(),
    );
    let app = spawn_app_adjusted(|config| {
        config.listen = ([127, 0, 0, 1], port).into();
        config.auth = auth;
    })
    .await;

    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    let response = app.get("/auth/login").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let page = response.text().await.unwrap();
    assert!(
        page.contains("identity provider has not answered"),
        "{page}"
    );
}

/// An ID token `client` gets for `user` from `provider`, and its nonce,
/// through the same crate the app uses, as another relying party would.
async fn id_token_for(
    provider: &OidcProvider,
    client: &OidcClient,
    user: &str,
) -> (CoreIdToken, Nonce) {
    let http = openidconnect::reqwest::Client::builder()
        .no_proxy()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let issuer = IssuerUrl::new(provider.issuer_url().to_owned()).unwrap();
    let metadata = CoreProviderMetadata::discover_async(issuer, &http)
        .await
        .unwrap();
    let relying_party = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client.client_id.clone()),
        Some(ClientSecret::new(client.client_secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(client.redirect_uris[0].clone()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, nonce) = relying_party
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".to_owned()))
        .set_pkce_challenge(challenge)
        .url();
    let user = provider.user(user);
    let back = provider
        .sign_in(&url, &user.username, &user.password)
        .await
        .unwrap();
    let code = back
        .query_pairs()
        .find(|(name, _)| name == "code")
        .map(|(_, code)| code.into_owned())
        .unwrap_or_else(|| panic!("no code in {back}"));
    let tokens = relying_party
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    (tokens.id_token().unwrap().clone(), nonce)
}

#[tokio::test]
async fn an_id_token_issued_to_another_client_is_refused() {
    let docket = OidcClient {
        redirect_uris: vec!["http://127.0.0.1:9/auth/callback".to_owned()],
        ..OidcClient::default()
    };
    let other = OidcClient {
        client_id: "another-app".to_owned(),
        redirect_uris: vec!["http://127.0.0.1:9/another-app/callback".to_owned()],
        ..OidcClient::default()
    };
    let provider = OidcProvider::start_with_others(docket.clone(), vec![other.clone()])
        .await
        .unwrap();
    let Auth::Oidc(settings) = settings(provider.issuer_url(), 9, &docket, &Options::default())
    else {
        unreachable!("settings are for AUTH=oidc");
    };
    let app_side = app::auth::Provider::new(Arc::new(*settings));
    // Returns once discovery has worked.
    app_side.clone().discover(CancellationToken::new()).await;

    let (own, nonce) = id_token_for(&provider, &docket, "ada").await;
    let identity = app_side.verify(&own, &nonce).await.unwrap();
    assert_eq!(
        (identity.subject(), identity.name()),
        ("ada", "Ada Lovelace")
    );

    let (foreign, nonce) = id_token_for(&provider, &other, "ada").await;
    let error = app_side.verify(&foreign, &nonce).await.unwrap_err();
    let SignInError::Unverified(cause) = &error else {
        panic!("not refused as unverified: {error:?}");
    };
    assert!(
        format!("{cause:#}").to_lowercase().contains("audience"),
        "{cause:#}"
    );
    // And with the wrong nonce, its own token too.
    assert!(matches!(
        app_side
            .verify(&own, &Nonce::new("another".to_owned()))
            .await,
        Err(SignInError::Unverified(_))
    ));
}

#[tokio::test]
async fn sign_out_needs_the_csrf_token_of_a_current_session() {
    let app = spawn(Options::default()).await;
    app.sign_in("ada").await;

    let forged = app.post("/auth/logout", &[("csrf", "forged")]).await;

    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(app.page().await.contains("Ada Lovelace"), "still signed in");
}

#[tokio::test]
async fn a_signed_in_htmx_press_on_a_todo_sends_the_token_from_its_form() {
    let app = spawn(Options::default()).await;
    app.sign_in("ada").await;
    let id = app.app.create_todo("Water plants").await;
    // What the page re-fetches and htmx posts from: the item's own form.
    let fragment = app.get("/fragments/todo-lists").await.text().await.unwrap();
    let token = csrf(&fragment);

    let press = app
        .browser
        .post(app.app.url(&format!("/todos/{id}")))
        .header("hx-request", "true")
        .header("sec-fetch-site", "same-origin")
        .form(&[("_method", "put"), ("done", "true"), ("csrf", &token)])
        .send()
        .await
        .unwrap();

    assert_eq!(press.status(), StatusCode::NO_CONTENT);
    let (done, updated_by): (bool, serde_json::Value) =
        sqlx::query_as("select done, updated_by from todos where id = $1")
            .bind(id)
            .fetch_one(&app.app.db)
            .await
            .unwrap();
    assert!(done);
    assert_eq!(updated_by, ada());
}

#[tokio::test]
async fn the_client_secret_the_session_and_the_csrf_token_never_reach_the_log() {
    let (port, admin) = (free_port(), free_port());
    let client = OidcClient {
        redirect_uris: vec![format!("http://127.0.0.1:{port}/auth/callback")],
        ..OidcClient::default()
    };
    let provider = OidcProvider::start(client.clone()).await.unwrap();
    let process = spawn_binary(&[
        ("PORT", port.to_string()),
        ("ADMIN_PORT", admin.to_string()),
        ("AUTH", "oidc".to_owned()),
        ("OIDC_ISSUER_URL", provider.issuer_url().to_owned()),
        ("OIDC_CLIENT_ID", client.client_id.clone()),
        ("OIDC_CLIENT_SECRET", client.client_secret.clone()),
        ("PUBLIC_URL", format!("http://127.0.0.1:{port}")),
        ("COOKIE_KEY", KEY.to_owned()),
        ("RUST_LOG", "info,app=debug,tower_http=debug".to_owned()),
    ])
    .await;
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
    let browser = browser();
    let to_provider = eventually(DEADLINE, "sign-in to become available", || async {
        let response = plain().get(url("/auth/login")).send().await.ok()?;
        (response.status() == StatusCode::SEE_OTHER).then_some(())
    });
    to_provider.await.unwrap();

    let back = to_callback(&browser, &url("/auth/login"), &provider, "ada").await;
    let code = back
        .query_pairs()
        .find(|(name, _)| name == "code")
        .map(|(_, code)| code.into_owned())
        .unwrap();
    let response = browser.get(back).send().await.unwrap();
    let session = session_cookie(&response);
    let page = browser
        .get(url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = csrf(&page);
    let write = browser
        .post(url("/todos"))
        .form(&[("text", "Buy milk"), ("csrf", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), StatusCode::SEE_OTHER);
    let refused = browser
        .post(url("/todos"))
        .form(&[("text", "Buy milk"), ("csrf", &format!("{token}x"))])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    let log = process.service.output();
    assert!(log.contains("signed in"), "the log is captured: {log}");
    let (_, session_value) = session.split_once('=').unwrap();
    for (what, secret) in [
        ("the client secret", client.client_secret.as_str()),
        ("the session cookie", session_value),
        ("the CSRF token", token.as_str()),
        ("the authorization code", code.as_str()),
        ("Ada's password", provider.user("ada").password.as_str()),
    ] {
        assert!(!log.contains(secret), "{what} is in the log:\n{log}");
    }
}

/// `user`'s session cookie (`name=value`), from a sign-in in a browser of
/// its own.
async fn session_of(app: &SignInApp, user: &str) -> String {
    let browser = browser();
    let back = to_callback(&browser, &app.app.url("/auth/login"), &app.provider, user).await;
    session_cookie(&browser.get(back).send().await.unwrap())
}

/// `browser` opens the app's `login` → the provider's form as `user` → the
/// redirect back (with `code` and `state`), not yet followed.
async fn to_callback(
    browser: &reqwest::Client,
    login: &str,
    provider: &OidcProvider,
    user: &str,
) -> Url {
    let response = browser.get(login).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let to_provider: Url = location(&response).parse().unwrap();
    assert!(
        to_provider.as_str().starts_with(provider.issuer_url()),
        "{to_provider}"
    );
    let user = provider.user(user);
    provider
        .sign_in(&to_provider, &user.username, &user.password)
        .await
        .unwrap()
}

/// A client on this host whose requests come from `address` (any of 127/8).
fn from_address(address: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(std::net::IpAddr::from(address))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A page write of `text` by the holder of `session` through `client`;
/// the status code.
async fn write_as(app: &SignInApp, client: &reqwest::Client, session: &str, text: &str) -> u16 {
    let page = client
        .get(app.app.url("/"))
        .header(COOKIE, session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    client
        .post(app.app.url("/todos"))
        .header(COOKIE, session)
        .header("sec-fetch-site", "same-origin")
        .form(&[("text", text), ("csrf", &csrf(&page))])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn each_signed_in_person_has_their_own_write_allowance_wherever_they_write_from() {
    let app = spawn(Options {
        write_limit: Some("2/hour".parse().unwrap()),
        ..Options::default()
    })
    .await;
    let (ada, grace) = (
        session_of(&app, "ada").await,
        session_of(&app, "grace").await,
    );
    // Both behind one address, as behind an office proxy.
    let proxy = from_address([127, 0, 0, 1]);

    let ada_first = [
        write_as(&app, &proxy, &ada, "Ada 1").await,
        write_as(&app, &proxy, &ada, "Ada 2").await,
    ];
    let ada_over = write_as(&app, &proxy, &ada, "Ada 3").await;
    let grace_writes = [
        write_as(&app, &proxy, &grace, "Grace 1").await,
        write_as(&app, &proxy, &grace, "Grace 2").await,
    ];
    // Ada again, from another address: still her allowance, used up.
    let ada_elsewhere = write_as(&app, &from_address([127, 0, 0, 2]), &ada, "Ada 4").await;

    assert_eq!(ada_first, [303, 303]);
    assert_eq!(ada_over, 429);
    assert_eq!(
        grace_writes,
        [303, 303],
        "Grace does not share Ada's allowance"
    );
    assert_eq!(ada_elsewhere, 429, "a new address is no new allowance");
    assert_eq!(app.app.todo_count().await, 4);
    // Nobody signed in: the address's own allowance, which the two people's
    // writes did not touch (the write itself is then sent to sign in).
    let anonymous = || async {
        proxy
            .post(app.app.url("/todos"))
            .header("sec-fetch-site", "same-origin")
            .form(&[("text", "Anonymous")])
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_ne!(anonymous().await, 429);
    assert_ne!(anonymous().await, 429);
    assert_eq!(anonymous().await, 429, "the address's allowance is its own");
}

#[tokio::test]
async fn a_sign_in_after_the_provider_rotates_its_keys_works_without_a_restart() {
    let mut app = spawn(Options::default()).await;
    app.sign_in("ada").await;
    let reads_before = app.provider.jwks_reads();

    app.provider.rotate_keys().await.unwrap();
    app.sign_in("grace").await;

    assert!(app.page().await.contains("Grace Hopper"));
    assert_eq!(
        app.provider.jwks_reads(),
        reads_before + 1,
        "the app read the new keys once"
    );
}

#[tokio::test]
async fn a_token_signed_with_a_key_the_provider_does_not_publish_is_refused_without_another_read() {
    let docket = OidcClient {
        redirect_uris: vec!["http://127.0.0.1:9/auth/callback".to_owned()],
        ..OidcClient::default()
    };
    let mut provider = OidcProvider::start(docket.clone()).await.unwrap();
    let Auth::Oidc(settings) = settings(provider.issuer_url(), 9, &docket, &Options::default())
    else {
        unreachable!("settings are for AUTH=oidc");
    };
    let app_side = app::auth::Provider::new(Arc::new(*settings));
    app_side.clone().discover(CancellationToken::new()).await;
    let (retired, retired_nonce) = id_token_for(&provider, &docket, "ada").await;
    assert!(app_side.verify(&retired, &retired_nonce).await.is_ok());

    provider.rotate_keys().await.unwrap();
    let (current, nonce) = id_token_for(&provider, &docket, "grace").await;
    let reads = provider.jwks_reads();
    let grace = app_side.verify(&current, &nonce).await.unwrap();
    assert_eq!(grace.subject(), "grace");
    assert_eq!(provider.jwks_reads(), reads + 1, "the new key was read");

    // Its key is no longer the provider's: as good as a made-up one.
    let error = app_side.verify(&retired, &retired_nonce).await.unwrap_err();

    let SignInError::Unverified(cause) = &error else {
        panic!("not refused as unverified: {error:?}");
    };
    assert!(
        format!("{cause:#}").contains("No matching key"),
        "{cause:#}"
    );
    assert_eq!(
        provider.jwks_reads(),
        reads + 1,
        "an unknown key id right after a read does not read the keys again"
    );
}
