//! An alliance's services: install, upgrade, roll back, configure and uninstall, with the
//! configuration form generated from the version's `[config]` declarations and checked on
//! the server by the same operation as `PUT /api/v1/tenants/{tenant}/installs/{plugin}`.

use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use guildhall_api::ApiError;
use guildhall_domain::PluginName;
use guildhall_domain::manifest::ConfigType;
use guildhall_operations::installs::InstallRequest;
use guildhall_store::{
    Applied, InstallCouncils, InstallRecord, PluginRecord, TenantScope, VersionRecord,
};
use minijinja::context;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Console;
use crate::act::{self, Req, Section};
use crate::pages::{Flash, FormError, error_for, when};
use crate::render::{PageError, page};
use crate::session::{FormFields, SignedIn};

const LIST: &str = "/api/v1/tenants/{tenant}/installs";
const PUT: &str = "/api/v1/tenants/{tenant}/installs/{plugin}";

#[derive(Debug, Serialize)]
struct InstallRow {
    plugin: String,
    version: String,
    councils: String,
    updated: String,
}

fn councils_text(councils: &InstallCouncils) -> String {
    match councils {
        InstallCouncils::All(_) => "All councils".to_string(),
        InstallCouncils::Some(ids) => ids
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// `GET /console/t/{tenant}/installs`.
pub async fn list(
    State(console): State<Console>,
    who: SignedIn,
    Path(tenant): Path<String>,
    Query(flash): Query<Flash>,
) -> Result<Response, PageError> {
    let scope = act::read_tenant(&console, &who, LIST, &tenant).await?;
    let installs = console.app.store.installs(&scope).list().await?;
    let rows: Vec<InstallRow> = installs
        .iter()
        .map(|i| InstallRow {
            plugin: i.plugin.to_string(),
            version: i.version.clone(),
            councils: councils_text(&i.councils),
            updated: when(&i.updated_at),
        })
        .collect();
    let can_write = act::may(&console, &who, Method::PUT, PUT, Some(scope.tenant()));
    let done = match flash.done.as_deref() {
        Some("uninstalled") => Some("The service was uninstalled."),
        _ => None,
    };
    let chrome = act::chrome(
        &console,
        &who,
        "Services",
        Some(scope.tenant()),
        Section::Tenant("installs"),
    );
    Ok(page(
        StatusCode::OK,
        "installs.html",
        &chrome,
        context! { tenant => tenant, installs => rows, can_write => can_write, done => done },
    ))
}

#[derive(Debug, Deserialize)]
pub struct FormQuery {
    version: Option<String>,
    done: Option<String>,
}

#[derive(Debug, Serialize)]
struct Choice {
    value: String,
    text: String,
    checked: bool,
    hint: Option<String>,
    selected: bool,
}

#[derive(Debug, Serialize)]
struct ConfigInput {
    /// The form field's name, `config.<key>`.
    name: String,
    /// The element's id, `config-<key>`.
    id: String,
    key: String,
    kind: &'static str,
    required: bool,
    description: Option<String>,
    value: String,
    error: Option<String>,
}

/// What the install form shows and was sent.
struct FormState<'a> {
    version: &'a VersionRecord,
    all_councils: bool,
    chosen: Vec<String>,
    config: Map<String, Value>,
    /// Raw text of the config fields as typed, kept when they did not parse.
    typed: Map<String, Value>,
    errors: Vec<FormError>,
}

fn plugin_name(plugin: &str) -> Result<PluginName, PageError> {
    PluginName::parse(plugin.to_string()).map_err(|_| PageError::not_found())
}

async fn load(
    console: &Console,
    scope: &TenantScope,
    plugin: &PluginName,
) -> Result<(PluginRecord, Option<InstallRecord>), PageError> {
    let record = console
        .app
        .store
        .catalogue()
        .get(plugin)
        .await?
        .ok_or_else(PageError::not_found)?;
    let current = console
        .app
        .store
        .installs(scope)
        .list()
        .await?
        .into_iter()
        .find(|i| i.plugin == *plugin);
    Ok((record, current))
}

/// The version just below `current` that can be installed, for "roll back".
fn previous<'a>(record: &'a PluginRecord, current: &str) -> Option<&'a VersionRecord> {
    let current = semver::Version::parse(current).ok()?;
    record
        .versions
        .iter()
        .filter(|v| !v.yanked)
        .filter(|v| semver::Version::parse(&v.version).is_ok_and(|x| x < current))
        .max_by_key(|v| semver::Version::parse(&v.version).ok())
}

