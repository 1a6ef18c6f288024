//! The shared catalogue: search, and a plugin's page with its versions, capabilities,
//! limits, digest, owners, signature status and adoption ("who already runs this").

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use guildhall_domain::PluginName;
use guildhall_store::AdoptionFigures;
use minijinja::context;
use serde::{Deserialize, Serialize};

use crate::Console;
use crate::act::{self, Section};
use crate::pages::when;
use crate::render::{PageError, page};
use crate::session::SignedIn;

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
}

#[derive(Debug, Serialize)]
struct PluginRow {
    name: String,
    description: String,
    publisher: String,
    latest: String,
    tenants: i64,
    councils: i64,
}

/// The first day of the adoption window: 30 days including today.
fn adoption_since() -> String {
    guildhall_domain::metering::day_of(time::OffsetDateTime::now_utc() - time::Duration::days(29))
}

/// `GET /console/catalogue?q=`.
pub async fn search(
    State(console): State<Console>,
    who: SignedIn,
    Query(query): Query<SearchQuery>,
) -> Result<Response, PageError> {
    act::read(&console, &who, "/api/v1/plugins", None).await?;
    let q = query.q.unwrap_or_default().trim().to_lowercase();
    let plugins = console.app.store.catalogue().list().await?;
    let adoption = console
        .app
        .store
        .adoption()
        .figures(None, &adoption_since())
        .await?;
    let rows: Vec<PluginRow> = plugins
        .iter()
        .filter(|p| {
            q.is_empty()
                || p.name.as_str().contains(&q)
                || p.description.to_lowercase().contains(&q)
                || p.publisher.to_lowercase().contains(&q)
        })
        .map(|p| {
            let figures = adoption
                .get(p.name.as_str())
                .and_then(|v| v.get(""))
                .cloned()
                .unwrap_or_default();
            PluginRow {
                name: p.name.to_string(),
                description: p.description.clone(),
                publisher: p.publisher.clone(),
                latest: p
                    .latest()
                    .map(|v| v.version.clone())
                    .unwrap_or_else(|| "none".into()),
                tenants: figures.tenants,
                councils: figures.councils,
            }
        })
        .collect();
    let chrome = act::chrome(&console, &who, "Catalogue", None, Section::Catalogue);
    Ok(page(
        StatusCode::OK,
        "catalogue.html",
        &chrome,
        context! { q => q, plugins => rows, total => plugins.len() },
    ))
}

#[derive(Debug, Serialize)]
struct VersionRow {
    version: String,
    published: String,
    digest: String,
    signature: String,
    yanked: bool,
    capabilities: Vec<String>,
    memory_mib: String,
    timeout_ms: String,
    tenants: i64,
    councils: i64,
}

fn capabilities_of(c: &guildhall_domain::manifest::Capabilities) -> Vec<String> {
    let mut out = Vec::new();
    if c.kv {
        out.push("Key-value storage".to_string());
    }
    if c.events {
        out.push("Events".to_string());
    }
    if c.authz {
        out.push("Access checks".to_string());
    }
    for host in &c.outbound_http {
        out.push(format!("Outbound HTTP to {host}"));
    }
    out
}

/// `GET /console/catalogue/{plugin}`.
pub async fn detail(
    State(console): State<Console>,
    who: SignedIn,
    Path(plugin): Path<String>,
) -> Result<Response, PageError> {
    act::read(&console, &who, "/api/v1/plugins/{plugin}", None).await?;
    let name = PluginName::parse(plugin).map_err(|_| PageError::not_found())?;
    let record = console
        .app
        .store
        .catalogue()
        .get(&name)
        .await?
        .ok_or_else(PageError::not_found)?;
    let owners = console
        .app
        .store
        .owners()
        .list(&name)
        .await?
        .unwrap_or_default();
    let adoption = console
        .app
        .store
        .adoption()
        .figures(Some(name.as_str()), &adoption_since())
        .await?;
    let figures = |version: &str| -> AdoptionFigures {
        adoption
            .get(name.as_str())
            .and_then(|v| v.get(version))
            .cloned()
            .unwrap_or_default()
    };
    let versions: Vec<VersionRow> = record
        .versions
        .iter()
        .map(|v| {
            let f = figures(&v.version);
            VersionRow {
                version: v.version.clone(),
                published: when(&v.published_at),
                digest: v.digest.to_string(),
                signature: match &v.signed_by {
                    Some(key) => format!("Signed by an owner’s key ({key})"),
                    None => "Not signed".to_string(),
                },
                yanked: v.yanked,
                capabilities: capabilities_of(&v.manifest.capabilities),
                memory_mib: v
                    .manifest
                    .limits
                    .memory_mib
                    .map_or("Platform default".to_string(), |m| format!("{m} MiB")),
                timeout_ms: v
                    .manifest
                    .limits
                    .timeout_ms
                    .map_or("Platform default".to_string(), |t| format!("{t} ms")),
                tenants: f.tenants,
                councils: f.councils,
            }
        })
        .collect();
    let overall = figures("");
    // Where the signed-in person could install it: alliances where they may install.
    let mut install_in = Vec::new();
    let tenants = console.app.store.tenants().list().await?;
    for t in tenants {
        if act::may(
            &console,
            &who,
            axum::http::Method::PUT,
            "/api/v1/tenants/{tenant}/installs/{plugin}",
            Some(&t.id),
        ) {
            install_in.push(context! { id => t.id.to_string(), name => t.name });
        }
    }
    let chrome = act::chrome(
        &console,
        &who,
        record.name.to_string(),
        None,
        Section::Catalogue,
    );
    Ok(page(
        StatusCode::OK,
        "plugin.html",
        &chrome,
        context! {
            name => record.name.to_string(),
            description => record.description.clone(),
            publisher => record.publisher.clone(),
            owners => owners.iter().map(|o| o.subject.clone()).collect::<Vec<_>>(),
            versions => versions,
            adoption => context! {
                tenants => overall.tenants,
                councils => overall.councils,
                named => overall.named_tenants,
                calls => overall.calls,
                success_rate => overall.success_rate.map(|r| format!("{:.1}%", r * 100.0)),
                satisfaction => overall.satisfaction.map(|s| format!("{:.0}%", s * 100.0)),
                ratings => overall.ratings,
            },
            install_in => install_in,
        },
    ))
}
