//! The alliance console: server-rendered pages in the GOV.UK Design System, under
//! `/console` on the same server as the API.
//!
//! The console is a second edge over the platform's operations. Every page asks the same
//! access decision as the API route it mirrors ([`act`]), calls the same operation, and
//! records the same audit entry; it never decides a rule of its own.
//!
//! - [`session`]: server-side sessions (a `__Host-` cookie holding a secret whose hash is the
//!   row's key), idle and absolute timeouts, and the anti-forgery check on every form post.
//! - [`sign_in`]: OpenID Connect (authorization code with PKCE) and token sign-in, sign-out.
//! - [`render`]: the templates (minijinja, Jinja syntax) and the GOV.UK page chrome.
//! - [`assets`]: the vendored GOV.UK Frontend, served under a content-hashed path.
//! - [`pages`]: one module per area of the console.
//!
//! **Architecture Invariant:** every page works without JavaScript: forms post and
//! redirect, and GOV.UK Frontend's script only enhances.

pub mod act;
pub mod assets;
pub mod charts;
mod config;
pub mod pages;
pub mod render;
pub mod session;
pub mod sign_in;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::routing::{get, post};
use guildhall_api::AppState;
use tower_http::set_header::SetResponseHeaderLayer;

pub use config::ConsoleConfig;

/// The console's state: the platform's, the console's settings and its templates.
#[derive(Debug, Clone)]
pub struct Console {
    /// What the API's handlers reach: store, runtime, gateway, access control.
    pub app: AppState,
    /// The console's settings.
    pub config: Arc<config::Resolved>,
    /// The templates.
    pub views: Arc<render::Views>,
    /// Identity-provider sign-ins each client may begin per minute: each one writes a row,
    /// so nobody can fill the table by asking for the redirect in a loop.
    pub sign_in_starts: Arc<guildhall_authz::FailureLimiter>,
}

impl Console {
    /// Sign-ins one client may begin per minute.
    pub const SIGN_IN_STARTS_PER_MINUTE: u32 = 20;
}

impl Console {
    /// The console over `app` with `config`. Fails when a template does not parse.
    pub fn new(app: AppState, config: &ConsoleConfig) -> Result<Self, String> {
        let resolved = config.resolve(&app.authz)?;
        Ok(Self {
            app,
            config: Arc::new(resolved),
            views: Arc::new(render::Views::new()?),
            sign_in_starts: Arc::new(guildhall_authz::FailureLimiter::new(
                Self::SIGN_IN_STARTS_PER_MINUTE,
                std::time::Duration::from_secs(60),
            )),
        })
    }
}

/// The console's routes, ready to merge beside the API (the GOV.UK Frontend assets are
/// [`assets::router`], served whether or not the console is). Pages are never cached, framed or given to another origin's scripts.
pub fn router(console: Console) -> Router {
    let pages = Router::new()
        .route("/", get(pages::home::home))
        .route("/static/init.js", get(render::init_js))
        .route(
            "/sign-in",
            get(sign_in::sign_in_page).post(sign_in::with_token),
        )
        .route("/sign-in/oidc/{issuer}", get(sign_in::start_oidc))
        .route("/sign-in/callback", get(sign_in::callback))
        .route("/sign-out", post(sign_in::sign_out))
        .route("/t/{tenant}", get(pages::home::overview))
        .route("/t/{tenant}/installs", get(pages::installs::list))
        .route(
            "/t/{tenant}/installs/{plugin}",
            get(pages::installs::form).post(pages::installs::save),
        )
        .route(
            "/t/{tenant}/installs/{plugin}/uninstall",
            get(pages::installs::confirm_uninstall).post(pages::installs::uninstall),
        )
        .route(
            "/t/{tenant}/members",
            get(pages::members::list).post(pages::members::bind),
        )
        .route(
            "/t/{tenant}/tokens",
            get(pages::tokens::list).post(pages::tokens::create),
        )
        .route(
            "/t/{tenant}/tokens/{token}/revoke",
            post(pages::tokens::revoke),
        )
        .route("/catalogue", get(pages::catalogue::search))
        .route("/catalogue/{plugin}", get(pages::catalogue::detail))
        .merge(pages::usage::routes())
        .merge(pages::audit::routes())
        .merge(pages::owners::routes())
        .merge(pages::keys::routes())
        .merge(pages::platform::routes())
        .merge(pages::councils::routes())
        .merge(pages::subject_requests::routes())
        .fallback(pages::not_found)
        .method_not_allowed_fallback(pages::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            console.clone(),
            session::forms_guard,
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(render::CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        // Browsers send `Origin: null` on form posts from a page whose policy is
        // `no-referrer` (the platform's default); `same-origin` keeps the console's own
        // origin on its forms, which the forms guard checks, and still sends nothing to
        // other sites.
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .with_state(console);
    Router::new().nest(PREFIX, pages)
}

/// Where the console lives.
pub const PREFIX: &str = "/console";

/// Deletes ended sessions and abandoned sign-ins every five minutes (every replica does;
/// the deletes are idempotent).
pub fn spawn_purger(console: Console) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(300));
        loop {
            every.tick().await;
            let now = time::OffsetDateTime::now_utc();
            let purged = console
                .app
                .store
                .console_sessions()
                .purge(
                    now,
                    now - console.config.idle,
                    now - sign_in::SIGN_IN_WINDOW,
                )
                .await;
            if let Err(e) = purged {
                tracing::warn!(error = %e, "cannot purge ended console sessions");
            }
        }
    })
}
