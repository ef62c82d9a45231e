//! The page shell and the error page.

use axum::http::StatusCode;
use maud::{DOCTYPE, Markup, html};

use super::assets;

/// htmx settings: swap 422 responses (they carry the form with its error),
/// and no inline indicator styles, which the CSP would block.
const HTMX_CONFIG: &str = r#"{"includeIndicatorStyles":false,"responseHandling":[{"code":"204","swap":false},{"code":"[23]..","swap":true},{"code":"422","swap":true},{"code":"404","swap":true},{"code":"[45]..","swap":false,"error":true}]}"#;

/// What the header says about the visitor, with `AUTH=oidc`.
#[derive(Debug, Clone, Copy, Default)]
pub enum Account<'a> {
    /// Sign-in is off: nothing.
    #[default]
    None,
    /// Not signed in: a link to sign in.
    SignInLink,
    /// Their name, and a sign-out button (a form carrying the CSRF token).
    SignedIn { name: &'a str, csrf: &'a str },
}

pub fn page(title: &str, body: Markup) -> Markup {
    page_for(title, Account::None, body)
}

/// [`page`], with the visitor's account in the header.
pub fn page_for(title: &str, account: Account<'_>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="htmx-config" content=(HTMX_CONFIG);
                title { (title) }
                link rel="stylesheet" href=(assets::css_path());
                script src=(assets::htmx_path()) defer {}
                // Deferred scripts run in order: the extensions after htmx.
                script src=(assets::htmx_sse_path()) defer {}
                script src=(assets::idiomorph_path()) defer {}
                script src=(assets::show_more_path()) defer {}
            }
            body {
                main {
                    header {
                        h1 { a href="/" { "Docket" } }
                        (account_line(account))
                    }
                    (body)
                }
            }
        }
    }
}

fn account_line(account: Account<'_>) -> Markup {
    html! {
        @match account {
            Account::None => {},
            Account::SignInLink => p .account { a href="/auth/login" data-test="sign-in" { "Sign in" } },
            Account::SignedIn { name, csrf } => {
                form .account action="/auth/logout" method="post" {
                    "Signed in as " strong data-test="signed-in-name" { (name) } " "
                    input type="hidden" name="csrf" value=(csrf);
                    button type="submit" data-test="sign-out" { "Sign out" }
                }
            }
        }
    }
}

/// The page a visitor who has not signed in sees (`AUTH=oidc` without
/// `ANONYMOUS_READ`).
pub fn sign_in_page() -> Markup {
    page(
        "Sign in · Docket",
        html! {
            section data-test="sign-in-page" {
                h2 { "Sign in" }
                p { "Docket's todos are for its team. Sign in to see and change them." }
                p { a .button href="/auth/login" data-test="sign-in" { "Sign in" } }
            }
        },
    )
}

/// A whole page for an error, for requests made without htmx.
pub fn error_page(status: StatusCode, message: &str) -> Markup {
    page(
        &format!("{} · Docket", status.canonical_reason().unwrap_or("Error")),
        html! {
            section data-test="error" {
                h2 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("Error")) }
                p role="alert" { (message) }
                p { a href="/" { "Back to your todos" } }
            }
        },
    )
}
