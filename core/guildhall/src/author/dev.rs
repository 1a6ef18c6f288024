//! `guildhall dev [DIR] [--listen ADDR]`: one plugin on a throwaway platform.
//!
//! The real server runs on loopback over an SQLite database in a temporary folder, with
//! the tenant `dev` and its council `dev`, and the plugin published and installed from the
//! project's build with the configuration and secrets in the project's `dev.toml`. Limits
//! and capabilities are production's. Each change to the sources rebuilds the plugin and
//! installs the new build as the next development version (`0.1.0-dev.2`, …), so the
//! author never bumps `version` while working. The request log goes to the terminal;
//! Ctrl-C stops the server and removes the folder.
//!
//! Changes are found by looking at the project's files twice a second (their sizes and
//! modification times), which works the same on every file system, including the mounted
//! folders of containers and virtual machines where change notifications do not arrive.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use std::time::{Duration, SystemTime};

use anyhow::Context;
use guildhall_domain::PluginName;
use guildhall_domain::manifest::Manifest;
use guildhall_domain::tenant::TenantSpec;
use guildhall_store::{Store, TenantScope};

use super::BuildOptions;
use crate::config::Config;
use crate::server::{self, Server};

/// The tenant and council of the development platform.
const TENANT: &str = "dev";
const COUNCIL: &str = "dev";

/// The project's `dev.toml`: the install's settings while developing.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DevFile {
    /// The install's configuration, checked against plugin.toml's `[config]`.
    #[serde(default)]
    config: Option<serde_json::Value>,
    /// Secret values by name.
    #[serde(default)]
    secrets: std::collections::BTreeMap<String, String>,
}

