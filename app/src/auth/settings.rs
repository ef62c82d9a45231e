//! What `AUTH` and the `OIDC_*` variables say, parsed: sign-in is either
//! off, or on with everything it needs (see `config` for the variables).

use std::time::Duration;

use reqwest::Url;
use secrecy::SecretString;

/// How long a session lasts unless `SESSION_LIFETIME` says otherwise: a
/// working day, so a shared machine is not signed in the next morning.
pub const DEFAULT_SESSION_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

/// Whether people sign in.
#[derive(Debug, Clone, Default)]
pub enum Auth {
    /// Anyone who reaches the app may read and write (local use).
    #[default]
    Off,
    /// Page writes need a session from the OpenID provider.
    Oidc(Box<OidcSettings>),
}

impl Auth {
    /// The settings when sign-in is on.
    pub fn oidc(&self) -> Option<&OidcSettings> {
        match self {
            Auth::Off => None,
            Auth::Oidc(settings) => Some(settings),
        }
    }
}

/// Sign-in with an OpenID provider.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    /// Where discovery starts (`/.well-known/openid-configuration` below it).
    pub issuer: Url,
    pub client_id: String,
    pub client_secret: SecretString,
    /// The app's address as browsers see it; the redirect URI is
    /// [`OidcSettings::redirect_uri`].
    pub public_url: Url,
    /// How long a session lasts from sign-in, whatever happens meanwhile.
    pub session_lifetime: Duration,
    /// Whether visitors who have not signed in see the lists (read-only).
    pub anonymous_read: bool,
}

/// Where the provider sends the browser back to, below `PUBLIC_URL`.
pub const CALLBACK_PATH: &str = "/auth/callback";

impl OidcSettings {
    /// `PUBLIC_URL` + [`CALLBACK_PATH`], however `PUBLIC_URL` ends.
    pub fn redirect_uri(&self) -> String {
        format!(
            "{}{CALLBACK_PATH}",
            self.public_url.as_str().trim_end_matches('/')
        )
    }

    /// Whether browsers reach the app over TLS: cookies are then `Secure`
    /// and `__Host-` prefixed.
    pub fn is_https(&self) -> bool {
        self.public_url.scheme() == "https"
    }
}
