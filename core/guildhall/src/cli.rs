//! The command line: `guildhall serve|migrate|tenants|plugins|keys|token|audit|config`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::server::{self, Server};

/// Task polls between a worker thread's looks at the sockets (and timers) while it has tasks
/// to run; tokio's default is 61. A guest's poll may run a whole epoch tick (1 ms), so under
/// a flood of CPU-bound calls 61 polls kept another tenant's new requests unseen for tens of
/// milliseconds (the fairness benchmark: B's p99 17.3 ms with 61, 8.6–12.6 ms with 4); a look
/// costs one `epoll_wait` that returns at once.
const SOCKETS_EVERY: u32 = 4;

/// Guildhall: shared digital services for alliances of UK councils.
///
/// Configuration comes from built-in defaults, then `guildhall.toml` in the working folder
/// (or the file given with --config), then environment variables such as
/// GUILDHALL_DATABASE__URL (double underscore between nested keys).
#[derive(Debug, Parser)]
#[command(name = "guildhall", version, about, long_about)]
pub struct Cli {
    /// Read configuration from this TOML file instead of ./guildhall.toml.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (applies pending database migrations first).
    Serve {
        /// Listen on this address instead of the configured one, e.g. 0.0.0.0:8080.
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage tenants (alliances of councils).
    #[command(subcommand)]
    Tenants(TenantsCommand),
    /// Manage the shared plugin catalogue.
    #[command(subcommand)]
    Plugins(PluginsCommand),
    /// Check or show the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Check the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Report metered usage.
    #[command(subcommand)]
    Usage(UsageCommand),
    /// Make and register ed25519 keys for signing plugins.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage the key install secrets are encrypted with.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Serve one plugin project on loopback for development: a throwaway SQLite platform
    /// with the tenant `dev` and council `dev`, the plugin built and installed with the
    /// settings in the project's dev.toml, rebuilt and reinstalled whenever its sources
    /// change. Ctrl-C stops it.
    Dev {
        /// The plugin project (default: the working folder).
        #[arg(value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Listen on this address (default: loopback, 127.0.0.1, at the configured port).
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
    },
}

/// `guildhall secrets …`
#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Print a new random key (32 bytes, base64) for `secrets.key`.
    GenerateKey,
    /// Encrypt every install secret again under the current `secrets.key`, opening those
    /// under an older key with `secrets.previous_keys`. Run it after moving the old key to
    /// `previous_keys` and the new one to `key` on every replica; then drop the old key.
    RotateKey,
}

/// `guildhall keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a key pair: the private key (base64) goes to FILE with mode 0600, the public key
    /// to FILE.pub; prints the public key and its fingerprint. Never overwrites a file.
    Generate {
        /// Where to write the private key.
        #[arg(long, value_name = "FILE", default_value = "guildhall-signing.key")]
        out: PathBuf,
    },
    /// Register a public key to an identity (what `PUT /api/v1/publisher-keys/{name}`
    /// does for the caller), so it can sign that identity's plugins.
    Register {
        /// The identity, e.g. `token:<id>` or `oidc:<issuer id>:<sub>`, or `cli:operator`.
        #[arg(long)]
        subject: String,
        /// A name for the key, e.g. "laptop-2026".
        #[arg(long)]
        name: String,
        /// The public key in base64, or `@FILE` to read it from a file such as a `.pub`.
        #[arg(long, value_name = "BASE64|@FILE")]
        public_key: String,
    },
    /// List the keys registered to an identity.
    List {
        /// The identity.
        #[arg(long)]
        subject: String,
    },
    /// Remove a key from an identity.
    Remove {
        /// The identity.
        #[arg(long)]
        subject: String,
        /// The key's name.
        #[arg(long)]
        name: String,
    },
}

/// `guildhall usage …`
#[derive(Debug, Subcommand)]
pub enum UsageCommand {
    /// Print a tenant's usage, one row per UTC day, council and plugin, with each row's
    /// share of the alliance's total (for cost apportionment). Shows what the servers
    /// have written so far (every `metering.flush_interval_secs`, and at shutdown).
    Report {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// First day, YYYY-MM-DD (default: 29 days before --to).
        #[arg(long)]
        from: Option<String>,
        /// Last day, YYYY-MM-DD (default: today, UTC).
        #[arg(long)]
        to: Option<String>,
        /// csv or json.
        #[arg(long, default_value = "csv")]
        format: String,
        /// What shares are shares of: cpu (plugin CPU time) or calls.
        #[arg(long, default_value = "cpu")]
        basis: String,
    },
}

