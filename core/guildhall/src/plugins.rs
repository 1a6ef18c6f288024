//! `guildhall plugins publish|sign DIR` and `guildhall keys …`: the same checks and storage
//! as the HTTP upload, and the author's signing tools.
//!
//! The command line reaches the database directly, so it acts as an operator: it may
//! publish into any plugin. A name it publishes first is owned by `--owner SUBJECT` when
//! given, else by the pseudo-subject `cli:operator` (whose signing keys are
//! `catalogue.trusted_keys`); an operator hands it on with the owners API.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use guildhall_domain::manifest::Manifest;
use guildhall_domain::signing::{self, PublicKey, SecretKey};
use guildhall_domain::{Digest, PluginName};
use guildhall_store::{Actor, CLI_OPERATOR, NewKey, Published, Store};

use crate::config::Config;

/// The files of a plugin folder.
struct PluginDir {
    manifest_text: String,
    manifest: Manifest,
    component: Vec<u8>,
    signature_path: PathBuf,
}

/// Reads `DIR/plugin.toml` and the component it names.
fn read_dir(dir: &Path) -> anyhow::Result<PluginDir> {
    let manifest_path = dir.join("plugin.toml");
    let manifest_text = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("cannot read {}", manifest_path.display()))?;
    let manifest = Manifest::from_toml(&manifest_text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", manifest_path.display()))?;
    let component_name = manifest.component.clone();
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
    let component = std::fs::read(&component_path)
        .with_context(|| format!("cannot read the component {}", component_path.display()))?;
    Ok(PluginDir {
        signature_path: dir.join(format!("{component_name}.sig")),
        manifest_text,
        manifest,
        component,
    })
}