#[allow(clippy::too_many_arguments)]
async fn render_form(
    console: &Console,
    who: &SignedIn,
    scope: &TenantScope,
    record: &PluginRecord,
    current: Option<&InstallRecord>,
    form: FormState<'_>,
    status: StatusCode,
    done: Option<&str>,
) -> Result<Response, PageError> {
    let tenant = scope.tenant().to_string();
    let councils = console.app.store.councils(scope).list().await?;
    let versions: Vec<Choice> = record
        .versions
        .iter()
        .filter(|v| !v.yanked || current.is_some_and(|c| c.version == v.version))
        .map(|v| Choice {
            value: v.version.clone(),
            text: v.version.clone(),
            checked: false,
            hint: None,
            selected: v.version == form.version.version,
        })
        .collect();
    let council_choices: Vec<Choice> = councils
        .iter()
        .map(|c| Choice {
            value: c.id.to_string(),
            text: format!("{} ({})", c.name, c.id),
            checked: form.chosen.iter().any(|x| *x == c.id.as_str()),
            hint: None,
            selected: false,
        })
        .collect();
    let mode = vec![
        Choice {
            value: "all".into(),
            text: "All councils, including councils that join later".into(),
            checked: form.all_councils,
            hint: None,
            selected: false,
        },
        Choice {
            value: "some".into(),
            text: "Only the councils chosen below".into(),
            checked: !form.all_councils,
            hint: None,
            selected: false,
        },
    ];
    let inputs: Vec<ConfigInput> = form
        .version
        .manifest
        .config
        .iter()
        .map(|(key, field)| {
            let id = format!("config-{key}");
            let value = form
                .typed
                .get(key)
                .or_else(|| form.config.get(key))
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                })
                .unwrap_or_default();
            ConfigInput {
                name: format!("config.{key}"),
                error: error_for(&form.errors, &id).map(str::to_string),
                id,
                key: key.clone(),
                kind: match field.kind {
                    ConfigType::String => "string",
                    ConfigType::Integer => "integer",
                    ConfigType::Boolean => "boolean",
                    ConfigType::Json => "json",
                },
                required: field.required,
                description: field.description.clone(),
                value,
            }
        })
        .collect();
    let upgrade = current.and_then(|c| {
        record
            .latest()
            .filter(|l| {
                semver::Version::parse(&l.version).ok() > semver::Version::parse(&c.version).ok()
            })
            .map(|l| l.version.clone())
    });
    let rollback = current.and_then(|c| previous(record, &c.version).map(|v| v.version.clone()));
    let mut chrome = act::chrome(
        console,
        who,
        if current.is_some() {
            format!("Change {}", record.name)
        } else {
            format!("Install {}", record.name)
        },
        Some(scope.tenant()),
        Section::Tenant("installs"),
    );
    chrome.has_errors = !form.errors.is_empty();
    Ok(page(
        status,
        "install_form.html",
        &chrome,
        context! {
            tenant => tenant,
            plugin => record.name.to_string(),
            description => record.description.clone(),
            current => current.map(|c| context! {
                version => c.version.clone(),
                councils => councils_text(&c.councils),
                updated => when(&c.updated_at),
            }),
            version => form.version.version.clone(),
            yanked => form.version.yanked,
            versions => versions,
            mode => mode,
            councils => council_choices,
            inputs => inputs,
            errors => form.errors,
            councils_error => error_for(&form.errors, "councils"),
            version_error => error_for(&form.errors, "version"),
            upgrade => upgrade,
            rollback => rollback,
            done => done,
        },
    ))
}

/// `GET /console/t/{tenant}/installs/{plugin}`: the install form, for a new install or a
/// change to an existing one.
pub async fn form(
    State(console): State<Console>,
    who: SignedIn,
    Path((tenant, plugin)): Path<(String, String)>,
    Query(query): Query<FormQuery>,
) -> Result<Response, PageError> {
    let scope = act::read_tenant(&console, &who, LIST, &tenant).await?;
    if !act::may(&console, &who, Method::PUT, PUT, Some(scope.tenant())) {
        return Err(PageError::forbidden(
            "Your role in this alliance does not allow installing or changing services.",
        ));
    }
    let plugin = plugin_name(&plugin)?;
    let (record, current) = load(&console, &scope, &plugin).await?;
    let wanted = query
        .version
        .as_deref()
        .or(current.as_ref().map(|c| c.version.as_str()));
    let version = match wanted {
        Some(v) => record.versions.iter().find(|x| x.version == v),
        None => record.latest(),
    }
    .or_else(|| record.latest())
    .ok_or_else(|| PageError::bad_request("This plugin has no version that can be installed."))?;
    let (all_councils, chosen) = match current.as_ref().map(|c| &c.councils) {
        Some(InstallCouncils::Some(ids)) => (false, ids.iter().map(|c| c.to_string()).collect()),
        _ => (true, Vec::new()),
    };
    let config = current
        .as_ref()
        .and_then(|c| c.config.as_object().cloned())
        .unwrap_or_default();
    let done = match query.done.as_deref() {
        Some("installed") => Some("The service was installed."),
        Some("saved") => Some("Your changes were saved."),
        _ => None,
    };
    render_form(
        &console,
        &who,
        &scope,
        &record,
        current.as_ref(),
        FormState {
            version,
            all_councils,
            chosen,
            config,
            typed: Map::new(),
            errors: Vec::new(),
        },
        StatusCode::OK,
        done,
    )
    .await
}

