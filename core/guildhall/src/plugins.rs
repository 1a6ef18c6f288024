//! `guildhall plugins publish DIR`: the same checks and storage as the HTTP upload.

use std::path::Path;

use anyhow::Context;
use guildhall_domain::manifest::Manifest;
use guildhall_store::{Published, Store};

use crate::config::Config;

/// Reads `DIR/plugin.toml` and the component it names, publishes them, and prints
/// `<plugin> <version> <digest> published|unchanged`.
pub(crate) async fn publish(config: &Config, store: &Store, dir: &Path) -> anyhow::Result<()> {
    let manifest_path = dir.join("plugin.toml");
    let manifest_text = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("cannot read {}", manifest_path.display()))?;
    // The component file comes from the manifest; a bad manifest is reported by publish.
    let component_name = Manifest::from_toml(&manifest_text)
        .map(|m| m.component)
        .map_err(|e| anyhow::anyhow!("{}: {e}", manifest_path.display()))?;
    if component_name.contains('/')
        || component_name.contains('\\')
        || component_name.starts_with('.')
    {
        anyhow::bail!(
            "{}: component: must be a file name next to plugin.toml",
            manifest_path.display()
        );
    }
    let component_path = dir.join(&component_name);
    let bytes = std::fs::read(&component_path)
        .with_context(|| format!("cannot read the component {}", component_path.display()))?;
    let signature_path = dir.join(format!("{component_name}.sig"));
    let signature = match std::fs::read_to_string(&signature_path) {
        Ok(s) => Some(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read {}", signature_path.display()));
        }
    };
    let state = crate::server::app_state(config, store).await?;
    let published = guildhall_api::catalogue::publish(
        &state,
        None,
        &manifest_text,
        bytes,
        signature.as_deref(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{}: {}", dir.display(), e.describe()))?;
    let (record, word) = match &published {
        Published::Created(v) => (v, "published"),
        Published::Existing(v) => (v, "unchanged"),
    };
    println!(
        "{} {} {} {word}",
        record.plugin, record.version, record.digest
    );
    Ok(())
}
