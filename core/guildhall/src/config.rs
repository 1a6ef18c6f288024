//! Configuration: defaults, then `guildhall.toml` (or `--config FILE`), then `GUILDHALL_…`
//! environment variables with `__` separating nested keys.
//!
//! Every struct rejects unknown keys, so a typo in a file or a variable stops the server
//! with a message naming the key and where it came from, instead of being silently ignored.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use guildhall_store::DatabaseUrl;
use serde::{Deserialize, Serialize};

/// The prefix of configuration environment variables.
pub const ENV_PREFIX: &str = "GUILDHALL_";
/// The file read from the working directory when `--config` is not given.
pub const DEFAULT_FILE: &str = "guildhall.toml";

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named with `--config` does not exist.
    #[error("configuration file {0} does not exist")]
    Missing(PathBuf),
    /// A key is unknown or a value has the wrong type; the message names key and source.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The whole server configuration.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The address the HTTP server listens on.
    pub listen: Listen,
    /// Database connection.
    pub database: DatabaseConfig,
    /// HTTP server behaviour.
    pub http: HttpConfig,
    /// Connections: timeouts, the per-client connection cap, and which proxies are
    /// believed about clients' addresses.
    pub server: ServerConfig,
    /// Logging.
    pub log: LogConfig,
    /// Plugin runtime limits and caches.
    pub runtime: guildhall_runtime::RuntimeConfig,
    /// The shared catalogue: signatures.
    pub catalogue: guildhall_api::CatalogueConfig,
    /// Authentication: OpenID Connect issuers.
    pub auth: AuthConfig,
    /// Traces: where spans are exported.
    pub telemetry: guildhall_telemetry::TelemetryConfig,
    /// Per-council usage for cost sharing.
    pub metering: guildhall_telemetry::MeteringConfig,
    /// The alliance console: pages under `/console`.
    pub console: guildhall_console::ConsoleConfig,
    /// Citizens' sessions with plugins that declare `session`.
    pub sessions: guildhall_api::SessionsConfig,
    /// The key install secrets are encrypted with.
    pub secrets: SecretsConfig,
    /// Plugins' scheduled work.
    pub schedules: guildhall_api::SchedulesConfig,
    /// Removing plugins' data past its retention.
    pub retention: guildhall_operations::retention::RetentionConfig,
}

/// `[secrets]`: the AES-256 key install secrets are encrypted with (32 random bytes in
/// base64, from `guildhall secrets generate-key`), given inline or as a file (a mounted
/// Kubernetes Secret). Without one, secrets cannot be set or read (on SQLite, `serve` makes
/// one next to the database file on first start).
#[derive(Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// The current key, in base64. `config show` prints it hidden.
    #[serde(skip_serializing_if = "String::is_empty", serialize_with = "hidden")]
    pub key: String,
    /// A file holding the current key, in base64 (used when `key` is empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<std::path::PathBuf>,
    /// Earlier keys, which still open values until `guildhall secrets rotate-key` has
    /// sealed them again under the current key.
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "all_hidden")]
    pub previous_keys: Vec<String>,
}

impl std::fmt::Debug for SecretsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsConfig")
            .field("key", &(!self.key.is_empty()).then_some(HIDDEN))
            .field("key_file", &self.key_file)
            .field("previous_keys", &self.previous_keys.len())
            .finish()
    }
}

/// What `config show` prints for a key.
const HIDDEN: &str = "(hidden)";

fn hidden<S: serde::Serializer>(_: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(HIDDEN)
}

fn all_hidden<S: serde::Serializer>(keys: &[String], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(keys.iter().map(|_| HIDDEN))
}

impl SecretsConfig {
    /// The keyring, or `None` when no key is configured.
    pub fn keyring(&self) -> Result<Option<guildhall_store::Keyring>, String> {
        let key = if !self.key.is_empty() {
            self.key.clone()
        } else if let Some(path) = &self.key_file {
            std::fs::read_to_string(path)
                .map_err(|e| format!("secrets.key_file {}: {e}", path.display()))?
        } else {
            return Ok(None);
        };
        guildhall_store::Keyring::from_base64(&key, &self.previous_keys)
            .map(Some)
            .map_err(|e| e.to_string())
    }
}

