//! The GOV.UK page kit: server-rendered pages for residents, with the GOV.UK Frontend 6
//! layout and components, forms and their errors, and question-page journeys.
//!
//! Needs no capability by itself. Pages are [MiniJinja](https://docs.rs/minijinja) templates
//! compiled into the plugin; the platform serves the GOV.UK Frontend stylesheet and script
//! (`site.assets`), so a page costs the plugin only its HTML. Journeys that keep answers
//! between pages use [`Journey`], which needs the `session` capability.
//!
//! - [`Kit`]: the layout (`layout.html`), the components (`components.html`) and your own
//!   templates; [`Kit::page`] starts a [`Page`], which [`Page::respond`] renders as a
//!   `text/html; charset=utf-8` [`Response`] with `site` ([`context::site`]) filled in.
//! - [`Form`]: a submitted form; [`Form::check`] gives a [`Validator`] whose checks collect
//!   [`Errors`] in GOV.UK wording, shown by [`Page::form`] as the error summary, beside each
//!   field, and with the answers given.
//! - [`Journey`] and [`Answers`]: the answers of each question page kept in the session,
//!   the next page, the check-answers page's [`SummaryRow`]s, and clearing up.
//! - [`PageError`]: a failure shown as a GOV.UK error page.
//!
//! # Templates
//!
//! A page template extends the layout and imports the components:
//!
//! ```jinja
//! {% extends "layout.html" %}
//! {% import "components.html" as govuk %}
//! {% block back %}{{ govuk.back_link(site.base_path ~ "/") }}{% endblock %}
//! {% block content %}
//! <div class="govuk-grid-row"><div class="govuk-grid-column-two-thirds">
//!   {% call govuk.post_form(site.base_path ~ "/where", csrf) %}
//!     {{ govuk.input("location", "Where is the problem?", form=form, heading=true) }}
//!     {{ govuk.button("Continue") }}
//!   {% endcall %}
//! </div></div>
//! {% endblock %}
//! ```
//!
//! Every page sees `site` (the council's [`Site`]), `title` ([`Page::title`], the page's h1
//! and `<title>`), `service_name` ([`Kit::service_name`]), `errors` (the error summary's
//! entries), `form` (`form.values`, `form.lists`, `form.error`, `form.parts`, read by the
//! components' `form=form` argument), `csrf` ([`Page::csrf`]) and whatever [`Page::with`]
//! adds. The layout shows the error summary and puts `Error: ` before the `<title>` when
//! there are errors. Every template is HTML-escaped, whatever its name; `layout.html` starts
//! with a comment stating what it relies on, because the platform renders its own citizen
//! pages with the same two files.
//!
//! MiniJinja is built without its builtin filters, tests and functions to keep plugins
//! small: templates have MiniJinja's syntax (`if`, `for`, `set`, macros, `~`, `in`, `is
//! defined`, `is none`, `loop.first`, the `escape` and `safe` filters), and anything else is
//! computed in Rust and passed with [`Page::with`].
//!
//! # Writing a page
//!
//! ```
//! use guildhall_plugin::kit::{Form, Kit, Site};
//!
//! let kit = Kit::new().service_name("Report a problem").template(
//!     "where.html",
//!     r#"{% extends "layout.html" %}{% import "components.html" as govuk %}
//! {% block content %}{% call govuk.post_form(site.base_path ~ "/where", csrf) %}
//! {{ govuk.input("location", title, form=form, heading=true) }}{{ govuk.button("Continue") }}
//! {% endcall %}{% endblock %}"#,
//! );
//! let form = Form::parse("location=");
//! let mut check = form.check();
//! check.text("location").required("Enter the street or landmark");
//! let errors = check.into_errors();
//!
//! let site = Site { council_name: "Tandridge District Council".into(), ..Site::default() };
//! let response = kit
//!     .page("where.html")
//!     .title("Where is the problem?")
//!     .form(&form, &errors)
//!     .csrf("token")
//!     .respond_for(&site);
//! assert_eq!(response.status, 422);
//! assert!(response.body_text().contains("<title>Error: Where is the problem?"));
//! ```

mod form;
mod journey;

use std::collections::BTreeMap;
use std::fmt;

