//! Domain types: what a todo is, and what input may become one.
//!
//! Everything that arrives from outside (forms, JSON, query strings, paths)
//! is parsed into these types at the edge, so the rest of the app never sees
//! a todo text that is too long or a page size that is out of range.

mod actor;
mod api_tokens;
mod count_param;
mod idempotency_key;
mod lists;
mod page;
mod picture;
mod todo;
mod todo_text;

pub use actor::{Actor, Person, PersonError};
pub use api_tokens::{Access, ApiTokens, LineProblem, TokenName, TokensFileError};
pub use idempotency_key::{IdempotencyKey, IdempotencyKeyError};
pub use lists::{Shown, ShownError, TodoLists};
pub use page::{Cursor, CursorError, Limit, LimitError, PageKey};
pub use picture::{ImageType, Picture, PictureError};
pub use todo::{Todo, TodoId, storage_now};
pub use todo_text::{TodoText, TodoTextError};
