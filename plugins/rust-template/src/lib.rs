//! {{name}}: says hello from the council and counts the visits, per council.

use guildhall_plugin::kv::CouncilKv;
use guildhall_plugin::{Handler, Request, Response, Router, config, context};

struct Plugin;

impl Handler for Plugin {
    fn handle(req: Request) -> Response {
        Router::new()
            .get("/", |_req| {
                // Each council's data lives under `council/<council>/` in the plugin's kv.
                let visits = match CouncilKv::current().increment("visits", 1) {
                    Ok(n) => n,
                    Err(e) => return Response::error(503, &e.to_string()),
                };
                let greeting =
                    config::get::<String>("greeting").unwrap_or_else(|| "Hello".to_string());
                Response::json(
                    200,
                    &serde_json::json!({
                        "message": format!("{greeting} from {}!", context::council()),
                        "visits": visits,
                    }),
                )
            })
            .handle(req)
    }
}

guildhall_plugin::export_plugin!(Plugin);