/// Publishes `DIR` (with `<component>.sig` when present) and prints
/// `<plugin> <version> <digest> published|unchanged`. For a plugin project's folder, the
/// build `plugins build` wrote in its `dist/` is published: publishing runs no build tool,
/// so publishing a folder never runs code that came with it.
pub(crate) async fn publish(
    config: &Config,
    store: &Store,
    dir: &Path,
    owner: Option<&str>,
) -> anyhow::Result<()> {
    let dir = crate::author::publishable(dir)?;
    let published = publish_dir(config, store, &dir, owner).await?;
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

/// Publishes the plugin folder `DIR` (plugin.toml, the component it names and
/// `<component>.sig` when present).
pub(crate) async fn publish_dir(
    config: &Config,
    store: &Store,
    dir: &Path,
    owner: Option<&str>,
) -> anyhow::Result<Published> {
    let files = read_dir(dir)?;
    let signature = match std::fs::read_to_string(&files.signature_path) {
        Ok(s) => Some(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot read {}", files.signature_path.display()));
        }
    };
    let owner = owner.unwrap_or(CLI_OPERATOR);
    check_subject(owner)?;
    // Publishing needs the runtime's checks and compiler and the signature settings: no
    // access-control rules (the command line acts as an operator), epoch thread, gateway or
    // metrics.
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
    let published = guildhall_operations::catalogue::publish(
        catalogue,
        Actor {
            subject: owner,
            operator: true,
        },
        None,
        &files.manifest_text,
        files.component,
        signature.as_deref(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{}: {}", dir.display(), e.describe()))?;
    Ok(published)
}

fn check_subject(subject: &str) -> anyhow::Result<()> {
    if subject.is_empty() || subject.len() > 512 || subject.chars().any(char::is_control) {
        anyhow::bail!("a subject is 1 to 512 characters without control characters");
    }
    Ok(())
}

/// Signs `DIR`'s statement (name, version, plugin.toml's sha256, the component's sha256)
/// with the private key in `key`, writing `<component>.sig` next to plugin.toml.
pub(crate) fn sign(dir: &Path, key: &Path) -> anyhow::Result<()> {
    let files = read_dir(dir)?;
    let secret = read_secret(key)?;
    let statement = signing::statement(
        &files.manifest.name,
        &files.manifest.version,
        &Digest::of(files.manifest_text.as_bytes()),
        &Digest::of(&files.component),
    );
    let signature = secret.sign(&statement);
    std::fs::write(&files.signature_path, format!("{signature}\n"))
        .with_context(|| format!("cannot write {}", files.signature_path.display()))?;
    println!(
        "{} {} signed with {} into {}",
        files.manifest.name,
        files.manifest.version,
        secret.public().fingerprint(),
        files.signature_path.display()
    );
    Ok(())
}

fn read_secret(path: &Path) -> anyhow::Result<SecretKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the private key {}", path.display()))?;
    SecretKey::parse(&text)
        .map_err(|e| anyhow::anyhow!("{}: not a Guildhall private key: {e}", path.display()))
}

/// Writes a new key pair: the private key (base64 seed) to `out` with mode 0600, the
/// public key to `out.pub`; prints the public key and its fingerprint.
pub(crate) fn generate(out: &Path) -> anyhow::Result<()> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let secret = SecretKey::from_seed(seed);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(out).with_context(|| {
        format!(
            "cannot create {} (an existing key is never overwritten)",
            out.display()
        )
    })?;
    file.write_all(format!("{}\n", secret.to_base64()).as_bytes())
        .with_context(|| format!("cannot write {}", out.display()))?;
    let public = secret.public();
    let mut public_path = out.as_os_str().to_owned();
    public_path.push(".pub");
    let public_path = PathBuf::from(public_path);
    std::fs::write(&public_path, format!("{}\n", public.to_base64()))
        .with_context(|| format!("cannot write {}", public_path.display()))?;
    println!("{} {}", public.to_base64(), public.fingerprint());
    Ok(())
}

/// Registers a public key to `subject` (as `PUT /api/v1/publisher-keys/{name}` does for
/// the caller).
pub(crate) async fn register_key(
    store: &Store,
    subject: &str,
    name: &str,
    public_key: &str,
) -> anyhow::Result<()> {
    check_subject(subject)?;
    let key = PublicKey::parse(public_key).map_err(|e| anyhow::anyhow!("public key: {e}"))?;
    let created = store
        .publisher_keys()
        .put(NewKey {
            subject,
            name,
            public_key: &key.to_base64(),
            fingerprint: &key.fingerprint(),
        })
        .await?;
    println!(
        "{subject} {name} {} {}",
        key.fingerprint(),
        if created { "registered" } else { "unchanged" }
    );
    Ok(())
}

/// Prints `subject`'s keys, one `name fingerprint public-key` a line.
pub(crate) async fn list_keys(store: &Store, subject: &str) -> anyhow::Result<()> {
    for key in store.publisher_keys().list(subject).await? {
        println!("{} {} {}", key.name, key.fingerprint, key.public_key);
    }
    Ok(())
}

/// Removes `subject`'s key `name`.
pub(crate) async fn remove_key(store: &Store, subject: &str, name: &str) -> anyhow::Result<()> {
    if !store.publisher_keys().remove(subject, name).await? {
        anyhow::bail!("{subject} has no key named {name}");
    }
    println!("{subject} {name} removed");
    Ok(())
}

/// Prints a plugin's owners, one subject a line.
pub(crate) async fn list_owners(store: &Store, plugin: &str) -> anyhow::Result<()> {
    let plugin = PluginName::parse(plugin.to_string())?;
    let owners = store
        .owners()
        .list(&plugin)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no plugin {plugin}"))?;
    for owner in owners {
        println!("{}", owner.subject);
    }
    Ok(())
}

/// Adds (`add`) or removes an owner, as an operator.
pub(crate) async fn change_owner(
    store: &Store,
    plugin: &str,
    subject: &str,
    add: bool,
) -> anyhow::Result<()> {
    check_subject(subject)?;
    let plugin = PluginName::parse(plugin.to_string())?;
    let actor = Actor {
        subject: CLI_OPERATOR,
        operator: true,
    };
    let owners = store.owners();
    let changed = if add {
        owners.add(&plugin, subject, actor).await?
    } else {
        owners.remove(&plugin, subject, actor).await?
    };
    let word = match (add, changed) {
        (true, true) => "added",
        (false, true) => "removed",
        _ => "unchanged",
    };
    println!("{plugin} {subject} {word}");
    Ok(())
}
