//! The per-call host state that lives in each `Store`, and what it needs from WASI.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use guildhall_domain::PluginName;
use tokio::io::AsyncWrite;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::CallContext;
use crate::capabilities::{OutboundHooks, OutboundPolicy, Ports};

/// What every call shares from the runtime.
#[derive(Clone)]
pub(crate) struct Services {
    pub(crate) ports: Ports,
    pub(crate) kv_quota: u64,
    pub(crate) events: Arc<crate::capabilities::EventQuota>,
}

/// The per-call host limits besides memory, from `[runtime]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallLimits {
    /// The call's memory cap in bytes: its linear memories plus what the host holds for it.
    pub(crate) memory_bytes: usize,
    /// Entries in the call's resource table at once.
    pub(crate) resources: usize,
    /// Bytes of names and values in one `wasi:http` `fields`.
    pub(crate) fields_bytes: usize,
    /// Guest stdout/stderr lines logged.
    pub(crate) log_lines: u32,
    /// `events.emit` calls.
    pub(crate) events: u32,
    /// Outbound requests, refused ones included.
    pub(crate) outbound_requests: u32,
}

/// Refused capability uses listed in a call's report; later ones are only counted.
pub(crate) const MAX_DENIED_RECORDS: usize = 16;

/// What the host observed during a call, reported with its outcome.
#[derive(Debug, Default)]
pub(crate) struct Observed {
    /// Capability uses the host refused, e.g. an outbound call to an undeclared host.
    pub(crate) denied: Vec<String>,
    /// Refused capability uses beyond those kept in `denied`.
    pub(crate) denied_more: u32,
    /// Whether the guest asked for memory beyond its cap.
    pub(crate) memory_cap_hit: bool,
    /// A per-call host limit the call ran into, e.g. too many outbound requests; the call
    /// fails with it.
    pub(crate) host_limit: Option<String>,
    /// Bytes (keys plus values) the guest wrote to its key-value store.
    pub(crate) kv_bytes_written: u64,
}

impl Observed {
    /// Records a refused capability use, keeping at most [`MAX_DENIED_RECORDS`].
    pub(crate) fn deny(&mut self, what: String) {
        if self.denied.len() < MAX_DENIED_RECORDS {
            self.denied.push(what);
        } else {
            self.denied_more += 1;
        }
    }
}

/// Every byte a call holds, counted against its memory cap: the linear memories the guest
/// grows (all of them, however many the component has) and what the host keeps on the
/// guest's behalf (header fields, buffered bodies, the collected response).
#[derive(Debug)]
pub(crate) struct CallMemory {
    cap: usize,
    used: AtomicUsize,
}

impl CallMemory {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap,
            used: AtomicUsize::new(0),
        }
    }

    /// The cap, in bytes.
    pub(crate) fn cap(&self) -> usize {
        self.cap
    }

    /// Counts `bytes` more, or refuses (counting nothing) when that would pass the cap.
    pub(crate) fn try_take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.cap)
            })
            .is_ok()
    }
}

/// The data of one call's `Store`.
pub(crate) struct Host {
    pub(crate) table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: OutboundHooks,
    pub(crate) limiter: Limiter,
    pub(crate) call: CallContext,
    pub(crate) plugin: PluginName,
    pub(crate) version: String,
    pub(crate) services: Services,
    pub(crate) observed: Arc<Mutex<Observed>>,
    /// `events.emit` calls this call may still make.
    pub(crate) events_left: u32,
    /// Outbound requests this call may still make.
    outbound_left: u32,
    /// The call's limits as they were at its start.
    pub(crate) limits: CallLimits,
}

