//! Plugin manifests (`plugin.toml`): what a plugin is, what it may call, the limits it asks
//! for and the configuration each tenant gives it on install.
//!
//! ```toml
//! name = "bin-collections"
//! version = "1.2.0"
//! description = "Find your bin collection days"
//! publisher = "north-downs-digital"
//! licence = "MIT"
//! component = "bin_collections.wasm"
//! [capabilities]
//! kv = true
//! events = true
//! outbound_http = ["api.example.org"]
//! [limits]
//! memory_mib = 64
//! timeout_ms = 2000
//! [config.collection_api]
//! type = "string"
//! required = true
//! [data_protection]
//! subject_requests = true
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::PluginName;
use crate::tenant::SpecError;

/// A plugin's manifest, as published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The plugin's name in the catalogue.
    pub name: PluginName,
    /// Semantic version of this build.
    #[schema(value_type = String, example = "1.2.0")]
    pub version: semver::Version,
    /// One line saying what the service does.
    pub description: String,
    /// Who publishes it, an id such as `north-downs-digital`.
    pub publisher: String,
    /// SPDX licence expression, e.g. `MIT` or `Apache-2.0`.
    pub licence: String,
    /// The component's file name, next to `plugin.toml`.
    pub component: String,
    /// What the plugin may call beyond its own HTTP handler.
    #[serde(default)]
    pub capabilities: Capabilities,
    /// The limits the plugin asks for; the operator's caps bound them.
    #[serde(default)]
    pub limits: Limits,
    /// Settings each tenant gives on install.
    #[serde(default)]
    pub config: BTreeMap<String, ConfigField>,
    /// Secrets the alliance's administrators set for the install (API keys and the like),
    /// which the plugin reads with `guildhall:platform/secrets`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, SecretDecl>,
    /// Work the plugin does on a schedule, through its `guildhall:platform/scheduled` export.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<ScheduleDecl>,
    /// How the plugin takes part in the councils' data protection.
    #[serde(default, skip_serializing_if = "DataProtection::is_default")]
    pub data_protection: DataProtection,
}

/// The `[data_protection]` table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DataProtection {
    /// The component exports `guildhall:platform/data-subject`: it finds and erases the
    /// records it holds about a resident when a council answers a subject access or
    /// erasure request.
    #[serde(default)]
    pub subject_requests: bool,
    /// How long the plugin's key-value entries are kept after their last write, in days:
    /// the platform removes older ones. Kept until deleted when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_retention_days: Option<u32>,
    /// How long the plugin's events are kept, in days: the platform removes older ones
    /// (their audit entries, which hold no payload, stay). Kept when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_retention_days: Option<u32>,
}

/// The longest retention a manifest or an install may set: 100 years, in days.
pub const MAX_RETENTION_DAYS: u32 = 36_525;

impl DataProtection {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// One declared secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretDecl {
    /// What the secret is, for the administrators who set it.
    pub description: String,
}

/// One declared schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleDecl {
    /// The schedule's name, passed to the plugin's `scheduled.run`, e.g. `renewal-reminders`.
    pub name: String,
    /// When it is due: a five-field cron expression (minute, hour, day of month, month, day
    /// of week) in UTC, e.g. `0 8 * * *` for 08:00 every day.
    pub cron: String,
}

impl ScheduleDecl {
    /// The parsed expression.
    pub fn parsed(&self) -> Result<Cron, String> {
        parse_cron(&self.cron)
    }
}

/// A schedule's parsed cron expression.
pub use croner::Cron;

/// Parses a five-field cron expression (no seconds field: a schedule is due at most once a
/// minute).
pub fn parse_cron(text: &str) -> Result<Cron, String> {
    if text.split_whitespace().count() != 5 {
        return Err(format!(
            "{text:?} is not a five-field cron expression (minute hour day-of-month month day-of-week)"
        ));
    }
    croner::parser::CronParser::new()
        .parse(text)
        .map_err(|e| format!("{text:?} is not a valid cron expression: {e}"))
}

