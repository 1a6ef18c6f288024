//! An alliance's councils, for its administrators: the list, and adding or renaming one
//! through the decision, operation and audit entry of
//! `PUT /api/v1/tenants/{tenant}/councils/{council}`.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use guildhall_api::ApiError;
use guildhall_domain::CouncilId;
use guildhall_domain::tenant::CouncilSpec;
use guildhall_store::{Applied, TenantScope};
use minijinja::context;
use serde::{Deserialize, Serialize};

use crate::Console;
use crate::act::{self, Req, Section};
use crate::pages::{FormError, error_for, refusal, when};
use crate::render::{PageError, page};
use crate::session::{FormFields, SignedIn};

/// This module's templates.
pub(crate) const TEMPLATES: &[(&str, &str)] = crate::render::templates!["councils.html"];

/// This module's routes, relative to `/console`.
pub fn routes() -> Router<Console> {
    Router::new().route("/t/{tenant}/councils", get(councils).post(put_council))
}

const TENANT: &str = "/api/v1/tenants/{tenant}";
const COUNCIL: &str = "/api/v1/tenants/{tenant}/councils/{council}";

#[derive(Debug, Serialize)]
struct CouncilRow {
    id: String,
    name: String,
    gss_code: Option<String>,
    updated: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct CouncilsQuery {
    done: Option<String>,
    /// A council whose details fill the form, to rename it.
    change: Option<String>,
}

#[derive(Debug, Default)]
struct TypedCouncil {
    council: String,
    name: String,
    gss_code: String,
}

#[allow(clippy::too_many_arguments)]
async fn render_councils(
    console: &Console,
    who: &SignedIn,
    scope: &TenantScope,
    typed: TypedCouncil,
    changing: bool,
    errors: Vec<FormError>,
    done: Option<&str>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let record = console
        .app
        .store
        .tenants()
        .get(scope)
        .await?
        .ok_or_else(PageError::not_found)?;
    let rows: Vec<CouncilRow> = record
        .councils
        .iter()
        .map(|c| CouncilRow {
            id: c.id.to_string(),
            name: c.name.clone(),
            gss_code: c.gss_code.clone(),
            updated: when(&c.updated_at),
        })
        .collect();
    let can_write = act::may(console, who, Method::PUT, COUNCIL, Some(scope.tenant()));
    let mut chrome = act::chrome(
        console,
        who,
        "Councils",
        Some(scope.tenant()),
        Section::Tenant("councils"),
    );
    chrome.has_errors = !errors.is_empty();
    Ok(page(
        status,
        "councils.html",
        &chrome,
        context! {
            tenant => scope.tenant().to_string(),
            tenant_name => record.name,
            councils => rows,
            can_write => can_write,
            changing => changing,
            council => typed.council,
            name => typed.name,
            gss_code => typed.gss_code,
            errors => errors.clone(),
            council_error => error_for(&errors, "council"),
            name_error => error_for(&errors, "name"),
            gss_code_error => error_for(&errors, "gss_code"),
            done => done,
        },
    ))
}

/// `GET /console/t/{tenant}/councils?change=`: the alliance's councils, and the form to
/// add one or rename one (filled in with `change`'s details).
pub async fn councils(
    State(console): State<Console>,
    who: SignedIn,
    Path(tenant): Path<String>,
    Query(query): Query<CouncilsQuery>,
) -> Result<Response, PageError> {
    let scope = act::read_tenant(&console, &who, TENANT, &tenant).await?;
    let done = match query.done.as_deref() {
        Some("added") => Some("The council was added."),
        Some("saved") => Some("The council’s details were saved."),
        Some("unchanged") => Some("The council already had these details."),
        _ => None,
    };
    let mut typed = TypedCouncil::default();
    let mut changing = false;
    if let Some(change) = query.change.as_deref() {
        let record = console.app.store.tenants().get(&scope).await?;
        if let Some(c) = record
            .iter()
            .flat_map(|r| r.councils.iter())
            .find(|c| c.id.as_str() == change)
        {
            typed = TypedCouncil {
                council: c.id.to_string(),
                name: c.name.clone(),
                gss_code: c.gss_code.clone().unwrap_or_default(),
            };
            changing = true;
        }
    }
    render_councils(
        &console,
        &who,
        &scope,
        typed,
        changing,
        Vec::new(),
        done,
        StatusCode::OK,
    )
    .await
}

fn council_field(field: &str) -> Option<&'static str> {
    match field {
        "id" | "council" => Some("council"),
        "name" => Some("name"),
        "gss_code" => Some("gss_code"),
        _ => None,
    }
}

