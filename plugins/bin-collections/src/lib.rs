//! Find your bin collection days: a Guildhall example plugin.
//!
//! Officers upload the schedule; citizens look up their next collections in a browser, or by
//! UPRN (finding their UPRN by postcode) as JSON. Each council of the install has its own
//! schedule: everything is read and written for the council of the URL the request came
//! through.
//!
//! - `GET /`: the start page with the postcode form (a client whose `Accept` asks for
//!   `application/json` and not `text/html` gets `{service, council_name, endpoints}`).
//! - `GET /address?postcode=…` and `GET /collections?postcode=…&uprn=…`: choosing the
//!   address and the collection days, as GOV.UK pages with `GET` forms, so no session is
//!   needed; see the `pages` module.
//! - `PUT /schedule` (roles `officer` or `tenant-admin`; an officer limited to one council
//!   may only upload for that council, through that council's URL): a JSON array of
//!   `{uprn, postcode, address, collections: [{date: "YYYY-MM-DD", bin}]}`, or with
//!   `Content-Type: text/csv` a CSV with header `uprn,postcode,address,date,bin` and one row
//!   per collection. `bin` is `refuse`, `recycling`, `garden` or `food`. Each UPRN in the
//!   upload has its record in this council's schedule replaced; UPRNs not in the upload are
//!   left as they are, and other councils' schedules are never touched. Answers
//!   `200 {"properties": n, "collections": m}`, `401`/`403` for the wrong caller, `413` for
//!   more than `max_upload_rows` rows, `422` with per-row `errors` (`line` for CSV, where the
//!   header is line 1; `index` for JSON, from 0).
//! - `GET /uprn/{uprn}[?limit=n]`: the address and the collections from today on, from this
//!   council's schedule.
//! - `GET /postcode/{postcode}`: the addresses at a postcode in this council's schedule, with
//!   their UPRNs.
//!
//! Storage, in this council's part of the store ([`CouncilKv`], keys under
//! `council/<council>/`): `uprn/<uprn>` holds a property's record; `postcode/<POSTCODE>/<uprn>`
//! indexes it by normalised postcode and holds its address.
//!
//! This example is pre-1.0. Builds from before councils were kept apart (with the same
//! version number) kept one schedule for the whole install under unscoped keys
//! (`uprn/<uprn>`, `postcode/...`). Those keys are not read any more: each council uploads
//! its schedule again, and uninstalling with `purge_data` removes the old keys.

mod csv;
mod pages;
mod postcode;
mod schedule;

use guildhall_plugin::context::{self, Principal, Refusal};
use guildhall_plugin::kv::{self, CouncilKv};
use guildhall_plugin::time::{self, Date};
use guildhall_plugin::{Handler, Request, Response, Router, config, events};
use serde::{Deserialize, Serialize};
use serde_json::json;

use schedule::{Collection, Property, UploadError};

/// How many rows an upload may have when `max_upload_rows` is not configured.
const DEFAULT_MAX_UPLOAD_ROWS: usize = 5000;

/// The most collections `?limit=` may ask for.
const MAX_LIMIT: usize = 1000;

/// The roles that may upload a schedule.
const UPLOADERS: &[&str] = &["officer", "tenant-admin"];

/// A property as stored under `uprn/<uprn>` in its council's part of the store.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    uprn: String,
    postcode: String,
    address: String,
    collections: Vec<Collection>,
    /// The council whose schedule it is in: the council of the URL it was uploaded through.
    council: String,
    /// When it was uploaded, RFC 3339.
    updated_at: String,
}

/// The plugin.
struct BinCollections;

impl Handler for BinCollections {
    fn handle(req: Request) -> Response {
        Router::new()
            .get("/", index)
            .get("/address", pages::address)
            .get("/collections", pages::collections)
            .put("/schedule", upload)
            .get("/uprn/{uprn}", by_uprn)
            .get("/postcode/{postcode}", by_postcode)
            .handle(req)
    }
}

guildhall_plugin::export_plugin!(BinCollections);

fn council_name() -> String {
    config::get::<String>("council_name").unwrap_or_else(context::council)
}

/// `GET /`: the start page, or for a client that asks for JSON (and not HTML) the service's
/// description.
fn index(req: Request) -> Response {
    if !wants_json(req.header("accept")) {
        return pages::start(req);
    }
    Response::json(
        200,
        &json!({
            "service": "bin-collections",
            "council_name": council_name(),
            "endpoints": ["GET /uprn/{uprn}", "GET /postcode/{postcode}", "PUT /schedule"],
        }),
    )
}

/// Whether an `Accept` header asks for JSON rather than a page: it names
/// `application/json` and not `text/html`.
fn wants_json(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("application/json") && !a.contains("text/html"))
}

/// Whether `principal` may upload the schedule of `council`, the council of the URL:
/// signed in, an officer or tenant admin, and not limited to another council.
fn upload_permission(principal: &Principal, council: &str) -> Result<(), Refusal> {
    principal.may_write_for(council, UPLOADERS).map(|_| ())
}

