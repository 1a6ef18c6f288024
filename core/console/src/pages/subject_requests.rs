//! A resident's subject access and erasure requests, for an alliance's data protection
//! officers and administrators: the form, the recent requests (their identifiers only as
//! hashes, their outcome as counts), and the answer, through the decision, operation
//! ([`guildhall_api::subject_requests::run`]) and audit entry of
//! `POST /api/v1/tenants/{tenant}/subject-requests`. An access request's bundle is shown on
//! the page that answers the form and kept nowhere; "Download as JSON" asks again.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use guildhall_api::subject_requests::{self, Given, Kind, ServiceAnswer, SubjectRequestAnswer};
use guildhall_api::{ApiError, FieldError};
use guildhall_store::{SubjectRequestRecord, TenantScope};
use minijinja::context;
use serde::Serialize;
use serde_json::Value;

use crate::Console;
use crate::act::{self, Req, Section};
use crate::pages::{FormError, when};
use crate::render::{PageError, page};
use crate::session::{FormFields, SignedIn};

/// This module's templates.
pub(crate) const TEMPLATES: &[(&str, &str)] =
    crate::render::templates!["subject_requests.html", "subject_request_answer.html"];

/// This module's routes, relative to `/console`.
pub fn routes() -> Router<Console> {
    Router::new().route("/t/{tenant}/subject-requests", get(list).post(create))
}

const LIST: &str = "/api/v1/tenants/{tenant}/subject-requests";

/// How many of the newest requests the page lists.
const RECENT: u64 = 50;

/// The identifiers' fields: name (as the API names it), label, hint, input type.
const FIELDS: [(&str, &str, &str, &str); 6] = [
    (
        "email",
        "Email address",
        "Matched whatever its case, for example name@example.com.",
        "email",
    ),
    (
        "phone",
        "Phone number",
        "Matched whatever its spacing, for example 01632 960 001.",
        "tel",
    ),
    (
        "name",
        "Full name",
        "As the resident gives it, for example Jo Bloggs.",
        "text",
    ),
    (
        "address",
        "Address",
        "On one line, for example 1 High Street, Oxted RH8 0BT.",
        "text",
    ),
    (
        "uprn",
        "UPRN (Unique Property Reference Number)",
        "Up to 12 digits, for example 100061234567.",
        "text",
    ),
    (
        "reference",
        "Reference",
        "A reference one of the alliance’s services gave the resident.",
        "text",
    ),
];

/// What the form was sent with, kept to fill it again.
#[derive(Debug, Default, Clone)]
struct Typed {
    kind: String,
    values: BTreeMap<&'static str, String>,
    councils: Vec<String>,
}

impl Typed {
    fn from_form(fields: &FormFields) -> Self {
        Self {
            kind: fields.get("kind").unwrap_or_default().to_string(),
            values: FIELDS
                .iter()
                .map(|(name, ..)| (*name, fields.get(name).unwrap_or_default().to_string()))
                .collect(),
            councils: fields
                .all("councils")
                .into_iter()
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect(),
        }
    }

    fn kind(&self) -> Option<Kind> {
        match self.kind.as_str() {
            "access" => Some(Kind::Access),
            "erasure" => Some(Kind::Erasure),
            _ => None,
        }
    }

    fn given(&self) -> Given {
        let value = |name: &str| {
            self.values
                .get(name)
                .filter(|v| !v.trim().is_empty())
                .cloned()
        };
        Given {
            email: value("email"),
            phone: value("phone"),
            name: value("name"),
            address: value("address"),
            uprn: value("uprn"),
            reference: value("reference"),
        }
    }

    /// Every council when none is ticked.
    fn councils(&self) -> Option<Vec<String>> {
        (!self.councils.is_empty()).then(|| self.councils.clone())
    }
}

/// The form's errors: the summary's entries, and the message beside each field.
#[derive(Debug, Default)]
struct Errors {
    summary: Vec<FormError>,
    at: BTreeMap<&'static str, String>,
}

