//! Installing, upgrading, rolling back and uninstalling a plugin in a tenant.
//!
//! The store bumps the platform revision in the transaction of every install change and
//! records it once committed, so the gateway of this process serves the change from its
//! next request and other replicas from their next poll; no caller has to remember to
//! refresh anything.

use std::future::Future;

use guildhall_domain::manifest::Manifest;
use guildhall_domain::{CouncilId, PluginName};
use guildhall_store::{AllCouncils, Applied, InstallCouncils, InstallRecord, Store, TenantScope};
use serde_json::Value;

use crate::{Error, FieldProblem};

/// What serves installs: prepares (compiles) a version before an install switches to it,
/// so the switch is instant and a component that cannot run is refused here rather than on
/// a citizen's first call.
pub trait Serving: Sync {
    /// Prepares `manifest`'s version for serving.
    fn prepare(&self, manifest: &Manifest) -> impl Future<Output = Result<(), Error>> + Send;
}

/// An install as asked for: a version, `"all"` or a list of council ids, and settings.
#[derive(Debug, Clone, Copy)]
pub struct InstallRequest<'a> {
    /// The version to run.
    pub version: &'a str,
    /// `"all"` or a non-empty list of the tenant's council ids.
    pub councils: &'a Value,
    /// Settings, checked against the manifest's `[config]` declarations.
    pub config: &'a Value,
}

/// Installs `plugin` in the tenant, or switches its install to another version, councils or
/// configuration. A yanked version can be kept but not newly installed.
pub async fn put(
    store: &Store,
    serving: &impl Serving,
    scope: &TenantScope,
    plugin: &PluginName,
    request: InstallRequest<'_>,
) -> Result<(Applied, InstallRecord), Error> {
    let known = store.councils(scope).ids().await?;
    let councils = parse_councils(request.councils, &known).map_err(|fields| Error::Invalid {
        detail: "invalid councils".to_string(),
        fields,
    })?;
    let version = store
        .catalogue()
        .version(plugin, request.version)
        .await?
        .ok_or_else(|| {
            Error::field(
                "version",
                "not published",
                format!(
                    "no version {} of plugin {plugin} in the catalogue",
                    request.version
                ),
            )
        })?;
    let current = store.installs(scope).get(plugin).await?;
    if version.yanked && current.as_ref().map(|c| c.version.as_str()) != Some(request.version) {
        return Err(Error::Conflict(format!(
            "version {} of {plugin} is yanked and cannot be newly installed",
            request.version
        )));
    }
    let config = version
        .manifest
        .check_config(request.config)
        .map_err(|errors| Error::Invalid {
            detail: "the configuration does not match the plugin's declarations".to_string(),
            fields: errors
                .into_iter()
                .map(|e| FieldProblem {
                    field: e.field,
                    reason: e.reason,
                })
                .collect(),
        })?;
    serving.prepare(&version.manifest).await?;
    Ok(store
        .installs(scope)
        .put(plugin, &version.manifest, &councils, &config)
        .await?)
}

/// Uninstalls `plugin`; its key-value data in the tenant is kept unless `purge_data`.
pub async fn delete(
    store: &Store,
    scope: &TenantScope,
    plugin: &PluginName,
    purge_data: bool,
) -> Result<(), Error> {
    if store.installs(scope).delete(plugin, purge_data).await? {
        Ok(())
    } else {
        Err(Error::NotFound(format!(
            "{plugin} is not installed in {}",
            scope.tenant()
        )))
    }
}

fn parse_councils(
    value: &Value,
    known: &[CouncilId],
) -> Result<InstallCouncils, Vec<FieldProblem>> {
    let err = |field: String, reason: String| FieldProblem { field, reason };
    match value {
        Value::String(s) if s == "all" => Ok(InstallCouncils::All(AllCouncils::All)),
        Value::Array(items) if !items.is_empty() => {
            let mut councils = Vec::new();
            let mut errors = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let field = format!("councils[{i}]");
                match item.as_str().map(CouncilId::parse) {
                    Some(Ok(id)) if !known.contains(&id) => {
                        errors.push(err(field, format!("no council {id} in this tenant")))
                    }
                    Some(Ok(id)) if councils.contains(&id) => {
                        errors.push(err(field, format!("{id} is listed twice")))
                    }
                    Some(Ok(id)) => councils.push(id),
                    Some(Err(e)) => errors.push(err(field, e.to_string())),
                    None => errors.push(err(field, "must be a council id".into())),
                }
            }
            if errors.is_empty() {
                Ok(InstallCouncils::Some(councils))
            } else {
                Err(errors)
            }
        }
        _ => Err(vec![err(
            "councils".into(),
            "must be \"all\" or a non-empty list of council ids".into(),
        )]),
    }
}
