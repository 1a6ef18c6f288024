//! `guildhall tenants apply|list|export|import`: declarative tenant files, and a tenant's
//! archive written and restored.

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

/// Writes the tenant's archive to `out` (default `guildhall-<tenant>-<time>.tar.gz` in the
/// working folder), through a temporary file beside it that is renamed once complete, so a
/// failed export leaves no partial archive and an existing file is never overwritten. The
/// export is recorded in the tenant's audit chain.
pub(crate) async fn export(store: &Store, tenant: &str, out: Option<&Path>) -> anyhow::Result<()> {
    let tenant = guildhall_domain::TenantId::parse(tenant)?;
    let scope = store
        .scope(&tenant)
        .await?
        .with_context(|| format!("no tenant {tenant}"))?;
    if let Some(out) = out
        && out.exists()
    {
        bail!("{} exists; choose another --out", out.display());
    }
    let dir = match out.and_then(Path::parent) {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let partial = tempfile::Builder::new()
        .prefix(".guildhall-export-")
        .suffix(".partial")
        .tempfile_in(&dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    let file = partial.reopen().context("cannot open the archive")?;
    let (_, exported) = guildhall_operations::tenant_archive::export(store, &scope, file)
        .await
        .map_err(|e| anyhow::anyhow!(e.describe()))?;
    let target = match out {
        Some(out) => out.to_path_buf(),
        None => dir.join(exported.file_name()),
    };
    partial
        .persist_noclobber(&target)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {}", target.display(), e.error))?;
    store
        .audit(&scope)
        .append(guildhall_store::NewAuditEntry {
            actor: "cli",
            action: "tenants.export",
            object: "tenant",
            outcome: "exported",
            request_id: "cli",
            detail: serde_json::json!({
                "archive_sha256": exported.sha256,
                "archive_bytes": exported.size,
            }),
        })
        .await?;
    println!("{}", target.display());
    println!("sha256 {}", exported.sha256);
    println!("{} bytes", exported.size);
    for (member, records) in exported.records() {
        println!("{member}: {records} records");
    }
    print_secrets(&exported.manifest);
    Ok(())
}

/// Restores the tenant in the archive `file` (see `guildhall tenants import --help`), as
/// the command line's operator, and prints what it did and what is left to do.
pub(crate) async fn import(
    config: &crate::config::Config,
    store: &Store,
    file: &Path,
) -> anyhow::Result<()> {
    // Missing plugin versions are published with publishing's checks and compiler and the
    // signature settings, as `plugins publish` does.
    let runtime = guildhall_runtime::Runtime::for_publishing(
        config.runtime.clone(),
        guildhall_runtime::Ports::unavailable(),
    )
    .context("cannot start the plugin compiler")?;
    let keys =
        guildhall_api::TrustedKeys::from_config(&config.catalogue).map_err(anyhow::Error::msg)?;
    let catalogue = guildhall_operations::catalogue::Catalogue {
        store,
        runtime: &runtime,
        keys: &keys,
    };
    let imported = guildhall_operations::tenant_archive::import(
        catalogue,
        guildhall_store::Actor {
            subject: guildhall_store::CLI_OPERATOR,
            operator: true,
        },
        "cli",
        "cli",
        file,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{}: {}", file.display(), e.describe()))?;
    let manifest = &imported.manifest;
    println!(
        "{}: imported (exported {} by Guildhall {}; sha256 {})",
        manifest.tenant,
        manifest.exported_at_text(),
        manifest.platform_version,
        imported.sha256
    );
    for version in &imported.published {
        println!("published {version}");
    }
    print_secrets(manifest);
    println!(
        "tokens are not carried over: mint new ones with `guildhall token create --tenant {}`",
        manifest.tenant
    );
    Ok(())
}

fn print_secrets(manifest: &guildhall_operations::tenant_archive::ArchiveManifest) {
    for secret in &manifest.secrets_to_set_again {
        println!(
            "secret not in the archive (set it again): {} {} {}",
            secret.plugin, secret.council, secret.name
        );
    }
}
