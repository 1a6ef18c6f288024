//! Accepting and serving HTTP connections with bounds on what a client can hold.
//!
//! `axum::serve` has no header, idle or per-client bounds, so the accept loop is our own,
//! over hyper's HTTP/1 connection:
//! - each connection has a watchdog that closes it when a request head takes longer than
//!   `server.header_read_timeout_secs` from its first byte, or when it sits idle between
//!   requests longer than `server.keep_alive_idle_secs`;
//! - every request is answered within `server.request_timeout_secs` (408 otherwise);
//! - one client address (IPv6 by /64) holds at most `server.max_connections_per_client`
//!   connections; further ones are closed as soon as they are accepted.
//!
//! On shutdown the listener is closed at once, every connection finishes its request in
//! flight (idle ones close) and the caller bounds the wait with its grace period.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use http::StatusCode;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

use guildhall_authz::ClientKey;

use crate::config::ServerConfig;

/// The connection bounds, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub request_timeout: Duration,
    pub keep_alive_idle: Duration,
    pub max_connections_per_client: usize,
}

impl From<&ServerConfig> for Limits {
    fn from(config: &ServerConfig) -> Self {
        Self {
            header_read_timeout: Duration::from_secs(config.header_read_timeout_secs),
            request_timeout: Duration::from_secs(config.request_timeout_secs),
            keep_alive_idle: Duration::from_secs(config.keep_alive_idle_secs),
            max_connections_per_client: config.max_connections_per_client,
        }
    }
}

/// Accepts connections until `stop`, then waits for the open ones to finish their
/// requests. The caller bounds the wait.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    limits: Limits,
    stop: CancellationToken,
) {
    let clients = Arc::new(ClientCounts::new(limits.max_connections_per_client));
    let tracker = TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, usually: wait rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Some(slot) = clients.admit(peer.ip()) else {
            tracing::debug!(client = %peer.ip(), "connection refused: too many from this client");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        tracker.spawn(serve_connection(
            stream,
            peer,
            app.clone(),
            limits,
            stop.clone(),
            slot,
        ));
    }
    // Closing the listener now refuses new connections while the open ones drain.
    drop(listener);
    tracker.close();
    tracker.wait().await;
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: axum::Router,
    limits: Limits,
    stop: CancellationToken,
    _slot: ClientSlot,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: Arc::clone(&activity),
    });
    let service_activity = Arc::clone(&activity);
    let service =
        hyper::service::service_fn(move |mut request: http::Request<hyper::body::Incoming>| {
            let busy = Busy::begin(Arc::clone(&service_activity));
            request.extensions_mut().insert(ConnectInfo(peer));
            let app = app.clone();
            async move {
                let response = match tokio::time::timeout(
                    limits.request_timeout,
                    app.oneshot(request.map(axum::body::Body::new)),
                )
                .await
                {
                    Ok(Ok(response)) => response,
                    Ok(Err(never)) => match never {},
                    Err(_) => {
                        use axum::response::IntoResponse as _;
                        guildhall_api::ApiError::from_status(
                            StatusCode::REQUEST_TIMEOUT,
                            format!(
                                "the request was not answered within {} seconds",
                                limits.request_timeout.as_secs()
                            ),
                        )
                        .into_response()
                    }
                };
                drop(busy);
                Ok::<_, Infallible>(response)
            }
        });
    // hyper's own header timer would also run while a connection waits idle for its next
    // request, so the watchdog below times heads and idleness separately instead.
    let connection = hyper::server::conn::http1::Builder::new()
        .header_read_timeout(None::<Duration>)
        .serve_connection(io, service);
    tokio::pin!(connection);
    let expired = activity.expired(limits);
    tokio::pin!(expired);
    let mut draining = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(client = %peer, error = %e, "connection ended with an error");
                }
                return;
            }
            () = stop.cancelled(), if !draining => {
                draining = true;
                connection.as_mut().graceful_shutdown();
            }
            reason = &mut expired => {
                tracing::debug!(client = %peer, reason, "connection closed");
                // Dropping the connection closes the socket.
                return;
            }
        }
    }
}

/// What a connection is doing, for its watchdog.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for a request since this instant.
    Idle(Instant),
    /// A request head has been arriving since this instant.
    Head(Instant),
    /// This many requests are being handled.
    Busy(usize),
}

#[derive(Debug)]
struct Activity {
    phase: Mutex<Phase>,
    changed: Notify,
}

