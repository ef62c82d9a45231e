//! An environment's overlay and its `images:` entry, the one promotion knob.
//!
//! Promotion must be reviewable as a diff of image references and nothing
//! else, so the file is edited as text: only the lines of the `images:`
//! entries that change are touched (a changed value is rewritten in place,
//! a tag replaced by a digest reuses the tag's line), and comments,
//! ordering and formatting everywhere else stay byte for byte. After every
//! edit the file is parsed again and must say exactly what was asked.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::error::GitopsError;

/// Where overlays live, relative to the repository root.
pub const OVERLAYS: &str = "kustomize/overlays";

/// The fields of an `images:` entry that promotion sets, in file order.
const FIELDS: [&str; 3] = ["newName", "newTag", "digest"];

/// One `images:` entry as Kustomize reads it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Image {
    pub name: String,
    #[serde(rename = "newName", default, skip_serializing_if = "Option::is_none")]
    pub new_name: Option<String>,
    #[serde(rename = "newTag", default, skip_serializing_if = "Option::is_none")]
    pub new_tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl Image {
    /// The entry for `name` that makes it run `reference`.
    pub fn pointing_at(name: &str, reference: &ImageRef) -> Image {
        Image {
            name: name.to_owned(),
            new_name: (reference.repository != name).then(|| reference.repository.clone()),
            new_tag: reference.tag.clone(),
            digest: reference.digest.clone(),
        }
    }

    /// The reference the cluster will pull, e.g. `ghcr.io/o/docket-app@sha256:…`.
    pub fn reference(&self) -> String {
        let mut out = self.new_name.clone().unwrap_or_else(|| self.name.clone());
        if let Some(tag) = &self.new_tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(digest);
        }
        out
    }

    fn field(&self, key: &str) -> Option<&str> {
        match key {
            "newName" => self.new_name.as_deref(),
            "newTag" => self.new_tag.as_deref(),
            "digest" => self.digest.as_deref(),
            _ => None,
        }
    }
}

/// A parsed image reference: `repository[:tag][@sha256:hex]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageRef {
    pub fn parse(text: &str) -> Result<ImageRef, GitopsError> {
        let invalid = |reason: &str| GitopsError::InvalidInput {
            what: format!("image reference `{text}`"),
            reason: reason.to_owned(),
        };
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => {
                let hex = digest
                    .strip_prefix("sha256:")
                    .ok_or_else(|| invalid("a digest must start with sha256:"))?;
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(invalid("a sha256 digest has 64 hex digits"));
                }
                (rest, Some(digest.to_owned()))
            }
            None => (text, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match rest[last_slash..].find(':') {
            Some(colon) => (
                &rest[..last_slash + colon],
                Some(rest[last_slash + colon + 1..].to_owned()),
            ),
            None => (rest, None),
        };
        if repository.is_empty() || repository.contains(char::is_whitespace) {
            return Err(invalid("no repository name"));
        }
        if tag.as_deref() == Some("") {
            return Err(invalid("empty tag"));
        }
        if tag.is_none() && digest.is_none() {
            return Err(invalid("name a tag or a digest, never a bare repository"));
        }
        Ok(ImageRef {
            repository: repository.to_owned(),
            tag,
            digest,
        })
    }
}

