//! Sign-in with an OpenID provider (`AUTH=oidc`): the settings, the
//! session cookie, the authorization code flow and the forms' CSRF token.
//! Nothing here knows about routes; `routes::auth` serves the flow and
//! `routes::signed_in` enforces it.

mod csrf;
mod flow;
mod key_refresh;
mod session;
mod settings;

pub use csrf::{CsrfTokens, FIELD as CSRF_FIELD};
pub use flow::{PendingSignIn, Provider, SIGN_IN_TIMEOUT, SignInError};
pub use session::{Jar, Session, SessionCookies};
pub use settings::{Auth, CALLBACK_PATH, DEFAULT_SESSION_LIFETIME, OidcSettings};

use std::sync::Arc;

use crate::write_marker::CookieKey;

/// Everything sign-in needs at request time, with `AUTH=oidc`.
#[derive(Debug, Clone)]
pub struct Oidc {
    pub settings: Arc<OidcSettings>,
    pub provider: Provider,
    pub cookies: SessionCookies,
    pub csrf: CsrfTokens,
}

impl Oidc {
    /// Sign-in with `settings`, its cookies and tokens keyed from `key`
    /// (each with a key derived for it alone).
    pub fn new(settings: OidcSettings, key: &CookieKey) -> Oidc {
        let settings = Arc::new(settings);
        Oidc {
            provider: Provider::new(Arc::clone(&settings)),
            cookies: SessionCookies::new(key, settings.is_https()),
            csrf: CsrfTokens::new(key),
            settings,
        }
    }
}
