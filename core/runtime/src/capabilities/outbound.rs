//! Outbound HTTP: `wasi:http/types` for every plugin, and `wasi:http/outgoing-handler`
//! only for plugins that declare `outbound_http`, only to the declared hosts, and never to
//! loopback, private, link-local or unique-local addresses (checked after DNS resolution,
//! and the connection goes to the checked address, so a name cannot be rebound between
//! check and use).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::BodyExt;
use wasmtime::component::Linker;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttp, WasiHttpHooks};

use crate::config::OutboundConfig;
use crate::host::{Host, Observed};

pub(super) fn link_types(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    use wasmtime_wasi_http::p2::bindings;
    let options = bindings::LinkOptions::default();
    bindings::http::types::add_to_linker::<Host, WasiHttp>(
        linker,
        &(&options).into(),
        <Host as wasmtime_wasi_http::WasiHttpView>::http,
    )
}

pub(super) fn link_outgoing(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    wasmtime_wasi_http::p2::bindings::http::outgoing_handler::add_to_linker::<Host, WasiHttp>(
        linker,
        <Host as wasmtime_wasi_http::WasiHttpView>::http,
    )
}

/// An address range in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn contains(&self, ip: IpAddr) -> bool {
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

/// Whether an address is one a plugin may never reach unless the operator allows it:
/// unspecified, loopback, private, shared (CGNAT), link-local, unique-local, multicast,
/// broadcast, documentation or reserved.
pub(crate) fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal_v4(v4);
            }
            let first = v6.segments()[0];
            v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // fc00::/7 unique local
                || (first & 0xffc0) == 0xfe80 // fe80::/10 link local
                || (first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
        }
    }
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
}

impl OutboundPolicy {
    pub(crate) fn new(hosts: &[String], config: &OutboundConfig, allow: Arc<Vec<Cidr>>) -> Self {
        Self {
            hosts: hosts.iter().cloned().collect(),
            allow,
            timeout: Duration::from_millis(config.timeout_ms),
            max_response_bytes: config.max_response_bytes,
        }
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
            observed
                .lock()
                .expect("observed poisoned")
                .denied
                .push(what);
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
                        .denied
                        .push("outbound http: not declared in the manifest".into());
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
