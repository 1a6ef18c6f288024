//! Outbound HTTP: `wasi:http/types` for every plugin, and `wasi:http/outgoing-handler`
//! only for plugins that declare `outbound_http`, only to the declared hosts, and never to
//! loopback, private, link-local or unique-local addresses (checked after DNS resolution,
//! and the connection goes to the checked address, so a name cannot be rebound between
//! check and use).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::BodyExt;
use wasmtime::component::Linker;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttp, WasiHttpCtx, WasiHttpHooks};

use super::{CallSetup, PortFuture};
use crate::config::{Cidr, OutboundConfig};
use crate::host::{Host, Observed};

/// The `http` row's per-call state: wasmtime-wasi-http's context, with the call's limit on
/// one `fields`, and the hooks outbound requests go through.
pub(crate) struct Http {
    pub(crate) ctx: WasiHttpCtx,
    pub(crate) hooks: OutboundHooks,
}

pub(super) fn prepare_http(setup: &CallSetup<'_>) -> Http {
    let mut ctx = WasiHttpCtx::new();
    ctx.set_field_size_limit(setup.runtime.config.max_fields_bytes);
    Http {
        ctx,
        hooks: OutboundHooks::new(
            setup.plugin.outbound.clone(),
            Arc::clone(setup.observed),
            setup.call.context.traceparent.clone(),
        ),
    }
}

/// The `outbound_http` row's per-call state: the outbound requests the call may still
/// make, refused ones included.
pub(crate) struct Requests {
    left: u32,
    /// `runtime.outbound.max_requests_per_call`, for the message once `left` is spent.
    per_call: u32,
    observed: Arc<Mutex<Observed>>,
}

pub(super) fn prepare_requests(setup: &CallSetup<'_>) -> Requests {
    let per_call = setup.runtime.config.outbound.max_requests_per_call;
    Requests {
        left: per_call,
        per_call,
        observed: Arc::clone(setup.observed),
    }
}

impl Requests {
    /// Counts one outbound request; past the call's limit the guest traps and the call
    /// fails with the limit named.
    pub(crate) fn take(&mut self) -> wasmtime::Result<()> {
        if let Some(left) = self.left.checked_sub(1) {
            self.left = left;
            return Ok(());
        }
        let reason = format!(
            "more than {} outbound requests in one call (runtime.outbound.max_requests_per_call)",
            self.per_call
        );
        self.observed
            .lock()
            .expect("observed poisoned")
            .host_limit
            .get_or_insert_with(|| reason.clone());
        wasmtime::bail!("{reason}")
    }
}

pub(super) fn link_types(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    use wasmtime_wasi_http::p2::bindings;
    let options = bindings::LinkOptions::default();
    bindings::http::types::add_to_linker::<Host, WasiHttp>(
        linker,
        &(&options).into(),
        <Host as wasmtime_wasi_http::WasiHttpView>::http,
    )?;
    super::http_limits::link_types(linker)
}

pub(super) fn link_outgoing(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    wasmtime_wasi_http::p2::bindings::http::outgoing_handler::add_to_linker::<Host, WasiHttp>(
        linker,
        <Host as wasmtime_wasi_http::WasiHttpView>::http,
    )?;
    super::http_limits::link_outgoing(linker)
}

/// Whether an address is one a plugin may never reach unless the operator allows it:
/// unspecified, loopback, private, shared (CGNAT), link-local, unique-local, multicast,
/// broadcast, documentation or reserved. IPv6 forms that carry an IPv4 address (mapped,
/// compatible, NAT64, 6to4 and Teredo) are judged by the IPv4 address they lead to, so a
/// plugin cannot reach `127.0.0.1` as `64:ff9b::7f00:1` through a NAT64 gateway.
pub(crate) fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return is_internal_v4(v4);
            }
            let [first, second, ..] = v6.segments();
            v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // fc00::/7 unique local
                || (first & 0xffc0) == 0xfe80 // fe80::/10 link local
                || (first & 0xffc0) == 0xfec0 // fec0::/10 deprecated site local
                || (first == 0x2001 && second == 0x0db8) // 2001:db8::/32 documentation
                || (first == 0x3fff && second < 0x1000) // 3fff::/20 documentation
                || (first == 0x0100 && v6.segments()[1..4] == [0, 0, 0]) // 100::/64 discard
                // 2001::/23 holds special-purpose ranges (benchmarking, ORCHID); Teredo's
                // 2001::/32 is handled above by its embedded address.
                || (first == 0x2001 && second < 0x0200)
        }
    }
}

