//! Conditional GETs: a tag for an answer's bytes, and whether the client
//! already holds them (`If-None-Match`), so it can be answered 304.

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// A strong tag for `body`: the first 128 bits of its SHA-256. It depends
/// on the bytes alone, so every replica gives the same answer the same tag.
pub fn etag(body: &[u8]) -> HeaderValue {
    let digest = Sha256::digest(body);
    let tag = format!("\"{}\"", URL_SAFE_NO_PAD.encode(&digest[..16]));
    HeaderValue::try_from(tag).expect("base64url is a valid header value")
}

/// Whether `If-None-Match` names `etag` (or `*`): the client holds these
/// bytes already. Compared weakly, as RFC 9110 says for `If-None-Match`.
pub fn not_modified(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let ours = etag.as_bytes();
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b','))
        .map(|tag| tag.trim_ascii())
        .any(|tag| tag == b"*" || tag.strip_prefix(b"W/").unwrap_or(tag) == ours)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_follows_the_bytes_and_if_none_match_is_compared_weakly() {
        let tag = etag(b"these bytes");
        assert_eq!(tag, etag(b"these bytes"));
        assert_ne!(tag, etag(b"other bytes"));
        let tag_text = tag.to_str().unwrap();
        let asked = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::IF_NONE_MATCH, HeaderValue::from_str(value).unwrap());
            not_modified(&headers, &tag)
        };
        assert!(asked(tag_text));
        assert!(asked(&format!("W/{tag_text}")));
        assert!(asked(&format!("\"other\", {tag_text}")));
        assert!(asked("*"));
        assert!(!asked("\"other\""));
        assert!(!not_modified(&HeaderMap::new(), &tag));
    }
}
