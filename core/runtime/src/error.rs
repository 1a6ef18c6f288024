//! What can go wrong preparing or calling a plugin.

use std::time::Duration;

use guildhall_domain::tenant::SpecError;

/// Why a component cannot be published or prepared.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The manifest breaks a rule; every problem is listed.
    #[error("invalid manifest: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Manifest(Vec<SpecError>),
    /// The bytes are larger than `runtime.max_component_bytes`.
    #[error("component is {size} bytes, above the limit of {limit} bytes")]
    TooLarge {
        /// The component's size.
        size: usize,
        /// The operator's limit.
        limit: usize,
    },
    /// The bytes are not a WebAssembly component.
    #[error("not a WebAssembly component: {0}")]
    NotAComponent(String),
    /// The component does not compile.
    #[error("the component does not compile: {0}")]
    Compile(String),
    /// Compilation took longer than the operator allows.
    #[error("compiling the component took longer than {0:?}")]
    CompileTimeout(Duration),
    /// The component imports interfaces its manifest does not declare or that Guildhall
    /// does not offer.
    #[error("the component imports what its manifest does not declare: {}", .0.join(", "))]
    UndeclaredImports(Vec<String>),
    /// The component does not export `wasi:http/incoming-handler`.
    #[error("the component does not export wasi:http/incoming-handler: {0}")]
    NotAService(String),
    /// Linking failed.
    #[error("the component cannot be linked: {0}")]
    Link(String),
    /// Every upload compile permit stayed taken for this long; try again later (503).
    #[error(
        "the platform is compiling other uploads; no compile slot came free within {0:?}, try again shortly"
    )]
    Busy(Duration),
    /// The component's bytes could not be loaded.
    #[error("the component's bytes could not be loaded: {0}")]
    Load(String),
    /// The engine or cache failed.
    #[error("runtime failure: {0:#}")]
    Engine(anyhow::Error),
}

/// How a call to a plugin failed. The gateway maps each to an HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The plugin did not answer within its deadline (504).
    #[error("the plugin did not answer within {0:?}")]
    Deadline(Duration),
    /// The plugin tried to grow its memory beyond its cap (502).
    #[error("the plugin exceeded its memory cap of {0} bytes")]
    MemoryCap(usize),
    /// The plugin trapped (502); carries the trap message.
    #[error("the plugin trapped: {0}")]
    Trap(String),
    /// The plugin's response was unusable (502).
    #[error("the plugin's response was unusable: {0}")]
    BadResponse(String),
    /// The request body is larger than the cap (413).
    #[error("the request body is larger than {0} bytes")]
    BodyTooLarge(usize),
    /// The plugin ran into a per-call host limit other than memory, e.g. the resources or
    /// outbound requests one call may have (502); carries which.
    #[error("the plugin exceeded a per-call limit: {0}")]
    HostLimit(String),
    /// The platform failed, not the plugin (500).
    #[error("the platform failed to run the plugin: {0}")]
    Internal(String),
}

impl CallError {
    /// A short, stable name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::Deadline(_) => "deadline",
            CallError::MemoryCap(_) => "memory_cap",
            CallError::Trap(_) => "trap",
            CallError::BadResponse(_) => "bad_response",
            CallError::BodyTooLarge(_) => "body_too_large",
            CallError::HostLimit(_) => "host_limit",
            CallError::Internal(_) => "internal",
        }
    }
}

/// A call could not be given its memory within the wait: the guests running hold the
/// whole `runtime.memory_budget_mib` (429).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the platform's memory budget of {budget_mib} MiB is in use; a call needing {needed_mib} MiB waited {waited:?}"
)]
pub struct MemoryBusy {
    /// The plugin's memory cap.
    pub needed_mib: u32,
    /// The operator's budget.
    pub budget_mib: u32,
    /// How long the call waited.
    pub waited: Duration,
}
