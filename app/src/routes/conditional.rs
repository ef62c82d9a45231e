//! Conditional GETs: whether the client already holds an answer's bytes
//! (`If-None-Match`), so it can be answered 304.

use axum::http::{HeaderMap, HeaderValue, header};

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
    fn if_none_match_is_compared_weakly() {
        let tag = HeaderValue::from_static("\"these-bytes\"");
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
