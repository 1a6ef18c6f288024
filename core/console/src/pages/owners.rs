//! A publisher's own plugins: their versions (yanking one) and their co-owners (adding and
//! removing them). Operators manage every plugin. The signing keys are in
//! [`keys`](super::keys).
//!
//! Who may manage a plugin is the store's rule, checked inside the change (the API's
//! rules for owners and keys let any signed-in caller reach the operation); the pages ask
//! the same decisions and call the same operations as the API's owner and yank routes.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use guildhall_api::ApiError;
use guildhall_domain::PluginName;
use guildhall_operations::owners as ops;
use guildhall_store::{OwnerRecord, PluginRecord};
use minijinja::context;
use serde::Serialize;

use crate::Console;
use crate::act::{self, Req, Section};
use crate::pages::{Flash, FormError, error_for, sentence, when};
use crate::render::{PageError, page};
use crate::session::{FormFields, SignedIn, urlencoding};

/// This module's templates.
pub(crate) const TEMPLATES: &[(&str, &str)] =
    crate::render::templates!["owners.html", "owners_plugin.html"];

/// This module's routes, relative to `/console`.
pub fn routes() -> Router<Console> {
    Router::new()
        .route("/plugins", get(list))
        .route("/plugins/{plugin}", get(detail))
        .route("/plugins/{plugin}/versions/{version}/yank", post(yank))
        .route("/plugins/{plugin}/owners", post(add_owner))
        .route("/plugins/{plugin}/owners/remove", post(remove_owner))
}

const PLUGINS: &str = "/api/v1/plugins";
const PLUGIN: &str = "/api/v1/plugins/{plugin}";
const OWNERS: &str = "/api/v1/plugins/{plugin}/owners";
const OWNER: &str = "/api/v1/plugins/{plugin}/owners/{subject}";
const YANK: &str = "/api/v1/plugins/{plugin}/versions/{version}/yank";

#[derive(Debug, Serialize)]
struct PluginRow {
    name: String,
    description: String,
    latest: Option<String>,
    versions: usize,
    yanked: usize,
}

/// `GET /console/plugins`: the plugins the signed-in person owns (every plugin for an
/// operator).
pub async fn list(State(console): State<Console>, who: SignedIn) -> Result<Response, PageError> {
    act::read(&console, &who, PLUGINS, None).await?;
    let actor = ops::actor(&console.app.authz, &who.principal);
    let plugins = ops::managed(&console.app.store, actor)
        .await
        .map_err(ApiError::from)?;
    let rows: Vec<PluginRow> = plugins
        .iter()
        .map(|p| PluginRow {
            name: p.name.to_string(),
            description: p.description.clone(),
            latest: p.latest().map(|v| v.version.clone()),
            versions: p.versions.len(),
            yanked: p.versions.iter().filter(|v| v.yanked).count(),
        })
        .collect();
    let chrome = act::chrome(&console, &who, "Your plugins", None, Section::Plugins);
    Ok(page(
        StatusCode::OK,
        "owners.html",
        &chrome,
        context! {
            plugins => rows,
            operator => actor.operator,
            subject => who.principal.subject(),
        },
    ))
}

#[derive(Debug, Serialize)]
struct VersionRow {
    version: String,
    published: String,
    signed_by: Option<String>,
    yanked: bool,
}

#[derive(Debug, Serialize)]
struct OwnerRow {
    subject: String,
    added_by: String,
    added: String,
    you: bool,
}

fn plugin_name(raw: &str) -> Result<PluginName, PageError> {
    PluginName::parse(raw.to_string()).map_err(|_| PageError::not_found())
}

#[allow(clippy::too_many_arguments)]
async fn render_plugin(
    console: &Console,
    who: &SignedIn,
    record: &PluginRecord,
    owners: &[OwnerRecord],
    typed_subject: String,
    errors: Vec<FormError>,
    done: Option<&str>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let actor = ops::actor(&console.app.authz, &who.principal);
    let manages = actor.manages(owners.iter().map(|o| o.subject.as_str()));
    let can_yank = manages && act::may(console, who, Method::POST, YANK, None);
    let can_manage_owners = manages && act::may(console, who, Method::PUT, OWNER, None);
    let versions: Vec<VersionRow> = record
        .versions
        .iter()
        .map(|v| VersionRow {
            version: v.version.clone(),
            published: when(&v.published_at),
            signed_by: v.signed_by.clone(),
            yanked: v.yanked,
        })
        .collect();
    let owner_rows: Vec<OwnerRow> = owners
        .iter()
        .map(|o| OwnerRow {
            you: o.subject == who.principal.subject(),
            subject: o.subject.clone(),
            added_by: o.added_by.clone(),
            added: when(&o.added_at),
        })
        .collect();
    let mut chrome = act::chrome(
        console,
        who,
        record.name.to_string(),
        None,
        Section::Plugins,
    );
    chrome.has_errors = !errors.is_empty();
    Ok(page(
        status,
        "owners_plugin.html",
        &chrome,
        context! {
            name => record.name.to_string(),
            description => record.description.clone(),
            versions => versions,
            owners => owner_rows,
            // A plugin always keeps one owner, so the last has no "Remove".
            removable => owners.len() > 1,
            can_yank => can_yank,
            can_manage_owners => can_manage_owners,
            subject => typed_subject,
            errors => errors.clone(),
            subject_error => error_for(&errors, "subject"),
            done => done,
        },
    ))
}

