//! Report a problem: a Guildhall example plugin with GOV.UK pages for residents and the
//! Open311 GeoReport v2 JSON interface.
//!
//! Residents report in a browser (the `pages` module, needs `session = true`): `GET /`
//! (start page) → `/where` (type of problem and location) → `/describe` → `/details`
//! (optional name, email, phone) → `/check-answers` → `/confirmation`. Each question page is a `GET` showing the form
//! and a `POST` checking it: `303` to the next page when the answers are good, the same page
//! with the error summary and status `422` when not. `POST /check-answers` files the request
//! exactly as `POST /requests.json` does (same ids, same stored record, same
//! `request.created` event), then clears the session and shows the reference.
//!
//! The Open311 interface:
//!
//! - `GET /services.json`: the services configured in the install's `services` setting.
//! - `GET /services/{service_code}.json`: a service definition,
//!   `{"service_code": ..., "attributes": [...]}`.
//! - `POST /requests.json`: report a problem, as `application/x-www-form-urlencoded` (the
//!   spec's format) or a JSON object, with `service_code`, a location (`lat` and `long`,
//!   `address_string` or `address_id`) and optionally `description`, `media_url`, `email`,
//!   `first_name`, `last_name`, `phone`, `device_id`, `account_id`; `attribute[...]`,
//!   `jurisdiction_id` and `api_key` are accepted and ignored. Answers `201` with
//!   `[{"service_request_id", "service_notice", "account_id"}]`.
//! - `GET /requests.json` with `service_request_id`, `service_code`, `start_date`,
//!   `end_date` and `status` filters, and `GET /requests/{id}.json`.
//! - `POST /requests/{id}/status.json` with `{"status": "open"|"closed", "status_notes"?}`:
//!   a council officer updates a request of the council whose URL it calls through. The
//!   platform's policy decides who may (`authz` action `update` on object `requests`):
//!   anonymous callers get `401`, callers whose roles are limited to another council or
//!   without the permission `403`.
//!
//! Errors use GeoReport's format, `[{"code": 400, "description": "..."}]`. Listings never
//! include the reporter's email, name, phone or device.
//!
//! Each council of the install has its own requests: they are kept in the council's part of
//! the store ([`CouncilKv`], keys under `council/<council>/`) as `request/<id>` with
//! sequential ids per council (`1`, `2`, ...) counted in `counter/requests`, and every read
//! and write is for the council of the URL the request came through.
//!
//! Reporters' names, email addresses and phone numbers are personal data: the plugin answers
//! subject access and erasure requests (the `subject` module) with every request whose
//! email, phone, name, address or request number matches, and names its events by
//! `service_request_id` so the platform finds and erases those too.
//!
//! This example is pre-1.0. Builds from before councils were kept apart (with the same
//! version number) kept the requests of all councils under unscoped keys (`request/<id>`,
//! `counter/requests`). Those keys are not read any more; uninstalling with `purge_data`
//! removes them.

mod open311;
mod pages;
mod subject;

use guildhall_plugin::kv::CouncilKv;
use guildhall_plugin::{
    Handler, Request, Response, Router, authz, config, context, events, kv, time,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use open311::{Open311Error, Service, StoredRequest};

/// The key, in a council's part of the store, holding the last id handed out.
const COUNTER_KEY: &str = "counter/requests";

/// The plugin.
struct ReportAProblem;

/// The answer to `GET services/{service_code}`.
#[derive(Serialize)]
struct ServiceDefinition<'a> {
    service_code: &'a str,
    attributes: &'a [Value],
}

/// One element of the answer to `POST requests`.
#[derive(Serialize)]
struct Created<'a> {
    service_request_id: &'a str,
    service_notice: Option<&'a str>,
    account_id: Option<&'a str>,
}

