//! What a failed story leaves for the person debugging it: a screenshot and
//! the HTML of every page it had open, under `target/e2e-artifacts/<test>/`.

use std::path::{Path, PathBuf};

use playwright_rs::Page;

/// The folder for one test's artifacts.
pub fn folder(test: &str) -> PathBuf {
    crate::target_dir().join("e2e-artifacts").join(test)
}

/// Removes what an earlier run of this test left, so the folder only ever
/// shows the latest failure.
pub fn clear(test: &str) {
    // Absent is the normal case.
    let _ = std::fs::remove_dir_all(folder(test));
}

/// Saves `page-<n>.png` and `page-<n>.html` for each open page; returns a
/// description naming the folder and the files (or why a file is missing).
pub async fn capture(test: &str, pages: &[Page]) -> String {
    let dir = folder(test);
    if let Err(error) = std::fs::create_dir_all(&dir) {
        return format!("could not create {}: {error}", dir.display());
    }
    let mut notes = Vec::new();
    for (index, page) in pages.iter().enumerate().filter(|(_, p)| !p.is_closed()) {
        let stem = format!("page-{}", index + 1);
        let png = dir.join(format!("{stem}.png"));
        match page.screenshot_to_file(&png, None).await {
            Ok(_) => notes.push(file_name(&png)),
            Err(error) => notes.push(format!("{stem}.png not taken: {error}")),
        }
        let html = dir.join(format!("{stem}.html"));
        match page.content().await {
            Ok(content) => match std::fs::write(&html, content) {
                Ok(()) => notes.push(file_name(&html)),
                Err(error) => notes.push(format!("{stem}.html not written: {error}")),
            },
            Err(error) => notes.push(format!("{stem}.html not read: {error}")),
        }
    }
    if notes.is_empty() {
        notes.push("no page was open".into());
    }
    format!("{} ({})", dir.display(), notes.join(", "))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}
