//! Subject access and erasure across a tenant's plugins.
//!
//! A request goes to every install of the tenant, for each council it serves (of those
//! asked for). A plugin that declares `[data_protection] subject_requests = true` is
//! called (`data-subject.access` or `.erase`) with the same share, memory budget, limits,
//! metering and tracing as a request; the caller is anonymous. The platform then finds the
//! plugin's events about the resident itself, by the event keys the plugin named and by the
//! identifiers the resident gave, and returns them (access) or erases their payloads
//! (erasure). A plugin that does not declare subject requests has its events searched all
//! the same, and is named in the answer as not searched for its own records.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use guildhall_domain::{CouncilId, PluginName};
use guildhall_runtime::subject::{Identifiers, SubjectRecord};
use guildhall_runtime::{CallContext, CallError, CallReport, Caller};
use guildhall_store::{EventMatch, EventRecord, TenantScope};
use serde::Serialize;
use tracing::Instrument;

use super::Resolved;
use super::handler::{Where, record_outcome};
use crate::AppState;
use crate::error::ApiError;

/// Access or erasure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Return everything held about the resident.
    Access,
    /// Erase everything held about the resident.
    Erasure,
}

impl Kind {
    /// `access` or `erasure`, as a kept request names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Access => "access",
            Kind::Erasure => "erasure",
        }
    }
}

/// An event about the resident, as an access bundle shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EventView {
    /// The event's id.
    pub id: String,
    /// Its name, e.g. `request.created`.
    pub name: String,
    /// When it was recorded, RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub at: time::OffsetDateTime,
    /// Its payload (`null` once erased).
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

impl From<EventRecord> for EventView {
    fn from(event: EventRecord) -> Self {
        Self {
            id: event.id,
            name: event.name,
            at: event.created_at,
            payload: serde_json::from_str(&event.payload).unwrap_or_default(),
        }
    }
}

/// A record a plugin holds about the resident.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RecordView {
    /// What kind of record, as the plugin names it, e.g. `service-request`.
    pub schema: String,
    /// The record, as the plugin gave it.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// What one service answered for one council.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ServiceAnswer {
    /// The plugin.
    pub plugin: String,
    /// The installed version.
    pub version: String,
    /// What the service does, from its manifest.
    pub description: String,
    /// The council; `*` for every council of an install that could not be reached.
    pub council: String,
    /// `ok`; `failed` when the plugin or the platform could not answer (see `error`); or
    /// `events-only` when the plugin does not answer subject requests, so only the
    /// platform's events of it were searched.
    pub state: &'static str,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Access: the plugin's records about the resident.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records: Option<Vec<RecordView>>,
    /// Access: the plugin's events about the resident.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<EventView>>,
    /// Erasure: records erased, by kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub erased: Option<BTreeMap<String, u64>>,
    /// Erasure: events whose payloads were erased.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events_erased: Option<u64>,
}

impl ServiceAnswer {
    /// What is kept of it: everything but the records and events themselves.
    pub fn summary(&self) -> serde_json::Value {
        let mut found = BTreeMap::<String, u64>::new();
        for record in self.records.iter().flatten() {
            *found.entry(record.schema.clone()).or_default() += 1;
        }
        serde_json::json!({
            "plugin": self.plugin,
            "version": self.version,
            "council": self.council,
            "state": self.state,
            "error": self.error.as_deref().map(kept_reason),
            "found": self.records.as_ref().map(|_| found),
            "events_found": self.events.as_ref().map(Vec::len),
            "erased": self.erased,
            "events_erased": self.events_erased,
        })
    }
}

/// Where a plugin's own error text begins in an answer's `error`.
const PLUGIN_SAID: &str = "the plugin's ";

/// What is kept of a failure: the platform's own reasons as they are, but never the text a
/// plugin returned, which may name the resident.
fn kept_reason(error: &str) -> String {
    match error.strip_prefix(PLUGIN_SAID) {
        Some(rest) => {
            let function = rest.split_whitespace().next().unwrap_or("call");
            format!("{PLUGIN_SAID}{function} reported an error (its text is not kept)")
        }
        None => error.to_string(),
    }
}