impl Host {
    /// Prepares per-instance state: WASI without authority, the guest log, the memory cap,
    /// the outbound policy.
    pub(crate) fn new(
        call: CallContext,
        plugin: PluginName,
        version: String,
        services: Services,
        limits: CallLimits,
        memory: Arc<CallMemory>,
        outbound: Option<Arc<OutboundPolicy>>,
    ) -> Self {
        let observed = Arc::new(Mutex::new(Observed::default()));
        let log = Arc::new(GuestLog::new(&call, &plugin, limits.log_lines));
        let mut wasi = WasiCtxBuilder::new();
        // No environment, no arguments, no preopened directories, no network: standard
        // library imports link, but carry no authority.
        wasi.stdout(GuestStream {
            log: Arc::clone(&log),
            stream: "stdout",
        })
        .stderr(GuestStream {
            log,
            stream: "stderr",
        })
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
        let store_limits = StoreLimitsBuilder::new()
            .memory_size(limits.memory_bytes)
            .instances(32)
            .tables(64)
            .memories(8)
            .table_elements(100_000)
            .build();
        // The table holds every resource the guest has open (fields, bodies, streams,
        // pollables); without a bound its size is limited only by the host's memory.
        let mut table = ResourceTable::new();
        table.set_max_capacity(limits.resources);
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(limits.fields_bytes);
        Self {
            table,
            wasi: wasi.build(),
            http,
            hooks: OutboundHooks::new(outbound, Arc::clone(&observed), call.traceparent.clone()),
            limiter: Limiter {
                inner: store_limits,
                memory,
                observed: Arc::clone(&observed),
            },
            events_left: limits.events,
            outbound_left: limits.outbound_requests,
            limits,
            call,
            plugin,
            version,
            services,
            observed,
        }
    }
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for Host {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl Host {
    /// Counts `bytes` the host is about to keep for the guest against the call's memory
    /// cap; past the cap the guest traps and the call ends as over its memory cap.
    pub(crate) fn charge(&mut self, bytes: usize, what: &str) -> wasmtime::Result<()> {
        self.limiter.charge(bytes, what)
    }

    /// Counts one outbound request; past the call's limit the guest traps and the call
    /// fails with the limit named.
    pub(crate) fn take_outbound_request(&mut self) -> wasmtime::Result<()> {
        if let Some(left) = self.outbound_left.checked_sub(1) {
            self.outbound_left = left;
            return Ok(());
        }
        let reason = format!(
            "more than {} outbound requests in one call (runtime.outbound.max_requests_per_call)",
            self.limits.outbound_requests
        );
        self.observed
            .lock()
            .expect("observed poisoned")
            .host_limit
            .get_or_insert_with(|| reason.clone());
        wasmtime::bail!("{reason}")
    }
}

/// The store's resource limiter: the operator's caps, with every linear memory of the call
/// counted together against its memory cap, remembering when memory was refused so a
/// following trap is reported as the memory cap rather than a generic trap.
pub(crate) struct Limiter {
    inner: StoreLimits,
    memory: Arc<CallMemory>,
    observed: Arc<Mutex<Observed>>,
}

impl Limiter {
    fn refused(&self) {
        self.observed
            .lock()
            .expect("observed poisoned")
            .memory_cap_hit = true;
    }

    pub(crate) fn charge(&mut self, bytes: usize, what: &str) -> wasmtime::Result<()> {
        if self.memory.try_take(bytes) {
            return Ok(());
        }
        self.refused();
        wasmtime::bail!(
            "{what} ({bytes} bytes) would take the call past its memory cap of {} bytes",
            self.memory.cap()
        )
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Each memory on its own is held to the cap, and all of them together (with what
        // the host holds) too: a component may have several memories.
        let allowed = self.inner.memory_growing(current, desired, maximum)?
            && self.memory.try_take(desired.saturating_sub(current));
        if !allowed {
            self.refused();
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

/// The longest guest log line kept; the rest of the line is cut.
const MAX_LINE: usize = 1024;

/// Guest stdout/stderr, turned into `tracing` events with the tenant and plugin, line by
/// line, truncated and limited per call so a chatty plugin cannot flood the logs.
struct GuestLog {
    tenant: String,
    council: String,
    plugin: String,
    request_id: String,
    max_lines: u32,
    state: Mutex<LogState>,
}

#[derive(Default)]
struct LogState {
    partial: Vec<u8>,
    lines: u32,
    dropped_bytes: u64,
}

impl GuestLog {
    fn new(call: &CallContext, plugin: &PluginName, max_lines: u32) -> Self {
        Self {
            tenant: call.tenant.to_string(),
            council: call.council.to_string(),
            plugin: plugin.to_string(),
            request_id: call.request_id.clone(),
            max_lines,
            state: Mutex::new(LogState::default()),
        }
    }

    fn write(&self, stream: &'static str, mut bytes: &[u8]) {
        let mut state = self.state.lock().expect("guest log poisoned");
        while !bytes.is_empty() {
            let (chunk, rest, ends_line) = match bytes.iter().position(|&b| b == b'\n') {
                Some(i) => (&bytes[..i], &bytes[i + 1..], true),
                None => (bytes, &[][..], false),
            };
            bytes = rest;
            let room = MAX_LINE.saturating_sub(state.partial.len());
            state
                .partial
                .extend_from_slice(&chunk[..chunk.len().min(room)]);
            if ends_line {
                let line = std::mem::take(&mut state.partial);
                self.emit(&mut state, stream, &line);
            }
        }
    }

    fn emit(&self, state: &mut LogState, stream: &'static str, line: &[u8]) {
        if state.lines >= self.max_lines {
            state.dropped_bytes += line.len() as u64 + 1;
            return;
        }
        state.lines += 1;
        tracing::info!(
            target: "guildhall::guest",
            tenant = %self.tenant,
            council = %self.council,
            plugin = %self.plugin,
            request_id = %self.request_id,
            stream,
            "{}",
            String::from_utf8_lossy(line)
        );
    }
}

impl Drop for GuestLog {
    fn drop(&mut self) {
        let mut state = std::mem::take(self.state.get_mut().expect("guest log poisoned"));
        if !state.partial.is_empty() {
            let line = std::mem::take(&mut state.partial);
            self.emit(&mut state, "stdout", &line);
        }
        if state.dropped_bytes > 0 {
            tracing::warn!(
                target: "guildhall::guest",
                tenant = %self.tenant,
                plugin = %self.plugin,
                request_id = %self.request_id,
                dropped_bytes = state.dropped_bytes,
                "guest output over the per-call line limit was dropped"
            );
        }
    }
}

#[derive(Clone)]
struct GuestStream {
    log: Arc<GuestLog>,
    stream: &'static str,
}

impl IsTerminal for GuestStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestStream {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for GuestStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.log.write(self.stream, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::{GuestLog, MAX_LINE};

    /// A `tracing` writer that keeps everything in memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn log(max_lines: u32) -> GuestLog {
        GuestLog {
            tenant: "alpha".into(),
            council: "first".into(),
            plugin: "chatty".into(),
            request_id: "r1".into(),
            max_lines,
            state: Mutex::new(Default::default()),
        }
    }

    #[test]
    fn guest_output_is_split_truncated_and_limited() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let log = log(3);
            log.write("stdout", b"first line\nsecond ");
            log.write("stdout", b"half\n");
            log.write(
                "stderr",
                format!("{}\n", "x".repeat(5 * MAX_LINE)).as_bytes(),
            );
            log.write("stdout", b"over the limit\nand this\n");
            drop(log);
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(
            text.contains("first line") && text.contains("second half"),
            "{text}"
        );
        assert!(
            text.contains("tenant=alpha") && text.contains("plugin=chatty"),
            "{text}"
        );
        let long = text
            .lines()
            .find(|l| l.contains("stream=\"stderr\""))
            .expect("the long line");
        assert!(
            long.contains(&"x".repeat(MAX_LINE)) && !long.contains(&"x".repeat(MAX_LINE + 1)),
            "not cut at {MAX_LINE}"
        );
        assert!(!text.contains("over the limit"), "{text}");
        assert!(text.contains("dropped_bytes=24"), "{text}");
    }
}