/// `[auth]`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Trusted OpenID Connect issuers: one `[auth.oidc]` table or several `[[auth.oidc]]`.
    #[serde(
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub oidc: Vec<guildhall_authz::OidcIssuer>,
}

fn one_or_many<'de, D>(deserializer: D) -> Result<Vec<guildhall_authz::OidcIssuer>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::Error as _;
    let value = <figment::value::Value as Deserialize>::deserialize(deserializer)?;
    match value {
        figment::value::Value::Array(..) => value.deserialize().map_err(D::Error::custom),
        _ => value
            .deserialize()
            .map(|one| vec![one])
            .map_err(D::Error::custom),
    }
}

/// A listen address, `127.0.0.1:8080` by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Listen(pub SocketAddr);

impl Default for Listen {
    fn default() -> Self {
        Self(SocketAddr::from(([127, 0, 0, 1], 8080)))
    }
}

/// `[database]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://…` or `postgres://…`; the password never appears in logs.
    pub url: DatabaseUrl,
    /// The table owner's connection, used only to migrate (and, on PostgreSQL, to grant
    /// the role of `url` what the server needs). Defaults to `url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_url: Option<DatabaseUrl>,
    /// The most pooled connections.
    pub max_connections: u32,
    /// How long a request waits for a pooled connection, in milliseconds.
    pub acquire_timeout_ms: u64,
    /// The longest one statement may run on PostgreSQL before it is cancelled (the
    /// request then answers 503 with `Retry-After`), in milliseconds; 0 for no limit.
    /// A statement stuck behind a lock cannot hold a pooled connection for longer.
    pub statement_timeout_ms: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: DatabaseUrl::new("sqlite://data/guildhall.db?mode=rwc"),
            admin_url: None,
            max_connections: 16,
            acquire_timeout_ms: 5_000,
            statement_timeout_ms: 30_000,
        }
    }
}

/// `[http]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// The largest JSON body accepted on `/api` routes, in bytes.
    pub api_body_limit_bytes: usize,
    /// How long in-flight requests may take to finish after SIGTERM, in seconds. Keep it
    /// below Kubernetes' `terminationGracePeriodSeconds`.
    pub shutdown_grace_secs: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            api_body_limit_bytes: 1024 * 1024,
            shutdown_grace_secs: 25,
        }
    }
}

/// `[server]`: how long a connection may hold the server, how many one client may open, and
/// whose word on a client's address is believed.
///
/// These bound what a client can hold without doing any work: a trickling upload, a head
/// sent a byte at a time, an idle keep-alive connection, thousands of open sockets.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// How long a request's head (request line and headers) may take to arrive, counted
    /// from its first byte; slower connections are closed.
    pub header_read_timeout_secs: u64,
    /// How long a service request's body may take to arrive; it is read before the call
    /// takes a slot in its tenant's share, and a slower upload gets 408.
    pub body_read_timeout_secs: u64,
    /// How long one request may take from its head to its response, whatever it is; 408
    /// when it runs out. Keep it above `body_read_timeout_secs` plus the longest plugin
    /// deadline (`runtime.max_timeout_ms`).
    pub request_timeout_secs: u64,
    /// How long a keep-alive connection may wait for its next request before it is closed.
    pub keep_alive_idle_secs: u64,
    /// The most connections open at once from one client address (IPv6 clients are
    /// grouped by /64); further connections from it are closed at once. This counts the
    /// TCP peer: behind an ingress or load balancer every connection comes from the proxy,
    /// so set it above what the proxies open.
    pub max_connections_per_client: usize,
    /// Proxies (CIDRs, e.g. the ingress controller's pod range) whose `X-Forwarded-For` names
    /// the client, for the failed-authentication and feedback limits. Empty: the TCP peer is
    /// the client, whatever the header says.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The host names (with the port, when not the scheme's) residents reach the platform
    /// at, e.g. `services.north-downs.gov.uk`. Plugins are told the origin of a request whose
    /// `Host` is one of them (`x-guildhall-origin`, for a payment's return address), so a
    /// request with a forged `Host` cannot make a plugin link elsewhere. Empty: any `Host`,
    /// for trying the platform on one machine; set it in production.
    pub public_hosts: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 30,
            request_timeout_secs: 90,
            keep_alive_idle_secs: 60,
            max_connections_per_client: 256,
            trusted_proxies: Vec::new(),
            public_hosts: Vec::new(),
        }
    }
}

