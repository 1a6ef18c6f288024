//! The operator's runtime settings (`[runtime]` in `guildhall.toml`).

use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Limits and caches for running plugins. Every field has a default; see DESIGN "Runtime
/// limits".
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Linear memory for a plugin that does not ask, in MiB.
    pub default_memory_mib: u32,
    /// The most linear memory a manifest may ask for, in MiB.
    pub max_memory_mib: u32,
    /// Deadline for a plugin that does not ask, in milliseconds.
    pub default_timeout_ms: u64,
    /// The longest deadline a manifest may ask for, in milliseconds.
    pub max_timeout_ms: u64,
    /// The largest request body passed to a plugin (413 above).
    pub max_request_body_bytes: usize,
    /// The largest response body a plugin may produce (502 above).
    pub max_response_body_bytes: usize,
    /// The wasm stack per call, in bytes.
    pub max_wasm_stack_bytes: usize,
    /// Concurrent plugin calls per tenant; by default
    /// [`RuntimeConfig::TENANT_CONCURRENCY_PER_CORE`] per core, at most
    /// [`RuntimeConfig::TENANT_CONCURRENCY_MAX`], so that on two cores one tenant's calls
    /// hold at most half of the default memory budget and another tenant's call always
    /// finds memory.
    pub tenant_concurrency: usize,
    /// Calls in flight at this process's gateway (each from the moment its path is read to
    /// its answer) at which the process counts as saturated: from then on a call of a tenant
    /// holding its fair share of them (this ÷ the tenants with calls in flight, at least 1)
    /// waits for it up to `tenant_queue_timeout_ms`, then gets 429. Unset:
    /// [`RuntimeConfig::SATURATION_CALLS_PER_CORE`] per core.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saturation_calls: Option<usize>,
    /// Calls that may wait for a tenant's free slot before the next one gets 429.
    pub tenant_queue: usize,
    /// How long a queued call waits for a slot before 429, in milliseconds.
    pub tenant_queue_timeout_ms: u64,
    /// The largest component accepted, in bytes.
    pub max_component_bytes: usize,
    /// The longest a component may take to compile, in milliseconds.
    pub compile_timeout_ms: u64,
    /// Components compiled at the same time for serving installed versions.
    pub compile_concurrency: usize,
    /// Uploads compiled at the same time (their own permits and threads, so publishing
    /// never delays the gateway).
    pub publish_compile_concurrency: usize,
    /// Compiler threads shared by upload compiles.
    pub publish_compile_threads: usize,
    /// How long an upload waits for a compile permit before 503, in milliseconds.
    pub publish_compile_wait_ms: u64,
    /// Compiled components kept (in memory and on disk); least recently used beyond it
    /// are evicted, except those prepared for serving.
    pub compile_cache_entries: usize,
    /// Precompiled artefact bytes kept, in MiB, with the same eviction.
    pub compile_cache_mib: u64,
    /// Where precompiled components are cached, keyed by digest and engine.
    pub cache_dir: PathBuf,
    /// Whether replicas share what they compile through the database.
    pub share_compiled: ShareCompiled,
    /// Instance slots reserved by the pooling allocator; 0 disables pooling.
    pub pooling_instances: u32,
    /// Key-value bytes (keys plus values) each install may store.
    pub kv_quota_bytes: u64,
    /// Outbound HTTP from plugins.
    pub outbound: OutboundConfig,
    /// Guest stdout/stderr lines logged per call; the rest is counted and dropped.
    pub guest_log_lines: u32,
    /// The most memory all running guests may be promised at once, in MiB: the sum of the
    /// memory caps of the calls running never exceeds it, and calls beyond it wait up to
    /// `tenant_queue_timeout_ms`, then get 429. Set it below the pod's memory limit, leaving
    /// room for the server itself and the compile cache.
    pub memory_budget_mib: u32,
    /// Resources (fields, bodies, streams, pollables, ...) one call may hold at once.
    pub max_call_resources: u32,
    /// Bytes of header names and values one `wasi:http` `fields` may hold.
    pub max_fields_bytes: usize,
    /// `events.emit` calls recorded per call; later ones get a quota error.
    pub events_per_call: u32,
    /// Events recorded per tenant per minute on each replica; later ones get a quota error.
    pub events_per_tenant_per_minute: u32,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            default_memory_mib: 64,
            max_memory_mib: 256,
            default_timeout_ms: 2_000,
            max_timeout_ms: 30_000,
            max_request_body_bytes: 4 << 20,
            max_response_body_bytes: 8 << 20,
            max_wasm_stack_bytes: 512 << 10,
            tenant_concurrency: (Self::TENANT_CONCURRENCY_PER_CORE * cores())
                .min(Self::TENANT_CONCURRENCY_MAX),
            saturation_calls: None,
            tenant_queue: 64,
            tenant_queue_timeout_ms: 1_000,
            max_component_bytes: 32 << 20,
            compile_timeout_ms: 180_000,
            compile_concurrency: 1,
            publish_compile_concurrency: 1,
            publish_compile_threads: 1,
            publish_compile_wait_ms: 10_000,
            compile_cache_entries: 256,
            compile_cache_mib: 2_048,
            cache_dir: PathBuf::from("data/cache/components"),
            share_compiled: ShareCompiled::Auto,
            pooling_instances: 1_000,
            kv_quota_bytes: 64 << 20,
            outbound: OutboundConfig::default(),
            guest_log_lines: 100,
            memory_budget_mib: 2_048,
            max_call_resources: 1_000,
            max_fields_bytes: 64 << 10,
            events_per_call: 100,
            events_per_tenant_per_minute: 6_000,
        }
    }
}