/// `POST /console/t/{tenant}/councils`: adds or renames a council, through the decision,
/// operation and audit entry of `PUT /api/v1/tenants/{tenant}/councils/{council}`.
pub async fn put_council(
    State(console): State<Console>,
    who: SignedIn,
    req: Req,
    Path(tenant): Path<String>,
    fields: FormFields,
) -> Result<Response, PageError> {
    let typed = TypedCouncil {
        council: fields.get("council").unwrap_or_default().trim().to_string(),
        name: fields.get("name").unwrap_or_default().trim().to_string(),
        gss_code: fields
            .get("gss_code")
            .unwrap_or_default()
            .trim()
            .to_string(),
    };
    let changing = fields.get("changing").is_some();
    let mut errors = Vec::new();
    let council = if typed.council.is_empty() {
        errors.push(FormError::at(
            "council",
            "Enter an identifier for the council",
        ));
        None
    } else {
        match CouncilId::parse(typed.council.clone()) {
            Ok(id) => Some(id),
            Err(e) => {
                errors.push(FormError::at(
                    "council",
                    format!("The identifier {}", e.reason),
                ));
                None
            }
        }
    };
    if typed.name.is_empty() {
        errors.push(FormError::at("name", "Enter the council’s name"));
    }
    let outcome = match (council, errors.is_empty()) {
        (Some(council), true) => {
            let api_path = format!("/api/v1/tenants/{tenant}/councils/{council}");
            let spec = CouncilSpec {
                id: council,
                name: typed.name.clone(),
                gss_code: Some(typed.gss_code.clone()).filter(|g| !g.is_empty()),
                brand: Default::default(),
            };
            let console_ref = &console;
            let spec_ref = &spec;
            Some(
                act::write(
                    &console,
                    &who,
                    &req,
                    Method::PUT,
                    COUNCIL,
                    &api_path,
                    Some(&tenant),
                    |scope| async move {
                        let scope = scope.ok_or_else(|| ApiError::not_found("no tenant"))?;
                        // The form edits the name and code; the council keeps its brand.
                        let mut spec = spec_ref.clone();
                        if let Some(existing) = console_ref
                            .app
                            .store
                            .councils(&scope)
                            .list()
                            .await?
                            .into_iter()
                            .find(|c| c.id == spec.id)
                        {
                            spec.brand = existing.brand;
                        }
                        let (applied, _) = guildhall_operations::tenants::put_council(
                            &console_ref.app.store,
                            &scope,
                            &spec,
                        )
                        .await?;
                        let status = if applied == Applied::Created {
                            StatusCode::CREATED
                        } else {
                            StatusCode::OK
                        };
                        Ok((applied, status))
                    },
                )
                .await?,
            )
        }
        _ => None,
    };
    match outcome {
        Some(Ok(applied)) => {
            let done = match applied {
                Applied::Created => "added",
                Applied::Updated => "saved",
                Applied::Unchanged => "unchanged",
            };
            Ok(Redirect::to(&format!(
                "{}/t/{tenant}/councils?done={done}",
                crate::PREFIX
            ))
            .into_response())
        }
        other => {
            let scope = act::read_tenant(&console, &who, TENANT, &tenant).await?;
            if !act::may(&console, &who, Method::PUT, COUNCIL, Some(scope.tenant())) {
                return Err(PageError::forbidden(
                    "Your role in this alliance does not allow changing its councils.",
                ));
            }
            if let Some(Err(e)) = other {
                errors.extend(refusal(&e, council_field, "council"));
            }
            render_councils(
                &console,
                &who,
                &scope,
                typed,
                changing,
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
    fn the_page_renders_the_rename_form() {
        let views = crate::render::Views::new().unwrap();
        let chrome = crate::render::Chrome::public("Councils");
        let html = views
            .render(
                "councils.html",
                &chrome,
                context! {
                    tenant => "north-downs",
                    tenant_name => "North Downs",
                    councils => vec![context! { id => "tandridge", name => "Tandridge", gss_code => None::<String>, updated => "now" }],
                    can_write => true,
                    changing => true,
                    council => "tandridge",
                    name => "Tandridge",
                },
            )
            .unwrap();
        assert!(html.contains("Rename tandridge"));
        assert!(
            html.contains(
                r#"href="/console/t/north-downs/councils?change=tandridge#council-form""#
            )
        );
        assert!(html.contains("Not recorded"));
    }
}