impl ServerConfig {
    /// Checks that every limit is set and that they fit together.
    pub fn validate(&self) -> Result<(), String> {
        for (name, value) in [
            ("header_read_timeout_secs", self.header_read_timeout_secs),
            ("body_read_timeout_secs", self.body_read_timeout_secs),
            ("request_timeout_secs", self.request_timeout_secs),
            ("keep_alive_idle_secs", self.keep_alive_idle_secs),
        ] {
            if value == 0 {
                return Err(format!("server.{name} must be at least 1"));
            }
        }
        if self.max_connections_per_client == 0 {
            return Err("server.max_connections_per_client must be at least 1".into());
        }
        if self.request_timeout_secs < self.body_read_timeout_secs {
            return Err(
                "server.request_timeout_secs must not be below server.body_read_timeout_secs"
                    .into(),
            );
        }
        Ok(())
    }
}

/// `[log]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing` filter such as `info` or `info,guildhall_store=debug`; `RUST_LOG` wins.
    pub filter: String,
    /// `text` for people, `json` for log collectors.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            filter: "info".to_string(),
            format: LogFormat::Text,
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Config {
    /// Loads the configuration from `file` (or `guildhall.toml` when present) and the
    /// process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::figment(file)?
            .extract()
            .map_err(|e| ConfigError::Invalid(describe(e)))
    }

    /// The layered sources, for tools that want to inspect them.
    pub fn figment(file: Option<&Path>) -> Result<Figment, ConfigError> {
        let mut figment = Figment::new();
        match file {
            Some(path) if !path.exists() => return Err(ConfigError::Missing(path.to_path_buf())),
            Some(path) => figment = figment.merge(Toml::file_exact(path)),
            None if Path::new(DEFAULT_FILE).exists() => {
                figment = figment.merge(Toml::file_exact(DEFAULT_FILE));
            }
            None => {}
        }
        Ok(figment.merge(Env::prefixed(ENV_PREFIX).split("__")))
    }
}