/// `runtime.share_compiled`: whether a replica puts what it compiles in the database and
/// loads what others put there (each artefact under an HMAC keyed from the secrets key;
/// without a secrets key nothing is shared).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ShareCompiled {
    /// On PostgreSQL, where replicas run; off on SQLite, where one server runs and the
    /// database file would only grow by every artefact.
    #[default]
    Auto,
    /// Always, SQLite included.
    On,
    /// Never: each replica compiles for itself.
    Off,
}

/// The cores this process may use (its CPU limit in a container), at least 1.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// `[runtime.outbound]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboundConfig {
    /// Connect plus response deadline for one outbound request, in milliseconds.
    pub timeout_ms: u64,
    /// The largest outbound response body a plugin may read.
    pub max_response_bytes: usize,
    /// Address ranges (CIDR) that are normally refused but this operator allows, e.g. an
    /// internal API on `10.20.0.0/16`. Empty by default: loopback, private, link-local and
    /// unique-local addresses are refused.
    pub allow_cidrs: Vec<String>,
    /// Outbound requests one call may make, refused ones included; the call fails (502)
    /// when it tries one more.
    pub max_requests_per_call: u32,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self {
            timeout_ms: 10_000,
            max_response_bytes: 8 << 20,
            allow_cidrs: Vec::new(),
            max_requests_per_call: 16,
        }
    }
}

/// An address range in CIDR notation, from `runtime.outbound.allow_cidrs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is in the range; an address of the other family never is.
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Parses operator CIDRs such as `10.20.0.0/16` or `fd00::/8`.
pub(crate) fn parse_cidrs(list: &[String]) -> Result<Vec<Cidr>, String> {
    list.iter()
        .map(|s| {
            let (addr, prefix) = s
                .split_once('/')
                .ok_or_else(|| format!("{s:?} is not CIDR notation"))?;
            let network: IpAddr = addr.parse().map_err(|_| format!("{s:?}: bad address"))?;
            let max = if network.is_ipv4() { 32 } else { 128 };
            let prefix: u8 = prefix
                .parse()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: prefix must be 0 to {max}"))?;
            Ok(Cidr { network, prefix })
        })
        .collect()
}