/// The identifier values events are searched for.
fn values(subject: &Identifiers) -> Vec<String> {
    [
        &subject.email,
        &subject.phone,
        &subject.name,
        &subject.address,
        &subject.uprn,
        &subject.reference,
    ]
    .into_iter()
    .flatten()
    .cloned()
    .collect()
}

/// Answers a subject request across every install of `scope`'s tenant, for `councils`
/// (every council when `None`), one service and council at a time.
pub(crate) async fn answer(
    state: &AppState,
    scope: &TenantScope,
    kind: Kind,
    subject: &Identifiers,
    councils: Option<&[CouncilId]>,
    request_id: &str,
) -> Result<Vec<ServiceAnswer>, ApiError> {
    let tenant = scope.tenant();
    let mut installs = state.store.installs(scope).list().await?;
    installs.sort_by(|a, b| a.plugin.cmp(&b.plugin));
    let mut answers = Vec::new();
    for install in installs {
        let plugin = install.plugin;
        // A version that cannot be prepared now fails its own answer, not the request's
        // others: the officer sees which service was not searched, and asks again.
        let resolved = match state.gateway.resolve(tenant, &plugin).await {
            Ok(Some(resolved)) => resolved,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(tenant = %tenant, plugin = %plugin, error = %e,
                    "a subject request could not reach an install");
                answers.push(ServiceAnswer {
                    plugin: plugin.to_string(),
                    version: install.version,
                    description: String::new(),
                    council: "*".to_string(),
                    state: "failed",
                    error: Some(
                        "the service could not be started; its data was not searched".to_string(),
                    ),
                    records: None,
                    events: None,
                    erased: None,
                    events_erased: None,
                });
                continue;
            }
        };
        let mut served: Vec<CouncilId> = resolved
            .sites
            .keys()
            .filter(|c| resolved.serves(c))
            .filter(|c| councils.is_none_or(|asked| asked.contains(c)))
            .cloned()
            .collect();
        served.sort();
        for council in served {
            answers.push(
                answer_one(
                    state, &resolved, &plugin, &council, kind, subject, request_id,
                )
                .await?,
            );
        }
    }
    Ok(answers)
}

async fn answer_one(
    state: &AppState,
    resolved: &Resolved,
    plugin: &PluginName,
    council: &CouncilId,
    kind: Kind,
    subject: &Identifiers,
    request_id: &str,
) -> Result<ServiceAnswer, ApiError> {
    let prepared = &resolved.prepared;
    let manifest = prepared.manifest();
    let mut answer = ServiceAnswer {
        plugin: plugin.to_string(),
        version: manifest.version.to_string(),
        description: manifest.description.clone(),
        council: council.to_string(),
        state: "ok",
        error: None,
        records: None,
        events: None,
        erased: None,
        events_erased: None,
    };
    let mut matching = EventMatch {
        keys: Vec::new(),
        values: values(subject),
    };
    if prepared.answers_subject_requests() {
        match call(state, resolved, plugin, council, kind, subject, request_id).await {
            Ok(Called::Access(records)) => {
                let mut views = Vec::new();
                for SubjectRecord {
                    schema,
                    data,
                    event_keys,
                } in records
                {
                    matching
                        .keys
                        .extend(event_keys.into_iter().map(|k| (k.field, k.value)));
                    let data =
                        serde_json::from_str(&data).unwrap_or(serde_json::Value::String(data));
                    views.push(RecordView { schema, data });
                }
                answer.records = Some(views);
            }
            Ok(Called::Erasure(erased)) => {
                let mut counts = BTreeMap::new();
                for record in erased {
                    *counts.entry(record.schema).or_default() += 1;
                    matching
                        .keys
                        .extend(record.event_keys.into_iter().map(|k| (k.field, k.value)));
                }
                answer.erased = Some(counts);
            }
            Err(error) => {
                answer.state = "failed";
                answer.error = Some(error);
            }
        }
    } else {
        answer.state = "events-only";
    }
    // The platform's own record of the plugin's events is searched even when the plugin
    // failed, so an access request still shows them and an erasure still erases them.
    let events = state
        .store
        .events(&resolved.scope)
        .about(plugin, council, &matching)
        .await?;
    match kind {
        Kind::Access => answer.events = Some(events.into_iter().map(EventView::from).collect()),
        Kind::Erasure => {
            let ids: Vec<String> = events.into_iter().map(|e| e.id).collect();
            answer.events_erased = Some(state.store.events(&resolved.scope).erase(&ids).await?);
        }
    }
    Ok(answer)
}