/// Renders every figment error on one line each, with key and source.
fn describe(err: figment::Error) -> String {
    err.into_iter()
        .map(|e| {
            let key = if e.path.is_empty() {
                String::new()
            } else {
                format!(" (key `{}`", e.path.join("."))
            };
            let source = match (&e.metadata, key.is_empty()) {
                (Some(meta), false) => match &meta.source {
                    Some(source) => format!(" in {source})"),
                    None => format!(" in {})", meta.name),
                },
                (Some(meta), true) => format!(" (in {})", meta.name),
                (None, false) => ")".to_string(),
                (None, true) => String::new(),
            };
            let source = match (&e.metadata, e.path.is_empty()) {
                (Some(meta), false) if meta.name.contains("environment") => {
                    format!(
                        " in environment variable {}{})",
                        ENV_PREFIX,
                        e.path.join("__").to_uppercase()
                    )
                }
                _ => source,
            };
            format!("{}{key}{source}", e.kind)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
// `figment::Jail` closures return figment's own (large) error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    fn defaults_need_no_file_and_no_environment() {
        Jail::expect_with(|_jail| {
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(config.listen.0.to_string(), "127.0.0.1:8080");
            assert_eq!(
                config.database.url.expose(),
                "sqlite://data/guildhall.db?mode=rwc"
            );
            Ok(())
        });
    }

    #[test]
    fn file_then_environment() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "guildhall.toml",
                "listen = \"0.0.0.0:9000\"\n[database]\nurl = \"postgres://app:pw@db/g\"\n",
            )?;
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(config.listen.0.to_string(), "0.0.0.0:9000");
            assert_eq!(config.database.url.expose(), "postgres://app:pw@db/g");
            jail.set_env("GUILDHALL_DATABASE__URL", "sqlite://other.db");
            jail.set_env("GUILDHALL_HTTP__SHUTDOWN_GRACE_SECS", "3");
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(config.database.url.expose(), "sqlite://other.db");
            assert_eq!(config.http.shutdown_grace_secs, 3);
            Ok(())
        });
    }

    #[test]
    fn unknown_environment_key_is_named() {
        Jail::expect_with(|jail| {
            jail.set_env("GUILDHALL_NOPE", "1");
            let err = Config::load(None).unwrap_err().to_string();
            assert!(err.contains("nope"), "{err}");
            assert!(err.contains("GUILDHALL_NOPE"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn unknown_file_key_is_named_with_the_file() {
        Jail::expect_with(|jail| {
            jail.create_file("custom.toml", "[database]\nurll = \"sqlite://x.db\"\n")?;
            let err = Config::load(Some(Path::new("custom.toml")))
                .unwrap_err()
                .to_string();
            assert!(err.contains("`urll`"), "{err}");
            assert!(err.contains("database.urll"), "{err}");
            assert!(err.contains("custom.toml"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn server_limits_have_defaults_and_reject_unknown_keys() {
        Jail::expect_with(|jail| {
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(config.server.header_read_timeout_secs, 10);
            assert_eq!(config.server.max_connections_per_client, 256);
            assert!(config.server.validate().is_ok());
            jail.set_env("GUILDHALL_SERVER__BODY_READ_TIMEOUT_SECS", "5");
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(config.server.body_read_timeout_secs, 5);
            jail.set_env("GUILDHALL_SERVER__REQUEST_TIMEOUT_SECS", "4");
            let config = Config::load(None).map_err(|e| e.to_string())?;
            let err = config.server.validate().unwrap_err();
            assert!(err.contains("request_timeout_secs"), "{err}");
            jail.set_env("GUILDHALL_SERVER__HEADER_TIMEOUT", "5");
            let err = Config::load(None).unwrap_err().to_string();
            assert!(err.contains("GUILDHALL_SERVER__HEADER_TIMEOUT"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_missing_explicit_file_is_an_error() {
        Jail::expect_with(|_jail| {
            let err = Config::load(Some(Path::new("nope.toml"))).unwrap_err();
            assert!(matches!(err, ConfigError::Missing(_)));
            Ok(())
        });
    }

    #[test]
    fn debug_output_hides_the_secrets_keys() {
        Jail::expect_with(|jail| {
            let key = "c2VjcmV0cy1rZXktaHVudGVyMi0xMjM0NTY3ODkwYWI=";
            jail.set_env("GUILDHALL_SECRETS__KEY", key);
            jail.set_env("GUILDHALL_SECRETS__PREVIOUS_KEYS", format!("[\"{key}x\"]"));
            let config = Config::load(None).map_err(|e| e.to_string())?;
            let shown = format!("{config:?}");
            assert!(!shown.contains(key), "{shown}");
            assert!(
                config.secrets.keyring().is_err(),
                "the previous key is not base64"
            );
            Ok(())
        });
    }

    #[test]
    fn debug_output_hides_the_database_password() {
        Jail::expect_with(|jail| {
            jail.set_env("GUILDHALL_DATABASE__URL", "postgres://app:hunter2@db/g");
            let config = Config::load(None).map_err(|e| e.to_string())?;
            let shown = format!("{config:?}");
            assert!(!shown.contains("hunter2"), "{shown}");
            Ok(())
        });
    }
}
