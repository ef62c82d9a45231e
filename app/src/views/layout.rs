//! The page shell and the error page.

use axum::http::StatusCode;
use maud::{DOCTYPE, Markup, html};

use super::assets;

/// htmx settings: swap 422 responses (they carry the form with its error),
/// and no inline indicator styles, which the CSP would block.
const HTMX_CONFIG: &str = r#"{"includeIndicatorStyles":false,"responseHandling":[{"code":"204","swap":false},{"code":"[23]..","swap":true},{"code":"422","swap":true},{"code":"404","swap":true},{"code":"[45]..","swap":false,"error":true}]}"#;

pub fn page(title: &str, body: Markup) -> Markup {
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
            }
            body {
                main {
                    header { h1 { a href="/" { "Docket" } } }
                    (body)
                }
            }
        }
    }
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
