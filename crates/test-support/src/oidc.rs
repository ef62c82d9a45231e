//! A real OpenID provider on loopback: panva's `oidc-provider` (an OpenID
//! Certified implementation, npm, MIT), run by Node.js from the script in
//! `crates/test-support/oidc/provider.mjs`, with one confidential client
//! and fixed test users whose passwords are made up per start.
//!
//! `cargo xtask install` (and `cargo xtask test`) puts the npm package in
//! `target/tools/oidc-provider`, as it does the Playwright driver.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::redirect::Policy;
use reqwest::{StatusCode, Url};
use serde_json::json;
use tempfile::TempDir;

use crate::{Service, ServiceCommand, start_on_a_free_port_async, workspace_root};

/// The `oidc-provider` release the tests run (npm; `cargo xtask install`).
pub const OIDC_PROVIDER_VERSION: &str = "9.13.3";

/// How many redirects and forms a sign-in may pass through before it is
/// taken for a loop.
const SIGN_IN_STEPS: usize = 10;

/// The npm prefix `oidc-provider` is installed in: `target/tools/oidc-provider`.
pub fn oidc_provider_dir() -> PathBuf {
    workspace_root().join("target/tools/oidc-provider")
}

/// The version of the installed `oidc-provider`, if there is one.
pub fn installed_oidc_provider_version() -> Option<String> {
    let manifest = oidc_provider_dir().join("node_modules/oidc-provider/package.json");
    let text = std::fs::read_to_string(manifest).ok()?;
    let manifest: serde_json::Value = serde_json::from_str(&text).ok()?;
    manifest["version"].as_str().map(str::to_owned)
}

/// The relying party the provider knows: the app under test.
#[derive(Debug, Clone)]
pub struct OidcClient {
    pub client_id: String,
    pub client_secret: String,
    /// Where the provider may send the browser back to; at least one.
    pub redirect_uris: Vec<String>,
    /// Where the provider may send the browser after sign-out.
    pub post_logout_redirect_uris: Vec<String>,
    /// How long access and ID tokens are valid (whole seconds).
    pub token_ttl: Duration,
}

impl Default for OidcClient {
    /// Client id `docket`, a secret made up now, tokens valid five minutes,
    /// no redirect URIs yet.
    fn default() -> Self {
        OidcClient {
            client_id: "docket".to_owned(),
            client_secret: uuid::Uuid::new_v4().simple().to_string(),
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            token_ttl: Duration::from_secs(300),
        }
    }
}

/// A user who can sign in; the username is the ID token's subject.
#[derive(Debug, Clone)]
pub struct OidcUser {
    pub username: String,
    pub password: String,
    /// The `name` claim.
    pub name: String,
    /// The `email` claim (verified).
    pub email: String,
}

impl OidcUser {
    fn new(username: &str, name: &str) -> OidcUser {
        OidcUser {
            username: username.to_owned(),
            password: uuid::Uuid::new_v4().simple().to_string(),
            name: name.to_owned(),
            email: format!("{username}@example.test"),
        }
    }
}

/// A running provider; killed, and its folder removed, when dropped.
pub struct OidcProvider {
    issuer: String,
    port: u16,
    client: OidcClient,
    others: Vec<OidcClient>,
    users: Vec<OidcUser>,
    service: Service,
    dir: TempDir,
}

impl OidcProvider {
    /// Starts the provider on a free loopback port for `client`, with the
    /// users `ada` (Ada Lovelace) and `grace` (Grace Hopper), and returns
    /// once its discovery document is served.
    pub async fn start(client: OidcClient) -> anyhow::Result<OidcProvider> {
        OidcProvider::start_with_others(client, Vec::new()).await
    }

    /// Like [`OidcProvider::start`], with `others` registered too: relying
    /// parties besides the app, whose tokens the app must refuse (their
    /// audience is not the app).
    pub async fn start_with_others(
        client: OidcClient,
        others: Vec<OidcClient>,
    ) -> anyhow::Result<OidcProvider> {
        OidcProvider::start_full(client, others, "127.0.0.1", |command| command).await
    }

    /// Like [`OidcProvider::start_with_others`], with the command adjusted
    /// first: the stack echoes it and gives it a process group of its own
    /// under `cargo xtask up`, as it does the services.
    pub(crate) async fn start_adjusted(
        client: OidcClient,
        others: Vec<OidcClient>,
        adjust: impl Fn(ServiceCommand) -> ServiceCommand,
    ) -> anyhow::Result<OidcProvider> {
        OidcProvider::start_full(client, others, "127.0.0.1", adjust).await
    }

    /// Like [`OidcProvider::start`], with the issuer named `host` instead of
    /// `127.0.0.1` (it still listens on 127.0.0.1 only): for a relying
    /// party in a container, which reaches this machine's loopback under
    /// another address, so both it and a browser here must resolve `host`,
    /// each its own way (`--add-host`, `--host-resolver-rules`).
    pub async fn start_named(client: OidcClient, host: &str) -> anyhow::Result<OidcProvider> {
        OidcProvider::start_full(client, Vec::new(), host, |command| command).await
    }