impl Handler for ReportAProblem {
    fn handle(req: Request) -> Response {
        let response = Router::new()
            .get("/", pages::page(pages::start))
            .get("/where", pages::page(pages::get_where))
            .post("/where", pages::page(pages::post_where))
            .get("/describe", pages::page(pages::get_describe))
            .post("/describe", pages::page(pages::post_describe))
            .get("/details", pages::page(pages::get_details))
            .post("/details", pages::page(pages::post_details))
            .get("/check-answers", pages::page(pages::get_check_answers))
            .post("/check-answers", pages::page(pages::send))
            .get("/confirmation", pages::page(pages::confirmation))
            .get("/services.json", list_services)
            .get("/services/{service_code}.json", service_definition)
            .post("/requests.json", create_request)
            .get("/requests.json", list_requests)
            .get("/requests/{service_request_id}.json", get_request)
            .post("/requests/{service_request_id}/status.json", update_status)
            .handle(req);
        as_open311_error(response)
    }
}

guildhall_plugin::export_plugin!(ReportAProblem);
guildhall_plugin::export_data_subject!(ReportAProblem);

/// GeoReport errors are a JSON array of `{code, description}`.
fn errors(errors: Vec<Open311Error>) -> Response {
    let status = errors.first().map_or(400, |e| e.code);
    Response::json(status, &errors)
}

fn error(code: u16, description: impl Into<String>) -> Response {
    errors(vec![Open311Error::new(code, description)])
}

