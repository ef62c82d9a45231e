//! The operator's settings: `kustomize/settings/settings.yaml`.
//!
//! The placeholders a cluster operator replaces (the config repository's
//! URL, the two environments' hosts) live in that one file, and kustomize
//! copies them where they are used. The checks read the same file, so an
//! installation that changed them validates its own values instead of the
//! placeholders'.

use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

/// Where the settings live, relative to the repository root.
pub const SETTINGS_FILE: &str = "kustomize/settings/settings.yaml";

/// The settings, as the local-config ConfigMap's `data` holds them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    pub config_repo: String,
    pub staging_host: String,
    pub production_host: String,
    /// Where production's CloudNativePG backups go (the ObjectStore's
    /// destinationPath, replaced in by the production overlay).
    pub production_backup_destination: String,
    /// The OpenID provider both environments sign people in with (the
    /// app's `OIDC_ISSUER_URL`, replaced in by each overlay).
    pub oidc_issuer: String,
}

#[derive(Deserialize)]
struct Document {
    data: Settings,
}

impl Settings {
    pub fn load(root: &Path) -> anyhow::Result<Settings> {
        let path = root.join(SETTINGS_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        Settings::parse(&text).with_context(|| format!("parsing {}", path.display()))
    }

    fn parse(text: &str) -> anyhow::Result<Settings> {
        let document: Document = serde_yaml_ng::from_str(text)?;
        Ok(document.data)
    }

    /// The address browsers reach an environment at: its host over https
    /// (the app's `PUBLIC_URL`).
    pub fn public_url(&self, env: &str) -> Option<String> {
        self.host(env).map(|host| format!("https://{host}"))
    }

    /// The host an environment's Ingress must serve, for the environments
    /// the settings know.
    pub fn host(&self, env: &str) -> Option<&str> {
        match env {
            "staging" => Some(&self.staging_host),
            "production" => Some(&self.production_host),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_settings_parse() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let settings = Settings::load(&root).unwrap();
        assert_eq!(settings.host("staging"), Some("staging.docket.example.com"));
        assert_eq!(settings.host("qa"), None);
    }

    #[test]
    fn a_misspelt_setting_is_refused() {
        let text = "data:\n  configRepo: x\n  stagingHost: a\n  productionHost: b\n  \
             productionBackupDestination: s3://b/p\n  oidcIssuer: https://id\n  stagingHots: c\n";
        let err = Settings::parse(text).unwrap_err().to_string();
        assert!(err.contains("stagingHots"), "{err}");
    }
}