    async fn start_full(
        client: OidcClient,
        others: Vec<OidcClient>,
        host: &str,
        adjust: impl Fn(ServiceCommand) -> ServiceCommand,
    ) -> anyhow::Result<OidcProvider> {
        if client.redirect_uris.is_empty() || others.iter().any(|o| o.redirect_uris.is_empty()) {
            bail!("the OpenID provider's client needs at least one redirect URI");
        }
        let package = oidc_provider_dir();
        if installed_oidc_provider_version().is_none() {
            bail!(
                "oidc-provider is not installed in {}; run `cargo xtask install` \
                 (or `npm install --prefix target/tools/oidc-provider oidc-provider@{OIDC_PROVIDER_VERSION}`)",
                package.display()
            );
        }
        let users = vec![
            OidcUser::new("ada", "Ada Lovelace"),
            OidcUser::new("grace", "Grace Hopper"),
        ];
        let dir = TempDir::new().context("creating the OpenID provider's folder")?;
        let (port, service) = start_on_a_free_port_async("the OpenID provider", |port| {
            let issuer = format!("http://{host}:{port}");
            let command = adjust(provider_command(
                port,
                &issuer,
                &client,
                &others,
                &users,
                dir.path(),
            ));
            async move {
                crate::process::ensure_port_free(port, "the OpenID provider")?;
                Ok((port, command.spawn().await?))
            }
        })
        .await?;
        Ok(OidcProvider {
            issuer: format!("http://{host}:{port}"),
            port,
            client,
            others,
            users,
            service,
            dir,
        })
    }

    /// Rotates the provider's signing keys, as a provider does on its own
    /// schedule: restarts it on the same port, with the same clients and
    /// users, and a new key under a new key id. The old key is no longer
    /// published, so tokens signed with it no longer verify; sign-ins and
    /// sessions at the provider are forgotten.
    pub async fn rotate_keys(&mut self) -> anyhow::Result<()> {
        self.service.terminate();
        self.service
            .wait(Duration::from_secs(10))
            .await
            .context("stopping the OpenID provider to rotate its keys")?;
        crate::process::ensure_port_free(self.port, "the OpenID provider again")?;
        self.service = provider_command(
            self.port,
            &self.issuer,
            &self.client,
            &self.others,
            &self.users,
            self.dir.path(),
        )
        .spawn()
        .await
        .context("restarting the OpenID provider with new keys")?;
        Ok(())
    }

    /// How many times the provider's JWKS (its public keys) was read so far.
    pub fn jwks_reads(&self) -> usize {
        std::fs::read_to_string(self.log_path())
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains(r#""event":"jwks.read""#))
            .count()
    }

    /// `http://127.0.0.1:<port>` (or the host it was started as), the `iss`
    /// of its tokens.
    pub fn issuer_url(&self) -> &str {
        &self.issuer
    }

    pub fn client_id(&self) -> &str {
        &self.client.client_id
    }

    pub fn client_secret(&self) -> &str {
        &self.client.client_secret
    }

    /// Everyone who can sign in.
    pub fn users(&self) -> &[OidcUser] {
        &self.users
    }

    /// The user called `username`.
    ///
    /// # Panics
    /// When there is none (the users are fixed: `ada`, `grace`).
    pub fn user(&self, username: &str) -> &OidcUser {
        self.users
            .iter()
            .find(|user| user.username == username)
            .unwrap_or_else(|| panic!("the OpenID provider has no user `{username}`"))
    }

    /// The provider's process, for a supervisor (`cargo xtask up`) that
    /// watches and stops it with the services.
    pub fn service_mut(&mut self) -> &mut Service {
        &mut self.service
    }

    /// The provider's log: one JSON object a line (sign-ins, failures, errors).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("provider.log")
    }

    /// What the provider wrote to its log and printed so far.
    pub fn log(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        format!("{log}{}", self.service.output())
    }