fn upload(req: Request) -> Response {
    // The schedule is always the URL's council's: an upload cannot name another council.
    let council = context::council();
    if let Err(refusal) = upload_permission(&context::principal(), &council) {
        return refusal.into();
    }

    let max_rows = config::get::<u64>("max_upload_rows")
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
        .unwrap_or(DEFAULT_MAX_UPLOAD_ROWS);
    let (format, parsed) = match req.content_type().as_deref() {
        Some("text/csv") => ("csv", schedule::parse_csv(&req.body, max_rows)),
        Some("application/json") | None => ("json", schedule::parse_json(&req.body, max_rows)),
        Some(other) => {
            return Response::error(
                415,
                &format!("send the schedule as application/json or text/csv, not {other}"),
            );
        }
    };
    let properties = match parsed {
        Ok(properties) => properties,
        Err(UploadError::Malformed(why)) => return Response::error(400, &why),
        Err(UploadError::TooManyRows { max }) => {
            return Response::error(
                413,
                &format!("a schedule may have at most {max} rows; split it into several uploads"),
            );
        }
        Err(UploadError::Invalid(errors)) => {
            let count = errors.len();
            let shown = &errors[..count.min(schedule::MAX_REPORTED_ERRORS)];
            return Response::error_with(
                422,
                &format!("the schedule has {count} problem(s); nothing was stored"),
                json!({ "error_count": count, "errors": shown }),
            );
        }
    };

    let collections: usize = properties.iter().map(|p| p.collections.len()).sum();
    if let Err(e) = store(&CouncilKv::for_council(&council), &properties, &council) {
        return e.into();
    }
    let summary = json!({
        "properties": properties.len(),
        "collections": collections,
        "format": format,
    });
    if let Err(e) = events::emit("schedule.uploaded", &summary) {
        eprintln!(
            "[{}] schedule.uploaded not recorded: {e}",
            context::request_id()
        );
    }
    Response::json(
        200,
        &json!({ "properties": properties.len(), "collections": collections }),
    )
}

/// Stores each property's record and its postcode index entry.
///
/// Two uploads of one council can run at once. Each record is replaced with a
/// compare-and-swap against the record it read, so of two uploads that move one property
/// to different postcodes, the second sees the first's record, and removes the index entry
/// of the postcode it replaced rather than the one both read. The index entries of racing
/// uploads can still land in either order, so readers take a property's postcode from its
/// record ([`addresses_at`]) and an entry left behind under an old postcode shows nothing.
fn store(store: &CouncilKv, properties: &[Property], council: &str) -> Result<(), kv::KvError> {
    let updated_at = time::now_rfc3339();
    for property in properties {
        let key = record_key(&property.uprn);
        let record = serde_json::to_vec(&Record {
            uprn: property.uprn.clone(),
            postcode: property.postcode.clone(),
            address: property.address.clone(),
            collections: property.collections.clone(),
            council: council.to_owned(),
            updated_at: updated_at.clone(),
        })
        .map_err(|e| kv::KvError::Encode(e.to_string()))?;
        loop {
            let old = store.get(&key)?;
            if !store.compare_and_swap(&key, old.as_deref(), &record)? {
                // Another upload replaced the record after we read it: read it again.
                continue;
            }
            let old_postcode = old
                .and_then(|bytes| serde_json::from_slice::<Record>(&bytes).ok())
                .map(|old| old.postcode);
            if let Some(old_postcode) = old_postcode
                && old_postcode != property.postcode
            {
                store.delete(&index_key(&old_postcode, &property.uprn))?;
            }
            break;
        }
        store.set_json(
            &index_key(&property.postcode, &property.uprn),
            &property.address,
        )?;
    }
    Ok(())
}

/// Where a property's record is kept, relative to its council's part of the store.
fn record_key(uprn: &str) -> String {
    format!("uprn/{uprn}")
}

/// Where a property is indexed by postcode, relative to its council's part of the store.
fn index_key(postcode: &str, uprn: &str) -> String {
    format!("postcode/{postcode}/{uprn}")
}

/// Reads `?limit=`: absent means all; otherwise 1 to [`MAX_LIMIT`].
fn parse_limit(value: Option<&str>) -> Result<Option<usize>, String> {
    match value {
        None => Ok(None),
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(Some(n)),
            _ => Err(format!(
                "limit must be a whole number from 1 to {MAX_LIMIT}"
            )),
        },
    }
}

fn by_uprn(req: Request) -> Response {
    let uprn = req.param("uprn").unwrap_or_default().trim();
    if !postcode::is_uprn(uprn) {
        return Response::error(400, "a UPRN is 1 to 12 digits");
    }
    let limit = match parse_limit(req.query_param("limit").as_deref()) {
        Ok(limit) => limit,
        Err(why) => return Response::error(400, &why),
    };
    let record = match record(&CouncilKv::current(), uprn) {
        Ok(Some(record)) => record,
        Ok(None) => {
            return Response::error(404, &format!("no collections are known for UPRN {uprn}"));
        }
        Err(e) => return e.into(),
    };
    let today = Date::today_in_uk();
    Response::json(
        200,
        &json!({
            "uprn": record.uprn,
            "address": record.address,
            "postcode": record.postcode,
            "council_name": council_name(),
            "today": today,
            "collections": schedule::upcoming(&record.collections, today, limit),
        }),
    )
}

