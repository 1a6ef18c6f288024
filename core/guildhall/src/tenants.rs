//! `guildhall tenants apply|list`: declarative tenant files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use guildhall_domain::tenant::TenantSpec;
use guildhall_store::Store;

/// Reads tenant files from files and folders (every `*.toml` in a folder, sorted), validates
/// them all, and fails on the first bad file with its name and field. Nothing is applied
/// unless every file is valid.
pub(crate) fn read_specs(paths: &[PathBuf]) -> anyhow::Result<Vec<TenantSpec>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("cannot read the folder {}", path.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|ext| ext == "toml"))
                .collect();
            found.sort();
            if found.is_empty() {
                bail!("{}: no .toml tenant files in this folder", path.display());
            }
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    let mut specs = Vec::with_capacity(files.len());
    let mut origin: BTreeMap<String, PathBuf> = BTreeMap::new();
    for file in files {
        let spec = read_one(&file)?;
        if let Some(first) = origin.insert(spec.id.to_string(), file.clone()) {
            bail!(
                "{}: id: tenant {} is already declared in {}",
                file.display(),
                spec.id,
                first.display()
            );
        }
        specs.push(spec);
    }
    Ok(specs)
}

fn read_one(file: &Path) -> anyhow::Result<TenantSpec> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the tenant file {}", file.display()))?;
    let mut spec =
        TenantSpec::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    // Logos are image files next to the tenant file; they travel as `data:` URLs.
    let dir = file.parent().unwrap_or(Path::new("."));
    for logo in spec.logo_files() {
        *logo = logo_data_url(&dir.join(&*logo))
            .with_context(|| format!("{}: logo {logo}", file.display()))?;
    }
    spec.validate()
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    Ok(spec)
}

/// A logo file as a checked `data:` URL.
fn logo_data_url(path: &Path) -> anyhow::Result<String> {
    let name = path.to_string_lossy();
    let kind = guildhall_domain::brand::Logo::type_of_file(&name)
        .ok_or_else(|| anyhow::anyhow!("a logo is an .svg or .png file"))?;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let logo = guildhall_domain::brand::Logo::new(kind, bytes).map_err(anyhow::Error::msg)?;
    Ok(logo.data_url())
}

/// Applies the files and prints one line per tenant: `<id>: created|updated|unchanged`.
pub(crate) async fn apply(store: &Store, specs: &[TenantSpec]) -> anyhow::Result<()> {
    let results = store.tenants().apply(specs).await?;
    for (tenant, applied) in results {
        println!("{tenant}: {}", applied.as_str());
    }
    Ok(())
}

/// Prints every tenant with its councils.
pub(crate) async fn list(store: &Store) -> anyhow::Result<()> {
    let tenants = store.tenants().list().await?;
    if tenants.is_empty() {
        println!("no tenants; add some with `guildhall tenants apply tenants/`");
        return Ok(());
    }
    let width = tenants
        .iter()
        .map(|t| t.id.as_str().len())
        .max()
        .unwrap_or(6)
        .max(6);
    println!("{:<width$}  {:>8}  NAME", "TENANT", "COUNCILS");
    for t in tenants {
        println!(
            "{:<width$}  {:>8}  {}",
            t.id.as_str(),
            t.councils.len(),
            t.name
        );
        for c in t.councils {
            println!("{:<width$}  {:>8}    - {} ({})", "", "", c.id, c.name);
        }
    }
    Ok(())
}