/// The due times of `cron` after `after` and at or before `until`, oldest first, at most
/// `limit` of them.
pub fn due_times(
    cron: &Cron,
    after: time::OffsetDateTime,
    until: time::OffsetDateTime,
    limit: usize,
) -> Vec<time::OffsetDateTime> {
    use chrono::TimeZone as _;
    let to_chrono = |t: time::OffsetDateTime| {
        chrono::Utc
            .timestamp_opt(t.unix_timestamp(), 0)
            .single()
            .unwrap_or_default()
    };
    let mut cursor = to_chrono(after);
    let until = to_chrono(until);
    let mut times = Vec::new();
    while times.len() < limit {
        match cron.find_next_occurrence(&cursor, false) {
            Ok(next) if next <= until => {
                if let Ok(t) = time::OffsetDateTime::from_unix_timestamp(next.timestamp()) {
                    times.push(t);
                }
                cursor = next;
            }
            _ => break,
        }
    }
    times
}

/// Declared capabilities. Anything not declared cannot be linked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// `guildhall:platform/kv`: a key-value store private to the plugin in each tenant.
    #[serde(default)]
    pub kv: bool,
    /// `guildhall:platform/events`: named events, audited and counted.
    #[serde(default)]
    pub events: bool,
    /// `guildhall:platform/authz`: ask whether the caller may do something.
    #[serde(default)]
    pub authz: bool,
    /// `wasi:http/outgoing-handler`, only to these exact hosts.
    #[serde(default)]
    pub outbound_http: Vec<String>,
    /// `guildhall:platform/session`: a session per citizen for multi-page journeys, and
    /// the anti-forgery token the platform checks on their form posts.
    #[serde(default)]
    pub session: bool,
}

/// Limits a plugin asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Linear memory cap in MiB; the operator's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u32>,
    /// Deadline per request in milliseconds; the operator's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// The type of one configuration setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConfigType {
    /// A JSON string.
    String,
    /// A JSON integer.
    Integer,
    /// `true` or `false`.
    Boolean,
    /// Any JSON value.
    Json,
}

impl ConfigType {
    fn accepts(self, value: &Value) -> bool {
        match self {
            ConfigType::String => value.is_string(),
            ConfigType::Integer => value.is_i64() || value.is_u64(),
            ConfigType::Boolean => value.is_boolean(),
            ConfigType::Json => true,
        }
    }

    fn name(self) -> &'static str {
        match self {
            ConfigType::String => "a string",
            ConfigType::Integer => "an integer",
            ConfigType::Boolean => "a boolean",
            ConfigType::Json => "a JSON value",
        }
    }
}

/// One declared configuration setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigField {
    /// The value's type.
    #[serde(rename = "type")]
    pub kind: ConfigType,
    /// Whether every install must give it.
    #[serde(default)]
    pub required: bool,
    /// What the setting means, for the people installing the plugin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The value used when an install does not give one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub default: Option<Value>,
    /// Whether a council's own officers may set it for their council. Settings that decide
    /// where the install's secrets are sent (a payment service's address) must not be:
    /// only the alliance's administrators set those, for the install or a council.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub council: bool,
}

/// The operator's caps that a manifest's limits must stay within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitCaps {
    /// Largest `limits.memory_mib` accepted.
    pub max_memory_mib: u32,
    /// Largest `limits.timeout_ms` accepted.
    pub max_timeout_ms: u64,
}

/// A failed check: the field and why.
pub type FieldError = SpecError;

fn err(field: impl Into<String>, reason: impl Into<String>) -> FieldError {
    SpecError {
        field: field.into(),
        reason: reason.into(),
    }
}

impl Manifest {
    /// Parses `plugin.toml` text. Syntax and type errors name the field; call
    /// [`Manifest::validate`] for the rules beyond types.
    pub fn from_toml(text: &str) -> Result<Self, FieldError> {
        toml::from_str(text).map_err(|e| crate::tenant::toml_error(&e, text))
    }

