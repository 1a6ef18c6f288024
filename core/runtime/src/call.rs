//! One call: a fresh instance, the request in, a bounded response out, and a typed outcome.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use tokio::sync::oneshot;
use wasmtime::component::ResourceTableError;
use wasmtime::{Trap, UpdateDeadline};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};

use crate::error::CallError;
use crate::fair::Seat;
use crate::host::{CallMemory, Host, Observed};
use crate::{CallContext, Inner, Prepared};

/// What happened during a call, for logs, metrics and metering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallReport {
    /// `ok`, or the [`CallError::kind`] of the failure.
    pub outcome: &'static str,
    /// Wall time from start to the end of the response body.
    pub wall: Duration,
    /// Request body bytes passed in.
    pub bytes_in: u64,
    /// Response body bytes passed out.
    pub bytes_out: u64,
    /// Time the plugin's code ran on a worker thread (the guest's polls, host calls it
    /// made included, waiting for I/O excluded).
    pub cpu: Duration,
    /// Bytes (keys plus values) the plugin wrote to its key-value store.
    pub kv_bytes: u64,
    /// Capability uses the host refused, e.g. outbound calls to undeclared hosts.
    pub denied: Vec<String>,
}

/// Response headers that describe the connection rather than the response; the gateway
/// sets its own.
const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "content-length",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
    "proxy-connection",
];

pub(crate) async fn handle(
    inner: &Inner,
    plugin: &Prepared,
    call: CallContext,
    request: http::Request<Bytes>,
) -> (Result<http::Response<Bytes>, CallError>, CallReport) {
    let started = Instant::now();
    let bytes_in = request.body().len() as u64;
    let limit = inner.config.max_request_body_bytes;
    let mut report = CallReport {
        outcome: "ok",
        wall: Duration::ZERO,
        bytes_in,
        bytes_out: 0,
        cpu: Duration::ZERO,
        kv_bytes: 0,
        denied: Vec::new(),
    };
    let cpu = Arc::new(AtomicU64::new(0));
    let result = if request.body().len() > limit {
        Err(CallError::BodyTooLarge(limit))
    } else {
        run(inner, plugin, call, request, started, &cpu).await
    };
    match &result {
        Ok((response, observed)) => {
            let observed = observed.lock().expect("observed poisoned");
            report.bytes_out = response.body().len() as u64;
            report.denied = observed.denied.clone();
            if observed.denied_more > 0 {
                report
                    .denied
                    .push(format!("and {} more refused", observed.denied_more));
            }
            report.kv_bytes = observed.kv_bytes_written;
        }
        Err(e) => report.outcome = e.kind(),
    }
    report.wall = started.elapsed();
    report.cpu = Duration::from_nanos(cpu.load(Ordering::Relaxed));
    plugin.weight.ran(report.cpu);
    (result.map(|(response, _)| response), report)
}