impl Errors {
    fn add(&mut self, link: &'static str, shown_at: &'static str, text: String) {
        if self.at.contains_key(shown_at) {
            return;
        }
        self.summary.push(FormError::at(link, text.clone()));
        self.at.insert(shown_at, text);
    }

    /// The operation's refusal, said for the form.
    fn from_refusal(e: &ApiError) -> Self {
        let mut errors = Self::default();
        if e.errors().is_empty() {
            errors
                .summary
                .push(FormError::general(crate::pages::sentence(e.detail())));
        }
        for f in e.errors() {
            if f.field == "kind" {
                errors.add(
                    "kind",
                    "kind",
                    "Select whether to find or to erase the resident’s data".into(),
                );
            } else if f.field == "identifiers" {
                errors.add(
                    "email",
                    "identifiers",
                    "Enter at least one of the resident’s email address, phone number, name, \
                     address, UPRN or reference"
                        .into(),
                );
            } else if let Some((name, label, ..)) = f
                .field
                .strip_prefix("identifiers.")
                .and_then(|n| FIELDS.iter().find(|(name, ..)| *name == n))
            {
                errors.add(name, name, format!("{label} {}", f.reason));
            } else if f.field.starts_with("councils") {
                errors.add(
                    "councils",
                    "councils",
                    "Select only councils of this alliance".into(),
                );
            } else {
                errors
                    .summary
                    .push(FormError::general(format!("{}: {}", f.field, f.reason)));
            }
        }
        errors
    }
}

#[derive(Debug, Serialize)]
struct Field {
    name: &'static str,
    label: &'static str,
    hint: &'static str,
    kind: &'static str,
    value: String,
    error: Option<String>,
}

/// The `(id, name)` of the alliance's councils.
async fn councils_of(
    console: &Console,
    scope: &TenantScope,
) -> Result<Vec<(String, String)>, PageError> {
    Ok(console
        .app
        .store
        .councils(scope)
        .list()
        .await?
        .into_iter()
        .map(|c| (c.id.to_string(), c.name))
        .collect())
}

fn kind_text(kind: &str) -> &'static str {
    match kind {
        "access" => "Access",
        "erasure" => "Erasure",
        _ => "Unknown",
    }
}

