//! The platform, for its operators: every tenant, creating one (`POST /api/v1/tenants`),
//! and the platform's health (what `/readyz` checks, with the pool's and the runtime's
//! figures). An alliance's councils are in [`councils`](super::councils).

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use guildhall_api::ApiError;
use guildhall_domain::TenantId;
use guildhall_domain::tenant::TenantSpec;
use guildhall_operations::health::NotReady;
use minijinja::context;
use serde::Serialize;

use crate::Console;
use crate::act::{self, Req, Section};
use crate::pages::{Flash, FormError, error_for, refusal, when};
use crate::render::{PageError, page};
use crate::session::{FormFields, SignedIn};

/// This module's templates.
pub(crate) const TEMPLATES: &[(&str, &str)] = crate::render::templates!["platform.html"];

/// This module's routes, relative to `/console`.
pub fn routes() -> Router<Console> {
    Router::new().route("/platform", get(show).post(create_tenant))
}

const TENANTS: &str = "/api/v1/tenants";

/// A `key: value` row of a summary list.
#[derive(Debug, Serialize)]
struct Fact {
    key: &'static str,
    value: String,
}

fn fact(key: &'static str, value: impl Into<String>) -> Fact {
    Fact {
        key,
        value: value.into(),
    }
}

/// What `/readyz` checks, and the figures that show the platform at work.
async fn health(console: &Console) -> (bool, Vec<Fact>) {
    let store = &console.app.store;
    let (ready, database, migrations) = match guildhall_operations::health::readiness(store).await {
        Ok(status) => (
            true,
            "Reachable".to_string(),
            migrations_text(status.applied.len(), &[], &status.newer),
        ),
        Err(NotReady::Pending(status)) => (
            false,
            "Reachable".to_string(),
            migrations_text(status.applied.len(), &status.pending, &status.newer),
        ),
        Err(NotReady::SchemaUnreadable(e)) => {
            tracing::warn!(error = %e, "the platform page cannot read the migrations");
            (false, "Reachable".to_string(), "Cannot be read".to_string())
        }
        Err(NotReady::Unreachable(e)) => {
            tracing::warn!(error = %e, "the platform page cannot reach the database");
            (false, "Unreachable".to_string(), "Unknown".to_string())
        }
    };
    let backend = match format!("{:?}", store.backend()).as_str() {
        "Postgres" => "PostgreSQL".to_string(),
        "Sqlite" => "SQLite".to_string(),
        other => other.to_string(),
    };
    let (open, idle) = store.pool_connections();
    let runtime = console.app.runtime.stats();
    let facts = vec![
        fact("Version", env!("CARGO_PKG_VERSION")),
        fact("Database", format!("{database} ({backend})")),
        fact("Migrations", migrations),
        fact(
            "Database connections",
            format!(
                "{open} open, {} in use, {idle} idle",
                open.saturating_sub(idle)
            ),
        ),
        fact("Components cached", runtime.cached.to_string()),
        fact(
            "Components compiled",
            format!(
                "{} (taking {:.1} seconds in all)",
                runtime.compiles,
                runtime.compile_time.as_secs_f64()
            ),
        ),
        fact("Loaded from the disk cache", runtime.disk_loads.to_string()),
        fact(
            "Loaded from other replicas' compiles",
            runtime.shared_loads.to_string(),
        ),
        fact("Found in memory", runtime.memory_hits.to_string()),
        fact("Evicted", runtime.evictions.to_string()),
        fact(
            "Uploads compiling now",
            runtime.uploads_compiling.to_string(),
        ),
    ];
    (ready, facts)
}

fn migrations_text(applied: usize, pending: &[String], newer: &[String]) -> String {
    let mut text = if pending.is_empty() {
        format!("All {applied} applied")
    } else {
        format!(
            "{applied} applied, {} pending: {}",
            pending.len(),
            pending.join(", ")
        )
    };
    if !newer.is_empty() {
        text.push_str(&format!(
            "; {} applied by a newer release: {}",
            newer.len(),
            newer.join(", ")
        ));
    }
    text
}