async fn run(
    inner: &Inner,
    plugin: &Prepared,
    call: CallContext,
    request: http::Request<Bytes>,
    started: Instant,
    cpu: &Arc<AtomicU64>,
) -> Result<(http::Response<Bytes>, Arc<Mutex<Observed>>), CallError> {
    let tenant = call.tenant.clone();
    let (mut store, memory, observed, deadline) = new_store(inner, plugin, call, started);

    let (parts, body) = request.into_parts();
    // The request body is held for the guest until it reads it.
    if !memory.try_take(body.len()) {
        return Err(CallError::MemoryCap(plugin.memory_bytes));
    }
    let mut hyper_request = http::Request::from_parts(
        parts,
        Full::new(body)
            .map_err(|never: Infallible| -> wasmtime_wasi_http::Error { match never {} }),
    );
    if hyper_request.uri().authority().is_none() {
        let path = hyper_request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        *hyper_request.uri_mut() = http::Uri::builder()
            .scheme("http")
            .authority("plugin.guildhall.invalid")
            .path_and_query(path)
            .build()
            .map_err(|e| {
                CallError::Internal(format!("cannot build the plugin's request URI: {e}"))
            })?;
    }

    let (sender, mut receiver) = oneshot::channel();
    let pre = plugin.pre.clone();
    // The guest runs in this task, polled alongside the collection of its response: no
    // hop to another worker thread, and when this future is dropped (deadline, client
    // gone) the guest's store goes with it.
    let guest = async move {
        let proxy = pre.instantiate_async(&mut store).await?;
        let req = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, hyper_request)?;
        let out = store.data_mut().http().new_response_outparam(sender)?;
        proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut store, req, out)
            .await
    };
    let guest = Timed {
        inner: guest,
        spent: Arc::clone(cpu),
        seat: inner.gate.seat(tenant.as_str()),
        heavy: plugin.weight.heavy(),
    };
    let mut guest = std::pin::pin!(guest);
    let mut finished: Option<wasmtime::Result<()>> = None;

    let max_body = inner.config.max_response_body_bytes;
    let memory_bytes = plugin.memory_bytes;
    let resources = inner.config.max_call_resources;
    let timeout = plugin.timeout;
    let exchange = async {
        let head = loop {
            tokio::select! {
                head = &mut receiver => break head,
                result = &mut guest, if finished.is_none() => finished = Some(result),
            }
        };
        let response = match head {
            Ok(Ok(response)) => response,
            Ok(Err(code)) => {
                return Err(CallError::BadResponse(format!(
                    "the plugin answered with an error instead of a response: {}",
                    describe(&code)
                )));
            }
            // The guest ended without setting a response: a trap, or a plugin bug.
            Err(_) => {
                let result = match finished.take() {
                    Some(result) => result,
                    None => (&mut guest).await,
                };
                return Err(match result {
                    Ok(()) => {
                        CallError::BadResponse("the plugin returned without a response".into())
                    }
                    Err(e) => classify(&e, &observed, memory_bytes, resources, timeout),
                });
            }
        };
        let (parts, mut body) = response.into_parts();
        let mut collected = BytesMut::new();
        let mut broken = false;
        loop {
            tokio::select! {
                frame = body.frame() => match frame {
                    None => break,
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            if collected.len() + data.len() > max_body {
                                return Err(CallError::BadResponse(format!(
                                    "the response body is larger than {max_body} bytes"
                                )));
                            }
                            // The collected body is held for the guest too.
                            if !memory.try_take(data.len()) {
                                return Err(CallError::MemoryCap(memory_bytes));
                            }
                            collected.extend_from_slice(data);
                        }
                    }
                    // The body broke off: the guest trapped or stopped mid-response.
                    Some(Err(_)) => {
                        broken = true;
                        break;
                    }
                },
                result = &mut guest, if finished.is_none() => finished = Some(result),
            }
        }
        // Let the guest finish whatever it does after the response, within the deadline.
        let result = match finished.take() {
            Some(result) => result,
            None => (&mut guest).await,
        };
        match result {
            Err(e) => Err(classify(&e, &observed, memory_bytes, resources, timeout)),
            Ok(()) if broken => Err(CallError::BadResponse(
                "the response body ended with an error".into(),
            )),
            Ok(()) => {
                let mut response = http::Response::from_parts(parts, collected.freeze());
                for name in HOP_BY_HOP {
                    response.headers_mut().remove(name);
                }
                Ok(response)
            }
        }
    };
    match tokio::time::timeout_at(deadline.into(), exchange).await {
        Ok(Ok(response)) => Ok((response, observed)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(CallError::Deadline(timeout)),
    }
}

/// A call's `Store`: its host state with every declared capability prepared, the memory
/// cap, and the epoch deadline. Returns the store, the call's memory accounting, what the
/// host observes and the deadline.
fn new_store(
    inner: &Inner,
    plugin: &Prepared,
    call: CallContext,
    started: Instant,
) -> (
    wasmtime::Store<Host>,
    Arc<CallMemory>,
    Arc<Mutex<Observed>>,
    Instant,
) {
    let memory = Arc::new(CallMemory::new(plugin.memory_bytes));
    let host = Host::new(inner, plugin, call, Arc::clone(&memory));
    let observed = Arc::clone(&host.observed);
    let mut store = wasmtime::Store::new(&inner.engine, host);
    store.limiter(|h| &mut h.limiter);
    let deadline = started + plugin.timeout;
    // Every epoch tick the guest yields to the scheduler: its poll ends and its slot at the
    // fair gate goes to the next tenant in turn, so CPU-bound plugins share the worker
    // threads a tick at a time; past the deadline the next tick interrupts it.
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        Ok(if Instant::now() >= deadline {
            UpdateDeadline::Interrupt
        } else {
            UpdateDeadline::Yield(1)
        })
    });
    (store, memory, observed, deadline)
}

