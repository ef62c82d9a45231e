//! The vendored schemas: refreshing them from a folder laid out the same way,
//! and the guard that keeps every check inside the repository.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::schema::SCHEMA_DIR;

/// Copies every file [`SCHEMA_DIR`] holds from the same relative path under
/// `from`, and prints which changed. Fails, copying nothing, if `from` lacks
/// any of them: a refresh never silently drops a schema. New files in `from`
/// are listed but not taken (vendor only what the checks use).
pub fn refresh_schemas(root: &Path, from: &Path) -> anyhow::Result<()> {
    let ours = root.join(SCHEMA_DIR);
    let files = data_files(&ours)?;
    let missing: Vec<_> = files
        .iter()
        .filter(|relative| !from.join(relative).is_file())
        .map(|relative| relative.display().to_string())
        .collect();
    if !missing.is_empty() {
        bail!(
            "{} lacks {} vendored file(s), nothing copied: {}",
            from.display(),
            missing.len(),
            missing.join(", ")
        );
    }
    let mut changed = 0;
    for relative in &files {
        let source = from.join(relative);
        let bytes =
            std::fs::read(&source).with_context(|| format!("reading {}", source.display()))?;
        let target = ours.join(relative);
        if std::fs::read(&target).ok().as_deref() != Some(bytes.as_slice()) {
            std::fs::write(&target, &bytes)
                .with_context(|| format!("writing {}", target.display()))?;
            println!("schemas: updated {}", relative.display());
            changed += 1;
        }
    }
    for relative in data_files(from)? {
        if !files.contains(&relative) {
            println!(
                "schemas: not vendored (add it by hand if a check needs it): {}",
                relative.display()
            );
        }
    }
    println!(
        "schemas: {changed} of {} file(s) changed; update {SCHEMA_DIR}/README.md with the new versions",
        files.len()
    );
    Ok(())
}

/// Every file under `dir` but READMEs, as paths relative to `dir`, sorted.
fn data_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in
            std::fs::read_dir(&current).with_context(|| format!("reading {}", current.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.file_name().is_some_and(|n| n != "README.md") {
                found.push(path.strip_prefix(dir)?.to_path_buf());
            }
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// CI on a hosted runner has nothing beside the checkout: no file the
    /// build, the tests or the workflows read may point outside it.
    #[test]
    fn nothing_the_checks_read_points_outside_the_repository() {
        let output = std::process::Command::new("git")
            .current_dir(root())
            .args(["ls-files", "-z"])
            .output()
            .expect("git ls-files");
        let mut offenders = Vec::new();
        for file in String::from_utf8_lossy(&output.stdout).split('\0') {
            let checked = [".rs", ".toml", ".yaml", ".yml", ".Dockerfile", ".conf"]
                .iter()
                .any(|suffix| file.ends_with(suffix))
                || file.starts_with(".ci/");
            if !checked {
                continue;
            }
            let text = std::fs::read_to_string(root().join(file)).unwrap_or_default();
            if text.contains(concat!("../", "shared")) {
                offenders.push(file.to_owned());
            }
        }
        assert!(
            offenders.is_empty(),
            "these point outside the checkout: {offenders:?}"
        );
    }

    #[test]
    fn a_refresh_takes_every_vendored_file_or_none() {
        let from = tempfile::tempdir().unwrap();
        let ours = root().join(SCHEMA_DIR);
        // A source with every file but one: refused, nothing copied.
        let files = data_files(&ours).unwrap();
        assert!(files.len() > 40, "{files:?}");
        for relative in &files[1..] {
            let target = from.path().join(relative);
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::copy(ours.join(relative), target).unwrap();
        }
        let err = refresh_schemas(&root(), from.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains(&files[0].display().to_string()), "{err}");
        assert!(err.contains("nothing copied"), "{err}");
    }
}
