//! WASI 0.2 for every plugin, without authority: no environment, no arguments, no
//! preopened directories, no network. The standard library's imports link, and guest
//! stdout/stderr become `tracing` events, limited per call.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime::component::Linker;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder};

use super::CallSetup;
use crate::host::{Call, Host};

/// All of WASI 0.2. Sockets link too (stock toolchains' C libraries import them), and the
/// context denies every use of them: no TCP, no UDP, no name lookup.
pub(super) fn link(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)
}

/// The call's WASI context: no environment, no arguments, no preopened directories, no
/// network, and the guest's stdout and stderr to the log.
pub(super) fn prepare(setup: &CallSetup<'_>) -> WasiCtx {
    let log = Arc::new(GuestLog::new(
        Arc::clone(setup.call),
        setup.runtime.config.guest_log_lines,
    ));
    let mut wasi = WasiCtxBuilder::new();
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
    wasi.build()
}

/// The longest guest log line kept; the rest of the line is cut.
const MAX_LINE: usize = 1024;

/// Guest stdout/stderr, turned into `tracing` events with the tenant and plugin, line by
/// line, truncated and limited per call so a chatty plugin cannot flood the logs. It holds
/// the call (shared, no copies made per call) for the fields of its lines.
struct GuestLog {
    call: Arc<Call>,
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
    fn new(call: Arc<Call>, max_lines: u32) -> Self {
        Self {
            call,
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
        let (context, plugin) = (&self.call.context, &self.call.plugin);
        tracing::info!(
            target: "guildhall::guest",
            tenant = %context.tenant,
            council = %context.council,
            plugin = %plugin,
            request_id = %context.request_id,
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
            let (context, plugin) = (&self.call.context, &self.call.plugin);
            tracing::warn!(
                target: "guildhall::guest",
                tenant = %context.tenant,
                plugin = %plugin,
                request_id = %context.request_id,
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
    use crate::CallContext;
    use crate::host::Call;
    use guildhall_domain::{Caller, CouncilId, PluginName, TenantId};

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
        let call = Call {
            context: CallContext {
                tenant: TenantId::parse("alpha").unwrap(),
                council: CouncilId::parse("first").unwrap(),
                principal: Caller::Anonymous,
                config: Arc::default(),
                request_id: "r1".into(),
                traceparent: None,
                site: Arc::default(),
                session: None,
            },
            plugin: PluginName::parse("chatty").unwrap(),
            version: "0.1.0".into(),
        };
        GuestLog::new(Arc::new(call), max_lines)
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
