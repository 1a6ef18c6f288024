//! The platform's own pages for citizens, in the same GOV.UK layout as plugins' pages: the
//! feedback page every service links from its phase banner, and the page shown when the
//! gateway refuses a form before the service sees it.
//!
//! The layout and components are the plugin SDK's (`plugins/sdk/templates/layout.html` and
//! `components.html`), compiled in verbatim, so the platform's pages and every plugin's look
//! the same.

use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use guildhall_domain::Site;
use minijinja::{Environment, Value, context};

use crate::error::ApiError;
use crate::gateway::Refusal;

/// The templates: the SDK's layout and components, and the platform's pages.
const TEMPLATES: &[(&str, &str)] = &[
    (
        "layout.html",
        include_str!("../../../plugins/sdk/templates/layout.html"),
    ),
    (
        "components.html",
        include_str!("../../../plugins/sdk/templates/components.html"),
    ),
    (
        "feedback.html",
        include_str!("../templates/citizen/feedback.html"),
    ),
    (
        "refused.html",
        include_str!("../templates/citizen/refused.html"),
    ),
];

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .expect("the citizen pages' templates parse");
        }
        env
    })
}

/// Renders a citizen page as a response: HTML, never cached, never framed, with the
/// policy plugins' pages get by default (nothing inline, nothing from elsewhere).
pub(crate) fn page(status: StatusCode, template: &str, context: Value) -> Response {
    let rendered = environment()
        .get_template(template)
        .and_then(|t| t.render(context));
    match rendered {
        Ok(html) => {
            let mut response = (status, html).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(crate::gateway::DEFAULT_CSP),
            );
            // Browsers send `Origin: null` on form posts from a `no-referrer` page (the
            // platform's default); `same-origin` keeps this site's origin on the page's
            // form and still sends nothing to other sites.
            headers.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("same-origin"),
            );
            response
        }
        Err(e) => ApiError::internal(format!("rendering {template}: {e:#}")).into_response(),
    }
}

/// Whether a request's body is a form (`application/x-www-form-urlencoded`).
pub(crate) fn is_urlencoded(headers: &HeaderMap) -> bool {
    guildhall_runtime::edge::is_urlencoded(headers)
}

/// Whether a browser says the request comes from another site: `Sec-Fetch-Site:
/// cross-site`, or, without that header, an `Origin` that is not the `Host` asked (`null`
/// included).
pub(crate) fn is_cross_site(headers: &HeaderMap) -> bool {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    // Browsers that send it say it outright; `Origin` is for those that do not.
    if let Some(site) = text("sec-fetch-site") {
        return site == "cross-site";
    }
    let Some(origin) = text(header::ORIGIN.as_str()) else {
        return false;
    };
    let host = text(header::HOST.as_str()).unwrap_or_default();
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    origin_host != Some(host) || host.is_empty()
}

/// Whether the caller asked for a page rather than data (a browser's form post).
pub(crate) fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// The answer to a request the gateway refused before the plugin ran: a page for a
/// browser, a problem for anything else. Both are 403.
pub(crate) fn refused(site: &Site, refusal: Refusal, headers: &HeaderMap) -> Response {
    let (title, paragraphs, detail) = match refusal {
        Refusal::Ended => (
            "Your session has ended",
            vec![
                "We have deleted your answers because you did not use this service for a while, or your browser was closed.".to_string(),
                "You will need to start again.".to_string(),
            ],
            "the session this request names has ended; start again",
        ),
        Refusal::Forged => (
            "Sorry, there is a problem with this form",
            vec![
                "The form you sent did not come from this service's pages, so nothing was sent.".to_string(),
                "This can happen if you opened the service in more than one browser tab or window.".to_string(),
            ],
            "the form does not carry this session's csrf token",
        ),
    };
    if !wants_html(headers) {
        return ApiError::from_status(StatusCode::FORBIDDEN, detail).into_response();
    }
    page(
        StatusCode::FORBIDDEN,
        "refused.html",
        context! { site => Value::from_serialize(site), title, paragraphs },
    )
}

/// Responses that never change, cached for a year.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// `GET /assets/brand/colours/{rrggbb}.css`: a council's colour, as a thick line under its
/// pages' header (a border carries no text, so any colour keeps the header's contrast).
pub(crate) async fn colour_css(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let hex = file
        .strip_suffix(".css")
        .and_then(|hex| guildhall_domain::brand::colour_hex(&format!("#{hex}")))
        .filter(|normal| file == format!("{normal}.css"));
    let Some(hex) = hex else {
        return ApiError::not_found("no such stylesheet").into_response();
    };
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, IMMUTABLE),
        ],
        format!(
            ".gh-brand__header {{ border-bottom: 10px solid #{hex}; }}\n\
             .gh-brand__logo {{ max-height: 60px; width: auto; }}\n"
        ),
    )
        .into_response()
}

/// `GET /assets/brand/logos/{sha256}`: an alliance's or council's logo. An SVG is shown
/// through `<img>`, where it cannot run scripts; opened on its own it is sandboxed.
pub(crate) async fn logo(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    axum::extract::Path(digest): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    let well_formed = digest.len() == 64
        && digest
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !well_formed {
        return Err(ApiError::not_found("no such logo"));
    }
    let (content_type, bytes) = state
        .store
        .tenants()
        .logo(&digest)
        .await?
        .ok_or_else(|| ApiError::not_found("no such logo"))?;
    let content_type =
        HeaderValue::from_str(&content_type).unwrap_or(HeaderValue::from_static("image/png"));
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; sandbox"),
            ),
        ],
        bytes,
    )
        .into_response())
}
