//! The start page (the alliances someone may open) and an alliance's overview: its
//! councils and which plugin version serves each.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use guildhall_store::InstallCouncils;
use minijinja::context;
use serde::Serialize;

use crate::Console;
use crate::act::{self, Section};
use crate::render::{PageError, page};
use crate::session::SignedIn;

#[derive(Debug, Serialize)]
struct TenantRow {
    id: String,
    name: String,
    councils: usize,
}

/// `GET /console`.
pub async fn home(State(console): State<Console>, who: SignedIn) -> Result<Response, PageError> {
    act::read(&console, &who, "/api/v1/tenants", None).await?;
    // Operators see every tenant; everyone else the tenants they hold a role in.
    let tenants = guildhall_operations::tenants::visible(
        &console.app.authz,
        &console.app.store,
        &who.principal,
    )
    .await
    .map_err(guildhall_api::ApiError::from)?;
    let rows: Vec<TenantRow> = tenants
        .iter()
        .map(|t| TenantRow {
            id: t.id.to_string(),
            name: t.name.clone(),
            councils: t.councils.len(),
        })
        .collect();
    let chrome = act::chrome(&console, &who, "Your alliances", None, Section::Alliances);
    Ok(page(
        StatusCode::OK,
        "home.html",
        &chrome,
        context! { tenants => rows },
    ))
}

#[derive(Debug, Serialize)]
struct CouncilRow {
    id: String,
    name: String,
    gss_code: Option<String>,
    services: Vec<String>,
}

/// `GET /console/t/{tenant}`.
pub async fn overview(
    State(console): State<Console>,
    who: SignedIn,
    Path(tenant): Path<String>,
) -> Result<Response, PageError> {
    let scope = act::read_tenant(&console, &who, "/api/v1/tenants/{tenant}", &tenant).await?;
    let record = console
        .app
        .store
        .tenants()
        .get(&scope)
        .await?
        .ok_or_else(PageError::not_found)?;
    // Which plugin version serves each council needs the installs' read permission.
    let installs = if act::may(
        &console,
        &who,
        axum::http::Method::GET,
        "/api/v1/tenants/{tenant}/installs",
        Some(scope.tenant()),
    ) {
        Some(console.app.store.installs(&scope).list().await?)
    } else {
        None
    };
    let councils: Vec<CouncilRow> = record
        .councils
        .iter()
        .map(|c| CouncilRow {
            id: c.id.to_string(),
            name: c.name.clone(),
            gss_code: c.gss_code.clone(),
            services: installs
                .iter()
                .flatten()
                .filter(|i| match &i.councils {
                    InstallCouncils::All(_) => true,
                    InstallCouncils::Some(ids) => ids.contains(&c.id),
                })
                .map(|i| format!("{} {}", i.plugin, i.version))
                .collect(),
        })
        .collect();
    let chrome = act::chrome(
        &console,
        &who,
        record.name.clone(),
        Some(scope.tenant()),
        Section::Tenant("overview"),
    );
    Ok(page(
        StatusCode::OK,
        "overview.html",
        &chrome,
        context! {
            tenant => record.id.to_string(),
            name => record.name,
            councils => councils,
            shows_installs => installs.is_some(),
            can_edit_councils => act::may(
                &console,
                &who,
                axum::http::Method::PUT,
                "/api/v1/tenants/{tenant}/councils/{council}",
                Some(scope.tenant()),
            ),
            install_count => installs.as_ref().map(Vec::len),
        },
    ))
}