/// `guildhall token …`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Mint a token and print it (only the token, on stdout). It is stored only as a hash
    /// and cannot be shown again. Use this for the first operator token.
    Create {
        /// A label, e.g. "platform team".
        #[arg(long)]
        name: String,
        /// operator or publisher (platform-wide), or tenant-admin, officer, auditor or
        /// data-protection-officer
        /// (with --tenant).
        #[arg(long)]
        role: String,
        /// The tenant a tenant role holds in.
        #[arg(long)]
        tenant: Option<String>,
        /// Limit an officer token to one council of the tenant.
        #[arg(long)]
        council: Option<String>,
        /// Lifetime in days (1 to 365).
        #[arg(long, default_value_t = guildhall_authz::DEFAULT_TOKEN_DAYS)]
        expires_in_days: u32,
    },
}

/// `guildhall audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chains; exit 0 when intact, non-zero naming the first altered
    /// entry otherwise.
    Verify {
        /// Only this tenant's chain (default: every tenant's and the platform's).
        #[arg(long)]
        tenant: Option<String>,
    },
}

/// `guildhall config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load the configuration (defaults, file, environment) and report whether it is valid.
    Check,
    /// Print the effective configuration as TOML, with passwords hidden.
    Show,
}

/// `guildhall plugins …`
#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// Make a new plugin project NAME in the working folder from the built-in template for
    /// the language, with its SDK and a test.
    New {
        /// The plugin's name: lower-case letters, digits and `-`, e.g. parking-permits.
        name: String,
        /// The language.
        #[arg(long, value_enum)]
        lang: crate::author::Lang,
        /// Make the project in this folder instead of the working folder.
        #[arg(long, value_name = "DIR")]
        into: Option<PathBuf>,
    },
    /// Build a plugin project with its language's toolchain, check the component as
    /// publishing would (size, compilation, imports against the declared capabilities,
    /// exports), and write the publishable folder DIR/dist.
    Build {
        /// The plugin project (default: the working folder).
        #[arg(value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Build a plugin project and run its tests/*.toml scenarios in-process, with in-memory
    /// kv, events, sessions and secrets and canned outbound answers.
    Test {
        /// The plugin project (default: the working folder).
        #[arg(value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Test the last build in DIR/dist without building.
        #[arg(long)]
        no_build: bool,
    },
    /// Publish a plugin version from a folder holding plugin.toml and the component it
    /// names (and optionally `<component>.sig`, written by `plugins sign`), or a plugin
    /// project's dist/ as `plugins build` wrote it (publishing runs no build tool). Prints
    /// the plugin, version, digest and whether it was new. The command line acts as an operator: it may publish into any plugin.
    Publish {
        /// The plugin's folder, or a plugin project.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Who owns the name if this is its first version (default `cli:operator`, whose
        /// keys are `catalogue.trusted_keys`). Ignored for a name that has owners.
        #[arg(long, value_name = "SUBJECT")]
        owner: Option<String>,
    },
    /// Sign a plugin folder: writes `<component>.sig` next to plugin.toml, an ed25519
    /// signature over its name, version, plugin.toml's sha256 and the component's sha256.
    Sign {
        /// The plugin's folder.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// The private key written by `guildhall keys generate`.
        #[arg(long, value_name = "FILE", default_value = "guildhall-signing.key")]
        key: PathBuf,
    },
    /// Show or change who owns a plugin name.
    #[command(subcommand)]
    Owners(OwnersCommand),
}

/// `guildhall plugins owners …`
#[derive(Debug, Subcommand)]
pub enum OwnersCommand {
    /// Print a plugin's owners, one subject a line.
    List {
        /// The plugin.
        plugin: String,
    },
    /// Add an owner.
    Add {
        /// The plugin.
        plugin: String,
        /// The new owner's subject.
        subject: String,
    },
    /// Remove an owner (never the last).
    Remove {
        /// The plugin.
        plugin: String,
        /// The owner's subject.
        subject: String,
    },
}