#[derive(Debug, Serialize)]
struct TenantRow {
    id: String,
    name: String,
    councils: usize,
    share_adoption: bool,
    created: String,
}

#[derive(Debug, Default)]
struct NewTenant {
    id: String,
    name: String,
    share_adoption: String,
}

async fn render_platform(
    console: &Console,
    who: &SignedIn,
    typed: NewTenant,
    errors: Vec<FormError>,
    done: Option<&str>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let tenants = guildhall_operations::tenants::visible(
        &console.app.authz,
        &console.app.store,
        &who.principal,
    )
    .await
    .map_err(ApiError::from)?;
    let rows: Vec<TenantRow> = tenants
        .iter()
        .map(|t| TenantRow {
            id: t.id.to_string(),
            name: t.name.clone(),
            councils: t.councils.len(),
            share_adoption: t.share_adoption,
            created: when(&t.created_at),
        })
        .collect();
    let (ready, facts) = health(console).await;
    let share = [("yes", "Yes"), ("no", "No")]
        .iter()
        .map(|(value, text)| {
            context! {
                value => *value,
                text => *text,
                checked => typed.share_adoption == *value,
            }
        })
        .collect::<Vec<_>>();
    let mut chrome = act::chrome(console, who, "Platform", None, Section::Platform);
    chrome.has_errors = !errors.is_empty();
    Ok(page(
        status,
        "platform.html",
        &chrome,
        context! {
            tenants => rows,
            ready => ready,
            health => facts,
            id => typed.id,
            name => typed.name,
            share => share,
            errors => errors.clone(),
            id_error => error_for(&errors, "id"),
            name_error => error_for(&errors, "name"),
            share_error => error_for(&errors, "share_adoption"),
            done => done,
        },
    ))
}

/// Asks the decision of `POST /api/v1/tenants` without acting: the platform page is for
/// those who may create tenants.
async fn may_create(console: &Console, who: &SignedIn) -> Result<(), PageError> {
    act::read(console, who, TENANTS, None).await?;
    if act::may(console, who, Method::POST, TENANTS, None) {
        Ok(())
    } else {
        Err(PageError::forbidden(
            "The platform page is for the platform’s operators.",
        ))
    }
}

/// `GET /console/platform`.
pub async fn show(
    State(console): State<Console>,
    who: SignedIn,
    Query(flash): Query<Flash>,
) -> Result<Response, PageError> {
    may_create(&console, &who).await?;
    let done = match flash.done.as_deref() {
        Some("created") => Some("The alliance was created. Add its councils next."),
        _ => None,
    };
    render_platform(
        &console,
        &who,
        NewTenant::default(),
        Vec::new(),
        done,
        StatusCode::OK,
    )
    .await
}

/// The form's field for a problem's field.
fn tenant_field(field: &str) -> Option<&'static str> {
    match field {
        "id" => Some("id"),
        "name" => Some("name"),
        "share_adoption" => Some("share_adoption"),
        _ => None,
    }
}

