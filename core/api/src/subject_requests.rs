//! Subject access and erasure requests beneath the edges: the checks of what a data
//! protection officer gave, and the request itself (kept as started, answered by every
//! service of the alliance, kept as finished). The API's route and the console's form both
//! parse their input into a [`Given`] and call [`run`], so they check, keep and answer alike.

use guildhall_domain::CouncilId;
use guildhall_runtime::subject::Identifiers;
use guildhall_store::{NewSubjectRequest, SubjectRequestRecord, TenantScope, hash_identifier};
use serde::Serialize;

pub use crate::gateway::{EventView, RecordView, ServiceAnswer, SubjectKind as Kind};

use crate::AppState;
use crate::error::{ApiError, FieldError};
use crate::gateway::answer_subject_request;

/// The longest identifier, in characters.
pub const MAX_IDENTIFIER: usize = 320;

/// The names of the identifiers, in the order forms and answers show them.
pub const IDENTIFIERS: [&str; 6] = ["email", "phone", "name", "address", "uprn", "reference"];

/// What the resident gave to find their data, as typed. A blank value counts as not given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Given {
    /// An email address.
    pub email: Option<String>,
    /// A telephone number.
    pub phone: Option<String>,
    /// A full name.
    pub name: Option<String>,
    /// A postal address as one line.
    pub address: Option<String>,
    /// A Unique Property Reference Number.
    pub uprn: Option<String>,
    /// A reference a service gave the resident.
    pub reference: Option<String>,
}

impl Given {
    /// Each identifier's name (as in [`IDENTIFIERS`]) and its value when one was given.
    pub fn fields(&self) -> [(&'static str, Option<&str>); 6] {
        fn given(v: &Option<String>) -> Option<&str> {
            v.as_deref().filter(|v| !v.trim().is_empty())
        }
        [
            ("email", given(&self.email)),
            ("phone", given(&self.phone)),
            ("name", given(&self.name)),
            ("address", given(&self.address)),
            ("uprn", given(&self.uprn)),
            ("reference", given(&self.reference)),
        ]
    }
}

/// A request whose identifiers and councils passed [`check`].
#[derive(Debug, Clone)]
pub struct Checked {
    identifiers: Identifiers,
    hashed: serde_json::Map<String, serde_json::Value>,
    councils: Option<Vec<CouncilId>>,
}

/// Checks what was given: each identifier one line of at most [`MAX_IDENTIFIER`]
/// characters, at least one given, and the councils (when named) the alliance's. A refusal
/// is a validation error naming each field (`identifiers`, `identifiers.email`,
/// `councils`, `councils[1]`); nothing is read but the alliance's councils.
pub async fn check(
    state: &AppState,
    scope: &TenantScope,
    given: &Given,
    councils: Option<&[String]>,
) -> Result<Checked, ApiError> {
    let mut errors = Vec::new();
    let mut count = 0;
    for (name, value) in given.fields() {
        let Some(value) = value else { continue };
        match guildhall_domain::text::line(&format!("identifiers.{name}"), value, MAX_IDENTIFIER) {
            Ok(()) => count += 1,
            Err(e) => errors.push(FieldError {
                field: e.field,
                reason: e.reason,
            }),
        }
    }
    if count == 0 && errors.is_empty() {
        errors.push(FieldError {
            field: "identifiers".to_string(),
            reason: "give at least one of email, phone, name, address, uprn and reference"
                .to_string(),
        });
    }
    let mut chosen = None;
    if let Some(asked) = councils {
        let known = state.store.councils(scope).list().await?;
        let mut ids = Vec::new();
        for (i, raw) in asked.iter().enumerate() {
            match CouncilId::parse(raw) {
                Ok(id) if known.iter().any(|c| c.id == id) => ids.push(id),
                _ => errors.push(FieldError {
                    field: format!("councils[{i}]"),
                    reason: format!("{raw:?} is not a council of {}", scope.tenant()),
                }),
            }
        }
        if asked.is_empty() {
            errors.push(FieldError {
                field: "councils".to_string(),
                reason: "name at least one council, or leave it out for every council".to_string(),
            });
        }
        chosen = Some(ids);
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(
            "the subject request is not valid",
            errors,
        ));
    }
    let tenant = scope.tenant().as_str();
    let mut hashed = serde_json::Map::new();
    for (name, value) in given.fields() {
        if let Some(value) = value {
            hashed.insert(
                name.to_string(),
                hash_identifier(tenant, name, value).into(),
            );
        }
    }
    let value = |name: &str| {
        given
            .fields()
            .into_iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v)
            .map(|v| v.trim().to_string())
    };
    Ok(Checked {
        identifiers: Identifiers {
            email: value("email"),
            phone: value("phone"),
            name: value("name"),
            address: value("address"),
            uprn: value("uprn"),
            reference: value("reference"),
        },
        hashed,
        councils: chosen,
    })
}