impl RuntimeConfig {
    /// Checks that the settings are consistent; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.default_memory_mib == 0 || self.default_memory_mib > self.max_memory_mib {
            return Err(format!(
                "runtime.default_memory_mib must be between 1 and runtime.max_memory_mib ({})",
                self.max_memory_mib
            ));
        }
        if self.default_timeout_ms == 0 || self.default_timeout_ms > self.max_timeout_ms {
            return Err(format!(
                "runtime.default_timeout_ms must be between 1 and runtime.max_timeout_ms ({})",
                self.max_timeout_ms
            ));
        }
        if self.compile_cache_entries == 0 || self.compile_cache_mib == 0 {
            return Err(
                "runtime.compile_cache_entries and runtime.compile_cache_mib must be at least 1"
                    .into(),
            );
        }
        if self.publish_compile_concurrency == 0 || self.publish_compile_threads == 0 {
            return Err(
                "runtime.publish_compile_concurrency and runtime.publish_compile_threads must be at least 1"
                    .into(),
            );
        }
        if self.tenant_concurrency == 0 {
            return Err("runtime.tenant_concurrency must be at least 1".into());
        }
        if self.saturation_calls == Some(0) {
            return Err(
                "runtime.saturation_calls must be at least 1 (or unset: 16 per core)".into(),
            );
        }
        if self.memory_budget_mib < self.max_memory_mib {
            return Err(format!(
                "runtime.memory_budget_mib ({}) must be at least runtime.max_memory_mib ({}), \
                 or a plugin asking for the most memory could never run",
                self.memory_budget_mib, self.max_memory_mib
            ));
        }
        if self.max_call_resources < 32 {
            return Err("runtime.max_call_resources must be at least 32".into());
        }
        if self.max_fields_bytes < 1024 {
            return Err("runtime.max_fields_bytes must be at least 1024".into());
        }
        parse_cidrs(&self.outbound.allow_cidrs)
            .map_err(|e| format!("runtime.outbound.allow_cidrs: {e}"))?;
        Ok(())
    }

    /// Gateway calls in flight per core at which a process counts as saturated, unless
    /// `saturation_calls` says otherwise. A light call costs the gateway about 0.1 ms of a
    /// core, so 16 queued per core wait under 2 ms; a tenant alone may still keep this many
    /// calls waiting on I/O (outbound requests, a slow database) at once.
    pub const SATURATION_CALLS_PER_CORE: usize = 16;

    /// A tenant's concurrent plugin calls per core, unless `tenant_concurrency` says
    /// otherwise: 16 calls of 64 MiB on two cores hold 1 GiB of the 2 GiB budget.
    pub const TENANT_CONCURRENCY_PER_CORE: usize = 8;

    /// The most concurrent plugin calls per tenant by default, whatever the cores: a
    /// process without a CPU limit on a large node sees all of the node's cores.
    pub const TENANT_CONCURRENCY_MAX: usize = 64;

    /// The calls in flight at which this process counts as saturated: `saturation_calls`, or
    /// [`Self::SATURATION_CALLS_PER_CORE`] for each core the process may use.
    pub fn saturation(&self) -> usize {
        self.saturation_calls
            .unwrap_or_else(|| Self::SATURATION_CALLS_PER_CORE * cores())
    }

    /// The caps manifests are checked against.
    pub fn caps(&self) -> guildhall_domain::manifest::LimitCaps {
        guildhall_domain::manifest::LimitCaps {
            max_memory_mib: self.max_memory_mib,
            max_timeout_ms: self.max_timeout_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{RuntimeConfig, parse_cidrs};

    #[test]
    fn the_memory_budget_must_fit_the_largest_plugin() {
        assert_eq!(RuntimeConfig::default().validate(), Ok(()));
        let config = RuntimeConfig {
            memory_budget_mib: 128,
            max_memory_mib: 256,
            ..RuntimeConfig::default()
        };
        let e = config.validate().unwrap_err();
        assert!(e.contains("runtime.memory_budget_mib (128)"), "{e}");
        assert!(e.contains("runtime.max_memory_mib (256)"), "{e}");
    }

    #[test]
    fn shares_are_derived_from_the_cores_unless_set() {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        assert_eq!(RuntimeConfig::default().saturation(), 16 * cores);
        assert_eq!(
            RuntimeConfig::default().tenant_concurrency,
            (8 * cores).min(64)
        );
        let set = RuntimeConfig {
            saturation_calls: Some(5),
            ..RuntimeConfig::default()
        };
        assert_eq!(set.saturation(), 5);
        assert_eq!(set.validate(), Ok(()));
        let zero = RuntimeConfig {
            saturation_calls: Some(0),
            ..RuntimeConfig::default()
        };
        let e = zero.validate().unwrap_err();
        assert!(e.contains("runtime.saturation_calls"), "{e}");
    }

    #[test]
    fn operator_cidrs() {
        let allow = parse_cidrs(&["10.20.0.0/16".into(), "fd00::/8".into()]).unwrap();
        assert!(allow[0].contains("10.20.3.4".parse().unwrap()));
        assert!(!allow[0].contains("10.21.3.4".parse().unwrap()));
        assert!(allow[1].contains("fd12::1".parse().unwrap()));
        assert!(parse_cidrs(&["10.0.0.0".into()]).is_err());
        assert!(parse_cidrs(&["10.0.0.0/33".into()]).is_err());
    }
}