/// The IPv4 address an IPv6 address stands for, if it is one of the forms that carry one:
/// IPv4-mapped `::ffff:0:0/96`, IPv4-compatible `::/96` (deprecated, but still routed by
/// some stacks), NAT64 `64:ff9b::/96` and `64:ff9b:1::/48`, 6to4 `2002::/16` and Teredo
/// `2001::/32` (whose client address is stored inverted).
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(v6);
    let low32 = Ipv4Addr::from(bits as u32);
    let s = v6.segments();
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    // `::` and `::1` are IPv6's own unspecified and loopback addresses, not IPv4-compatible
    // ones; every other address in ::/96 carries an IPv4 address in its low 32 bits.
    if bits >> 32 == 0 && bits > 1 {
        return Some(low32);
    }
    if bits >> 32 == 0x0064_ff9b_0000_0000_0000_0000 {
        return Some(low32);
    }
    if s[0] == 0x0064 && s[1] == 0xff9b && s[2] == 0x0001 {
        // RFC 8215 local-use NAT64: the prefix length is chosen by the network, so the
        // IPv4 address may sit anywhere; refuse the whole range by pretending it is
        // unspecified, which is internal.
        return Some(Ipv4Addr::UNSPECIFIED);
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::from((bits >> 80) as u32));
    }
    if s[0] == 0x2001 && s[1] == 0x0000 {
        return Some(Ipv4Addr::from(!(bits as u32)));
    }
    None
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // 100.64.0.0/10 shared address space
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240
}

/// What one prepared plugin may reach.
#[derive(Debug)]
pub(crate) struct OutboundPolicy {
    hosts: BTreeSet<String>,
    allow: Arc<Vec<Cidr>>,
    timeout: Duration,
    max_response_bytes: usize,
    /// Where requests go instead of the network, when the runtime was given a port.
    port: Option<Arc<dyn HttpPort>>,
}

/// An outbound request a plugin made to one of its declared hosts, whole.
#[derive(Debug, Clone)]
pub struct OutboundRequest {
    /// The method, e.g. `POST`.
    pub method: http::Method,
    /// The absolute URL, e.g. `https://publicapi.payments.service.gov.uk/v1/payments`.
    pub url: String,
    /// The headers the plugin set (and the platform's `traceparent`).
    pub headers: http::HeaderMap,
    /// The body.
    pub body: bytes::Bytes,
}

/// Answers a plugin's outbound requests instead of the network: for tools that run plugins
/// with canned answers, such as the test harness. The runtime has already checked the host
/// against the manifest; a port's error reaches the plugin as a refused connection.
pub trait HttpPort: std::fmt::Debug + Send + Sync + 'static {
    /// The answer to `request`.
    fn send(&self, request: OutboundRequest) -> PortFuture<'_, http::Response<bytes::Bytes>>;
}

impl OutboundPolicy {
    pub(crate) fn new(
        hosts: &[String],
        config: &OutboundConfig,
        allow: Arc<Vec<Cidr>>,
        port: Option<Arc<dyn HttpPort>>,
    ) -> Self {
        Self {
            hosts: hosts.iter().cloned().collect(),
            allow,
            timeout: Duration::from_millis(config.timeout_ms),
            max_response_bytes: config.max_response_bytes,
            port,
        }
    }

    /// Hands a checked request to the port, whole, and its answer back to the plugin.
    async fn answer(&self, port: &dyn HttpPort, request: http::Request<WasiBody>) -> SendResult {
        let (parts, body) = request.into_parts();
        let body = http_body_util::Limited::new(body, self.max_response_bytes)
            .collect()
            .await
            .map_err(|_| Error::HttpRequestBodySize(Some(self.max_response_bytes as u64)))?
            .to_bytes();
        let request = OutboundRequest {
            method: parts.method,
            url: parts.uri.to_string(),
            headers: parts.headers,
            body,
        };
        let response = port.send(request).await.map_err(|e| {
            tracing::debug!(error = %e, "the http port gave no answer");
            Error::ConnectionRefused
        })?;
        if response.body().len() > self.max_response_bytes {
            return Err(Error::HttpResponseBodySize(Some(
                self.max_response_bytes as u64,
            )));
        }
        let response = response.map(|body| {
            http_body_util::Full::new(body)
                .map_err(|never| match never {})
                .boxed_unsync()
        });
        Ok((response, Box::new(async { Ok(()) })))
    }