use minijinja::{AutoEscape, Environment, Value};
use serde::Serialize;

pub use crate::context::Site;
use crate::http::{BodyError, Response};
use crate::kv::KvError;
use crate::session::SessionError;
use crate::{context, context::Refusal};

pub use form::{
    CSRF_FIELD, DateCheck, DatePart, DateProblem, Errors, FieldError, Form, SummaryError,
    TextCheck, Validator, is_email, is_phone, parse_date,
};
pub use journey::{Answers, Journey, SummaryRow};

/// The layout every page extends: GOV.UK Frontend's page template with the council's header
/// and footer. The platform renders its own citizen pages with it too.
pub const LAYOUT: &str = include_str!("../../templates/layout.html");

/// The GOV.UK Frontend components as macros (`{% import "components.html" as govuk %}`).
pub const COMPONENTS: &str = include_str!("../../templates/components.html");

/// The kit's own error page, used by [`Kit::error_page`]; a plugin may replace it with a
/// template of its own called `error.html`.
const ERROR_PAGE: &str = include_str!("../../templates/error.html");

/// The templates of the kit, after the plugin's own: a plugin's template of the same name
/// wins.
const BUILT_IN: [(&str, &str); 3] = [
    ("layout.html", LAYOUT),
    ("components.html", COMPONENTS),
    ("error.html", ERROR_PAGE),
];

/// The layout, the components and a plugin's own templates.
///
/// Build one per request (every request runs in a fresh instance anyway); templates are
/// compiled when a page first needs them. A template with a syntax error fails the page that
/// uses it with a `500` page; [`Kit::check`] finds such errors in a unit test.
#[derive(Debug, Clone, Default)]
pub struct Kit {
    templates: Vec<(&'static str, &'static str)>,
    service_name: Option<String>,
}

impl Kit {
    /// The kit with the layout, the components and its error page.
    pub fn new() -> Kit {
        Kit::default()
    }

    /// Adds a template, usually `include_str!("../templates/where.html")`. Its name is how
    /// pages and other templates refer to it.
    pub fn template(mut self, name: &'static str, source: &'static str) -> Kit {
        self.templates.push((name, source));
        self
    }

    /// The service's name, shown in the header's service navigation and every `<title>`,
    /// e.g. `Report a problem`.
    pub fn service_name(mut self, name: impl Into<String>) -> Kit {
        self.service_name = Some(name.into());
        self
    }

    /// Starts a page rendered with template `template`.
    pub fn page(&self, template: &str) -> Page<'_> {
        let mut context = BTreeMap::new();
        if let Some(name) = &self.service_name {
            context.insert("service_name".to_owned(), Value::from(name.as_str()));
        }
        let page = Page {
            kit: self,
            template: template.to_owned(),
            status: None,
            has_errors: false,
            context,
        };
        page.form(&Form::new(), &Errors::new())
    }

    /// Compiles every template, the kit's and the plugin's, and reports the first that does
    /// not compile (or names a template that does not exist). For a plugin's unit tests.
    pub fn check(&self) -> Result<(), RenderError> {
        let env = self.environment();
        let names = self
            .templates
            .iter()
            .map(|(name, _)| *name)
            .chain(BUILT_IN.iter().map(|(name, _)| *name));
        for name in names {
            env.get_template(name).map_err(RenderError::from)?;
        }
        Ok(())
    }

    /// Renders `error` as a GOV.UK error page for the council of this request.
    pub fn error_page(&self, error: &PageError) -> Response {
        self.error_page_for(&context::site(), error)
    }

    /// Renders `error` as a GOV.UK error page for `site`.
    pub fn error_page_for(&self, site: &Site, error: &PageError) -> Response {
        self.page("error.html")
            .title(&error.title)
            .with("message", &error.message)
            .with("start_again", &error.start_again)
            .status(error.status)
            .respond_for(site)
    }

    /// The response of a handler that returns `Result<Response, PageError>`: the response,
    /// or the error as a GOV.UK error page. Lets a page's handler use `?`:
    ///
    /// ```no_run
    /// use guildhall_plugin::kit::{Kit, PageError, Journey};
    /// use guildhall_plugin::{Request, Response};
    ///
    /// const JOURNEY: Journey = Journey::new("report", &["where"]);
    ///
    /// fn check_answers(kit: &Kit, _req: Request) -> Result<Response, PageError> {
    ///     let answers = JOURNEY.answers()?; // a session error becomes an error page
    ///     Ok(kit.page("check.html").title("Check your answers").respond())
    /// }
    ///
    /// fn handler(req: Request) -> Response {
    ///     let kit = Kit::new();
    ///     kit.respond(check_answers(&kit, req))
    /// }
    /// ```
    pub fn respond(&self, result: Result<Response, PageError>) -> Response {
        result.unwrap_or_else(|error| self.error_page(&error))
    }

    fn environment(&self) -> Environment<'static> {
        let mut env = Environment::new();
        // Every template is HTML: no page can be left unescaped by its name.
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        let templates = self.templates.clone();
        env.set_loader(move |name| {
            Ok(templates
                .iter()
                .chain(BUILT_IN.iter())
                .find(|(n, _)| *n == name)
                .map(|(_, source)| (*source).to_owned()))
        });
        env
    }
}