/// The element id a problem's field names, for the error summary's link.
fn field_id(field: &str) -> String {
    if let Some(key) = field.strip_prefix("config.") {
        format!("config-{}", key.split(['.', '[']).next().unwrap_or(key))
    } else if field.starts_with("councils") {
        "councils".to_string()
    } else if field == "config" {
        "version".to_string()
    } else {
        field.to_string()
    }
}

fn problem_errors(e: &ApiError) -> Vec<FormError> {
    if e.errors().is_empty() {
        return vec![FormError::general(e.detail().to_string())];
    }
    e.errors()
        .iter()
        .map(|f| {
            let id = field_id(&f.field);
            let what = f.field.strip_prefix("config.").unwrap_or(&f.field);
            FormError::at(id, format!("{what}: {}", f.reason))
        })
        .collect()
}

/// `POST /console/t/{tenant}/installs/{plugin}`: install or change, through the same
/// decision, operation and audit entry as the API.
pub async fn save(
    State(console): State<Console>,
    who: SignedIn,
    req: Req,
    Path((tenant, plugin)): Path<(String, String)>,
    fields: FormFields,
) -> Result<Response, PageError> {
    let plugin = plugin_name(&plugin)?;
    let version = fields.get("version").unwrap_or_default().to_string();
    let all = fields.get("councils") != Some("some");
    let chosen: Vec<String> = fields
        .all("council")
        .into_iter()
        .map(str::to_string)
        .collect();
    let mut errors = Vec::new();
    if !all && chosen.is_empty() {
        errors.push(FormError::at(
            "councils",
            "Select at least one council, or choose all councils",
        ));
    }
    // Typed settings: empty optional fields are left out, so their defaults apply.
    let mut config = Map::new();
    let mut typed = Map::new();
    let version_record = console
        .app
        .store
        .catalogue()
        .version(&plugin, &version)
        .await?;
    if let Some(v) = &version_record {
        for (key, field) in &v.manifest.config {
            let raw = fields.get(&format!("config.{key}")).unwrap_or_default();
            typed.insert(key.clone(), Value::String(raw.to_string()));
            if raw.trim().is_empty() {
                continue;
            }
            let id = format!("config-{key}");
            let parsed = match field.kind {
                ConfigType::String => Ok(Value::String(raw.to_string())),
                ConfigType::Integer => raw
                    .trim()
                    .parse::<i64>()
                    .map(Value::from)
                    .map_err(|_| format!("{key} must be a whole number, like 10")),
                ConfigType::Boolean => match raw {
                    "true" => Ok(Value::Bool(true)),
                    "false" => Ok(Value::Bool(false)),
                    _ => Err(format!("Select yes or no for {key}")),
                },
                ConfigType::Json => {
                    serde_json::from_str(raw).map_err(|e| format!("{key} must be valid JSON: {e}"))
                }
            };
            match parsed {
                Ok(value) => {
                    config.insert(key.clone(), value);
                }
                Err(text) => errors.push(FormError::at(id, text)),
            }
        }
    }
    let councils_value = if all {
        Value::String("all".into())
    } else {
        Value::Array(chosen.iter().cloned().map(Value::String).collect())
    };
    let api_path = format!("/api/v1/tenants/{tenant}/installs/{plugin}");
    let config_value = Value::Object(config.clone());
    let outcome = if errors.is_empty() {
        let console_ref = &console;
        let plugin_ref = &plugin;
        act::write(
            &console,
            &who,
            &req,
            Method::PUT,
            PUT,
            &api_path,
            Some(&tenant),
            |scope| async move {
                let scope = scope.ok_or_else(|| ApiError::not_found("no tenant"))?;
                let (applied, _) = guildhall_operations::installs::put(
                    &console_ref.app.store,
                    &console_ref.app.gateway,
                    &scope,
                    plugin_ref,
                    InstallRequest {
                        version: &version,
                        councils: &councils_value,
                        config: &config_value,
                    },
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
        .await?
    } else {
        // Refused before the operation; the decision is still asked, so a person who may
        // not install sees the refusal rather than the form's errors.
        let scope = act::read_tenant(&console, &who, LIST, &tenant).await?;
        if !act::may(&console, &who, Method::PUT, PUT, Some(scope.tenant())) {
            return Err(PageError::forbidden(
                "Your role in this alliance does not allow installing or changing services.",
            ));
        }
        Err(ApiError::bad_request("the form has errors"))
    };
    match outcome {
        Ok(applied) => {
            let done = if applied == Applied::Created {
                "installed"
            } else {
                "saved"
            };
            Ok(Redirect::to(&format!(
                "{}/t/{tenant}/installs/{plugin}?done={done}",
                crate::PREFIX
            ))
            .into_response())
        }
        Err(e) => {
            if errors.is_empty() {
                errors = problem_errors(&e);
            }
            let scope = act::read_tenant(&console, &who, LIST, &tenant).await?;
            let (record, current) = load(&console, &scope, &plugin).await?;
            let shown = version_record
                .as_ref()
                .and_then(|v| record.versions.iter().find(|x| x.version == v.version))
                .or_else(|| record.latest())
                .ok_or_else(PageError::not_found)?;
            if version_record.is_none() {
                errors.retain(|e| e.field.as_deref() != Some("version"));
                errors.insert(
                    0,
                    FormError::at("version", "Select a version that has been published"),
                );
            }
            render_form(
                &console,
                &who,
                &scope,
                &record,
                current.as_ref(),
                FormState {
                    version: shown,
                    all_councils: all,
                    chosen,
                    config,
                    typed,
                    errors,
                },
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
            )
            .await
        }
    }
}

/// `GET /console/t/{tenant}/installs/{plugin}/uninstall`: are you sure?
pub async fn confirm_uninstall(
    State(console): State<Console>,
    who: SignedIn,
    Path((tenant, plugin)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let scope = act::read_tenant(&console, &who, LIST, &tenant).await?;
    if !act::may(&console, &who, Method::DELETE, PUT, Some(scope.tenant())) {
        return Err(PageError::forbidden(
            "Your role in this alliance does not allow uninstalling services.",
        ));
    }
    let plugin = plugin_name(&plugin)?;
    let (_, current) = load(&console, &scope, &plugin).await?;
    let current = current.ok_or_else(PageError::not_found)?;
    let chrome = act::chrome(
        &console,
        &who,
        format!("Uninstall {plugin}"),
        Some(scope.tenant()),
        Section::Tenant("installs"),
    );
    Ok(page(
        StatusCode::OK,
        "uninstall.html",
        &chrome,
        context! {
            tenant => tenant,
            plugin => plugin.to_string(),
            version => current.version,
            councils => councils_text(&current.councils),
        },
    ))
}

/// `POST /console/t/{tenant}/installs/{plugin}/uninstall`.
pub async fn uninstall(
    State(console): State<Console>,
    who: SignedIn,
    req: Req,
    Path((tenant, plugin)): Path<(String, String)>,
    fields: FormFields,
) -> Result<Response, PageError> {
    let plugin = plugin_name(&plugin)?;
    let purge = fields.get("purge_data") == Some("true");
    let api_path = if purge {
        format!("/api/v1/tenants/{tenant}/installs/{plugin}?purge_data=true")
    } else {
        format!("/api/v1/tenants/{tenant}/installs/{plugin}")
    };
    let console_ref = &console;
    let plugin_ref = &plugin;
    let outcome = act::write(
        &console,
        &who,
        &req,
        Method::DELETE,
        PUT,
        &api_path,
        Some(&tenant),
        |scope| async move {
            let scope = scope.ok_or_else(|| ApiError::not_found("no tenant"))?;
            guildhall_operations::installs::delete(
                &console_ref.app.store,
                &scope,
                plugin_ref,
                purge,
            )
            .await?;
            Ok(((), StatusCode::NO_CONTENT))
        },
    )
    .await?;
    outcome.map_err(PageError::from)?;
    Ok(Redirect::to(&format!(
        "{}/t/{tenant}/installs?done=uninstalled",
        crate::PREFIX
    ))
    .into_response())
}