fn state_text(state: &str) -> &'static str {
    match state {
        "completed" => "Completed",
        "failed" => "Failed",
        "running" => "Running",
        _ => "Unknown",
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What a kept request found or erased, from its outcome's counts.
fn outcome_text(record: &SubjectRequestRecord) -> String {
    let Some(outcome) = &record.outcome else {
        return "Not finished".into();
    };
    if outcome.get("error").is_some() {
        return "Could not finish".into();
    }
    let services = outcome["services"].as_array().cloned().unwrap_or_default();
    let sum = |v: &Value| -> u64 {
        v.as_object()
            .map(|m| m.values().filter_map(Value::as_u64).sum())
            .unwrap_or(0)
    };
    let failed = services.iter().filter(|s| s["state"] == "failed").count() as u64;
    let mut text = if record.kind == "erasure" {
        let records: u64 = services.iter().map(|s| sum(&s["erased"])).sum();
        let events: u64 = services
            .iter()
            .filter_map(|s| s["events_erased"].as_u64())
            .sum();
        format!(
            "{} and {} erased",
            plural(records, "record", "records"),
            plural(events, "event", "events")
        )
    } else {
        let records: u64 = services.iter().map(|s| sum(&s["found"])).sum();
        let events: u64 = services
            .iter()
            .filter_map(|s| s["events_found"].as_u64())
            .sum();
        format!(
            "{} and {} found",
            plural(records, "record", "records"),
            plural(events, "event", "events")
        )
    };
    text.push_str(&format!(
        " in {}",
        plural(services.len() as u64, "service", "services")
    ));
    if failed > 0 {
        text.push_str(&format!("; {failed} failed"));
    }
    text
}

fn councils_text(councils: &Option<Vec<String>>) -> String {
    match councils {
        None => "All councils".into(),
        Some(c) => c.join(", "),
    }
}

async fn render_form(
    console: &Console,
    who: &SignedIn,
    scope: &TenantScope,
    typed: &Typed,
    errors: Errors,
    status: StatusCode,
) -> Result<Response, PageError> {
    let requests = console
        .app
        .store
        .subject_requests(scope)
        .list(RECENT)
        .await?;
    let rows: Vec<Vec<String>> = requests
        .iter()
        .map(|r| {
            let identifiers = r
                .identifiers
                .as_object()
                .map(|m| m.keys().cloned().collect::<Vec<_>>().join(", "))
                .unwrap_or_default();
            vec![
                when(&r.requested_at),
                kind_text(&r.kind).to_string(),
                r.requested_by.clone(),
                councils_text(&r.councils),
                format!("{identifiers} (hashed)"),
                state_text(&r.state).to_string(),
                outcome_text(r),
            ]
        })
        .collect();
    let can_write = act::may(console, who, Method::POST, LIST, Some(scope.tenant()));
    let councils: Vec<_> = councils_of(console, scope)
        .await?
        .into_iter()
        .map(|(id, name)| {
            context! {
                value => id.clone(),
                text => format!("{name} ({id})"),
                checked => typed.councils.contains(&id),
            }
        })
        .collect();
    let kinds = [
        (
            "access",
            "Find their data (access)",
            "See everything the alliance’s services hold about the resident. Nothing is changed.",
        ),
        (
            "erasure",
            "Erase their data (erasure)",
            "Erase every record and event that matches, in every service asked.",
        ),
    ]
    .map(|(value, text, hint)| {
        context! { value => value, text => text, hint => hint, checked => typed.kind == value }
    });
    let fields: Vec<Field> = FIELDS
        .iter()
        .map(|(name, label, hint, kind)| Field {
            name,
            label,
            hint,
            kind,
            value: typed.values.get(name).cloned().unwrap_or_default(),
            error: errors.at.get(name).cloned(),
        })
        .collect();
    let mut chrome = act::chrome(
        console,
        who,
        "Subject access and erasure",
        Some(scope.tenant()),
        Section::Tenant("subject-requests"),
    );
    chrome.has_errors = !errors.summary.is_empty();
    Ok(page(
        status,
        "subject_requests.html",
        &chrome,
        context! {
            tenant => scope.tenant().to_string(),
            can_write => can_write,
            kinds => kinds,
            kind_error => errors.at.get("kind"),
            fields => fields,
            identifiers_error => errors.at.get("identifiers"),
            councils => councils,
            councils_error => errors.at.get("councils"),
            errors => errors.summary,
            requests => rows,
        },
    ))
}

/// `GET /console/t/{tenant}/subject-requests`: the form and the recent requests.
pub async fn list(
    State(console): State<Console>,
    who: SignedIn,
    Path(tenant): Path<String>,
) -> Result<Response, PageError> {
    let scope = act::read_tenant(&console, &who, LIST, &tenant).await?;
    render_form(
        &console,
        &who,
        &scope,
        &Typed::default(),
        Errors::default(),
        StatusCode::OK,
    )
    .await
}

/// `POST /console/t/{tenant}/subject-requests`: makes the request; the answer shows the
/// bundle (access) or what was erased, or the form again with its errors. With
/// `format=json`, an access request's answer is the API's JSON as a download.
pub async fn create(
    State(console): State<Console>,
    who: SignedIn,
    req: Req,
    Path(tenant): Path<String>,
    fields: FormFields,
) -> Result<Response, PageError> {
    let typed = Typed::from_form(&fields);
    let kind = typed.kind();
    let given = typed.given();
    let councils = typed.councils();
    let api_path = format!("/api/v1/tenants/{tenant}/subject-requests");
    let app = &console.app;
    let requested_by = who.principal.subject().to_string();
    let outcome = act::write_located(
        &console,
        &who,
        &req,
        Method::POST,
        LIST,
        &api_path,
        Some(&tenant),
        |scope| async move {
            let scope = scope.ok_or_else(|| ApiError::not_found("no tenant"))?;
            let Some(kind) = kind else {
                // Every other error too, so the form is corrected once.
                let mut errors = vec![FieldError {
                    field: "kind".into(),
                    reason: "choose access or erasure".into(),
                }];
                if let Err(e) =
                    subject_requests::check(app, &scope, &given, councils.as_deref()).await
                {
                    if e.errors().is_empty() {
                        return Err(e);
                    }
                    errors.extend(e.errors().iter().cloned());
                }
                return Err(ApiError::validation(
                    "the subject request is not valid",
                    errors,
                ));
            };
            let answer = subject_requests::run(
                app,
                &scope,
                &requested_by,
                kind,
                &given,
                councils.as_deref(),
            )
            .await?;
            Ok((answer, StatusCode::CREATED))
        },
        |answer| Some(answer.location(&tenant)),
    )
    .await?;
    let scope = act::read_tenant(&console, &who, LIST, &tenant).await?;
    match outcome {
        Ok(answer) => {
            if fields.get("format") == Some("json") && answer.request.kind == "access" {
                return Ok(download(&answer));
            }
            render_answer(&console, &who, &scope, &typed, &answer).await
        }
        Err(e) => {
            render_form(
                &console,
                &who,
                &scope,
                &typed,
                Errors::from_refusal(&e),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

/// The API's answer as a JSON file.
fn download(answer: &SubjectRequestAnswer) -> Response {
    let body = match serde_json::to_vec_pretty(answer) {
        Ok(body) => body,
        Err(e) => return PageError::internal(format!("serialising a bundle: {e}")).into_response(),
    };
    let disposition = format!(
        "attachment; filename=\"subject-access-{}.json\"",
        answer.request.id
    );
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// A key and its value, as text, for a summary list.
#[derive(Debug, Serialize)]
struct Row {
    key: String,
    value: String,
}

fn as_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "none".into(),
        other => other.to_string(),
    }
}

/// A JSON value as summary-list rows: an object's fields, nested values as JSON text.
fn rows(value: &Value) -> Vec<Row> {
    match value {
        Value::Object(fields) => fields
            .iter()
            .map(|(key, value)| Row {
                key: key.clone(),
                value: as_text(value),
            })
            .collect(),
        Value::Null => Vec::new(),
        other => vec![Row {
            key: "Value".into(),
            value: as_text(other),
        }],
    }
}

#[derive(Debug, Serialize)]
struct RecordCard {
    kind: String,
    rows: Vec<Row>,
}

#[derive(Debug, Serialize)]
struct EventCard {
    name: String,
    at: String,
    erased: bool,
    rows: Vec<Row>,
}

#[derive(Debug, Serialize)]
struct ServiceView {
    plugin: String,
    version: String,
    description: String,
    council: String,
    state: &'static str,
    error: Option<String>,
    records: Vec<RecordCard>,
    events: Vec<EventCard>,
    erased: Vec<Row>,
    records_erased: u64,
    events_erased: u64,
}

fn service_view(service: &ServiceAnswer, names: &BTreeMap<String, String>) -> ServiceView {
    let state = match service.state {
        "ok" => "Answered",
        "events-only" => "Events only",
        "failed" => "Failed",
        _ => "Unknown",
    };
    ServiceView {
        plugin: service.plugin.clone(),
        version: service.version.clone(),
        description: service.description.clone(),
        council: names
            .get(&service.council)
            .map(|name| format!("{name} ({})", service.council))
            .unwrap_or_else(|| service.council.clone()),
        state,
        error: service.error.clone(),
        records: service
            .records
            .iter()
            .flatten()
            .map(|r| RecordCard {
                kind: r.schema.clone(),
                rows: rows(&r.data),
            })
            .collect(),
        events: service
            .events
            .iter()
            .flatten()
            .map(|e| EventCard {
                name: e.name.clone(),
                at: when(&e.at),
                erased: e.payload.is_null(),
                rows: rows(&e.payload),
            })
            .collect(),
        erased: service
            .erased
            .iter()
            .flatten()
            .map(|(kind, n)| Row {
                key: kind.clone(),
                value: n.to_string(),
            })
            .collect(),
        records_erased: service.erased.iter().flatten().map(|(_, n)| n).sum(),
        events_erased: service.events_erased.unwrap_or(0),
    }
}

async fn render_answer(
    console: &Console,
    who: &SignedIn,
    scope: &TenantScope,
    typed: &Typed,
    answer: &SubjectRequestAnswer,
) -> Result<Response, PageError> {
    let names: BTreeMap<String, String> = councils_of(console, scope).await?.into_iter().collect();
    let request = &answer.request;
    let access = request.kind == "access";
    let services: Vec<ServiceView> = answer
        .services
        .iter()
        .map(|s| service_view(s, &names))
        .collect();
    let failed: Vec<String> = answer
        .services
        .iter()
        .filter(|s| s.state == "failed")
        .map(|s| {
            format!(
                "{} for {}: {}",
                s.plugin,
                s.council,
                s.error.as_deref().unwrap_or("no answer")
            )
        })
        .collect();
    let summary = vec![
        Row {
            key: "Kind".into(),
            value: kind_text(&request.kind).into(),
        },
        Row {
            key: "Councils".into(),
            value: councils_text(&request.councils),
        },
        Row {
            key: "Requested by".into(),
            value: request.requested_by.clone(),
        },
        Row {
            key: "When".into(),
            value: when(&request.requested_at),
        },
        Row {
            key: "State".into(),
            value: state_text(&request.state).into(),
        },
    ];
    // What the download form sends again: the same request, as typed.
    let again: Vec<_> = std::iter::once(("kind".to_string(), "access".to_string()))
        .chain(
            typed
                .values
                .iter()
                .filter(|(_, v)| !v.trim().is_empty())
                .map(|(k, v)| (k.to_string(), v.clone())),
        )
        .chain(
            typed
                .councils
                .iter()
                .map(|c| ("councils".to_string(), c.clone())),
        )
        .map(|(name, value)| context! { name => name, value => value })
        .collect();
    let title = if access {
        "What the alliance’s services hold"
    } else {
        "What was erased"
    };
    let chrome = act::chrome(
        console,
        who,
        title,
        Some(scope.tenant()),
        Section::Tenant("subject-requests"),
    );
    Ok(page(
        StatusCode::CREATED,
        "subject_request_answer.html",
        &chrome,
        context! {
            tenant => scope.tenant().to_string(),
            access => access,
            failed => failed,
            summary => summary,
            services => services,
            again => again,
            request_id => request.id.clone(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_values_are_shown_as_text() {
        let shown = rows(&serde_json::json!({
            "description": "<b>deep</b>",
            "reporter": {"email": "jo@example.org"},
            "photos": [1, 2],
            "closed": null,
            "count": 3,
        }));
        let pairs: Vec<(&str, &str)> = shown
            .iter()
            .map(|r| (r.key.as_str(), r.value.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("closed", "none"),
                ("count", "3"),
                ("description", "<b>deep</b>"),
                ("photos", "[1,2]"),
                ("reporter", r#"{"email":"jo@example.org"}"#),
            ]
        );
        assert!(rows(&Value::Null).is_empty());
        assert_eq!(rows(&serde_json::json!("just text"))[0].value, "just text");
    }

    #[test]
    fn refusals_are_said_for_the_form() {
        let e = ApiError::validation(
            "the subject request is not valid",
            vec![
                FieldError {
                    field: "kind".into(),
                    reason: "x".into(),
                },
                FieldError {
                    field: "identifiers.phone".into(),
                    reason: "must not contain control characters (found U+0000)".into(),
                },
                FieldError {
                    field: "councils[0]".into(),
                    reason: "x".into(),
                },
                FieldError {
                    field: "councils[1]".into(),
                    reason: "x".into(),
                },
            ],
        );
        let errors = Errors::from_refusal(&e);
        let links: Vec<_> = errors
            .summary
            .iter()
            .map(|e| e.field.clone().unwrap())
            .collect();
        assert_eq!(links, ["kind", "phone", "councils"]);
        assert_eq!(
            errors.at["phone"],
            "Phone number must not contain control characters (found U+0000)"
        );
    }
}
