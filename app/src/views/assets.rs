//! Static files embedded in the binary, served under names that change when
//! their content does, so browsers may cache them for a year.

/// htmx, vendored from the npm package `htmx.org` at this version.
pub const HTMX_VERSION: &str = "2.0.8";
const HTMX: &[u8] = include_bytes!("../../static/htmx-2.0.8.min.js");
/// htmx's SSE extension, vendored from the npm package `htmx-ext-sse`.
pub const HTMX_SSE_VERSION: &str = "2.2.4";
const HTMX_SSE: &[u8] = include_bytes!("../../static/htmx-ext-sse-2.2.4.min.js");
/// Idiomorph's htmx extension, vendored from the npm package `idiomorph`
/// (0BSD licence): swaps change the lists in place, so a button being
/// pressed while the lists refresh stays the same element and its click lands.
pub const IDIOMORPH_VERSION: &str = "0.8.0";
const IDIOMORPH: &[u8] = include_bytes!("../../static/idiomorph-ext-0.8.0.min.js");
const CSS: &[u8] = include_bytes!("../../static/app.css");
/// The page's own script: "Show more" (see `views::todos`).
const SHOW_MORE: &[u8] = include_bytes!("../../static/show-more.js");

pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

/// The stylesheet's URL carries a hash of its content.
pub fn css_path() -> &'static str {
    static PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PATH.get_or_init(|| hashed("app", "css", CSS))
}

/// The page's script's URL carries a hash of its content.
pub fn show_more_path() -> &'static str {
    static PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PATH.get_or_init(|| hashed("show-more", "js", SHOW_MORE))
}

pub fn htmx_path() -> &'static str {
    "/static/htmx-2.0.8.min.js"
}

pub fn htmx_sse_path() -> &'static str {
    "/static/htmx-ext-sse-2.2.4.min.js"
}

pub fn idiomorph_path() -> &'static str {
    "/static/idiomorph-ext-0.8.0.min.js"
}

/// Finds an asset by its full URL path.
pub fn find(path: &str) -> Option<Asset> {
    const SCRIPT: &str = "text/javascript; charset=utf-8";
    [
        (htmx_path(), SCRIPT, HTMX),
        (htmx_sse_path(), SCRIPT, HTMX_SSE),
        (idiomorph_path(), SCRIPT, IDIOMORPH),
        (show_more_path(), SCRIPT, SHOW_MORE),
        (css_path(), "text/css; charset=utf-8", CSS),
    ]
    .into_iter()
    .find(|(known, _, _)| *known == path)
    .map(|(path, content_type, body)| Asset {
        path,
        content_type,
        body,
    })
}

/// `/static/{stem}-{hash of body}.{extension}`.
fn hashed(stem: &str, extension: &str, body: &[u8]) -> String {
    format!("/static/{stem}-{:016x}.{extension}", fnv1a(body))
}

/// FNV-1a: a tiny, stable content hash; collisions only cost a cache miss.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_found_by_their_versioned_paths_only() {
        assert!(find(htmx_path()).is_some());
        assert!(find(css_path()).is_some());
        assert!(find(htmx_sse_path()).is_some());
        assert!(find(idiomorph_path()).is_some());
        assert!(find(show_more_path()).is_some());
        assert!(find("/static/app.css").is_none());
        assert!(find("/static/show-more.js").is_none());
        assert!(htmx_path().contains(HTMX_VERSION));
        assert!(htmx_sse_path().contains(HTMX_SSE_VERSION));
        assert!(idiomorph_path().contains(IDIOMORPH_VERSION));
    }
}