    fn permitted(&self, ip: IpAddr) -> bool {
        !is_internal(ip) || self.allow.iter().any(|c| c.contains(ip))
    }

    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Error> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        match tokio::time::timeout(self.timeout, tokio::net::lookup_host((bare, port))).await {
            Err(_) => Err(Error::DnsTimeout),
            Ok(Err(e)) => Err(Error::DnsError {
                rcode: Some(e.to_string()),
                info_code: None,
            }),
            Ok(Ok(addrs)) => Ok(addrs.collect()),
        }
    }

    async fn send(
        &self,
        mut request: http::Request<WasiBody>,
        observed: &Mutex<Observed>,
    ) -> Result<
        (
            http::Response<WasiBody>,
            Box<dyn Future<Output = Result<(), Error>> + Send>,
        ),
        Error,
    > {
        let deny = |what: String| {
            tracing::warn!(what = %what, "outbound request denied");
            observed.lock().expect("observed poisoned").deny(what);
        };
        let uri = request.uri().clone();
        let host = uri
            .host()
            .ok_or(Error::HttpRequestUriInvalid)?
            .to_ascii_lowercase();
        let tls = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let bare = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if !self.hosts.contains(&bare) {
            deny(format!(
                "outbound http to {bare}: not declared in the manifest"
            ));
            return Err(Error::HttpRequestDenied);
        }
        if let Some(http_port) = &self.port {
            return self.answer(http_port.as_ref(), request).await;
        }
        let addrs = self.resolve(&host, port).await?;
        let Some(addr) = addrs.iter().copied().find(|a| self.permitted(a.ip())) else {
            let shown = addrs
                .first()
                .map(|a| a.ip().to_string())
                .unwrap_or_default();
            deny(format!(
                "outbound http to {bare}: address {shown} is internal"
            ));
            return Err(Error::DestinationIpProhibited);
        };
        let stream =
            match tokio::time::timeout(self.timeout, tokio::net::TcpStream::connect(addr)).await {
                Err(_) => return Err(Error::ConnectionTimeout),
                Ok(Err(e)) => return Err(Error::Connect(e)),
                Ok(Ok(s)) => s,
            };
        *request.uri_mut() = http::Uri::builder()
            .path_and_query(uri.path_and_query().map_or("/", |p| p.as_str()))
            .build()
            .map_err(|_| Error::HttpRequestUriInvalid)?;
        let response = if tls {
            let stream = tls_connect(&bare, stream).await?;
            self.exchange(TokioIo::new(stream), request).await?
        } else {
            self.exchange(TokioIo::new(stream), request).await?
        };
        let limit = self.max_response_bytes;
        let response = response.map(|body| {
            http_body_util::Limited::new(body, limit)
                .map_err(move |e| match e.downcast::<hyper::Error>() {
                    Ok(e) => Error::Hyper(*e),
                    Err(_) => Error::HttpResponseBodySize(Some(limit as u64)),
                })
                .boxed_unsync()
        });
        Ok((response, Box::new(async { Ok(()) })))
    }

    async fn exchange<S>(
        &self,
        io: TokioIo<S>,
        request: http::Request<WasiBody>,
    ) -> Result<http::Response<hyper::body::Incoming>, Error>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let (mut sender, connection) =
            tokio::time::timeout(self.timeout, hyper::client::conn::http1::handshake(io))
                .await
                .map_err(|_| Error::ConnectionTimeout)??;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "outbound connection ended with an error");
            }
        });
        tokio::time::timeout(self.timeout, sender.send_request(request))
            .await
            .map_err(|_| Error::ConnectionReadTimeout)?
            .map_err(Error::from)
    }
}

async fn tls_connect(
    host: &str,
    stream: tokio::net::TcpStream,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, Error> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.into(),
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|_| Error::TlsProtocolError)?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = match host.parse::<IpAddr>() {
        Ok(ip) => rustls::pki_types::ServerName::from(ip),
        Err(_) => rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(|_| Error::HttpRequestUriInvalid)?,
    };
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .map_err(Error::Tls)
}