/// What a plugin answered.
enum Called {
    Access(Vec<SubjectRecord>),
    Erasure(Vec<guildhall_runtime::subject::ErasedRecord>),
}

/// Calls the plugin's `data-subject` export under the tenant's share and the memory budget;
/// `Err` says why it gave no answer.
async fn call(
    state: &AppState,
    resolved: &Resolved,
    plugin: &PluginName,
    council: &CouncilId,
    kind: Kind,
    subject: &Identifiers,
    request_id: &str,
) -> Result<Called, String> {
    let prepared = &resolved.prepared;
    let tenant = resolved.scope.tenant();
    let version = prepared.version().to_string();
    let function = match kind {
        Kind::Access => "access",
        Kind::Erasure => "erase",
    };
    let span = tracing::info_span!(
        "subject request",
        otel.name = %format!("subject {function} {plugin}"),
        guildhall.tenant = %tenant,
        guildhall.council = %council,
        guildhall.plugin = %plugin,
        guildhall.plugin.version = %version,
        guildhall.outcome = tracing::field::Empty,
    );
    let started = std::time::Instant::now();
    let at = Where {
        tenant,
        council,
        plugin,
        version: &version,
        labels: &resolved.labels,
    };
    let Ok(_permit) = state.gateway.admit(tenant).await else {
        record_outcome(
            state,
            at,
            StatusCode::TOO_MANY_REQUESTS,
            started.elapsed(),
            None,
        );
        return Err("the alliance's share of plugin calls was full; try again".to_string());
    };
    let Ok(_memory) = state.runtime.reserve_memory(prepared).await else {
        record_outcome(
            state,
            at,
            StatusCode::TOO_MANY_REQUESTS,
            started.elapsed(),
            None,
        );
        return Err("the platform's memory budget was in use; try again".to_string());
    };
    let context = CallContext {
        tenant: tenant.clone(),
        council: council.clone(),
        principal: Caller::Anonymous,
        config: resolved.config(council),
        request_id: request_id.to_string(),
        traceparent: guildhall_telemetry::propagation::outbound_traceparent(
            &span,
            &http::HeaderMap::new(),
        ),
        site: resolved.sites.get(council).cloned().unwrap_or_default(),
        session: None,
    };
    let subject = subject.clone();
    let (called, report): (Result<Result<Called, String>, CallError>, CallReport) = match kind {
        Kind::Access => {
            let (result, report) = state
                .runtime
                .subject_access(prepared, context, subject)
                .instrument(span.clone())
                .await;
            (result.map(|r| r.map(Called::Access)), report)
        }
        Kind::Erasure => {
            let (result, report) = state
                .runtime
                .subject_erase(prepared, context, subject)
                .instrument(span.clone())
                .await;
            (result.map(|r| r.map(Called::Erasure)), report)
        }
    };
    let status = match &called {
        Ok(Ok(_)) => StatusCode::OK,
        Ok(Err(_)) => StatusCode::INTERNAL_SERVER_ERROR,
        Err(_) => StatusCode::BAD_GATEWAY,
    };
    record_outcome(state, at, status, started.elapsed(), Some((report, span)));
    match called {
        Ok(Ok(called)) => Ok(called),
        Ok(Err(message)) => Err(format!("{PLUGIN_SAID}{function} failed: {message}")),
        Err(e) => Err(format!("{}: {e}", e.kind())),
    }
}

#[cfg(test)]
mod tests {
    use super::kept_reason;

    #[test]
    fn a_plugins_own_error_text_is_not_kept() {
        assert_eq!(
            kept_reason("the plugin's erase failed: no subscription for jo@example.org"),
            "the plugin's erase reported an error (its text is not kept)"
        );
        assert_eq!(
            kept_reason("deadline: the call ran past 2s"),
            "deadline: the call ran past 2s"
        );
    }
}