/// The environments a repository has: the folders under `kustomize/overlays`.
pub fn environments(root: &Path) -> anyhow::Result<Vec<String>> {
    let dir = root.join(OVERLAYS);
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        if entry.path().join("kustomization.yaml").is_file() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// One environment's `kustomization.yaml`, as text.
#[derive(Debug, Clone)]
pub struct Overlay {
    pub env: String,
    pub path: PathBuf,
    text: String,
}

#[derive(Deserialize)]
struct Kustomization {
    #[serde(default)]
    images: Vec<Image>,
    #[serde(default)]
    namespace: Option<String>,
}

impl Overlay {
    /// Opens `env`'s overlay under `root`; unknown names fail with the known ones.
    pub fn open(root: &Path, env: &str) -> anyhow::Result<Overlay> {
        let path = root.join(OVERLAYS).join(env).join("kustomization.yaml");
        let known = environments(root)?;
        if env.contains(['/', '\\']) || !known.iter().any(|k| k == env) {
            return Err(GitopsError::UnknownEnv {
                env: env.to_owned(),
                known,
            }
            .into());
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        Ok(Overlay {
            env: env.to_owned(),
            path,
            text,
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The `images:` entries, parsed.
    pub fn images(&self) -> anyhow::Result<Vec<Image>> {
        parse_images(&self.text).with_context(|| format!("parsing {}", self.path.display()))
    }

    /// The `namespace:` every object of the overlay is put in, if it sets one.
    pub fn namespace(&self) -> anyhow::Result<Option<String>> {
        let kustomization: Kustomization = serde_yaml_ng::from_str(&self.text)
            .with_context(|| format!("parsing {}", self.path.display()))?;
        Ok(kustomization.namespace)
    }

    /// The entry a short name (`app`) or full name (`ghcr.io/o/docket-app`) means.
    pub fn resolve(&self, key: &str) -> anyhow::Result<Image> {
        let images = self.images()?;
        let matches = |image: &&Image| {
            let last = image.name.rsplit('/').next().unwrap_or_default();
            image.name == key || last == key || last == format!("docket-{key}")
        };
        match images.iter().find(matches) {
            Some(image) => Ok(image.clone()),
            None => Err(GitopsError::UnknownImage {
                name: key.to_owned(),
                env: self.env.clone(),
                known: images.iter().map(|i| i.name.clone()).collect(),
            }
            .into()),
        }
    }

    /// Makes each of `wanted` the entry for its name, editing only the
    /// lines that must change. Returns whether the text changed.
    pub fn set_images(&mut self, wanted: &[Image]) -> anyhow::Result<bool> {
        let edited = edit_images(&self.text, wanted)
            .with_context(|| format!("editing the images: entry of {}", self.path.display()))?;
        let changed = edited != self.text;
        self.text = edited;
        Ok(changed)
    }

    pub fn save(&self) -> anyhow::Result<()> {
        std::fs::write(&self.path, &self.text)
            .with_context(|| format!("writing {}", self.path.display()))
    }
}

/// The `images:` entries of a kustomization's text.
pub fn parse_images(text: &str) -> anyhow::Result<Vec<Image>> {
    let kustomization: Kustomization = serde_yaml_ng::from_str(text)?;
    Ok(kustomization.images)
}

/// One entry's lines in the `images:` block.
struct Entry {
    /// Index of the `- ` line.
    first: usize,
    /// Index of the entry's last field line.
    last: usize,
    /// Indentation of the fields (the dash's column + 2).
    indent: usize,
    name: String,
    /// Field → line index.
    fields: Vec<(String, usize)>,
}

/// The text with `wanted` applied; see [`Overlay::set_images`].
pub fn edit_images(text: &str, wanted: &[Image]) -> anyhow::Result<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let (start, end) = images_block(&lines)?;
    let entries = entries(&lines[start..end], start)?;

    // Line edits, applied from the bottom up so indices stay valid.
    enum Edit {
        Replace(usize, String),
        Delete(usize),
        InsertAfter(usize, Vec<String>),
    }
    let mut edits = Vec::new();
    let mut appended = Vec::new();
    for image in wanted {
        let Some(entry) = entries.iter().find(|e| e.name == image.name) else {
            // A new entry goes at the end of the block, in the block's style.
            let dash = entries.first().map_or(2, |e| e.indent - 2);
            appended.push(format!(
                "{}- name: {}",
                " ".repeat(dash),
                scalar(&image.name)
            ));
            for key in FIELDS {
                if let Some(value) = image.field(key) {
                    appended.push(format!("{}{key}: {}", " ".repeat(dash + 2), scalar(value)));
                }
            }
            continue;
        };
        let mut removed = Vec::new();
        let mut added = Vec::new();
        for key in FIELDS {
            let line = entry.fields.iter().find(|(k, _)| k == key).map(|(_, i)| *i);
            match (line, image.field(key)) {
                (Some(i), Some(value)) => {
                    if field_value(&lines[i])? != value {
                        edits.push(Edit::Replace(i, with_value(&lines[i], value)));
                    }
                }
                (Some(i), None) => removed.push(i),
                (None, Some(value)) => added.push((key, value)),
                (None, None) => {}
            }
        }
        if removed.contains(&entry.first) {
            bail!(
                "line {}: a field to remove sits on the entry's `- ` line; put `name` first",
                entry.first + 1
            );
        }
        // A field swapped for another (a tag for a digest) takes over its line.
        let mut extra = Vec::new();
        for (key, value) in added {
            let line = format!("{}{key}: {}", " ".repeat(entry.indent), scalar(value));
            match removed.pop() {
                Some(i) => edits.push(Edit::Replace(i, line)),
                None => extra.push(line),
            }
        }
        edits.extend(removed.into_iter().map(Edit::Delete));
        if !extra.is_empty() {
            edits.push(Edit::InsertAfter(entry.last, extra));
        }
    }
    if !appended.is_empty() {
        let after = entries.last().map_or(start, |e| e.last);
        edits.push(Edit::InsertAfter(after, appended));
    }

    let index = |edit: &Edit| match edit {
        Edit::Replace(i, _) | Edit::Delete(i) | Edit::InsertAfter(i, _) => *i,
    };
    edits.sort_by_key(|edit| std::cmp::Reverse(index(edit)));
    for edit in edits {
        match edit {
            Edit::Replace(i, line) => lines[i] = line,
            Edit::Delete(i) => {
                lines.remove(i);
            }
            Edit::InsertAfter(i, new) => {
                lines.splice(i + 1..i + 1, new);
            }
        }
    }
    let mut edited = lines.join("\n");
    if text.ends_with('\n') {
        edited.push('\n');
    }

    // The edit must say exactly what was asked, and keep every other entry.
    let before = parse_images(text)?;
    let after = parse_images(&edited).context("the edited file no longer parses")?;
    for image in wanted {
        if !after.contains(image) {
            bail!(
                "after editing, the entry for {} is not {image:?}",
                image.name
            );
        }
    }
    for image in &before {
        if !wanted.iter().any(|w| w.name == image.name) && !after.contains(image) {
            bail!("editing changed the untouched entry {}", image.name);
        }
    }
    Ok(edited)
}

/// The lines `[start, end)` of the top-level `images:` sequence.
fn images_block(lines: &[String]) -> anyhow::Result<(usize, usize)> {
    let header = lines
        .iter()
        .position(|l| {
            l.strip_prefix("images:")
                .is_some_and(|rest| rest.trim().is_empty() || rest.trim_start().starts_with('#'))
        })
        .context("the file has no top-level `images:` entry")?;
    let mut end = header + 1;
    for (i, line) in lines.iter().enumerate().skip(header + 1) {
        let top_level = !line.is_empty() && !line.starts_with([' ', '-']);
        if top_level {
            break;
        }
        if !line.trim().is_empty() {
            end = i + 1;
        }
    }
    Ok((header + 1, end))
}

fn entries(block: &[String], offset: usize) -> anyhow::Result<Vec<Entry>> {
    let mut entries: Vec<Entry> = Vec::new();
    for (n, line) in block.iter().enumerate() {
        let i = offset + n;
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let column = line.len() - trimmed.len();
        let (field_text, is_dash) = match trimmed.strip_prefix("- ") {
            Some(rest) => (rest.trim_start(), true),
            None => (trimmed, false),
        };
        let (key, _) = field_text
            .split_once(':')
            .with_context(|| format!("line {}: expected `key: value` in images:", i + 1))?;
        if is_dash {
            entries.push(Entry {
                first: i,
                last: i,
                indent: column + 2,
                name: String::new(),
                fields: Vec::new(),
            });
        }
        let entry = entries
            .last_mut()
            .with_context(|| format!("line {}: a field before any `- ` entry", i + 1))?;
        entry.last = i;
        if key == "name" {
            entry.name = field_value(line)?;
        }
        entry.fields.push((key.to_owned(), i));
    }
    Ok(entries)
}

/// The value of a `key: value` line (quotes and trailing comments removed).
fn field_value(line: &str) -> anyhow::Result<String> {
    let (_, raw) = line.split_once(':').context("not a `key: value` line")?;
    let raw = match raw.find(" #") {
        Some(comment) => &raw[..comment],
        None => raw,
    };
    serde_yaml_ng::from_str::<String>(raw.trim())
        .with_context(|| format!("reading the value of `{}`", line.trim()))
}

/// `line` with its value replaced, keeping the key, indentation and comment.
fn with_value(line: &str, value: &str) -> String {
    let (key, raw) = line.split_once(':').unwrap_or((line, ""));
    let comment = raw.find(" #").map(|i| &raw[i..]).unwrap_or_default();
    format!("{key}: {}{comment}", scalar(value))
}

/// `value` as a YAML scalar that reads back as the same string: plain when
/// it can be (`0.1.0`, `sha256:…`), JSON-quoted when plain would change
/// its meaning (`1.0` would be a number, `true` a boolean).
fn scalar(value: &str) -> String {
    match serde_yaml_ng::from_str::<serde_yaml_ng::Value>(value) {
        Ok(serde_yaml_ng::Value::String(s)) if s == value => value.to_owned(),
        _ => serde_json::to_string(value).unwrap_or_else(|_| format!("\"{value}\"")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    const FILE: &str = "\
# Staging overlay.
namespace: docket-staging   # kept

# The promotion knob.
images:
  - name: ghcr.io/docket-dev/docket-app
    newTag: 0.1.0 # first release
  - name: ghcr.io/docket-dev/docket-broadcaster
    newTag: \"1.0\"
# trailing comment
";

    fn changed_lines(a: &str, b: &str) -> Vec<(String, String)> {
        a.lines()
            .zip(b.lines())
            .filter(|(x, y)| x != y)
            .map(|(x, y)| (x.to_owned(), y.to_owned()))
            .collect()
    }

    #[test]
    fn a_tag_becomes_a_digest_on_the_same_line() {
        let reference =
            ImageRef::parse(&format!("ghcr.io/docket-dev/docket-app@{DIGEST}")).unwrap();
        let image = Image::pointing_at("ghcr.io/docket-dev/docket-app", &reference);
        let edited = edit_images(FILE, &[image]).unwrap();
        assert_eq!(edited.lines().count(), FILE.lines().count());
        assert_eq!(
            changed_lines(FILE, &edited),
            [(
                "    newTag: 0.1.0 # first release".to_owned(),
                format!("    digest: {DIGEST}")
            )]
        );
    }

    #[test]
    fn setting_the_same_image_again_changes_nothing() {
        let images = parse_images(FILE).unwrap();
        assert_eq!(edit_images(FILE, &images).unwrap(), FILE);
    }

    #[test]
    fn a_tag_that_looks_like_a_number_stays_a_string() {
        let image = Image {
            name: "ghcr.io/docket-dev/docket-app".into(),
            new_name: None,
            new_tag: Some("2.0".into()),
            digest: None,
        };
        let edited = edit_images(FILE, std::slice::from_ref(&image)).unwrap();
        assert!(
            edited.contains("    newTag: \"2.0\" # first release"),
            "{edited}"
        );
        assert!(parse_images(&edited).unwrap().contains(&image));
    }

    #[test]
    fn another_owner_sets_new_name_and_a_new_entry_is_appended() {
        let moved = Image::pointing_at(
            "ghcr.io/docket-dev/docket-app",
            &ImageRef::parse(&format!("ghcr.io/fork/docket-app:abc@{DIGEST}")).unwrap(),
        );
        let new = Image {
            name: "ghcr.io/docket-dev/docket-cronjobs".into(),
            new_name: None,
            new_tag: Some("abc".into()),
            digest: None,
        };
        let edited = edit_images(FILE, &[moved.clone(), new.clone()]).unwrap();
        let images = parse_images(&edited).unwrap();
        assert!(images.contains(&moved) && images.contains(&new), "{edited}");
        assert!(edited.ends_with("# trailing comment\n"));
        assert!(edited.starts_with("# Staging overlay.\nnamespace: docket-staging   # kept\n"));
    }

    #[test]
    fn image_references_parse_strictly() {
        let r = ImageRef::parse("registry:5000/docket-app:1.2.3").unwrap();
        assert_eq!(
            (r.repository.as_str(), r.tag.as_deref(), r.digest),
            ("registry:5000/docket-app", Some("1.2.3"), None)
        );
        assert!(ImageRef::parse("ghcr.io/o/docket-app").is_err());
        assert!(ImageRef::parse("ghcr.io/o/docket-app@sha256:abc").is_err());
        assert!(ImageRef::parse("ghcr.io/o/docket-app@md5:0").is_err());
    }
}