/// The `wasi:http` hooks of one call: outbound requests go through the plugin's policy.
pub(crate) struct OutboundHooks {
    policy: Option<Arc<OutboundPolicy>>,
    observed: Arc<Mutex<Observed>>,
    traceparent: Option<http::HeaderValue>,
}

impl OutboundHooks {
    pub(crate) fn new(
        policy: Option<Arc<OutboundPolicy>>,
        observed: Arc<Mutex<Observed>>,
        traceparent: Option<String>,
    ) -> Self {
        let traceparent = traceparent.and_then(|t| http::HeaderValue::from_str(&t).ok());
        Self {
            policy,
            observed,
            traceparent,
        }
    }
}

type SendResult = Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), Error>> + Send>,
    ),
    Error,
>;

impl WasiHttpHooks for OutboundHooks {
    // Smaller chunks than wasmtime-wasi-http's 1 MiB keep what an unread body buffers on
    // the host small; `http_limits` counts each body's buffer against the memory cap.
    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        super::http_limits::BODY_CHUNK
    }

    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _body_sent: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        // The platform's trace context replaces whatever the guest set, so the trace a
        // collector sees is the platform's.
        if let Some(traceparent) = &self.traceparent {
            request
                .headers_mut()
                .insert("traceparent", traceparent.clone());
            request.headers_mut().remove("tracestate");
        }
        let policy = self.policy.clone();
        let observed = Arc::clone(&self.observed);
        Box::new(async move {
            match policy {
                Some(policy) => policy.send(request, &observed).await,
                None => {
                    observed
                        .lock()
                        .expect("observed poisoned")
                        .deny("outbound http: not declared in the manifest".into());
                    Err(Error::HttpRequestDenied)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip} should be internal");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2a00:1450:4009:81f::200e"] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip} should be public");
        }
    }

    /// Every IPv6 form that carries an IPv4 address is judged by that address: an
    /// internal one is refused, a public one is not.
    #[test]
    fn ipv6_forms_carrying_ipv4_addresses_are_unwrapped() {
        let internal = [
            // IPv4-mapped and IPv4-compatible.
            ("::ffff:127.0.0.1", "mapped loopback"),
            ("::ffff:10.0.0.1", "mapped private"),
            ("::ffff:169.254.169.254", "mapped metadata"),
            ("::127.0.0.1", "compatible loopback"),
            ("::10.1.2.3", "compatible private"),
            ("::169.254.169.254", "compatible metadata"),
            // NAT64 well-known prefix and the local-use range.
            ("64:ff9b::7f00:1", "NAT64 loopback"),
            ("64:ff9b::10.0.0.1", "NAT64 private"),
            ("64:ff9b::a9fe:a9fe", "NAT64 metadata"),
            ("64:ff9b:1::1", "local-use NAT64"),
            (
                "64:ff9b:1:abcd::8.8.8.8",
                "local-use NAT64, whatever it embeds",
            ),
            // 6to4 carries the IPv4 address in bits 16 to 47.
            ("2002:7f00:1::", "6to4 loopback"),
            ("2002:a00:1::1", "6to4 private"),
            ("2002:c0a8:101::", "6to4 192.168.1.1"),
            ("2002:a9fe:a9fe::1", "6to4 metadata"),
            // Teredo stores the client address inverted in the low 32 bits.
            ("2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo 127.0.0.1"),
            ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "Teredo 10.0.0.1"),
            // Other special-purpose IPv6 ranges.
            ("100::1", "discard"),
            ("fec0::1", "site local"),
            ("3fff::1", "documentation"),
            ("2001:2::1", "benchmarking"),
        ];
        for (ip, what) in internal {
            assert!(
                is_internal(ip.parse().unwrap()),
                "{ip} ({what}) should be internal"
            );
        }
        let public = [
            ("::ffff:8.8.8.8", "mapped public"),
            ("::8.8.8.8", "compatible public"),
            ("64:ff9b::808:808", "NAT64 public"),
            ("2002:808:808::1", "6to4 public"),
            ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", "Teredo 8.8.8.8"),
        ];
        for (ip, what) in public {
            assert!(
                !is_internal(ip.parse().unwrap()),
                "{ip} ({what}) should be public"
            );
        }
    }
}