/// The plugin and its owners, after asking the decisions of the API's reads of them.
async fn load(
    console: &Console,
    who: &SignedIn,
    plugin: &PluginName,
) -> Result<(PluginRecord, Vec<OwnerRecord>), PageError> {
    act::read(console, who, PLUGIN, None).await?;
    act::read(console, who, OWNERS, None).await?;
    let record = console
        .app
        .store
        .catalogue()
        .get(plugin)
        .await?
        .ok_or_else(PageError::not_found)?;
    let owners = ops::owners(&console.app.store, plugin)
        .await
        .map_err(ApiError::from)?;
    Ok((record, owners))
}

/// `GET /console/plugins/{plugin}`: versions and owners, with an owner's actions.
pub async fn detail(
    State(console): State<Console>,
    who: SignedIn,
    Path(plugin): Path<String>,
    Query(flash): Query<Flash>,
) -> Result<Response, PageError> {
    let plugin = plugin_name(&plugin)?;
    let (record, owners) = load(&console, &who, &plugin).await?;
    let done = match flash.done.as_deref() {
        Some("yanked") => Some(
            "The version was yanked. Alliances that run it keep it; no one can newly install it.",
        ),
        Some("added") => Some("The owner was added."),
        Some("already") => Some("They were an owner already."),
        Some("removed") => Some("The owner was removed."),
        _ => None,
    };
    render_plugin(
        &console,
        &who,
        &record,
        &owners,
        String::new(),
        Vec::new(),
        done,
        StatusCode::OK,
    )
    .await
}