/// Rewrites the router's own problem answers (404, 405) in GeoReport's error format.
fn as_open311_error(response: Response) -> Response {
    if response.header("content-type") != Some("application/problem+json") {
        return response;
    }
    let detail = serde_json::from_slice::<Value>(&response.body)
        .ok()
        .and_then(|v| v.get("detail").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default();
    let mut rewritten = error(response.status, detail);
    if let Some(allow) = response.header("allow") {
        rewritten = rewritten.with_header("allow", allow);
    }
    rewritten
}

fn kv_error(e: kv::KvError) -> Response {
    let problem = Response::from(e);
    as_open311_error(problem)
}

fn services() -> Result<Vec<Service>, Response> {
    let Some(value) = config::get::<Value>("services") else {
        return Err(error(500, "no services are configured"));
    };
    open311::services_from_config(&value)
        .map_err(|why| error(500, format!("the services setting is invalid: {why}")))
}

fn list_services(_req: Request) -> Response {
    match services() {
        Ok(services) => Response::json(200, &services),
        Err(response) => response,
    }
}

fn service_definition(req: Request) -> Response {
    let code = req.param("service_code").unwrap_or_default();
    let services = match services() {
        Ok(services) => services,
        Err(response) => return response,
    };
    match services.iter().find(|s| s.service_code == code) {
        Some(service) => Response::json(
            200,
            &ServiceDefinition {
                service_code: &service.service_code,
                attributes: &service.attributes,
            },
        ),
        None => error(404, format!("service_code {code} not found")),
    }
}

fn create_request(req: Request) -> Response {
    let pairs = match req.content_type().as_deref() {
        Some("application/x-www-form-urlencoded") | None => match req.form() {
            Ok(pairs) => pairs,
            Err(e) => return error(400, e.to_string()),
        },
        Some("application/json") => match req.json::<Value>() {
            Ok(Value::Object(object)) => open311::pairs_from_json(&object),
            Ok(_) => return error(400, "the JSON body must be an object"),
            Err(e) => return error(400, e.to_string()),
        },
        Some(other) => {
            return error(
                415,
                format!("send application/x-www-form-urlencoded or application/json, not {other}"),
            );
        }
    };
    let services = match services() {
        Ok(services) => services,
        Err(response) => return response,
    };
    let new = match open311::check_new_request(&pairs, &services) {
        Ok(new) => new,
        Err(list) => return errors(list),
    };
    let Some(service) = services.iter().find(|s| s.service_code == new.service_code) else {
        return error(400, "service_code is not a service offered here");
    };
    match file_request(new, service) {
        Ok(filed) => Response::json(
            201,
            &[Created {
                service_request_id: &filed.id,
                service_notice: filed.notice.as_deref(),
                account_id: None,
            }],
        ),
        Err(e) => kv_error(e),
    }
}

/// A request just filed.
struct Filed {
    /// Its id, `service_request_id`.
    id: String,
    /// What the reporter is told to expect, from the `service_notice` setting.
    notice: Option<String>,
}

/// Files a checked request with the council of the URL: the next id, the stored request and
/// the `request.created` event. Both `POST /requests.json` and the citizens' pages
/// (`POST /check-answers`) file requests through here.
fn file_request(new: open311::NewRequest, service: &Service) -> Result<Filed, kv::KvError> {
    // A report is always filed with the council of the URL; the body cannot name another.
    let council = context::council();
    let store = CouncilKv::for_council(&council);
    let agency = config::get::<String>("agency_responsible").unwrap_or_else(|| council.clone());
    let notice = config::get::<String>("service_notice");
    let mut stored = StoredRequest::create(
        next_id(&store)?,
        council,
        new,
        service,
        Some(agency),
        notice.clone(),
        time::now_unix(),
    );
    // Filed only under a key no record holds, so an acknowledged request is never
    // overwritten. A number can be taken only by a record an older version of this plugin
    // filed past its counter; the next number is then tried.
    while !store.set_json_if_absent(&request_key(&stored.service_request_id), &stored)? {
        stored.service_request_id = next_id(&store)?;
    }
    let id = stored.service_request_id.clone();
    let event = json!({ "service_request_id": id, "service_code": stored.service_code });
    if let Err(e) = events::emit("request.created", &event) {
        eprintln!(
            "[{}] request.created not recorded: {e}",
            context::request_id()
        );
    }
    Ok(Filed { id, notice })
}

/// Where a request is kept, relative to its council's part of the store.
fn request_key(id: &str) -> String {
    format!("request/{id}")
}

/// Hands out the council's next sequential id with an atomic increment of its counter, so
/// concurrent requests (on any replica) never get the same one.
///
/// The counter is the decimal text of the last id handed out (older versions stored the
/// same text as JSON). A council whose requests were filed before there was a counter gets
/// one that starts at its highest id, set only if still absent, so two first requests
/// cannot both start it.
fn next_id(store: &CouncilKv) -> Result<String, kv::KvError> {
    if store.get(COUNTER_KEY)?.is_none() {
        let highest = store
            .list_all_keys("request/")?
            .iter()
            .filter_map(|key| key.strip_prefix("request/")?.parse::<i64>().ok())
            .max()
            .unwrap_or(0);
        // `false` when a concurrent request started the counter first: then it counts on.
        store.set_if_absent(COUNTER_KEY, highest.to_string().as_bytes())?;
    }
    Ok(store.increment(COUNTER_KEY, 1)?.to_string())
}

/// Every request reported to this council.
fn council_requests() -> Result<Vec<StoredRequest>, kv::KvError> {
    let council = context::council();
    let store = CouncilKv::for_council(&council);
    let mut requests = Vec::new();
    for key in store.list_all_keys("request/")? {
        // The council's part of the store holds only its own requests; the check keeps a
        // record filed wrongly by some other version from showing.
        if let Some(request) = store.get_json::<StoredRequest>(&key)?
            && request.council == council
        {
            requests.push(request);
        }
    }
    Ok(requests)
}

fn list_requests(req: Request) -> Response {
    let filter = match open311::parse_filter(&req.query_pairs(), time::now_unix()) {
        Ok(filter) => filter,
        Err(list) => return errors(list),
    };
    let requests = match council_requests() {
        Ok(requests) => requests,
        Err(e) => return kv_error(e),
    };
    let selected = open311::select(&filter, requests);
    let views: Vec<_> = selected.iter().map(StoredRequest::view).collect();
    Response::json(200, &views)
}

fn get_request(req: Request) -> Response {
    let id = req.param("service_request_id").unwrap_or_default();
    let not_found = || error(404, format!("service_request_id {id} not found"));
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return not_found();
    }
    let council = context::council();
    match CouncilKv::for_council(&council).get_json::<StoredRequest>(&request_key(id)) {
        Ok(Some(request)) if request.council == council => Response::json(200, &[request.view()]),
        Ok(_) => not_found(),
        Err(e) => kv_error(e),
    }
}

/// The body of `POST /requests/{id}/status.json`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusUpdate {
    status: open311::Status,
    #[serde(default)]
    status_notes: Option<String>,
}