/// The addresses at `postcode` (normalised) in this council's schedule, as (UPRN, address),
/// in the order people expect (`2 High St` before `10 High St`).
fn addresses_at(store: &CouncilKv, postcode: &str) -> Result<Vec<(String, String)>, kv::KvError> {
    let prefix = format!("postcode/{postcode}/");
    let keys = store.list_all_keys(&prefix)?;
    let mut addresses = Vec::with_capacity(keys.len());
    for key in &keys {
        let uprn = &key[prefix.len()..];
        // The record says where the property is now: an index entry that a racing upload
        // left under a postcode the property has left is skipped (as is a record deleted
        // between listing and reading).
        if let Some(record) = record(store, uprn)?
            && record.postcode == postcode
        {
            addresses.push((uprn.to_owned(), record.address));
        }
    }
    addresses.sort_by(|a, b| schedule::natural_cmp(&a.1, &b.1).then_with(|| a.0.cmp(&b.0)));
    Ok(addresses)
}

/// A property's record in this council's schedule.
fn record(store: &CouncilKv, uprn: &str) -> Result<Option<Record>, kv::KvError> {
    store.get_json::<Record>(&record_key(uprn))
}

fn by_postcode(req: Request) -> Response {
    let raw = req.param("postcode").unwrap_or_default();
    let Some(postcode) = postcode::normalise(raw) else {
        return Response::error(400, "that is not a UK postcode; try one like RH8 0BT");
    };
    let addresses = match addresses_at(&CouncilKv::current(), &postcode) {
        Ok(addresses) => addresses,
        Err(e) => return e.into(),
    };
    if addresses.is_empty() {
        return Response::error(404, &format!("no addresses are known at {postcode}"));
    }
    let addresses: Vec<_> = addresses
        .into_iter()
        .map(|(uprn, address)| json!({ "uprn": uprn, "address": address }))
        .collect();
    Response::json(
        200,
        &json!({ "postcode": postcode, "council_name": council_name(), "addresses": addresses }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use guildhall_plugin::context::Subject;

    fn subject(roles: &[&str], council: Option<&str>) -> Principal {
        Principal::Subject(Subject {
            id: "someone".to_owned(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            council: council.map(str::to_owned),
        })
    }

    #[test]
    fn who_may_upload() {
        assert_eq!(
            upload_permission(&Principal::Anonymous, "tandridge"),
            Err(Refusal::Unauthenticated)
        );
        for allowed in [
            subject(&["officer"], None),
            subject(&["auditor", "tenant-admin"], None),
            subject(&["officer"], Some("tandridge")),
        ] {
            assert_eq!(upload_permission(&allowed, "tandridge"), Ok(()));
        }
        // An officer limited to another council, whatever roles the platform passes on.
        for roles in [&["officer"][..], &[]] {
            assert_eq!(
                upload_permission(&subject(roles, Some("mole-valley")), "tandridge"),
                Err(Refusal::OtherCouncil("mole-valley".to_owned()))
            );
        }
        for refused in [
            subject(&["auditor"], None),
            subject(&["operator"], None),
            subject(&["*"], None),
            subject(&[], None),
        ] {
            let refusal = upload_permission(&refused, "tandridge").unwrap_err();
            assert_eq!(refusal.status(), 403, "{refusal}");
        }
    }

    #[test]
    fn only_json_clients_get_json_at_the_root() {
        assert!(wants_json(Some("application/json")));
        assert!(!wants_json(None));
        assert!(!wants_json(Some("*/*")));
        assert!(!wants_json(Some(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        )));
        assert!(!wants_json(Some("text/html, application/json")));
    }

    #[test]
    fn limits() {
        assert_eq!(parse_limit(None), Ok(None));
        assert_eq!(parse_limit(Some("3")), Ok(Some(3)));
        assert!(parse_limit(Some("0")).is_err());
        assert!(parse_limit(Some("-1")).is_err());
        assert!(parse_limit(Some("1001")).is_err());
        assert!(parse_limit(Some("ten")).is_err());
    }

    #[test]
    fn keys_are_per_council() {
        let tandridge = CouncilKv::for_council("tandridge");
        let mole_valley = CouncilKv::for_council("mole-valley");
        assert_eq!(
            tandridge.key(&record_key("12")),
            "council/tandridge/uprn/12"
        );
        assert_eq!(
            tandridge.key(&index_key("RH8 0BT", "12")),
            "council/tandridge/postcode/RH8 0BT/12"
        );
        // The same property in two councils' schedules is two records.
        assert_ne!(
            tandridge.key(&record_key("12")),
            mole_valley.key(&record_key("12"))
        );
    }
}
