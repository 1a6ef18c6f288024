//! A small blocking HTTP client for calling other services, over
//! `wasi:http/outgoing-handler`.
//!
//! Needs the `outbound_http` capability, listing every host the plugin calls:
//! `outbound_http = ["publicapi.payments.service.gov.uk"]` under `[capabilities]`. The
//! platform refuses any other host, and loopback, link-local and private addresses unless its
//! operator allows them (`runtime.outbound.allow_cidrs`); both come back as
//! [`OutboundError::Denied`]. A call counts against the request's deadline.
//!
//! The whole response body is read, up to [`MAX_RESPONSE_BODY`];
//! [`OutboundError::TooLarge`] beyond. [`OutboundRequest`]'s `Debug` hides the values of
//! credential headers (`authorization` and the like), and no error carries a header, so an
//! API key never reaches a log through them.
//!
//! ```no_run
//! use guildhall_plugin::outbound::{self, OutboundRequest};
//!
//! # fn main() -> Result<(), outbound::OutboundError> {
//! let request = OutboundRequest::post("https://api.example.org/v1/things")
//!     .with_header("authorization", "Bearer secret")
//!     .json(&serde_json::json!({ "name": "bin" }))?;
//! let response = outbound::send(request)?;
//! if response.status == 201 {
//!     let created: serde_json::Value = response.json()?;
//! }
//! # Ok(())
//! # }
//! ```
//!
//! [`crate::pay`] and [`crate::notify`] are built on it.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::http::Method;

/// The largest response body [`send`] reads, 1 MiB.
pub const MAX_RESPONSE_BODY: usize = 1024 * 1024;

/// The most bytes handed to one `blocking-write-and-flush` call, as WASI allows.
const WRITE_CHUNK: usize = 4096;

/// How many bytes to ask for per read of the response body.
const READ_CHUNK: u64 = 64 * 1024;

/// Headers whose values `Debug` hides.
const CREDENTIAL_HEADERS: [&str; 5] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
    "api-key",
];

/// A request to another service.
#[derive(Clone, PartialEq, Eq)]
pub struct OutboundRequest {
    /// The method.
    pub method: Method,
    /// The absolute `http` or `https` URL, e.g. `https://api.example.org/v1/things?page=2`.
    pub url: String,
    /// Header names and values. `content-length` is set by [`send`].
    pub headers: Vec<(String, String)>,
    /// The body; empty for none.
    pub body: Vec<u8>,
}

