//! Talking to identity providers: which URLs we use (https, or plain http on loopback only),
//! and bounded reads that never follow redirects.

use super::*;

/// Timeout of a whole request to a provider (connect, headers and body).
pub(super) const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The client for every request to a provider: no redirects, bounded in time.
pub(super) fn client() -> Result<reqwest::Client, OidcError> {
    reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .connect_timeout(FETCH_TIMEOUT)
        // A redirect could send the request anywhere the provider's host points it,
        // including inside the cluster: the configured or discovered URL is the only one used.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("guildhall/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| OidcError::Config(format!("cannot build the OIDC HTTP client: {}", chain(&e))))
}

/// Parses a provider URL: https with a host, or plain http to a loopback host. `name` says
/// what the URL is in messages (e.g. "`jwks_url`").
pub(super) fn checked_url(url: &str, name: &str) -> Result<reqwest::Url, String> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| format!("{name} {url:?} is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "https" | "http") || parsed.host().is_none() {
        return Err(format!(
            "{name} {url:?} must be an http or https URL with a host"
        ));
    }
    if parsed.scheme() == "http" {
        let host = parsed.host_str().unwrap_or_default();
        let loopback = host == "localhost"
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        // Keys, endpoints or tokens in the clear could be replaced in transit; only a provider
        // on this machine (a test, a local sidecar) is trusted over plain HTTP.
        if !loopback {
            return Err(format!(
                "{name} {url:?} must use https (plain http only on loopback)"
            ));
        }
    }
    Ok(parsed)
}

/// GETs a JSON document of at most `max` bytes. `what` names it in messages.
pub(super) async fn fetch(
    client: &reqwest::Client,
    url: &reqwest::Url,
    what: &str,
    accept: &str,
    max: usize,
) -> Result<Vec<u8>, String> {
    let response = client
        .get(url.clone())
        .header(reqwest::header::ACCEPT, accept)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {}", chain(&e.without_url())))?;
    let status = response.status();
    if status.is_redirection() {
        return Err(format!(
            "GET {url}: HTTP {status}; redirects are not followed, configure the final URL"
        ));
    }
    if !status.is_success() {
        return Err(format!("GET {url}: HTTP {status}"));
    }
    read_bounded(response, max, what)
        .await
        .map_err(|e| format!("GET {url}: {e}"))
}

/// Reads a response's body, refusing more than `max` bytes; `what` names it in messages.
pub(super) async fn read_bounded(
    mut response: reqwest::Response,
    max: usize,
    what: &str,
) -> Result<Vec<u8>, String> {
    let too_large = || format!("the {what} is larger than {max} bytes");
    if response
        .content_length()
        .is_some_and(|len| len > max as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| chain(&e.without_url()))?
    {
        if body.len() + chunk.len() > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