impl Activity {
    fn new() -> Self {
        Self {
            phase: Mutex::new(Phase::Idle(Instant::now())),
            changed: Notify::new(),
        }
    }

    fn set(&self, change: impl FnOnce(Phase) -> Phase) {
        let mut phase = self.phase.lock().expect("connection phase poisoned");
        *phase = change(*phase);
        drop(phase);
        self.changed.notify_one();
    }

    /// Bytes arrived: when idle, they are the start of the next request's head.
    fn received(&self) {
        let idle = matches!(
            *self.phase.lock().expect("connection phase poisoned"),
            Phase::Idle(_)
        );
        if idle {
            self.set(|phase| match phase {
                Phase::Idle(_) => Phase::Head(Instant::now()),
                other => other,
            });
        }
    }

    /// Resolves with the reason once the connection has outstayed its phase's limit.
    async fn expired(&self, limits: Limits) -> &'static str {
        loop {
            let notified = self.changed.notified();
            let phase = *self.phase.lock().expect("connection phase poisoned");
            let (deadline, reason) = match phase {
                Phase::Idle(since) => (since + limits.keep_alive_idle, "idle keep-alive timeout"),
                Phase::Head(since) => (
                    since + limits.header_read_timeout,
                    "request head not received in time",
                ),
                Phase::Busy(_) => {
                    notified.await;
                    continue;
                }
            };
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {
                    // A phase that changed at the last moment is looked at again.
                    let now = *self.phase.lock().expect("connection phase poisoned");
                    if matches!((phase, now), (Phase::Idle(a), Phase::Idle(b)) | (Phase::Head(a), Phase::Head(b)) if a == b)
                    {
                        return reason;
                    }
                }
                () = notified => {}
            }
        }
    }
}

/// Marks a request as being handled until dropped (also when the request is cancelled).
struct Busy(Arc<Activity>);

impl Busy {
    fn begin(activity: Arc<Activity>) -> Self {
        activity.set(|phase| match phase {
            Phase::Busy(n) => Phase::Busy(n + 1),
            Phase::Idle(_) | Phase::Head(_) => Phase::Busy(1),
        });
        Self(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.set(|phase| match phase {
            Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
            _ => Phase::Idle(Instant::now()),
        });
    }
}

/// A socket that tells its connection's watchdog when bytes arrive.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.received();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Open connections per client address. Entries leave the map when their last connection
/// closes, so its size is bounded by the open connections.
#[derive(Debug)]
struct ClientCounts {
    limit: usize,
    open: Mutex<HashMap<ClientKey, usize>>,
}

impl ClientCounts {
    fn new(limit: usize) -> Self {
        Self {
            limit: limit.max(1),
            open: Mutex::new(HashMap::new()),
        }
    }

    fn admit(self: &Arc<Self>, address: IpAddr) -> Option<ClientSlot> {
        let client = ClientKey::of(address);
        let mut open = self.open.lock().expect("client counts poisoned");
        let count = open.entry(client).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(ClientSlot {
            counts: Arc::clone(self),
            client,
        })
    }
}

/// One open connection of a client; gives its place back when dropped.
#[derive(Debug)]
struct ClientSlot {
    counts: Arc<ClientCounts>,
    client: ClientKey,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.counts.open.lock().expect("client counts poisoned");
        if let Some(count) = open.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_by_their_slash_64() {
        let counts = Arc::new(ClientCounts::new(2));
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let _held = (counts.admit(a).unwrap(), counts.admit(b).unwrap());
        assert!(counts.admit(a).is_none(), "a and b share a /64");
        assert!(counts.admit(c).is_some());
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        let plain: IpAddr = "192.0.2.7".parse().unwrap();
        let _held = (counts.admit(mapped).unwrap(), counts.admit(plain).unwrap());
        assert!(
            counts.admit(plain).is_none(),
            "a mapped address is its IPv4 address"
        );
    }

    #[test]
    fn a_client_over_its_cap_is_refused_until_a_connection_closes() {
        let counts = Arc::new(ClientCounts::new(2));
        let me: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let first = counts.admit(me).unwrap();
        let _second = counts.admit(me).unwrap();
        assert!(counts.admit(me).is_none());
        assert!(counts.admit(other).is_some());
        drop(first);
        assert!(counts.admit(me).is_some());
        // Entries of clients with no connection open are removed.
        assert!(
            !counts
                .open
                .lock()
                .unwrap()
                .contains_key(&ClientKey::of(other))
        );
    }
}
