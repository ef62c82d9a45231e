//! A page of the JSON list as sent: its body and its tag, made once per
//! read.
//!
//! Requests for the same page at the same time share one read
//! ([`crate::read_together`]), and the body and tag follow from the read
//! alone. So they are made with the read and handed to every request that
//! shares it, as the HTML page is ([`super::rendered`]): serialising up to
//! 200 todos and hashing the result cost more than the read's share of a
//! request.

use axum::http::HeaderValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::domain::{Cursor, Todo};

/// The page as the API documents it.
#[derive(Serialize, ToSchema)]
pub struct TodoPage<'a> {
    /// Newest first.
    todos: &'a [Todo],
    /// Pass as `cursor` to get the next page; absent on the last page.
    next_cursor: Option<String>,
}

/// The bytes of a page and their `ETag`.
pub struct JsonPage {
    pub body: Bytes,
    pub etag: HeaderValue,
}

impl JsonPage {
    /// `todos`, and where the next page starts if one follows.
    pub fn encode(todos: &[Todo], next: Option<Cursor>) -> serde_json::Result<Self> {
        let body = serde_json::to_vec(&TodoPage {
            todos,
            next_cursor: next.map(Cursor::encode),
        })?;
        let etag = etag(&body);
        Ok(Self {
            body: Bytes::from(body),
            etag,
        })
    }
}

/// A strong tag for `body`: the first 128 bits of its SHA-256. It depends
/// on the bytes alone, so every replica gives the same page the same tag.
fn etag(body: &[u8]) -> HeaderValue {
    let digest = Sha256::digest(body);
    let tag = format!("\"{}\"", URL_SAFE_NO_PAD.encode(&digest[..16]));
    HeaderValue::try_from(tag).expect("base64url is a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TodoText;

    #[test]
    fn the_tag_follows_the_bytes() {
        let todo = Todo::new(&TodoText::parse("write the tag test").unwrap());
        let one = JsonPage::encode(std::slice::from_ref(&todo), None).unwrap();
        let again = JsonPage::encode(std::slice::from_ref(&todo), None).unwrap();
        let empty = JsonPage::encode(&[], None).unwrap();
        assert_eq!(one.etag, again.etag);
        assert_ne!(one.etag, empty.etag);
        assert_eq!(&empty.body[..], br#"{"todos":[],"next_cursor":null}"#);
        let tag = one.etag.to_str().unwrap();
        assert!(
            tag.starts_with('"') && tag.ends_with('"') && tag.len() == 24,
            "{tag}"
        );
    }
}