    /// Checks everything serde cannot: text fields, the component file name, hosts, config
    /// keys and defaults, and limits against the operator's caps. Returns every problem.
    pub fn validate(&self, caps: &LimitCaps) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if let Err(e) = crate::tenant::validate_name("description", &self.description) {
            errors.push(e);
        }
        if crate::TenantId::parse(self.publisher.clone()).is_err() {
            errors.push(err("publisher", "must match [a-z0-9-]{2,48}"));
        }
        if !valid_licence(&self.licence) {
            errors.push(err(
                "licence",
                "must be an SPDX licence expression such as MIT or Apache-2.0",
            ));
        }
        if !valid_file_name(&self.component) {
            errors.push(err(
                "component",
                "must be a file name ending in .wasm, without folders",
            ));
        }
        let mut hosts = std::collections::BTreeSet::new();
        for (i, host) in self.capabilities.outbound_http.iter().enumerate() {
            if let Some(form) = ip_literal(host) {
                errors.push(err(
                    format!("capabilities.outbound_http[{i}]"),
                    format!(
                        "{host:?} is {form}; declare host names only (addresses are checked \
                         after name resolution, and an operator allows internal ranges with \
                         runtime.outbound.allow_cidrs)"
                    ),
                ));
            } else if !valid_host(host) {
                errors.push(err(
                    format!("capabilities.outbound_http[{i}]"),
                    format!("{host:?} is not a lowercase host name (no scheme, port or path)"),
                ));
            } else if !hosts.insert(host) {
                errors.push(err(
                    format!("capabilities.outbound_http[{i}]"),
                    format!("{host:?} is listed twice"),
                ));
            }
        }
        match self.limits.memory_mib {
            Some(0) => errors.push(err("limits.memory_mib", "must be at least 1")),
            Some(m) if m > caps.max_memory_mib => errors.push(err(
                "limits.memory_mib",
                format!("{m} is above the operator's cap of {}", caps.max_memory_mib),
            )),
            _ => {}
        }
        match self.limits.timeout_ms {
            Some(0) => errors.push(err("limits.timeout_ms", "must be at least 1")),
            Some(t) if t > caps.max_timeout_ms => errors.push(err(
                "limits.timeout_ms",
                format!("{t} is above the operator's cap of {}", caps.max_timeout_ms),
            )),
            _ => {}
        }
        for (key, field) in &self.config {
            if !valid_config_key(key) {
                errors.push(err(
                    format!("config.{key}"),
                    "keys are 1 to 64 characters of a-z, 0-9 and _, starting with a letter",
                ));
            }
            if let Some(default) = &field.default {
                if !field.kind.accepts(default) {
                    errors.push(err(
                        format!("config.{key}.default"),
                        format!("must be {}", field.kind.name()),
                    ));
                }
                if field.required {
                    errors.push(err(
                        format!("config.{key}.default"),
                        "a required setting cannot have a default",
                    ));
                }
            }
        }
        for key in self.secrets.keys() {
            if !valid_config_key(key) {
                errors.push(err(
                    format!("secrets.{key}"),
                    "names are 1 to 64 characters of a-z, 0-9 and _, starting with a letter",
                ));
            }
        }
        for (key, secret) in &self.secrets {
            if let Err(e) = crate::tenant::validate_name(
                &format!("secrets.{key}.description"),
                &secret.description,
            ) {
                errors.push(e);
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, schedule) in self.schedules.iter().enumerate() {
            if !valid_schedule_name(&schedule.name) {
                errors.push(err(
                    format!("schedules[{i}].name"),
                    "names are 1 to 64 characters of a-z, 0-9 and -, starting with a letter",
                ));
            } else if !names.insert(schedule.name.as_str()) {
                errors.push(err(
                    format!("schedules[{i}].name"),
                    format!("{:?} is declared twice", schedule.name),
                ));
            }
            if let Err(reason) = schedule.parsed() {
                errors.push(err(format!("schedules[{i}].cron"), reason));
            }
        }
        for (field, days) in [
            ("kv_retention_days", self.data_protection.kv_retention_days),
            (
                "event_retention_days",
                self.data_protection.event_retention_days,
            ),
        ] {
            if let Some(days) = days
                && !(1..=MAX_RETENTION_DAYS).contains(&days)
            {
                errors.push(err(
                    format!("data_protection.{field}"),
                    format!("must be 1 to {MAX_RETENTION_DAYS} days"),
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The declared schedule called `name`.
    pub fn schedule(&self, name: &str) -> Option<&ScheduleDecl> {
        self.schedules.iter().find(|s| s.name == name)
    }

    /// Checks a council's overrides of an install's configuration: every key declared and
    /// of its declared type. Returns the overrides as given.
    pub fn check_overrides(&self, overrides: &Value) -> Result<Value, Vec<FieldError>> {
        let Value::Object(given) = overrides else {
            return Err(vec![err("config", "must be a JSON object")]);
        };
        let mut errors = Vec::new();
        for (key, value) in given {
            match self.config.get(key) {
                None => errors.push(err(
                    format!("config.{key}"),
                    "unknown setting: the manifest does not declare it",
                )),
                Some(field) if !field.kind.accepts(value) => errors.push(err(
                    format!("config.{key}"),
                    format!("must be {}", field.kind.name()),
                )),
                Some(_) => {}
            }
        }
        if errors.is_empty() {
            Ok(overrides.clone())
        } else {
            Err(errors)
        }
    }

    /// The settings among `current` and `next` (two versions of a council's overrides) that
    /// differ and that a council's officers may not set, by name.
    pub fn admin_only_changes(&self, current: &Value, next: &Value) -> Vec<String> {
        let empty = serde_json::Map::new();
        let current = current.as_object().unwrap_or(&empty);
        let next = next.as_object().unwrap_or(&empty);
        let mut changed: Vec<String> = current
            .keys()
            .chain(next.keys())
            .filter(|key| self.config.get(*key).is_none_or(|field| !field.council))
            .filter(|key| current.get(*key) != next.get(*key))
            .cloned()
            .collect();
        changed.sort();
        changed.dedup();
        changed
    }

    /// An install's checked configuration with a council's overrides laid over it.
    pub fn merged_config(install: &Value, overrides: Option<&Value>) -> Value {
        let mut merged = install.clone();
        if let (Value::Object(base), Some(Value::Object(over))) = (&mut merged, overrides) {
            for (key, value) in over {
                base.insert(key.clone(), value.clone());
            }
        }
        merged
    }

    /// Checks an install's configuration against the declarations and returns it with
    /// defaults filled in. Unknown keys, missing required keys and wrong types are each
    /// reported with the key.
    pub fn check_config(&self, config: &Value) -> Result<Value, Vec<FieldError>> {
        let empty = serde_json::Map::new();
        let given = match config {
            Value::Object(map) => map,
            Value::Null => &empty,
            _ => return Err(vec![err("config", "must be a JSON object")]),
        };
        let mut errors = Vec::new();
        for key in given.keys() {
            if !self.config.contains_key(key) {
                errors.push(err(
                    format!("config.{key}"),
                    "unknown setting: the manifest does not declare it",
                ));
            }
        }
        let mut checked = serde_json::Map::new();
        for (key, field) in &self.config {
            match given.get(key) {
                Some(value) if field.kind.accepts(value) => {
                    checked.insert(key.clone(), value.clone());
                }
                Some(_) => errors.push(err(
                    format!("config.{key}"),
                    format!("must be {}", field.kind.name()),
                )),
                None if field.required => errors.push(err(format!("config.{key}"), "required")),
                None => {
                    if let Some(default) = &field.default {
                        checked.insert(key.clone(), default.clone());
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(Value::Object(checked))
        } else {
            Err(errors)
        }
    }
}

fn valid_licence(licence: &str) -> bool {
    !licence.is_empty()
        && licence.len() <= 128
        && licence
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " .-+()".contains(c))
}

fn valid_file_name(name: &str) -> bool {
    name.len() > 5
        && name.len() <= 128
        && name.ends_with(".wasm")
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// What kind of IP literal `host` is, or `None` for anything else. Manifests may declare
/// only host names: an address would sidestep nothing (the runtime checks resolved
/// addresses), but written forms such as `2130706433`, `0x7f.1` or `0177.0.0.1` are read
/// as IPv4 by URL parsers and resolvers, so a reviewer of `plugin.toml` could not tell what
/// the plugin reaches. Following the WHATWG URL standard, a host whose last label is a
/// number (decimal, `0x` hex or leading-zero octal) is an IPv4 address in some form.
pub fn ip_literal(host: &str) -> Option<&'static str> {
    let bare = host.trim_end_matches('.');
    if bare.parse::<std::net::Ipv4Addr>().is_ok() {
        return Some("an IPv4 address");
    }
    if bare.parse::<std::net::Ipv6Addr>().is_ok() {
        return Some("an IPv6 address");
    }
    if let Some(inner) = bare.strip_prefix('[') {
        let inner = inner.split(']').next().unwrap_or_default();
        if inner.parse::<std::net::Ipv6Addr>().is_ok() || inner.starts_with('v') {
            return Some(if bare.ends_with(']') {
                "a bracketed IPv6 address"
            } else {
                "a bracketed IPv6 address with a port"
            });
        }
    }
    if let Ok(addr) = bare.parse::<std::net::SocketAddr>() {
        return Some(if addr.is_ipv4() {
            "an IPv4 address with a port"
        } else {
            "an IPv6 address with a port"
        });
    }
    let without_port = match bare.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => bare,
    };
    let last = without_port.rsplit('.').next().unwrap_or_default();
    let numeric = |label: &str| {
        let lower = label.to_ascii_lowercase();
        match lower.strip_prefix("0x") {
            Some(hex) => hex.bytes().all(|b| b.is_ascii_hexdigit()),
            None => !lower.is_empty() && lower.bytes().all(|b| b.is_ascii_digit()),
        }
    };
    if numeric(last) {
        return Some(
            "a number that URL parsers read as an IPv4 address (decimal, hex or octal form)",
        );
    }
    None
}

/// A lowercase DNS name (labels of a-z, 0-9 and '-') whose last label is not a number (see
/// [`ip_literal`]).
pub fn valid_host(host: &str) -> bool {
    if ip_literal(host).is_some() {
        return false;
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

fn valid_schedule_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn valid_config_key(key: &str) -> bool {
    let mut chars = key.chars();
    key.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: LimitCaps = LimitCaps {
        max_memory_mib: 256,
        max_timeout_ms: 30_000,
    };

    const EXAMPLE: &str = r#"
name = "bin-collections"
version = "1.2.0"
description = "Find your bin collection days"
publisher = "north-downs-digital"
licence = "MIT"
component = "bin_collections.wasm"
[capabilities]
kv = true
events = true
outbound_http = ["api.example.org"]
[limits]
memory_mib = 64
timeout_ms = 2000
[config.collection_api]
type = "string"
required = true
[config.page_size]
type = "integer"
default = 20
"#;

    #[test]
    fn the_design_example_is_valid() {
        let m = Manifest::from_toml(EXAMPLE).unwrap();
        m.validate(&CAPS).unwrap();
        assert_eq!(m.version.to_string(), "1.2.0");
        assert!(m.capabilities.kv && !m.capabilities.authz);
    }

    #[test]
    fn limits_above_the_caps_are_named() {
        let m =
            Manifest::from_toml(&EXAMPLE.replace("memory_mib = 64", "memory_mib = 512")).unwrap();
        let errors = m.validate(&CAPS).unwrap_err();
        assert_eq!(errors[0].field, "limits.memory_mib");
        assert!(errors[0].reason.contains("cap of 256"));
    }

    #[test]
    fn bad_fields_are_named() {
        let e = Manifest::from_toml(&EXAMPLE.replace("version = \"1.2.0\"", "version = \"1.2\""))
            .unwrap_err();
        assert!(e.field.starts_with("version"), "{e}");
        let e = Manifest::from_toml(&EXAMPLE.replace("kv = true", "kv = true\nsockets = true"))
            .unwrap_err();
        assert!(e.field.starts_with("capabilities.sockets"), "{e}");
        let m = Manifest::from_toml(
            &EXAMPLE
                .replace("\"api.example.org\"", "\"https://api.example.org\"")
                .replace("bin_collections.wasm", "../x.wasm"),
        )
        .unwrap();
        let fields: Vec<String> = m
            .validate(&CAPS)
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["component", "capabilities.outbound_http[0]"]);
    }

    /// Every written form of an IP address is refused with what it is, and host names
    /// that merely contain digits are not.
    #[test]
    fn outbound_hosts_may_not_be_ip_literals() {
        let refused = [
            ("127.0.0.1", "an IPv4 address"),
            ("10.0.0.1.", "an IPv4 address"),
            ("::1", "an IPv6 address"),
            ("64:ff9b::7f00:1", "an IPv6 address"),
            ("::ffff:127.0.0.1", "an IPv6 address"),
            ("[::1]", "a bracketed IPv6 address"),
            ("[::1]:8080", "a bracketed IPv6 address with a port"),
            ("[v1.x]", "a bracketed IPv6 address"),
            ("127.0.0.1:80", "an IPv4 address with a port"),
            ("2130706433", "decimal, hex or octal"),
            ("0x7f000001", "decimal, hex or octal"),
            ("0x7f.1", "decimal, hex or octal"),
            ("0X7F.0.0.1", "decimal, hex or octal"),
            ("0177.0.0.1", "decimal, hex or octal"),
            ("127.1", "decimal, hex or octal"),
            ("017700000001", "decimal, hex or octal"),
            ("example.0x10", "decimal, hex or octal"),
            ("2130706433:80", "decimal, hex or octal"),
        ];
        for (host, form) in refused {
            let text = EXAMPLE.replace("\"api.example.org\"", &format!("{host:?}"));
            let m = Manifest::from_toml(&text).unwrap();
            let errors = m.validate(&CAPS).unwrap_err();
            assert_eq!(errors.len(), 1, "{host}: {errors:?}");
            assert_eq!(errors[0].field, "capabilities.outbound_http[0]", "{host}");
            assert!(
                errors[0].reason.contains(form),
                "{host}: {}",
                errors[0].reason
            );
            assert!(ip_literal(host).is_some(), "{host}");
        }
        for host in [
            "api.example.org",
            "0x.example.org",
            "1password.com",
            "www.123.example",
            "3com.example",
            "example.x0",
        ] {
            assert_eq!(ip_literal(host), None, "{host}");
            assert!(valid_host(host), "{host}");
        }
    }

    #[test]
    fn install_config_is_checked_and_defaulted() {
        let m = Manifest::from_toml(EXAMPLE).unwrap();
        let ok = m
            .check_config(&serde_json::json!({"collection_api": "https://x"}))
            .unwrap();
        assert_eq!(ok["page_size"], 20);
        let errors = m
            .check_config(&serde_json::json!({"page_size": "ten", "colour": 1}))
            .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["config.colour", "config.collection_api", "config.page_size"]
        );
    }

    #[test]
    fn secrets_and_schedules_are_checked() {
        let text = format!(
            "{EXAMPLE}\n[secrets]\npay_api_key = {{ description = \"The council's GOV.UK Pay key\" }}\n\
             [[schedules]]\nname = \"renewal-reminders\"\ncron = \"0 8 * * *\"\n"
        );
        let m = Manifest::from_toml(&text).unwrap();
        m.validate(&CAPS).unwrap();
        assert!(m.schedule("renewal-reminders").is_some());
        let bad = text
            .replace("pay_api_key", "Pay-Key")
            .replace("renewal-reminders", "Renewals")
            .replace("0 8 * * *", "0 8 * *");
        let fields: Vec<String> = Manifest::from_toml(&bad)
            .unwrap()
            .validate(&CAPS)
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            ["secrets.Pay-Key", "schedules[0].name", "schedules[0].cron"]
        );
        let twice =
            format!("{text}[[schedules]]\nname = \"renewal-reminders\"\ncron = \"* * * * *\"\n");
        let errors = Manifest::from_toml(&twice)
            .unwrap()
            .validate(&CAPS)
            .unwrap_err();
        assert_eq!(errors[0].field, "schedules[1].name");
        assert!(errors[0].reason.contains("twice"));
    }

    #[test]
    fn data_protection_is_declared_and_checked() {
        let m = Manifest::from_toml(EXAMPLE).unwrap();
        assert_eq!(m.data_protection, DataProtection::default());
        let serialised = serde_json::to_value(&m).unwrap();
        assert!(serialised.get("data_protection").is_none(), "{serialised}");
        let text = format!(
            "{EXAMPLE}\n[data_protection]\nsubject_requests = true\nkv_retention_days = 365\n\
             event_retention_days = 730\n"
        );
        let m = Manifest::from_toml(&text).unwrap();
        m.validate(&CAPS).unwrap();
        assert!(m.data_protection.subject_requests);
        assert_eq!(m.data_protection.kv_retention_days, Some(365));
        let bad = text
            .replace("= 365", "= 0")
            .replace("= 730", &format!("= {}", MAX_RETENTION_DAYS + 1));
        let fields: Vec<String> = Manifest::from_toml(&bad)
            .unwrap()
            .validate(&CAPS)
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            [
                "data_protection.kv_retention_days",
                "data_protection.event_retention_days"
            ]
        );
        let unknown = format!("{EXAMPLE}\n[data_protection]\nretention_days = 30\n");
        assert!(Manifest::from_toml(&unknown).is_err());
    }

    #[test]
    fn due_times_are_the_crons_in_a_window() {
        let cron = parse_cron("0 8 * * *").unwrap();
        let at = |d: u8, h: u8, m: u8| {
            time::PrimitiveDateTime::new(
                time::Date::from_calendar_date(2026, time::Month::December, d).unwrap(),
                time::Time::from_hms(h, m, 0).unwrap(),
            )
            .assume_utc()
        };
        // Strictly after the start, up to and including the end.
        assert_eq!(
            due_times(&cron, at(1, 8, 0), at(3, 8, 0), 10),
            [at(2, 8, 0), at(3, 8, 0)]
        );
        assert!(due_times(&cron, at(1, 8, 1), at(2, 7, 59), 10).is_empty());
        let every_minute = parse_cron("* * * * *").unwrap();
        assert_eq!(
            due_times(&every_minute, at(1, 0, 0), at(2, 0, 0), 5).len(),
            5
        );
        assert!(parse_cron("* * * * * *").is_err());
        assert!(parse_cron("0 25 * * *").is_err());
    }

    #[test]
    fn council_overrides_are_checked_and_merged() {
        let m = Manifest::from_toml(EXAMPLE).unwrap();
        let install = m
            .check_config(&serde_json::json!({"collection_api": "https://x"}))
            .unwrap();
        let overrides = serde_json::json!({"page_size": 50});
        m.check_overrides(&overrides).unwrap();
        let merged = Manifest::merged_config(&install, Some(&overrides));
        assert_eq!(merged["page_size"], 50);
        assert_eq!(merged["collection_api"], "https://x");
        let errors = m
            .check_overrides(&serde_json::json!({"page_size": "many", "colour": 1}))
            .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["config.colour", "config.page_size"]);
        assert!(m.check_overrides(&serde_json::json!([1])).is_err());
    }
}