/// Serves the project in `dir` until Ctrl-C.
pub(crate) async fn dev(
    config: &Config,
    dir: Option<&Path>,
    listen: Option<SocketAddr>,
) -> anyhow::Result<()> {
    let project = super::project_dir(dir)?;
    let folder = tempfile::Builder::new()
        .prefix("guildhall-dev-")
        .tempdir()
        .context("cannot make a temporary folder")?;
    let mut config = config.clone();
    config.database.url = guildhall_store::DatabaseUrl::new(format!(
        "sqlite://{}?mode=rwc",
        folder.path().join("guildhall.db").display()
    ));
    config.database.admin_url = None;
    // Loopback unless asked otherwise: the configured port, never the configured address
    // (a production file may say 0.0.0.0), as the printed token is an administrator's.
    config.listen.0 = listen
        .unwrap_or_else(|| SocketAddr::new(Ipv4Addr::LOCALHOST.into(), config.listen.0.port()));
    if config.listen.0.ip().is_loopback() {
        // Plain HTTP on this machine: cookies and the origin plugins are told say so.
        config.sessions.secure_cookies = false;
        config.console.secure_cookies = false;
    } else {
        println!(
            "warning: serving on {}, not loopback: anyone who reaches it can use the \
             administrator token printed below",
            config.listen.0
        );
    }
    // Ctrl-C from the start: a stop during the first build still removes the folder.
    let stop = server::termination_signal();
    tokio::pin!(stop);
    let built = tokio::select! {
        built = super::build(&config, Some(&project), BuildOptions::default()) => built?,
        () = &mut stop => return Ok(()),
    };
    let server = Server::start(&config)
        .await
        .with_context(|| format!("cannot serve on {}", config.listen.0))?;
    let platform = Platform::set_up(server.store().clone()).await?;
    let mut generation = 1;
    platform
        .install(&config, &project, &built.dist, &built.manifest, generation)
        .await?;
    let addr = server.addr();
    println!(
        "\nserving {} at http://{addr}/s/{TENANT}/{COUNCIL}/{}/\n\
         tenant `{TENANT}`, council `{COUNCIL}`; a tenant-admin token for the API:\n  {}\n\
         watching {} for changes; Ctrl-C to stop\n",
        built.manifest.name,
        built.manifest.name,
        platform.token,
        project.display()
    );
    let mut seen = fingerprint(&project);
    loop {
        tokio::select! {
            () = &mut stop => break,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        let now = fingerprint(&project);
        if now == seen {
            continue;
        }
        // Let an editor finish writing before building.
        tokio::time::sleep(Duration::from_millis(300)).await;
        seen = fingerprint(&project);
        println!("change found; rebuilding");
        let started = std::time::Instant::now();
        let rebuilt =
            match super::build(&config, Some(&project), BuildOptions { quiet: true }).await {
                Ok(b) => b,
                Err(e) => {
                    println!("build failed, still serving the last build: {e:#}");
                    continue;
                }
            };
        generation += 1;
        match platform
            .install(
                &config,
                &project,
                &rebuilt.dist,
                &rebuilt.manifest,
                generation,
            )
            .await
        {
            Ok(version) => println!(
                "reloaded: {} {version} in {:.1} s",
                rebuilt.manifest.name,
                started.elapsed().as_secs_f64()
            ),
            Err(e) => println!("cannot install the new build, still serving the last: {e:#}"),
        }
    }
    println!("stopping");
    server.shutdown();
    server.wait().await?;
    drop(folder);
    Ok(())
}

/// The development platform's tenant, its admin token and the store.
struct Platform {
    store: Store,
    scope: TenantScope,
    token: String,
}

impl Platform {
    async fn set_up(store: Store) -> anyhow::Result<Self> {
        let spec: TenantSpec = toml::from_str(&format!(
            "id = \"{TENANT}\"\nname = \"Development alliance\"\n\
             [[councils]]\nid = \"{COUNCIL}\"\nname = \"Development Council\"\n"
        ))
        .context("the development tenant")?;
        guildhall_operations::tenants::create(&store, &spec)
            .await
            .map_err(|e| anyhow::anyhow!(e.describe()))?;
        let scope = store
            .scope(&spec.id)
            .await?
            .context("the development tenant was not created")?;
        let token = crate::access::mint_token(
            &store,
            "guildhall dev",
            "tenant-admin",
            Some(TENANT),
            None,
            1,
        )
        .await?;
        Ok(Self {
            store,
            scope,
            token,
        })
    }

    /// Publishes the build as development version `generation` and installs it for the
    /// council with `dev.toml`'s settings; returns the version.
    async fn install(
        &self,
        config: &Config,
        project: &Path,
        dist: &Path,
        manifest: &Manifest,
        generation: u32,
    ) -> anyhow::Result<String> {
        let dev_file: DevFile = match std::fs::read_to_string(project.join("dev.toml")) {
            Ok(text) => toml::from_str(&text)
                .with_context(|| format!("{}", project.join("dev.toml").display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => DevFile::default(),
            Err(e) => return Err(e).context("cannot read dev.toml"),
        };
        let mut version = manifest.version.clone();
        version.pre = semver::Prerelease::new(&if version.pre.is_empty() {
            format!("dev.{generation}")
        } else {
            format!("{}.dev.{generation}", version.pre)
        })?;
        // The stored manifest names the development version; everything else is the
        // project's own.
        let text = std::fs::read_to_string(dist.join("plugin.toml"))?;
        let mut table: toml::Table = toml::from_str(&text)?;
        table.insert("version".into(), toml::Value::String(version.to_string()));
        let staged = tempfile::tempdir()?;
        std::fs::write(staged.path().join("plugin.toml"), toml::to_string(&table)?)?;
        std::fs::copy(
            dist.join(&manifest.component),
            staged.path().join(&manifest.component),
        )?;
        crate::plugins::publish_dir(config, &self.store, staged.path(), None).await?;
        let plugin: &PluginName = &manifest.name;
        let settings = dev_file.config.unwrap_or_else(|| serde_json::json!({}));
        guildhall_operations::installs::put(
            &self.store,
            &Compiled,
            &self.scope,
            plugin,
            guildhall_operations::installs::InstallRequest {
                version: &version.to_string(),
                councils: &serde_json::json!("all"),
                config: &settings,
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!(e.describe()))?;
        if !dev_file.secrets.is_empty() {
            let keyring = server::keyring(config)?
                .context("secrets need a key: the development database has none")?;
            for (name, value) in &dev_file.secrets {
                self.store
                    .secrets(&self.scope)
                    .put(&keyring, plugin, None, name, value, "guildhall dev")
                    .await?;
            }
        }
        Ok(version.to_string())
    }
}

/// Builds are checked and compiled by `build`, and the gateway prepares on first use.
struct Compiled;

impl guildhall_operations::installs::Serving for Compiled {
    async fn prepare(&self, _: &Manifest) -> Result<(), guildhall_operations::Error> {
        Ok(())
    }
}

/// The sizes and modification times of the project's source files, in path order.
fn fingerprint(dir: &Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    super::source_files(dir)
        .into_iter()
        .map(|(path, meta)| (path, meta.len(), meta.modified().ok()))
        .collect()
}