/// A page being prepared: its template, title, status and what its template sees.
///
/// Its status is `200`, or `422` when it shows errors (the form's answers could not be
/// processed as they are), unless [`Page::status`] says otherwise.
#[derive(Debug)]
pub struct Page<'k> {
    kit: &'k Kit,
    template: String,
    status: Option<u16>,
    has_errors: bool,
    context: BTreeMap<String, Value>,
}

impl Page<'_> {
    /// The page's heading: its h1 (write `{{ title }}` in the template) and the start of its
    /// `<title>`. Make it unique in the service.
    pub fn title(self, title: &str) -> Self {
        self.with("title", title)
    }

    /// Adds `value` to what the template sees, as `key`. Anything serde serialises.
    pub fn with<T: Serialize + ?Sized>(mut self, key: &str, value: &T) -> Self {
        self.context
            .insert(key.to_owned(), Value::from_serialize(value));
        self
    }

    /// The answers to show in the form's fields (a submitted form, or a journey's answers of
    /// the page), with no errors.
    pub fn values(self, form: &Form) -> Self {
        self.form(form, &Errors::new())
    }

    /// A form shown again with its answers and its `errors`: the error summary (`errors`) and
    /// each field's message (`form.error`). Makes the status `422` when there are errors.
    pub fn form(mut self, form: &Form, errors: &Errors) -> Self {
        let (values, lists) = form.values_and_lists();
        let (messages, parts) = errors.messages_and_parts();
        let form_value = Value::from_serialize(&FormContext {
            values,
            lists,
            error: messages,
            parts,
        });
        self.context.insert("form".to_owned(), form_value);
        self.has_errors = !errors.is_empty();
        self.with("errors", &errors.summary())
    }

    /// The session's token, for `{% call govuk.post_form(action, csrf) %}`.
    pub fn csrf(self, token: &str) -> Self {
        self.with("csrf", token)
    }

    /// The HTTP status, instead of `200` (or `422` with errors).
    pub fn status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// The page's HTML for `site`. Never calls the platform, so it works in unit tests.
    pub fn render_for(&self, site: &Site) -> Result<String, RenderError> {
        let env = self.kit.environment();
        let template = env.get_template(&self.template)?;
        let mut context = self.context.clone();
        context.insert("site".to_owned(), Value::from_serialize(site));
        Ok(template.render(context)?)
    }

    /// The page as a `text/html; charset=utf-8` response for `site`; a template that fails
    /// gives a plain `500` page (and a line on stderr). Never calls the platform.
    pub fn respond_for(self, site: &Site) -> Response {
        let status = self
            .status
            .unwrap_or(if self.has_errors { 422 } else { 200 });
        match self.render_for(site) {
            Ok(html) => Response::html(status, html),
            Err(error) => {
                eprintln!("page {} could not be rendered: {error}", self.template);
                Response::html(500, FALLBACK_ERROR_PAGE)
            }
        }
    }

    /// The page as a `text/html; charset=utf-8` response for the council of this request
    /// ([`context::site`]).
    pub fn respond(self) -> Response {
        let site = context::site();
        self.respond_for(&site)
    }
}