/// `POST /console/platform`: creates a tenant, through the decision, operation and audit
/// entry of `POST /api/v1/tenants`.
pub async fn create_tenant(
    State(console): State<Console>,
    who: SignedIn,
    req: Req,
    fields: FormFields,
) -> Result<Response, PageError> {
    let typed = NewTenant {
        id: fields.get("id").unwrap_or_default().trim().to_string(),
        name: fields.get("name").unwrap_or_default().trim().to_string(),
        share_adoption: fields.get("share_adoption").unwrap_or_default().to_string(),
    };
    let mut errors = Vec::new();
    let id = if typed.id.is_empty() {
        errors.push(FormError::at("id", "Enter an identifier for the alliance"));
        None
    } else {
        match TenantId::parse(typed.id.clone()) {
            Ok(id) => Some(id),
            Err(e) => {
                errors.push(FormError::at("id", format!("The identifier {}", e.reason)));
                None
            }
        }
    };
    if typed.name.is_empty() {
        errors.push(FormError::at("name", "Enter the alliance’s name"));
    }
    let share_adoption = match typed.share_adoption.as_str() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => {
            errors.push(FormError::at(
                "share_adoption",
                "Select yes if the catalogue may name this alliance",
            ));
            None
        }
    };
    let outcome = match (id, share_adoption, errors.is_empty()) {
        (Some(id), Some(share_adoption), true) => {
            let spec = TenantSpec {
                id,
                name: typed.name.clone(),
                share_adoption,
                brand: Default::default(),
                councils: Vec::new(),
            };
            let console_ref = &console;
            let spec_ref = &spec;
            Some(
                act::write_located(
                    &console,
                    &who,
                    &req,
                    Method::POST,
                    TENANTS,
                    TENANTS,
                    None,
                    |_| async move {
                        let record =
                            guildhall_operations::tenants::create(&console_ref.app.store, spec_ref)
                                .await?;
                        Ok((record, StatusCode::CREATED))
                    },
                    // As the API's `Location`, so both edges' audit entries say the same.
                    |record| Some(format!("{TENANTS}/{}", record.id)),
                )
                .await?,
            )
        }
        _ => None,
    };
    match outcome {
        Some(Ok(_)) => {
            Ok(Redirect::to(&format!("{}/platform?done=created", crate::PREFIX)).into_response())
        }
        other => {
            may_create(&console, &who).await?;
            match other {
                Some(Err(e)) if e.status() == StatusCode::CONFLICT => errors.push(FormError::at(
                    "id",
                    format!(
                        "An alliance with the identifier {} already exists",
                        typed.id
                    ),
                )),
                Some(Err(e)) => errors.extend(refusal(&e, tenant_field, "id")),
                _ => {}
            }
            render_platform(
                &console,
                &who,
                typed,
                errors,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_say_what_is_pending_and_what_is_newer() {
        assert_eq!(migrations_text(12, &[], &[]), "All 12 applied");
        assert_eq!(
            migrations_text(11, &["m13".into()], &[]),
            "11 applied, 1 pending: m13"
        );
        assert_eq!(
            migrations_text(12, &[], &["m14".into(), "m15".into()]),
            "All 12 applied; 2 applied by a newer release: m14, m15"
        );
    }

    #[test]
    fn a_refusal_names_its_field_or_the_whole_form() {
        let conflict = ApiError::conflict("tenant north-downs already exists");
        let errors = refusal(&conflict, tenant_field, "id");
        assert_eq!(errors[0].field.as_deref(), Some("id"));
        let invalid = ApiError::validation(
            "invalid tenant: name: must not be empty",
            vec![guildhall_api::FieldError {
                field: "name".into(),
                reason: "must not be empty".into(),
            }],
        );
        let errors = refusal(&invalid, tenant_field, "id");
        assert_eq!(errors[0].field.as_deref(), Some("name"));
        assert_eq!(errors[0].text, "must not be empty");
        let other = ApiError::validation(
            "invalid",
            vec![guildhall_api::FieldError {
                field: "councils[0].id".into(),
                reason: "duplicate".into(),
            }],
        );
        assert_eq!(refusal(&other, tenant_field, "id")[0].field, None);
    }

    #[test]
    fn the_pages_render_with_errors_beside_their_fields() {
        let views = crate::render::Views::new().unwrap();
        let chrome = crate::render::Chrome::public("Platform");
        let errors = vec![FormError::at("id", "Enter an identifier for the alliance")];
        let html = views
            .render(
                "platform.html",
                &chrome,
                context! {
                    tenants => vec![context! { id => "north-downs", name => "North Downs", councils => 2, share_adoption => true, created => "1 May 2026, 10:00 UTC" }],
                    ready => false,
                    health => vec![fact("Migrations", "11 applied, 1 pending: m13")],
                    share => vec![context! { value => "yes", text => "Yes", checked => false }],
                    errors => errors.clone(),
                    id_error => error_for(&errors, "id"),
                },
            )
            .unwrap();
        assert!(
            html.contains(r#"href="/console/t/north-downs/councils""#),
            "{html}"
        );
        assert!(html.contains(r##"<a href="#id">Enter an identifier for the alliance</a>"##));
        assert!(html.contains(r#"id="id-error""#));
        assert!(html.contains("Not ready"));
    }
}