/// Answers a refused caller in GeoReport's error format.
fn refused(refusal: context::Refusal) -> Response {
    let response = error(refusal.status(), refusal.to_string());
    match refusal {
        context::Refusal::Unauthenticated => response.with_header("www-authenticate", "Bearer"),
        _ => response,
    }
}

fn update_status(req: Request) -> Response {
    // Only requests of the URL's council are updated, and only by a caller who may act for
    // it; the platform's policy then decides whether its roles allow updating.
    let council = context::council();
    if let Err(refusal) = context::principal().acting_for(&council) {
        return refused(refusal);
    }
    if !authz::allowed("update", "requests") {
        return error(403, "your roles here do not allow updating requests");
    }
    let id = req
        .param("service_request_id")
        .unwrap_or_default()
        .to_string();
    let update: StatusUpdate = match req.json() {
        Ok(update) => update,
        Err(e) => return error(400, e.to_string()),
    };
    if update.status_notes.as_ref().is_some_and(|n| n.len() > 2000) {
        return error(400, "status_notes may have at most 2000 bytes");
    }
    let store = CouncilKv::for_council(&council);
    let key = request_key(&id);
    let mut stored = match store.get_json::<StoredRequest>(&key) {
        Ok(Some(request)) if request.council == council => request,
        Ok(_) => return error(404, format!("service_request_id {id} not found")),
        Err(e) => return kv_error(e),
    };
    stored.status = update.status;
    stored.status_notes = update.status_notes;
    stored.updated_datetime = time::format_rfc3339(time::now_unix());
    if let Err(e) = store.set_json(&key, &stored) {
        return kv_error(e);
    }
    let event = json!({ "service_request_id": id, "status": stored.status });
    if let Err(e) = events::emit("request.updated", &event) {
        eprintln!(
            "[{}] request.updated not recorded: {e}",
            context::request_id()
        );
    }
    Response::json(200, &[stored.view()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn router_problems_become_open311_errors() {
        let response = as_open311_error(
            Response::error(405, "POST is not allowed here").with_header("allow", "GET"),
        );
        assert_eq!(response.status, 405);
        assert_eq!(response.header("allow"), Some("GET"));
        assert_eq!(response.header("content-type"), Some("application/json"));
        let body: Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(
            body,
            json!([{"code": 405, "description": "POST is not allowed here"}])
        );
        let ok = Response::json(200, &json!([]));
        assert_eq!(as_open311_error(ok.clone()), ok);
    }

    #[test]
    fn unknown_paths_are_open311_404s() {
        let response =
            ReportAProblem::handle(Request::new(guildhall_plugin::Method::Get, "/requests.xml"));
        assert_eq!(response.status, 404);
        let body: Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(body[0]["code"], 404);
    }

    #[test]
    fn refusals_are_open311_errors() {
        let response = refused(context::Refusal::Unauthenticated);
        assert_eq!(response.status, 401);
        assert_eq!(response.header("www-authenticate"), Some("Bearer"));
        let body: Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(body[0]["code"], 401);
        let response = refused(context::Refusal::OtherCouncil("tandridge".to_owned()));
        assert_eq!(response.status, 403);
        assert_eq!(response.header("www-authenticate"), None);
        let body: Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(body[0]["code"], 403);
        assert!(
            body[0]["description"]
                .as_str()
                .unwrap()
                .contains("tandridge")
        );
    }

    #[test]
    fn requests_are_kept_per_council() {
        let tandridge = CouncilKv::for_council("tandridge");
        assert_eq!(
            tandridge.key(&request_key("7")),
            "council/tandridge/request/7"
        );
        assert_eq!(
            tandridge.key(COUNTER_KEY),
            "council/tandridge/counter/requests"
        );
        assert_ne!(
            tandridge.key(&request_key("7")),
            CouncilKv::for_council("mole-valley").key(&request_key("7"))
        );
    }

    #[test]
    fn error_bodies() {
        let response = errors(vec![
            Open311Error::new(400, "service_code is required"),
            Open311Error::new(400, "a location is required"),
        ]);
        assert_eq!(response.status, 400);
        assert_eq!(
            response.body_text(),
            r#"[{"code":400,"description":"service_code is required"},{"code":400,"description":"a location is required"}]"#
        );
    }
}