/// `guildhall tenants …`
#[derive(Debug, Subcommand)]
pub enum TenantsCommand {
    /// Create or update tenants from TOML files or folders of them; prints created,
    /// updated or unchanged per tenant. All files are checked before anything is written.
    Apply {
        /// Tenant files, or folders whose *.toml files are tenant files.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// List tenants and their councils.
    List,
    /// Write everything a tenant owns to one archive (tar + gzip): its councils, members,
    /// installs and their settings, key-value data, events, schedule runs, subject
    /// requests, usage, feedback and audit chain, and the plugin versions it runs.
    /// Tokens, residents' sessions and secrets' values are not in it. Prints the file, its
    /// SHA-256 and what it holds. Never overwrites a file.
    Export {
        /// The tenant.
        tenant: String,
        /// The archive to write (default: guildhall-<tenant>-<time>.tar.gz here).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Restore a tenant from an archive `tenants export` wrote, on a platform where it does
    /// not exist: the whole archive is checked first (format version, checksums, records,
    /// audit chain) and then written in one transaction; plugin versions this catalogue
    /// lacks are published from it. A refused archive changes nothing.
    Import {
        /// The archive.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

/// Parses the arguments, runs the command and turns failure into a one-line message on
/// stderr and a non-zero exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("error: {}", one_line(&err));
            }
            ExitCode::FAILURE
        }
    }
}

fn one_line(err: &anyhow::Error) -> String {
    err.chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
        .replace('\n', " ")
}