    /// Signs `username` in without a browser: follows the provider's
    /// redirects from `authorization_url` (as a client would send the
    /// browser there), submits its sign-in form with `password`, and returns
    /// where the provider finally sends the browser, on one of the client's
    /// redirect URIs: with `code` and `state`, or with `error`.
    ///
    /// Fails if the provider refuses the password, or sends the browser
    /// anywhere but itself and the redirect URIs.
    pub async fn sign_in(
        &self,
        authorization_url: &Url,
        username: &str,
        password: &str,
    ) -> anyhow::Result<Url> {
        let browser = reqwest::Client::builder()
            .no_proxy()
            .cookie_store(true)
            .redirect(Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .context("building the sign-in HTTP client")?;
        let mut request = browser.get(self.on_provider(authorization_url.clone())?);
        for _ in 0..SIGN_IN_STEPS {
            let response = request.send().await.context("requesting the provider")?;
            let url = response.url().clone();
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|value| value.to_str().ok())
                    .with_context(|| format!("{status} without a Location from {url}"))?;
                let next = url
                    .join(location)
                    .with_context(|| format!("Location {location} from {url}"))?;
                if self.is_redirect_uri(&next) {
                    return Ok(next);
                }
                request = browser.get(self.on_provider(next)?);
                continue;
            }
            let body = response.text().await.unwrap_or_default();
            if status == StatusCode::OK
                && let Some(action) = login_form_action(&body)
            {
                let action = url
                    .join(action)
                    .with_context(|| format!("form action {action} on {url}"))?;
                request = browser
                    .post(self.on_provider(action)?)
                    .form(&[("username", username), ("password", password)]);
                continue;
            }
            bail!(
                "the provider refused the sign-in of `{username}` at {url} ({status}): {}",
                page_text(&body)
            );
        }
        bail!("the sign-in of `{username}` took more than {SIGN_IN_STEPS} steps")
    }

    /// `url`, if it is on the provider: the sign-in goes nowhere else.
    fn on_provider(&self, url: Url) -> anyhow::Result<Url> {
        if url.origin().ascii_serialization() != self.issuer {
            bail!("the sign-in left the provider for {url}");
        }
        Ok(url)
    }

    /// Whether `url` is one of the clients' redirect URIs (whatever its query).
    fn is_redirect_uri(&self, url: &Url) -> bool {
        let mut bare = url.clone();
        bare.set_query(None);
        bare.set_fragment(None);
        std::iter::once(&self.client)
            .chain(&self.others)
            .flat_map(|client| &client.redirect_uris)
            .any(|uri| Url::parse(uri).is_ok_and(|uri| uri == bare))
    }
}

/// The provider script on `port` for `client`, `others` and `users`, logging
/// into `dir`.
fn provider_command(
    port: u16,
    issuer: &str,
    client: &OidcClient,
    others: &[OidcClient],
    users: &[OidcUser],
    dir: &Path,
) -> ServiceCommand {
    let config = json!({
        "port": port,
        "issuer": issuer,
        "client": {
            "client_id": client.client_id,
            "client_secret": client.client_secret,
            "redirect_uris": client.redirect_uris,
            "post_logout_redirect_uris": client.post_logout_redirect_uris,
        },
        "other_clients": others.iter().map(|other| json!({
            "client_id": other.client_id,
            "client_secret": other.client_secret,
            "redirect_uris": other.redirect_uris,
            "post_logout_redirect_uris": other.post_logout_redirect_uris,
        })).collect::<Vec<_>>(),
        "users": users.iter().map(|user| json!({
            "username": user.username,
            "password": user.password,
            "name": user.name,
            "email": user.email,
        })).collect::<Vec<_>>(),
        "token_ttl_seconds": client.token_ttl.as_secs().max(1),
        "log_file": dir.join("provider.log"),
    });
    let script = workspace_root().join("crates/test-support/oidc/provider.mjs");
    // Polled here, where the provider listens, whatever its issuer's host.
    let mut command = ServiceCommand::new(
        "node",
        format!("http://127.0.0.1:{port}/.well-known/openid-configuration"),
    )
    .arg(&script)
    .env("OIDC_PROVIDER_DIR", oidc_provider_dir())
    .env("OIDC_PROVIDER_CONFIG", config.to_string())
    .stdin_lifeline();
    if std::env::var_os("TEST_LOG").is_some() {
        command = command.echo("oidc-provider");
    }
    command
}

/// The `action` of the provider's sign-in form, if `page` is that form
/// (the script's `loginPage` marks it with `data-test="login-form"`).
fn login_form_action(page: &str) -> Option<&str> {
    let form = &page[page.find("<form")?..];
    let tag = &form[..form.find('>')?];
    if !tag.contains(r#"data-test="login-form""#) {
        return None;
    }
    let action = &tag[tag.find(r#"action=""#)? + r#"action=""#.len()..];
    Some(&action[..action.find('"')?])
}

/// A page's text without its tags, shortened, for error messages.
fn page_text(page: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in page.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    words.join(" ").chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_form_action_is_found_only_on_the_login_form() {
        let page = r#"<p>x</p><form method="post" action="/interaction/abc-1/login" data-test="login-form"><input name="username"></form>"#;
        assert_eq!(login_form_action(page), Some("/interaction/abc-1/login"));
        assert_eq!(
            login_form_action(r#"<form method="post" action="/search">"#),
            None
        );
        assert_eq!(login_form_action("<p>no form</p>"), None);
    }

    #[test]
    fn an_error_page_is_reported_as_its_text() {
        let page = "<html><body><h1>Sign in</h1>\n<p role=\"alert\">Wrong username or password.</p></body></html>";
        assert_eq!(page_text(page), "Sign in Wrong username or password.");
    }
}
