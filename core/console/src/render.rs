//! Templates and the page chrome.
//!
//! Templates are Jinja (minijinja), compiled into the binary from `templates/`, with
//! HTML auto-escaping on. `macros.html` renders GOV.UK Frontend's components with the
//! Design System's markup; pages extend `layout.html`.

use std::sync::OnceLock;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use guildhall_api::ApiError;
use minijinja::{Environment, Value, context};
use serde::Serialize;

use crate::assets::Assets;

/// The console's Content-Security-Policy: everything from this server only, no inline
/// script or style, no framing, forms post only here.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// `(name, source)` of templates in `templates/`, compiled into the binary.
macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/", $name)))),*]
    };
}
pub(crate) use templates;

/// The layout, the components and the pages of this module and `pages::{home, installs,
/// members, tokens, catalogue}`.
const CORE: &[(&str, &str)] = templates![
    "layout.html",
    "macros.html",
    "error.html",
    "sign_in.html",
    "home.html",
    "overview.html",
    "installs.html",
    "install_form.html",
    "uninstall.html",
    "members.html",
    "tokens.html",
    "catalogue.html",
    "plugin.html",
];

/// The compiled templates.
#[derive(Debug)]
pub struct Views {
    env: Environment<'static>,
}

impl Views {
    /// Parses every template.
    pub fn new() -> Result<Self, String> {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        let all = [
            CORE,
            crate::pages::usage::TEMPLATES,
            crate::pages::audit::TEMPLATES,
            crate::pages::owners::TEMPLATES,
            crate::pages::keys::TEMPLATES,
            crate::pages::platform::TEMPLATES,
            crate::pages::councils::TEMPLATES,
            crate::pages::subject_requests::TEMPLATES,
        ];
        for (name, source) in all.into_iter().flatten() {
            env.add_template(name, source)
                .map_err(|e| format!("console template {name}: {e}"))?;
        }
        Ok(Self { env })
    }

    /// The templates, parsed once.
    pub fn get() -> &'static Views {
        static VIEWS: OnceLock<Views> = OnceLock::new();
        VIEWS.get_or_init(|| Views::new().expect("the console's templates parse"))
    }

    /// Renders `template` with `page` as the chrome and `data` beside it.
    pub fn render(&self, template: &str, page: &Chrome, data: Value) -> Result<String, String> {
        let ctx = context! { page => page, ..data };
        self.env
            .get_template(template)
            .and_then(|t| t.render(ctx))
            .map_err(|e| {
                let mut message = format!("rendering {template}: {e}");
                let mut source = std::error::Error::source(&e);
                while let Some(cause) = source {
                    message.push_str(&format!(": {cause}"));
                    source = cause.source();
                }
                message
            })
    }
}

/// A link in the service navigation.
#[derive(Debug, Clone, Serialize)]
pub struct Nav {
    /// The link's text.
    pub text: String,
    /// Where it goes.
    pub href: String,
    /// Whether it is the current section.
    pub active: bool,
}

/// What every page's layout needs.
#[derive(Debug, Clone, Serialize)]
pub struct Chrome {
    /// The page's title (the `<h1>` and the start of `<title>`).
    pub title: String,
    /// The GOV.UK Frontend folder.
    pub assets: String,
    /// This session's anti-forgery token, for forms.
    pub csrf: String,
    /// Who is signed in, as shown.
    pub user: Option<String>,
    /// The alliance the page is about.
    pub tenant: Option<String>,
    /// The service navigation.
    pub nav: Vec<Nav>,
    /// The alliance's navigation (its sections the signed-in person may see).
    pub tenant_nav: Vec<Nav>,
    /// Whether the page shows a form's errors (its title starts with "Error:").
    pub has_errors: bool,
}

impl Chrome {
    /// The chrome of a page seen by nobody signed in (sign-in, errors).
    pub fn public(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            assets: Assets::get().base(),
            csrf: String::new(),
            user: None,
            tenant: None,
            nav: Vec::new(),
            tenant_nav: Vec::new(),
            has_errors: false,
        }
    }
}

/// `GET /console/static/init.js`: marks the page as having JavaScript and starts GOV.UK
/// Frontend's components. An external module, so no inline script is ever allowed.
pub async fn init_js() -> Response {
    let script = format!(
        "import {{ initAll }} from \"{}/govuk-frontend.min.js\";\n\
         document.body.classList.add(\"js-enabled\", \"govuk-frontend-supported\");\n\
         initAll();\n",
        Assets::get().base()
    );
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        script,
    )
        .into_response()
}

/// A rendered page with `status`.
pub fn page(status: StatusCode, template: &str, chrome: &Chrome, data: Value) -> Response {
    match Views::get().render(template, chrome, data) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => PageError::internal(e).into_response(),
    }
}

/// A failure shown as a GOV.UK error page.
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    heading: &'static str,
    message: String,
    internal: Option<String>,
    retry_after: Option<u64>,
}

impl PageError {
    fn new(status: StatusCode, heading: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            heading,
            message: message.into(),
            internal: None,
            retry_after: None,
        }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "There is a problem with your request",
            message,
        )
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "You cannot do this", message)
    }

    /// 404.
    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "Page not found",
            "If you typed the web address, check it is correct. If you pasted it, check you copied the entire address.",
        )
    }

    /// 405.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "There is a problem with your request",
            "This page cannot be used that way.",
        )
    }

    /// 413.
    pub fn too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "There is a problem with your request",
            "The form you sent is too large.",
        )
    }

    /// 429: come back in `after` seconds.
    pub fn too_many(after: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Sorry, there have been too many attempts",
            format!("Wait {after} seconds, then try again."),
        );
        e.retry_after = Some(after);
        e
    }

    /// 500: the cause is logged, never shown.
    pub fn internal(cause: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Sorry, there is a problem with the service",
            "Try again later.",
        );
        e.internal = Some(cause.into());
        e
    }

    /// 503: something the console depends on is down; the cause is logged.
    pub fn unavailable(message: impl Into<String>, cause: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sorry, the service is unavailable",
            message,
        );
        e.internal = Some(cause.into());
        e.retry_after = Some(30);
        e
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        let status = e.status();
        match status {
            StatusCode::NOT_FOUND => Self::not_found(),
            StatusCode::FORBIDDEN => {
                Self::forbidden(format!("Your role does not allow this. {}", e.detail()))
            }
            StatusCode::UNAUTHORIZED => Self::forbidden("You are not signed in."),
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => {
                let mut page = Self::new(
                    status,
                    "Sorry, the service is busy",
                    "Wait a moment, then try again. Nothing was changed.",
                );
                page.retry_after = Some(2);
                page.internal = e.internal_cause().map(str::to_string);
                page
            }
            s if s.is_server_error() => Self::internal(
                e.internal_cause()
                    .map(str::to_string)
                    .unwrap_or_else(|| e.detail().to_string()),
            ),
            _ => Self::bad_request(e.describe()),
        }
    }
}

impl From<guildhall_store::Error> for PageError {
    fn from(e: guildhall_store::Error) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        if let Some(cause) = &self.internal {
            tracing::error!(status = self.status.as_u16(), cause = %cause, "console page failed");
        }
        let chrome = Chrome::public(self.heading);
        let html = Views::get()
            .render(
                "error.html",
                &chrome,
                context! { heading => self.heading, message => self.message },
            )
            .unwrap_or_else(|_| format!("<!DOCTYPE html><title>{}</title>", self.heading));
        let mut response = (self.status, Html(html)).into_response();
        if let Some(after) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(after));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses() {
        Views::new().expect("templates parse");
    }
}