/// What templates see as `form`.
#[derive(Serialize)]
struct FormContext<'a> {
    values: BTreeMap<&'a str, &'a str>,
    lists: BTreeMap<&'a str, Vec<&'a str>>,
    error: BTreeMap<&'a str, &'a str>,
    parts: BTreeMap<&'a str, &'a [String]>,
}

/// The page shown when a template fails: no layout, since the layout may be what failed.
const FALLBACK_ERROR_PAGE: &str = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sorry, there is a problem with the service</title></head>\n<body><main><h1>Sorry, there is a problem with the service</h1><p>Try again later.</p></main></body></html>\n";

/// A template that could not be compiled or rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderError {
    /// MiniJinja's description, with the template's name and line.
    pub message: String,
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RenderError {}

impl From<minijinja::Error> for RenderError {
    fn from(error: minijinja::Error) -> Self {
        let mut message = error.to_string();
        if let (Some(name), Some(line)) = (error.name(), error.line())
            && !message.contains(name)
        {
            message = format!("{message} (in {name}, line {line})");
        }
        RenderError { message }
    }
}

/// A failure to show as a GOV.UK error page ([`Kit::error_page`]), with what to tell the
/// citizen and never the platform's internals. The platform's errors convert into it, so a
/// page's handler can use `?` (see [`Kit::respond`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageError {
    /// The HTTP status.
    pub status: u16,
    /// The page's heading, e.g. `Sorry, there is a problem with the service`.
    pub title: String,
    /// One sentence of what to do.
    pub message: String,
    /// Whether to offer a link back to the service's start page.
    pub start_again: bool,
}

impl PageError {
    /// An error page with `status`, `title` and `message`.
    pub fn new(status: u16, title: impl Into<String>, message: impl Into<String>) -> PageError {
        PageError {
            status,
            title: title.into(),
            message: message.into(),
            start_again: false,
        }
    }

    /// The same page with a link back to the service's start page.
    pub fn with_start_again(self) -> PageError {
        PageError {
            start_again: true,
            ..self
        }
    }

    /// `404`: `Page not found`.
    pub fn not_found() -> PageError {
        PageError::new(
            404,
            "Page not found",
            "If you typed the web address, check it is correct. If you pasted the web address, check you copied the entire address.",
        )
        .with_start_again()
    }

    /// `500` (or another status): `Sorry, there is a problem with the service`.
    pub fn problem(status: u16) -> PageError {
        PageError::new(
            status,
            "Sorry, there is a problem with the service",
            "Try again later.",
        )
    }
}

impl fmt::Display for PageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.title, self.status, self.message)
    }
}

impl std::error::Error for PageError {}

impl From<SessionError> for PageError {
    /// A request without a session is asked to start again (`400`); the rest is a problem
    /// with the service, with [`SessionError::status`].
    fn from(error: SessionError) -> Self {
        match error {
            SessionError::NoSession => PageError::new(
                400,
                "Sorry, you need to start again",
                "We could not keep your answers. Make sure your browser allows cookies for this site, then start again.",
            )
            .with_start_again(),
            SessionError::TooLarge(_) => PageError::new(
                413,
                "Sorry, your answers are too long",
                "We could not keep your answers because they are too long. Go back, shorten them and try again.",
            ),
            other => PageError::problem(other.status()),
        }
    }
}

impl From<KvError> for PageError {
    /// A problem with the service, with [`KvError::status`].
    fn from(error: KvError) -> Self {
        PageError::problem(error.status())
    }
}

impl From<BodyError> for PageError {
    /// `400`: the form could not be read.
    fn from(_: BodyError) -> Self {
        PageError::new(
            400,
            "Sorry, there is a problem with the service",
            "We could not read the form you sent. Go back and try again.",
        )
    }
}

impl From<Refusal> for PageError {
    /// `401` or `403`: the page is not for this caller.
    fn from(refusal: Refusal) -> Self {
        PageError::new(
            refusal.status(),
            "You cannot see this page",
            "This page is only for council officers.",
        )
    }
}

impl From<RenderError> for PageError {
    /// `500`.
    fn from(_: RenderError) -> Self {
        PageError::problem(500)
    }
}

#[cfg(test)]
mod tests;
