//! A page address the controller will fetch.

use std::fmt;

/// An absolute `http` or `https` URL with a host and no user name or
/// password: credentials in a URL would be copied into the status, the
/// ConfigMap's annotations and the logs, where anyone who can read the
/// namespace reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebsiteUrl(url::Url);

impl WebsiteUrl {
    pub fn parse(value: &str) -> Result<WebsiteUrl, String> {
        let url = service_kit::env::http_url(value)?;
        if url.host_str().is_none_or(str::is_empty) {
            return Err("has no host".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry a user name or password".into());
        }
        Ok(WebsiteUrl(url))
    }

    pub fn as_url(&self) -> &url::Url {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for WebsiteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::WebsiteUrl;

    #[test]
    fn http_and_https_pages_are_accepted() {
        for url in ["http://example.com", "https://example.com/a/b?c=d#e"] {
            assert!(WebsiteUrl::parse(url).is_ok(), "{url}");
        }
    }

    #[test]
    fn other_schemes_credentials_and_relative_urls_are_refused() {
        for url in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "https://user:secret@example.com/",
            "https://user@example.com/",
            "/just/a/path",
            "example.com",
        ] {
            assert!(WebsiteUrl::parse(url).is_err(), "{url}");
        }
    }
}