impl OutboundRequest {
    /// A request with no headers and no body.
    pub fn new(method: Method, url: impl Into<String>) -> OutboundRequest {
        OutboundRequest {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A `GET` request.
    pub fn get(url: impl Into<String>) -> OutboundRequest {
        OutboundRequest::new(Method::Get, url)
    }

    /// A `POST` request.
    pub fn post(url: impl Into<String>) -> OutboundRequest {
        OutboundRequest::new(Method::Post, url)
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> OutboundRequest {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Replaces the body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> OutboundRequest {
        self.body = body.into();
        self
    }

    /// Sets the body to `value` as JSON, with `content-type: application/json`.
    pub fn json<T: Serialize + ?Sized>(self, value: &T) -> Result<OutboundRequest, OutboundError> {
        let body = serde_json::to_vec(value).map_err(|e| OutboundError::Encode(e.to_string()))?;
        Ok(self
            .with_header("content-type", "application/json")
            .with_body(body))
    }

    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

impl fmt::Debug for OutboundRequest {
    /// Shows the method, URL, headers and body length; credential headers' values are
    /// replaced with `<hidden>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(name, value)| {
                let hidden = CREDENTIAL_HEADERS
                    .iter()
                    .any(|h| name.eq_ignore_ascii_case(h));
                (
                    name.as_str(),
                    if hidden { "<hidden>" } else { value.as_str() },
                )
            })
            .collect();
        f.debug_struct("OutboundRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &headers)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// Another service's answer, with its whole body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundResponse {
    /// The status code.
    pub status: u16,
    /// Header names (lower case) and values, in the order received.
    pub headers: Vec<(String, String)>,
    /// The whole body, at most [`MAX_RESPONSE_BODY`] bytes.
    pub body: Vec<u8>,
}

impl OutboundResponse {
    /// A response with `status`, no headers and `body`; handy in tests.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> OutboundResponse {
        OutboundResponse {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as text, with invalid UTF-8 replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON into `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, OutboundError> {
        serde_json::from_slice(&self.body).map_err(|e| OutboundError::Decode(e.to_string()))
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Why a call to another service failed. Never carries a header's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboundError {
    /// The URL is not an absolute `http` or `https` URL this client can send; says why.
    InvalidUrl(String),
    /// The platform refused a header of the request; carries its name.
    InvalidHeader(String),
    /// The platform refused the call: the host is not declared under `outbound_http`, or
    /// its address is one plugins may not reach (loopback, private, link-local). Says which.
    Denied(String),
    /// The service did not answer in time.
    Timeout,
    /// The call failed on the way (DNS, connection, TLS, protocol); carries the WASI error
    /// code's description.
    Failed(String),
    /// The response body is larger than the limit, carried here in bytes.
    TooLarge(usize),
    /// The request body could not be written or the response body read; says which.
    Body(String),
    /// The request body could not be serialised to JSON; carries serde's message.
    Encode(String),
    /// The response body is not the JSON expected; carries serde's message.
    Decode(String),
}

impl OutboundError {
    /// Whether trying again later may work: timeouts and failures on the way, not a
    /// refusal or a malformed request.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            OutboundError::Timeout | OutboundError::Failed(_) | OutboundError::Body(_)
        )
    }
}

impl fmt::Display for OutboundError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutboundError::InvalidUrl(why) => write!(f, "invalid URL: {why}"),
            OutboundError::InvalidHeader(name) => {
                write!(f, "the request header {name:?} was refused")
            }
            OutboundError::Denied(why) => write!(f, "outbound call refused: {why}"),
            OutboundError::Timeout => f.write_str("the service did not answer in time"),
            OutboundError::Failed(why) => write!(f, "outbound call failed: {why}"),
            OutboundError::TooLarge(limit) => {
                write!(f, "the response body is larger than {limit} bytes")
            }
            OutboundError::Body(why) => write!(f, "outbound body: {why}"),
            OutboundError::Encode(message) => {
                write!(f, "could not serialise the request body: {message}")
            }
            OutboundError::Decode(message) => {
                write!(f, "the response body is not as expected: {message}")
            }
        }
    }
}

impl std::error::Error for OutboundError {}

/// The scheme of a [`Url`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `http`
    Http,
    /// `https`
    Https,
}

/// An absolute `http` or `https` URL split the way `wasi:http` wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// The scheme.
    pub scheme: Scheme,
    /// The host, lower case; an IPv6 address keeps its brackets (`[::1]`).
    pub host: String,
    /// The port when the URL gives one.
    pub port: Option<u16>,
    /// The path and query, starting with `/`; the fragment is dropped.
    pub path_and_query: String,
}

impl Url {
    /// Parses `scheme://host[:port][/path][?query][#fragment]`. Refuses other schemes, user
    /// information (`user@host`), an empty host, a port that is not 1 to 65535, and spaces
    /// or control characters anywhere (percent-encode them).
    pub fn parse(url: &str) -> Result<Url, OutboundError> {
        let bad = |why: &str| OutboundError::InvalidUrl(why.to_owned());
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("it contains spaces or control characters"));
        }
        let (scheme, rest) = match url.split_once("://") {
            Some((s, rest)) if s.eq_ignore_ascii_case("https") => (Scheme::Https, rest),
            Some((s, rest)) if s.eq_ignore_ascii_case("http") => (Scheme::Http, rest),
            _ => return Err(bad("it must start with http:// or https://")),
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        if authority.contains('@') {
            return Err(bad("user information (user@host) is not allowed"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let close = v6
                .find(']')
                .ok_or_else(|| bad("an unclosed [ in the host"))?;
            let host = &authority[..close + 2];
            match &v6[close + 1..] {
                "" => (host, None),
                tail => (
                    host,
                    Some(tail.strip_prefix(':').ok_or_else(|| bad("junk after ]"))?),
                ),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        let host_ok = !host.is_empty()
            && (host.starts_with('[')
                || host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_'));
        if !host_ok {
            return Err(bad("the host is empty or not a host name"));
        }
        let port = match port {
            None => None,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
                _ => return Err(bad("the port is not a number from 1 to 65535")),
            },
        };
        let path_and_query = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        Ok(Url {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
            path_and_query,
        })
    }

    /// The authority: the host, and the port when the URL gives one.
    pub fn authority(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }
}

/// Sends `request` and reads the whole answer, blocking until it arrives (or the platform's
/// deadline ends the call). Any status is an `Ok`; look at [`OutboundResponse::status`].
pub fn send(request: OutboundRequest) -> Result<OutboundResponse, OutboundError> {
    let url = Url::parse(&request.url)?;
    wire::send(&request, &url)
}

/// The calls to `wasi:http/outgoing-handler`.
mod wire {
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{
        ErrorCode, Fields, IncomingBody, IncomingResponse, Method as WasiMethod, OutgoingBody,
        OutgoingRequest, Scheme as WasiScheme,
    };
    use wasip2::io::streams::StreamError;

    use super::{
        MAX_RESPONSE_BODY, OutboundError, OutboundRequest, OutboundResponse, READ_CHUNK, Scheme,
        Url, WRITE_CHUNK,
    };
    use crate::http::Method;

    pub(super) fn send(
        request: &OutboundRequest,
        url: &Url,
    ) -> Result<OutboundResponse, OutboundError> {
        let fields = Fields::new();
        for (name, value) in &request.headers {
            if name.eq_ignore_ascii_case("content-length") {
                continue;
            }
            fields
                .append(name, value.as_bytes())
                .map_err(|_| OutboundError::InvalidHeader(name.clone()))?;
        }
        let sends_body = !request.body.is_empty()
            || matches!(request.method, Method::Post | Method::Put | Method::Patch);
        if sends_body {
            fields
                .append("content-length", request.body.len().to_string().as_bytes())
                .map_err(|_| OutboundError::InvalidHeader("content-length".to_owned()))?;
        }
        let outgoing = OutgoingRequest::new(fields);
        let invalid =
            |what: &str| OutboundError::InvalidUrl(format!("the platform refused its {what}"));
        outgoing
            .set_method(&wasi_method(&request.method))
            .map_err(|()| OutboundError::Failed("the platform refused the method".to_owned()))?;
        let scheme = match url.scheme {
            Scheme::Http => WasiScheme::Http,
            Scheme::Https => WasiScheme::Https,
        };
        outgoing
            .set_scheme(Some(&scheme))
            .map_err(|()| invalid("scheme"))?;
        outgoing
            .set_authority(Some(&url.authority()))
            .map_err(|()| invalid("host"))?;
        outgoing
            .set_path_with_query(Some(&url.path_and_query))
            .map_err(|()| invalid("path"))?;
        // A request without a body never takes one, so that a `GET` goes without a body
        // rather than with an empty chunked one.
        let body = if sends_body {
            Some(outgoing.body().map_err(|()| {
                OutboundError::Body("the request body was already taken".to_owned())
            })?)
        } else {
            None
        };
        let future = outgoing_handler::handle(outgoing, None).map_err(error_code)?;
        // The request is on its way; its body is streamed to it.
        let (written, finished) = match body {
            Some(body) => (
                write_body(&body, &request.body),
                OutgoingBody::finish(body, None),
            ),
            None => (Ok(()), Ok(())),
        };
        let response = loop {
            match future.get() {
                Some(Ok(Ok(response))) => break response,
                Some(Ok(Err(code))) => return Err(error_code(code)),
                Some(Err(())) => {
                    return Err(OutboundError::Body(
                        "the response was already taken".to_owned(),
                    ));
                }
                None => future.subscribe().block(),
            }
        };
        written?;
        finished.map_err(error_code)?;
        read_response(response)
    }

    fn write_body(body: &OutgoingBody, bytes: &[u8]) -> Result<(), OutboundError> {
        if bytes.is_empty() {
            return Ok(());
        }
        let failed = || OutboundError::Body("the request body could not be written".to_owned());
        let stream = body.write().map_err(|()| failed())?;
        for chunk in bytes.chunks(WRITE_CHUNK) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|_| failed())?;
        }
        Ok(())
    }

    fn read_response(response: IncomingResponse) -> Result<OutboundResponse, OutboundError> {
        let status = response.status();
        let headers = response
            .headers()
            .entries()
            .into_iter()
            .map(|(name, value)| {
                (
                    name.to_ascii_lowercase(),
                    String::from_utf8_lossy(&value).into_owned(),
                )
            })
            .collect();
        let unreadable = || OutboundError::Body("the response body could not be read".to_owned());
        let body = response.consume().map_err(|()| unreadable())?;
        let mut bytes = Vec::new();
        {
            let stream = body.stream().map_err(|()| unreadable())?;
            loop {
                match stream.blocking_read(READ_CHUNK) {
                    Ok(chunk) => {
                        if bytes.len() + chunk.len() > MAX_RESPONSE_BODY {
                            return Err(OutboundError::TooLarge(MAX_RESPONSE_BODY));
                        }
                        bytes.extend_from_slice(&chunk);
                    }
                    Err(StreamError::Closed) => break,
                    Err(StreamError::LastOperationFailed(_)) => return Err(unreadable()),
                }
            }
            // The stream is a child of the body and must go before it.
        }
        drop(IncomingBody::finish(body));
        Ok(OutboundResponse {
            status,
            headers,
            body: bytes,
        })
    }

    fn wasi_method(method: &Method) -> WasiMethod {
        match method {
            Method::Get => WasiMethod::Get,
            Method::Head => WasiMethod::Head,
            Method::Post => WasiMethod::Post,
            Method::Put => WasiMethod::Put,
            Method::Delete => WasiMethod::Delete,
            Method::Patch => WasiMethod::Patch,
            Method::Options => WasiMethod::Options,
            Method::Connect => WasiMethod::Connect,
            Method::Trace => WasiMethod::Trace,
            Method::Other(name) => WasiMethod::Other(name.clone()),
        }
    }

    fn error_code(code: ErrorCode) -> OutboundError {
        match code {
            ErrorCode::HttpRequestDenied => OutboundError::Denied(
                "the host is not declared under outbound_http in plugin.toml".to_owned(),
            ),
            ErrorCode::DestinationIpProhibited => OutboundError::Denied(
                "the host's address is one plugins may not reach (loopback, private or link-local)"
                    .to_owned(),
            ),
            ErrorCode::ConnectionTimeout
            | ErrorCode::ConnectionReadTimeout
            | ErrorCode::ConnectionWriteTimeout
            | ErrorCode::HttpResponseTimeout => OutboundError::Timeout,
            ErrorCode::HttpResponseBodySize(_) => OutboundError::TooLarge(MAX_RESPONSE_BODY),
            other => OutboundError::Failed(format!("{other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn urls_split_into_scheme_authority_and_path() {
        let u = url("https://publicapi.payments.service.gov.uk/v1/payments");
        assert_eq!(u.scheme, Scheme::Https);
        assert_eq!(u.host, "publicapi.payments.service.gov.uk");
        assert_eq!(u.port, None);
        assert_eq!(u.authority(), "publicapi.payments.service.gov.uk");
        assert_eq!(u.path_and_query, "/v1/payments");

        let u = url("http://LocalHost:8080?x=1#frag");
        assert_eq!(u.scheme, Scheme::Http);
        assert_eq!(u.authority(), "localhost:8080");
        assert_eq!(u.path_and_query, "/?x=1");

        let u = url("HTTP://[::1]:9000/a/b?c=d%20e");
        assert_eq!(u.host, "[::1]");
        assert_eq!(u.port, Some(9000));
        assert_eq!(u.path_and_query, "/a/b?c=d%20e");
        assert_eq!(url("https://[::1]").authority(), "[::1]");
        assert_eq!(url("https://example.org").path_and_query, "/");
    }

    #[test]
    fn bad_urls_are_refused() {
        for bad in [
            "",
            "example.org/x",
            "ftp://example.org/",
            "https://",
            "https:///path",
            "https://user:pw@example.org/",
            "https://example.org:0/",
            "https://example.org:65536/",
            "https://example.org:+80/",
            "https://example.org:/",
            "https://exa mple.org/",
            "https://example.org/a b",
            "https://example.org/\n",
            "https://[::1/",
            "https://[::1]x/",
            "https://ex%41mple.org/",
        ] {
            assert!(
                matches!(Url::parse(bad), Err(OutboundError::InvalidUrl(_))),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn debug_hides_credentials() {
        let request = OutboundRequest::post("https://api.example.org/")
            .with_header("Authorization", "Bearer live_secret")
            .with_header("X-Api-Key", "other_secret")
            .with_header("accept", "application/json")
            .with_body("{}");
        let shown = format!("{request:?}");
        assert!(!shown.contains("live_secret"), "{shown}");
        assert!(!shown.contains("other_secret"), "{shown}");
        assert!(shown.contains("application/json"), "{shown}");
        assert!(shown.contains("body_len: 2"), "{shown}");
        assert_eq!(request.header("authorization"), Some("Bearer live_secret"));
    }

    #[test]
    fn json_bodies_and_answers() {
        let request = OutboundRequest::post("https://api.example.org/")
            .json(&serde_json::json!({"a": 1}))
            .unwrap();
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(request.body, br#"{"a":1}"#);
        let response = OutboundResponse::new(201, r#"{"id":"x"}"#);
        assert!(response.is_success());
        let value: serde_json::Value = response.json().unwrap();
        assert_eq!(value["id"], "x");
        assert!(matches!(
            OutboundResponse::new(200, "<html>").json::<serde_json::Value>(),
            Err(OutboundError::Decode(_))
        ));
        assert!(OutboundError::Timeout.is_transient());
        assert!(!OutboundError::Denied("x".into()).is_transient());
    }
}
