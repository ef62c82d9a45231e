//! The served copy: the fetched page with a `<base>` element, so its
//! relative links, styles and images still load from the original site.

use crate::WebsiteUrl;

/// `page` with `<base href="url">` as the first element of its head. A
/// page that sets its own `<base>` is left as it is (the first `<base>`
/// wins, and the page's own may be relative to its URL).
pub fn with_base(page: &[u8], url: &WebsiteUrl) -> Vec<u8> {
    let lower = page.to_ascii_lowercase();
    if find(&lower, b"<base").is_some() {
        return page.to_vec();
    }
    let element = format!("<base href=\"{}\">", escape_attribute(url.as_str()));
    let at = head_content_start(&lower).unwrap_or(0);
    let mut copy = Vec::with_capacity(page.len() + element.len());
    copy.extend_from_slice(&page[..at]);
    copy.extend_from_slice(element.as_bytes());
    copy.extend_from_slice(&page[at..]);
    copy
}

/// Where the content of `<head>` starts: after the `>` of its start tag
/// (`<head>` or `<head …>`, not `<header>`).
fn head_content_start(lower: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(offset) = find(&lower[from..], b"<head") {
        let after = from + offset + b"<head".len();
        match lower.get(after) {
            Some(b'>') => return Some(after + 1),
            Some(c) if c.is_ascii_whitespace() => {
                return find(&lower[after..], b">").map(|end| after + end + 1);
            }
            _ => from = after,
        }
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn escape_attribute(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::with_base;
    use crate::WebsiteUrl;

    fn url() -> WebsiteUrl {
        WebsiteUrl::parse("https://example.com/docs/page.html?a=1&b=2").unwrap()
    }

    fn copy(page: &str) -> String {
        String::from_utf8(with_base(page.as_bytes(), &url())).unwrap()
    }

    #[test]
    fn the_base_is_the_first_element_of_the_head() {
        assert_eq!(
            copy("<html><HEAD lang=en><title>t</title></head></html>"),
            "<html><HEAD lang=en><base href=\"https://example.com/docs/page.html?a=1&amp;b=2\"><title>t</title></head></html>"
        );
    }

    #[test]
    fn a_header_element_is_not_the_head() {
        assert_eq!(
            copy("<header>x</header><head><title>t</title></head>"),
            "<header>x</header><head><base href=\"https://example.com/docs/page.html?a=1&amp;b=2\"><title>t</title></head>"
        );
    }

    #[test]
    fn a_page_without_a_head_starts_with_the_base() {
        assert!(copy("<p>hello</p>").starts_with("<base href="));
    }

    #[test]
    fn a_page_with_its_own_base_is_unchanged() {
        let page = "<head><base href=\"/x/\"></head>";
        assert_eq!(copy(page), page);
    }
}
