//! HTML, rendered with maud. The full page and the htmx partials call the
//! same functions, so a fragment can never drift from the page it updates.

pub mod assets;
pub mod layout;
pub mod rendered;
pub mod todos;

pub use layout::error_page;