/// A finished subject request: its record, and for access the bundle of what each service
/// holds.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubjectRequestAnswer {
    /// The request as kept (identifiers hashed, outcome without the records).
    pub request: SubjectRequestRecord,
    /// Each service and council: what it holds (access) or erased (erasure).
    pub services: Vec<ServiceAnswer>,
}

impl SubjectRequestAnswer {
    /// The API's address of the kept request.
    pub fn location(&self, tenant: &str) -> String {
        format!(
            "/api/v1/tenants/{tenant}/subject-requests/{}",
            self.request.id
        )
    }
}

/// Makes a subject request for `requested_by` in `scope`'s alliance: checks it
/// ([`check`]), keeps it as `running`, asks every service of the alliance (for `councils`,
/// or every council when `None`) and keeps how it ended (`completed`, or `failed` when a
/// service could not answer) with its outcome as counts. The answer carries the bundle
/// (access) or what was erased (erasure); the bundle is never kept.
pub async fn run(
    state: &AppState,
    scope: &TenantScope,
    requested_by: &str,
    kind: Kind,
    given: &Given,
    councils: Option<&[String]>,
) -> Result<SubjectRequestAnswer, ApiError> {
    let Checked {
        identifiers,
        hashed,
        councils,
    } = check(state, scope, given, councils).await?;
    let council_names: Option<Vec<String>> = councils
        .as_ref()
        .map(|ids| ids.iter().map(ToString::to_string).collect());
    let requests = state.store.subject_requests(scope);
    let started = requests
        .start(NewSubjectRequest {
            kind: kind.as_str(),
            identifiers: &hashed,
            councils: council_names.as_deref(),
            requested_by,
        })
        .await?;
    // In a task of its own, through to the kept outcome: a requester who goes away leaves
    // neither an erasure half done nor a request kept as `running`.
    let task_state = state.clone();
    let task_scope = scope.clone();
    let call_id = format!("subject-{}", started.id);
    let (request, services) = tokio::spawn(async move {
        let requests = task_state.store.subject_requests(&task_scope);
        let services = match answer_subject_request(
            &task_state,
            &task_scope,
            kind,
            &identifiers,
            councils.as_deref(),
            &call_id,
        )
        .await
        {
            Ok(services) => services,
            Err(e) => {
                let outcome = serde_json::json!({ "error": e.to_string() });
                requests.finish(&started.id, false, &outcome).await?;
                return Err(e);
            }
        };
        let completed = services.iter().all(|s| s.state != "failed");
        let outcome = serde_json::json!({
            "services": services.iter().map(ServiceAnswer::summary).collect::<Vec<_>>(),
        });
        let request = requests
            .finish(&started.id, completed, &outcome)
            .await?
            .ok_or_else(|| ApiError::internal("a subject request vanished while it ran"))?;
        // On the chain from here too, with what it did: the access layer records the call
        // only if its caller is still there when it ends, and an erasure must be on record.
        task_state
            .store
            .audit(&task_scope)
            .append(guildhall_store::NewAuditEntry {
                actor: &request.requested_by,
                action: "subject-requests.run",
                object: &format!("subject-requests/{}", request.id),
                outcome: &request.state,
                request_id: &call_id,
                detail: serde_json::json!({ "kind": request.kind, "outcome": outcome }),
            })
            .await?;
        Ok::<_, ApiError>((request, services))
    })
    .await
    .map_err(|e| ApiError::internal(format!("a subject request's task failed: {e}")))??;
    Ok(SubjectRequestAnswer { request, services })
}
