//! The smallest Guildhall plugin: every request is answered with
//! `200 Hello from <council> (<tenant>)!`.
//!
//! It needs no capability, and it is the platform's benchmark target, so it stays lean: no
//! router and no JSON.

use guildhall_plugin::{Handler, Request, Response, context};

/// Says hello.
struct Hello;

impl Handler for Hello {
    fn handle(_req: Request) -> Response {
        Response::text(
            200,
            format!("Hello from {} ({})!", context::council(), context::tenant()),
        )
    }
}

guildhall_plugin::export_plugin!(Hello);
