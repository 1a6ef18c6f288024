//! The guest SDK for Guildhall service plugins.
//!
//! A Guildhall plugin is a WebAssembly component that answers HTTP requests for one council
//! of one alliance (tenant). This crate turns the component-model plumbing into plain Rust:
//!
//! - [`Handler`] and [`export_plugin!`]: implement one function from [`Request`] to
//!   [`Response`] and export it as the component's `wasi:http/incoming-handler`. The SDK reads
//!   the whole request body (up to [`MAX_REQUEST_BODY`], answering `413` beyond) and writes
//!   your response.
//! - [`Router`]: match method and path patterns such as `/services/{code}.json`, with `404` and
//!   `405` answers for you.
//! - [`Response::json`], [`Response::text`], [`Response::error`] (RFC 9457 problem details),
//!   [`Request::json`], [`Request::query_param`], [`Request::form`].
//! - The platform's capabilities: [`context`] (who and where, and the council's [`kit::Site`]),
//!   [`config`] (the install's settings, with the council's own overrides merged in by the
//!   platform), [`kv`] (storage private to this plugin in this tenant), [`events`] (audited,
//!   counted events), [`authz`] (policy decisions), [`session`] (a citizen's answers between
//!   pages, and the token forms carry) and [`secrets`] (API keys and the like, set by the
//!   alliance's administrators). Each of `kv`, `events`, `authz` and `session` must be
//!   declared under `[capabilities]` in `plugin.toml`, and each secret under `[secrets]`;
//!   `context` and `config` need nothing. A plugin imports an interface only when it calls
//!   one of its functions.
//! - [`Scheduled`] and [`export_schedules!`]: work the platform runs on the schedules the
//!   manifest declares under `[[schedules]]`, such as sending reminders, exported beside the
//!   HTTP handler in the same component.
//! - [`outbound`]: a small blocking HTTP client for other services (declare their hosts
//!   under `outbound_http`), and on it [`pay`] (card payments with GOV.UK Pay) and [`notify`]
//!   (emails and text messages with GOV.UK Notify).
//! - [`kit`]: the GOV.UK page kit, server-rendered pages for residents with GOV.UK Frontend's
//!   layout and components, forms with GOV.UK error messages, and question-page journeys
//!   ([`kit::Journey`], which keeps answers in the [`session`]).
//! - [`Response::html`] and [`Response::see_other`] for pages and Post/Redirect/Get.
//! - [`time`]: today's date and RFC 3339 timestamps from the WASI wall clock.
//! - [`wasi`]: the [`wasip2`](https://docs.rs/wasip2) crate, for anything lower level, such as
//!   streaming a response or an outbound request yourself.
//!
//! Every request runs in a fresh instance, so keep nothing in statics between requests: what
//! must last goes in [`kv`].
//!
//! # Example
//!
//! `Cargo.toml`:
//!
//! ```toml
//! [package]
//! name = "greeter"
//! version = "0.1.0"
//! edition = "2024"
//!
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! guildhall-plugin = { path = "../guildhall/plugins/sdk" }
//! serde = { version = "1", features = ["derive"] }
//! ```
//!
//! `src/lib.rs`:
//!
//! ```no_run
//! use guildhall_plugin::{Handler, Request, Response, Router, context, kv};
//!
//! struct Greeter;
//!
//! impl Handler for Greeter {
//!     fn handle(req: Request) -> Response {
//!         Router::new()
//!             .get("/", |_req| {
//!                 Response::text(200, format!("Hello from {}!", context::council()))
//!             })
//!             .get("/visits/{name}", |req| {
//!                 let name = req.param("name").unwrap_or_default().to_owned();
//!                 let key = format!("visits/{name}");
//!                 let visits = match kv::get_json::<u64>(&key) {
//!                     Ok(count) => count.unwrap_or(0) + 1,
//!                     Err(e) => return Response::error(503, &e.to_string()),
//!                 };
//!                 if let Err(e) = kv::set_json(&key, &visits) {
//!                     return Response::error(503, &e.to_string());
//!                 }
//!                 Response::json(200, &serde_json::json!({ "name": name, "visits": visits }))
//!             })
//!             .handle(req)
//!     }
//! }
//!
//! guildhall_plugin::export_plugin!(Greeter);
//! ```
//!
//! `plugin.toml` (the component name is the crate name with `-` turned into `_`):
//!
//! ```toml
//! name = "greeter"
//! version = "0.1.0"
//! description = "Says hello and counts visits"
//! publisher = "my-team"
//! licence = "Apache-2.0"
//! component = "greeter.wasm"
//!
//! [capabilities]
//! kv = true
//! ```
//!
//! Build it with `cargo build --target wasm32-wasip2 --release`; the component is
//! `target/wasm32-wasip2/release/greeter.wasm`.

mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "guildhall:platform/platform",
    });
}

pub mod authz;
pub mod config;
pub mod context;
pub mod data_subject;
pub mod events;
mod http;
pub mod kit;
pub mod kv;
pub mod notify;
pub mod outbound;
pub mod pay;
mod router;
pub mod scheduled;
pub mod secrets;
mod serve;
pub mod session;
pub mod time;
pub mod urlencoded;

pub use data_subject::DataSubject;
pub use http::{BodyError, Method, Request, Response};
pub use router::Router;
pub use scheduled::Scheduled;
pub use serve::MAX_REQUEST_BODY;

/// The [`wasip2`](https://docs.rs/wasip2) crate: raw WASI 0.2 bindings, for what the SDK does
/// not wrap, such as streaming an outbound request (`wasi::http::outgoing_handler`) or a
/// response yourself with `wasi::http::proxy::export!`.
pub use wasip2 as wasi;

/// A plugin's request handler.
///
/// Implement it on a unit struct and export the struct with [`export_plugin!`]. The function
/// is called once per request, in a fresh instance, with the whole request body already read.
///
/// ```no_run
/// use guildhall_plugin::{Handler, Request, Response};
///
/// struct Hello;
///
/// impl Handler for Hello {
///     fn handle(_req: Request) -> Response {
///         Response::text(200, "hello")
///     }
/// }
///
/// guildhall_plugin::export_plugin!(Hello);
/// ```
pub trait Handler {
    /// Answers one request.
    fn handle(req: Request) -> Response;
}

/// Exports a [`Handler`] as the component's `wasi:http/incoming-handler`.
///
/// Use it once, at the top level of your plugin crate: `guildhall_plugin::export_plugin!(MyHandler);`.
#[macro_export]
macro_rules! export_plugin {
    ($handler:ty) => {
        #[doc(hidden)]
        #[derive(Debug)]
        struct __GuildhallPluginExport;

        impl $crate::wasi::exports::http::incoming_handler::Guest for __GuildhallPluginExport {
            fn handle(
                request: $crate::wasi::http::types::IncomingRequest,
                response_out: $crate::wasi::http::types::ResponseOutparam,
            ) {
                $crate::__private::serve::<$handler>(request, response_out)
            }
        }

        $crate::wasi::http::proxy::export!(__GuildhallPluginExport);
    };
}

#[doc(hidden)]
pub mod __private {
    pub use crate::serve::serve;
}
