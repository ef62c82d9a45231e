//! Who is making a request, with `AUTH=oidc`: extractors over the session
//! cookie ([`crate::auth::SessionCookies`]), read afresh on every request,
//! so an expired or undecryptable cookie is a visitor who has not signed in.

use std::time::SystemTime;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::extract::PageError;
use crate::auth::Session;
use crate::domain::{Actor, Person};
use crate::error::AppError;
use crate::state::AppState;
use crate::views::layout::Account;
use crate::views::todos::Controls;

/// Someone signed in: who they are at the provider and what to call them.
/// With `AUTH=off` nobody is, and a handler that takes this answers 401;
/// routes that serve both take [`Visitor`].
#[derive(Clone)]
pub struct SignedIn {
    pub person: Person,
    /// The token this session's forms carry. Never logged.
    csrf: String,
}

/// Without the token: it must never reach a log.
impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedIn")
            .field("person", &self.person)
            .finish_non_exhaustive()
    }
}

impl SignedIn {
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    /// Whether `presented` is this session's CSRF token (constant time).
    pub fn has_csrf(&self, presented: &str) -> bool {
        subtle::ConstantTimeEq::ct_eq(self.csrf.as_bytes(), presented.trim().as_bytes()).into()
    }
}

/// Whoever asks: the optional variant of [`SignedIn`].
#[derive(Debug, Clone)]
pub enum Visitor {
    /// `AUTH=off`: everyone may do everything.
    Anyone,
    SignedIn(SignedIn),
    /// `AUTH=oidc` and no (current) session; `may_read` with `ANONYMOUS_READ`.
    Anonymous {
        may_read: bool,
    },
}

impl Visitor {
    /// Who a change this visitor makes is recorded as.
    pub fn actor(&self) -> Actor {
        match self {
            Visitor::SignedIn(signed_in) => Actor::Person(signed_in.person.clone()),
            Visitor::Anyone | Visitor::Anonymous { .. } => Actor::Anonymous,
        }
    }

    /// What the lists offer this visitor; `None`: they may not see them.
    pub fn controls(&self) -> Option<Controls<'_>> {
        match self {
            Visitor::Anyone => Some(Controls::Open),
            Visitor::SignedIn(signed_in) => Some(Controls::SignedIn {
                csrf: &signed_in.csrf,
            }),
            Visitor::Anonymous { may_read: true } => Some(Controls::ReadOnly),
            Visitor::Anonymous { may_read: false } => None,
        }
    }

    /// What the header says about them.
    pub fn account(&self) -> Account<'_> {
        match self {
            Visitor::Anyone => Account::None,
            Visitor::SignedIn(signed_in) => Account::SignedIn {
                name: signed_in.person.name(),
                csrf: &signed_in.csrf,
            },
            Visitor::Anonymous { .. } => Account::SignInLink,
        }
    }

    /// The lists' controls, or 401 for a visitor who may not read.
    pub fn reading(&self) -> Result<Controls<'_>, AppError> {
        self.controls().ok_or(AppError::SignInRequired)
    }
}

/// The current session in `parts`, when sign-in is on.
pub(super) fn visitor(parts: &Parts, state: &AppState) -> Visitor {
    let Some(oidc) = &state.oidc else {
        return Visitor::Anyone;
    };
    match oidc.cookies.session_in(parts, SystemTime::now()) {
        Some(session) => Visitor::SignedIn(signed_in(state, session)),
        None => Visitor::Anonymous {
            may_read: oidc.settings.anonymous_read,
        },
    }
}

fn signed_in(state: &AppState, session: Session) -> SignedIn {
    let csrf = state
        .oidc
        .as_ref()
        .map(|oidc| oidc.csrf.token(&session))
        .unwrap_or_default();
    SignedIn {
        person: session.person,
        csrf,
    }
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(visitor(parts, state))
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        match visitor(parts, state) {
            Visitor::SignedIn(signed_in) => Ok(signed_in),
            Visitor::Anyone | Visitor::Anonymous { .. } => Err(AppError::SignInRequired.into()),
        }
    }
}