/// Runs one command to completion.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Config(ConfigCommand::Check) => {
            crate::server::check_config(&config)?;
            println!("configuration is valid");
            return Ok(());
        }
        Command::Config(ConfigCommand::Show) => {
            print!(
                "{}",
                toml::to_string(&config).context("cannot render the configuration")?
            );
            return Ok(());
        }
        // The author's tools need neither the database nor the server's settings.
        Command::Keys(KeysCommand::Generate { out }) => {
            return crate::plugins::generate(&out);
        }
        Command::Plugins(PluginsCommand::Sign { dir, key }) => {
            return crate::plugins::sign(&dir, &key);
        }
        Command::Secrets(SecretsCommand::GenerateKey) => {
            println!("{}", guildhall_store::Keyring::generate_key());
            return Ok(());
        }
        Command::Plugins(PluginsCommand::New { name, lang, into }) => {
            return crate::author::new(&name, lang, into.as_deref());
        }
        _ => {}
    }
    if matches!(
        cli.command,
        Command::Plugins(PluginsCommand::Build { .. } | PluginsCommand::Test { .. })
            | Command::Dev { .. }
    ) {
        // The author's tools keep compiled components in the user's cache, not in the
        // project's folder, and build and test print their own report rather than a log.
        if let Some(cache) = guildhall_harness::component_cache() {
            config.runtime.cache_dir = cache;
        }
        // The author's machine compiles for one author: with every core.
        config.runtime.publish_compile_threads = config
            .runtime
            .publish_compile_threads
            .max(std::thread::available_parallelism().map_or(1, |n| n.get()));
        if !matches!(cli.command, Command::Dev { .. }) && config.log.filter == "info" {
            config.log.filter = "warn".to_string();
        }
    }
    crate::server::check_telemetry(&config)?;
    let _telemetry = crate::logging::init(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("guildhall")
        .event_interval(SOCKETS_EVERY)
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve { listen } => {
                if let Some(listen) = listen {
                    config.listen.0 = listen;
                }
                let server = Server::start(&config).await?;
                server::termination_signal().await;
                server.shutdown();
                server.wait().await
            }
            Command::Migrate => {
                let store = server::open_store(&config).await?;
                let status = store.migration_status().await?;
                println!(
                    "database schema is current ({} migrations applied)",
                    status.applied.len()
                );
                store.close().await?;
                Ok(())
            }
            Command::Tenants(TenantsCommand::Apply { paths }) => {
                // Files are checked before the database is opened, so a bad file
                // changes nothing, not even the schema.
                let specs = crate::tenants::read_specs(&paths)?;
                let store = server::open_store(&config).await?;
                crate::tenants::apply(&store, &specs).await?;
                store.close().await?;
                Ok(())
            }
            Command::Plugins(PluginsCommand::Build { dir }) => crate::author::build(
                &config,
                dir.as_deref(),
                crate::author::BuildOptions::default(),
            )
            .await
            .map(|_| ()),
            Command::Plugins(PluginsCommand::Test { dir, no_build }) => {
                crate::author::test(&config, dir.as_deref(), no_build).await
            }
            Command::Dev { dir, listen } => {
                crate::author::dev(&config, dir.as_deref(), listen).await
            }
            Command::Plugins(PluginsCommand::Publish { dir, owner }) => {
                let store = server::open_store(&config).await?;
                let result = crate::plugins::publish(&config, &store, &dir, owner.as_deref()).await;
                store.close().await?;
                result
            }
            Command::Plugins(PluginsCommand::Owners(command)) => {
                let store = server::open_store(&config).await?;
                let result = match command {
                    OwnersCommand::List { plugin } => {
                        crate::plugins::list_owners(&store, &plugin).await
                    }
                    OwnersCommand::Add { plugin, subject } => {
                        crate::plugins::change_owner(&store, &plugin, &subject, true).await
                    }
                    OwnersCommand::Remove { plugin, subject } => {
                        crate::plugins::change_owner(&store, &plugin, &subject, false).await
                    }
                };
                store.close().await?;
                result
            }
            Command::Keys(command) => {
                let store = server::open_store(&config).await?;
                let result = match command {
                    KeysCommand::Register {
                        subject,
                        name,
                        public_key,
                    } => {
                        let public_key = match public_key.strip_prefix('@') {
                            Some(file) => std::fs::read_to_string(file)
                                .with_context(|| format!("cannot read {file}"))?,
                            None => public_key,
                        };
                        crate::plugins::register_key(&store, &subject, &name, &public_key).await
                    }
                    KeysCommand::List { subject } => {
                        crate::plugins::list_keys(&store, &subject).await
                    }
                    KeysCommand::Remove { subject, name } => {
                        crate::plugins::remove_key(&store, &subject, &name).await
                    }
                    KeysCommand::Generate { .. } => unreachable!("handled before the runtime"),
                };
                store.close().await?;
                result
            }
            Command::Plugins(PluginsCommand::Sign { .. } | PluginsCommand::New { .. })
            | Command::Secrets(SecretsCommand::GenerateKey) => {
                unreachable!("handled before the runtime starts")
            }
            Command::Secrets(SecretsCommand::RotateKey) => {
                // Opened first: on SQLite the default key lives next to the database file.
                let store = server::open_store(&config).await?;
                let keyring = server::keyring(&config)?
                    .context("no secrets key is configured: set secrets.key or secrets.key_file")?;
                let mut total = 0;
                let mut failed = Vec::new();
                for tenant in store.tenants().list().await? {
                    let scope = guildhall_store::TenantScope::already_checked(tenant.id.clone());
                    let rotation = store.secrets(&scope).rotate(&keyring).await;
                    match rotation {
                        Ok(rotation) => {
                            if rotation.rotated > 0 {
                                println!(
                                    "{}: {} secrets encrypted again",
                                    tenant.id, rotation.rotated
                                );
                            }
                            total += rotation.rotated;
                            failed.extend(
                                rotation
                                    .failed
                                    .into_iter()
                                    .map(|f| format!("{}: {f}", tenant.id)),
                            );
                        }
                        Err(e) => failed.push(format!("{}: {e}", tenant.id)),
                    }
                }
                store.close().await?;
                if !failed.is_empty() {
                    anyhow::bail!(
                        "{total} secrets encrypted again; {} could not be opened and keep their \
                         old key (keep it in secrets.previous_keys):\n{}",
                        failed.len(),
                        failed.join("\n")
                    );
                }
                println!(
                    "{total} secrets encrypted again under key {}",
                    keyring.current_id()
                );
                Ok(())
            }
            Command::Token(TokenCommand::Create {
                name,
                role,
                tenant,
                council,
                expires_in_days,
            }) => {
                let store = server::open_store(&config).await?;
                let result = crate::access::mint_token(
                    &store,
                    &name,
                    &role,
                    tenant.as_deref(),
                    council.as_deref(),
                    expires_in_days,
                )
                .await
                .map(|token| println!("{token}"));
                store.close().await?;
                result
            }
            Command::Audit(AuditCommand::Verify { tenant }) => {
                let store = server::open_store(&config).await?;
                let result = crate::access::verify(&store, tenant.as_deref()).await;
                store.close().await?;
                result
            }
            Command::Usage(UsageCommand::Report {
                tenant,
                from,
                to,
                format,
                basis,
            }) => {
                let store = server::open_store(&config).await?;
                let result = crate::usage::report(
                    &store,
                    &tenant,
                    from.as_deref(),
                    to.as_deref(),
                    &format,
                    &basis,
                )
                .await;
                store.close().await?;
                result
            }
            Command::Config(_) => unreachable!("handled before the runtime starts"),
            Command::Tenants(TenantsCommand::Export { tenant, out }) => {
                let store = server::open_store(&config).await?;
                let result = crate::tenants::export(&store, &tenant, out.as_deref()).await;
                store.close().await?;
                result
            }
            Command::Tenants(TenantsCommand::Import { file }) => {
                let store = server::open_store(&config).await?;
                let result = crate::tenants::import(&config, &store, &file).await;
                store.close().await?;
                result
            }
            Command::Tenants(TenantsCommand::List) => {
                let store = server::open_store(&config).await?;
                crate::tenants::list(&store).await?;
                store.close().await?;
                Ok(())
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
