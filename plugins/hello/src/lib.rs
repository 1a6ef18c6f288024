//! The smallest Guildhall plugin: every request is answered with
//! `200 Hello from <council> (<tenant>)!`.
//!
//! It is the platform's benchmark target, so it stays lean: no router, no JSON, and no
//! platform import. The gateway names the tenant and council of every call in the
//! `x-guildhall-tenant` and `x-guildhall-council` request headers, which is all it reads,
//! so the very same component also runs under stock `wasmtime serve` for side-by-side
//! measurements.

use guildhall_plugin::{Handler, Request, Response};

/// Says hello.
struct Hello;

impl Handler for Hello {
    fn handle(req: Request) -> Response {
        let council = req.header("x-guildhall-council").unwrap_or("nowhere");
        let tenant = req.header("x-guildhall-tenant").unwrap_or("no tenant");
        Response::text(200, format!("Hello from {council} ({tenant})!"))
    }
}

guildhall_plugin::export_plugin!(Hello);