/// Calls one function a component exports (other than its HTTP handler) in a fresh
/// instance, with the same store set-up, limits, fair gate and metering as a request.
pub(crate) async fn export<Params, Results>(
    inner: &Inner,
    plugin: &Prepared,
    call: CallContext,
    function: Option<wasmtime::component::ComponentExportIndex>,
    params: Params,
) -> (Result<Results, CallError>, CallReport)
where
    Params: wasmtime::component::ComponentNamedList
        + wasmtime::component::Lower
        + Send
        + Sync
        + 'static,
    Results:
        wasmtime::component::ComponentNamedList + wasmtime::component::Lift + Send + Sync + 'static,
{
    let started = Instant::now();
    let mut report = CallReport {
        outcome: "ok",
        wall: Duration::ZERO,
        bytes_in: 0,
        bytes_out: 0,
        cpu: Duration::ZERO,
        kv_bytes: 0,
        denied: Vec::new(),
    };
    let cpu = Arc::new(AtomicU64::new(0));
    let tenant = call.tenant.clone();
    let result = match function {
        None => Err(CallError::Internal(format!(
            "{} does not export the function called",
            plugin.manifest.name
        ))),
        Some(function) => {
            let (mut store, _memory, observed, deadline) = new_store(inner, plugin, call, started);
            let pre = plugin.pre.instance_pre().clone();
            let guest = async move {
                let instance = pre.instantiate_async(&mut store).await?;
                let func = instance.get_typed_func::<Params, Results>(&mut store, function)?;
                func.call_async(&mut store, params).await
            };
            let guest = Timed {
                inner: guest,
                spent: Arc::clone(&cpu),
                seat: inner.gate.seat(tenant.as_str()),
                heavy: plugin.weight.heavy(),
            };
            let outcome = match tokio::time::timeout_at(deadline.into(), guest).await {
                Ok(Ok(result)) => Ok(result),
                Ok(Err(e)) => Err(classify(
                    &e,
                    &observed,
                    plugin.memory_bytes,
                    inner.config.max_call_resources,
                    plugin.timeout,
                )),
                Err(_) => Err(CallError::Deadline(plugin.timeout)),
            };
            let observed = observed.lock().expect("observed poisoned");
            report.denied = observed.denied.clone();
            report.kv_bytes = observed.kv_bytes_written;
            outcome
        }
    };
    if let Err(e) = &result {
        report.outcome = e.kind();
    }
    report.wall = started.elapsed();
    report.cpu = Duration::from_nanos(cpu.load(Ordering::Relaxed));
    plugin.weight.ran(report.cpu);
    (result, report)
}

/// Runs the declared schedule `name` in a fresh instance, with the same limits as a
/// request: `Ok(Err(message))` when the plugin's `run` reported a failure.
pub(crate) async fn scheduled(
    inner: &Inner,
    plugin: &Prepared,
    call: CallContext,
    name: &str,
) -> (Result<Result<(), String>, CallError>, CallReport) {
    let (result, mut report) = export::<(String,), (Result<(), String>,)>(
        inner,
        plugin,
        call,
        plugin.scheduled,
        (name.to_string(),),
    )
    .await;
    let result = result.map(|(run,)| run);
    if let Ok(Err(_)) = &result {
        report.outcome = "failed";
    }
    (result, report)
}

/// Turns a guest failure into a typed outcome.
fn classify(
    err: &wasmtime::Error,
    observed: &Mutex<Observed>,
    memory_bytes: usize,
    resources: u32,
    timeout: Duration,
) -> CallError {
    {
        let observed = observed.lock().expect("observed poisoned");
        if observed.memory_cap_hit {
            return CallError::MemoryCap(memory_bytes);
        }
        if let Some(limit) = &observed.host_limit {
            return CallError::HostLimit(limit.clone());
        }
    }
    let table_full = err.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<ResourceTableError>(),
            Some(ResourceTableError::Full)
        )
    }) || matches!(
        err.downcast_ref::<ResourceTableError>(),
        Some(ResourceTableError::Full)
    );
    if table_full {
        return CallError::HostLimit(format!(
            "more than {resources} resources open at once (runtime.max_call_resources)"
        ));
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => CallError::Deadline(timeout),
        Some(Trap::StackOverflow) => CallError::Trap("wasm stack overflow".into()),
        Some(trap) => CallError::Trap(trap.to_string()),
        None => {
            let message = format!("{err:#}");
            CallError::Trap(
                message
                    .lines()
                    .next()
                    .unwrap_or("unknown failure")
                    .to_string(),
            )
        }
    }
}

fn describe(code: &ErrorCode) -> String {
    format!("{code:?}")
}

pin_project_lite::pin_project! {
    /// The guest's future, run in fair turns with other tenants' guests (see
    /// [`crate::fair`]), adding the time spent inside its polls to `spent` (nanoseconds):
    /// the guest's CPU time, without the time it waits for I/O or for its turn.
    struct Timed<F> {
        #[pin]
        inner: F,
        spent: Arc<AtomicU64>,
        seat: Seat,
        // Whether the plugin version's calls lately ran a tick or more: heavy from the start.
        heavy: bool,
    }
}

impl<F: Future> Future for Timed<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        // A call that has run a whole tick of guest code is CPU-bound: heavy at the gate.
        let heavy = *this.heavy
            || this.spent.load(Ordering::Relaxed) >= crate::engine::TICK.as_nanos() as u64;
        if this.seat.enter(cx, heavy).is_pending() {
            return Poll::Pending;
        }
        let started = Instant::now();
        let result = this.inner.poll(cx);
        this.spent
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        this.seat.leave();
        result
    }
}
