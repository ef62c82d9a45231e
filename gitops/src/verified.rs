//! The verified marker: which images an environment was seen serving.
//!
//! `gitops verify-env` writes `verified/<env>.json` in the config repository
//! once the environment answers `/version` with the expected commit;
//! `gitops promote` refuses to copy an environment's images unless the
//! marker names exactly the images its overlay names now. A file rather
//! than a git note: it travels with every clone and push, shows in the
//! history as its own commit, and Argo CD ignores it (no Application points
//! at `verified/`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::overlay::{Image, Overlay};

/// Folder of the markers, relative to the config repository's root.
pub const DIR: &str = "verified";

/// What was verified, where and when (the commit date says when).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verified {
    pub environment: String,
    /// The application commit `/version` reported.
    pub commit: String,
    /// The application version `/version` reported.
    pub version: String,
    pub url: String,
    /// The overlay's `images:` entries at the time, sorted by name.
    pub images: Vec<Image>,
}

pub fn path(root: &Path, env: &str) -> PathBuf {
    root.join(DIR).join(format!("{env}.json"))
}

pub fn read(root: &Path, env: &str) -> anyhow::Result<Option<Verified>> {
    let path = path(root, env);
    if !path.exists() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let marker =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok(Some(marker))
}

pub fn write(root: &Path, marker: &Verified) -> anyhow::Result<()> {
    let path = path(root, &marker.environment);
    std::fs::create_dir_all(root.join(DIR))?;
    let text = serde_json::to_string_pretty(marker)? + "\n";
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

/// The overlay's images in a stable order, for comparing with a marker.
pub fn sorted_images(overlay: &Overlay) -> anyhow::Result<Vec<Image>> {
    let mut images = overlay.images()?;
    images.sort();
    Ok(images)
}

/// Whether `overlay` runs exactly the images its marker was written for.
pub fn is_verified(root: &Path, overlay: &Overlay) -> anyhow::Result<bool> {
    Ok(match read(root, &overlay.env)? {
        Some(marker) => marker.images == sorted_images(overlay)?,
        None => false,
    })
}
