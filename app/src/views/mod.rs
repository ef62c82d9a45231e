//! What the app sends: HTML rendered with maud, and the JSON list's pages.
//! The full page and the htmx partials call the same functions, so a
//! fragment can never drift from the page it updates.

pub mod assets;
pub mod json_page;
pub mod layout;
pub mod rendered;
pub mod todos;

pub use layout::error_page;