/// `POST /console/plugins/{plugin}/versions/{version}/yank`, as
/// `POST /api/v1/plugins/{plugin}/versions/{version}/yank`.
pub async fn yank(
    State(console): State<Console>,
    who: SignedIn,
    req: Req,
    Path((plugin, version)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let plugin = plugin_name(&plugin)?;
    let api_path = format!(
        "/api/v1/plugins/{plugin}/versions/{}/yank",
        urlencoding(&version)
    );
    let console_ref = &console;
    let principal = &who.principal;
    let (plugin_ref, version_ref) = (&plugin, &version);
    let outcome = act::write(
        &console,
        &who,
        &req,
        Method::POST,
        YANK,
        &api_path,
        None,
        |_| async move {
            let actor = ops::actor(&console_ref.app.authz, principal);
            ops::yank(&console_ref.app.store, actor, plugin_ref, version_ref).await?;
            Ok(((), StatusCode::OK))
        },
    )
    .await?;
    outcome.map_err(PageError::from)?;
    Ok(Redirect::to(&format!("{}/plugins/{plugin}?done=yanked", crate::PREFIX)).into_response())
}

/// An operation's refusal beside the owners form, or as a page when it is not about the
/// form's content (not an owner, no such plugin).
fn owner_errors(e: ApiError) -> Result<Vec<FormError>, PageError> {
    match e.status() {
        StatusCode::FORBIDDEN | StatusCode::NOT_FOUND if e.errors().is_empty() => {
            Err(PageError::from(e))
        }
        _ if e.errors().is_empty() => Ok(vec![FormError::general(sentence(e.detail()))]),
        // The detail says what is wrong with the subject in full.
        _ => Ok(vec![FormError::at("subject", sentence(e.detail()))]),
    }
}

/// `POST /console/plugins/{plugin}/owners`: adds a co-owner, as
/// `PUT /api/v1/plugins/{plugin}/owners/{subject}`.
pub async fn add_owner(
    State(console): State<Console>,
    who: SignedIn,
    req: Req,
    Path(plugin): Path<String>,
    fields: FormFields,
) -> Result<Response, PageError> {
    let plugin = plugin_name(&plugin)?;
    let subject = fields.get("subject").unwrap_or_default().trim().to_string();
    let outcome = if subject.is_empty() {
        // Nothing to name in the API's path: refused before acting, with the same
        // decision asked so a refusal shows as one.
        act::read(&console, &who, OWNERS, None).await?;
        Err(ApiError::validation(
            "Enter the subject of the new owner",
            Vec::new(),
        ))
    } else {
        let api_path = format!("/api/v1/plugins/{plugin}/owners/{}", urlencoding(&subject));
        let console_ref = &console;
        let principal = &who.principal;
        let (plugin_ref, subject_ref) = (&plugin, &subject);
        act::write(
            &console,
            &who,
            &req,
            Method::PUT,
            OWNER,
            &api_path,
            None,
            |_| async move {
                let actor = ops::actor(&console_ref.app.authz, principal);
                let added = ops::add_owner(
                    &console_ref.app.authz,
                    &console_ref.app.store,
                    actor,
                    plugin_ref,
                    subject_ref,
                )
                .await?;
                Ok((
                    added,
                    if added {
                        StatusCode::CREATED
                    } else {
                        StatusCode::OK
                    },
                ))
            },
        )
        .await?
    };
    match outcome {
        Ok(added) => Ok(Redirect::to(&format!(
            "{}/plugins/{plugin}?done={}",
            crate::PREFIX,
            if added { "added" } else { "already" }
        ))
        .into_response()),
        Err(e) => {
            let errors = if subject.is_empty() {
                vec![FormError::at(
                    "subject",
                    "Enter the subject of the new owner",
                )]
            } else {
                owner_errors(e)?
            };
            let (record, owners) = load(&console, &who, &plugin).await?;
            render_plugin(
                &console,
                &who,
                &record,
                &owners,
                subject,
                errors,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

/// `POST /console/plugins/{plugin}/owners/remove`: removes an owner, as
/// `DELETE /api/v1/plugins/{plugin}/owners/{subject}`.
pub async fn remove_owner(
    State(console): State<Console>,
    who: SignedIn,
    req: Req,
    Path(plugin): Path<String>,
    fields: FormFields,
) -> Result<Response, PageError> {
    let plugin = plugin_name(&plugin)?;
    let subject = fields.get("subject").unwrap_or_default().to_string();
    let api_path = format!("/api/v1/plugins/{plugin}/owners/{}", urlencoding(&subject));
    let console_ref = &console;
    let principal = &who.principal;
    let (plugin_ref, subject_ref) = (&plugin, &subject);
    let outcome = act::write(
        &console,
        &who,
        &req,
        Method::DELETE,
        OWNER,
        &api_path,
        None,
        |_| async move {
            let actor = ops::actor(&console_ref.app.authz, principal);
            ops::remove_owner(&console_ref.app.store, actor, plugin_ref, subject_ref).await?;
            Ok(((), StatusCode::OK))
        },
    )
    .await?;
    match outcome {
        Ok(()) => Ok(
            Redirect::to(&format!("{}/plugins/{plugin}?done=removed", crate::PREFIX))
                .into_response(),
        ),
        Err(e) => {
            let errors = owner_errors(e)?;
            let (record, owners) = load(&console, &who, &plugin).await?;
            render_plugin(
                &console,
                &who,
                &record,
                &owners,
                String::new(),
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
    fn an_owner_sees_yank_and_remove_only_when_they_can_work() {
        let views = crate::render::Views::new().unwrap();
        let chrome = crate::render::Chrome::public("bins");
        let version = |v: &str, yanked: bool| context! { version => v, published => "now", signed_by => None::<String>, yanked => yanked };
        let owner =
            |s: &str| context! { subject => s, added_by => s, added => "now", you => false };
        let render = |owners: Vec<minijinja::Value>, can: bool| {
            views
                .render(
                    "owners_plugin.html",
                    &chrome,
                    context! {
                        name => "bins",
                        versions => vec![version("1.0.0", true), version("1.1.0", false)],
                        removable => owners.len() > 1,
                        owners => owners,
                        can_yank => can,
                        can_manage_owners => can,
                    },
                )
                .unwrap()
        };
        let html = render(vec![owner("token:a"), owner("token:b")], true);
        assert_eq!(
            html.matches("/yank\"").count(),
            1,
            "only the available version: {html}"
        );
        assert!(html.contains(r#"action="/console/plugins/bins/versions/1.1.0/yank""#));
        assert_eq!(
            html.matches(r#"action="/console/plugins/bins/owners/remove""#)
                .count(),
            2
        );
        assert!(html.contains(r#"action="/console/plugins/bins/owners""#));
        let html = render(vec![owner("token:a")], true);
        assert!(!html.contains("owners/remove"));
        assert!(html.contains("always has at least one owner"));
        let html = render(vec![owner("token:a"), owner("token:b")], false);
        assert!(
            !html.contains("yank")
                && !html.contains("owners/remove")
                && !html.contains("Add an owner")
        );
    }

    #[test]
    fn messages_start_as_sentences() {
        assert_eq!(
            sentence("no identity provider \"x\" is configured"),
            "No identity provider \"x\" is configured"
        );
        assert_eq!(sentence(""), "");
    }
}
