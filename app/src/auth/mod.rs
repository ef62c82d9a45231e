//! Sign-in with an OpenID provider (`AUTH=oidc`): the settings, the
//! session cookie, the authorization code flow and the forms' CSRF token.
//! Nothing here knows about routes; `routes::auth` serves the flow and
//! `routes::signed_in` enforces it.

mod csrf;
mod flow;
mod session;
mod settings;

pub use csrf::{CsrfTokens, FIELD as CSRF_FIELD};
pub use flow::{Identity, PendingSignIn, Provider, SIGN_IN_TIMEOUT, SignInError};
pub use session::{Jar, Session, SessionCookies};
pub use settings::{Auth, CALLBACK_PATH, DEFAULT_SESSION_LIFETIME, OidcSettings};
