//! Retention: how long each install keeps its plugin's data, and the job that removes what
//! is past it.
//!
//! A manifest may declare how long its key-value entries (after their last write) and its
//! events are kept (`[data_protection] kv_retention_days`, `event_retention_days`); an
//! alliance's administrators may keep an install's data for less (`put_install`), never
//! more. Key-value entries may also carry their own time to live. The job runs on every
//! replica each `retention.interval_secs`; each run is claimed once across replicas
//! (`MaintenanceRuns::claim` on the interval's slot), and each tenant's removals are
//! recorded on its audit chain as `retention.remove` with their counts.

use guildhall_domain::PluginName;
use guildhall_domain::manifest::{MAX_RETENTION_DAYS, Manifest};
use guildhall_store::{InstallRetention, NewAuditEntry, Removed, Store, TenantScope};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{Error, FieldProblem};

/// The job's name in `maintenance_runs`.
pub const JOB: &str = "retention";

/// `[retention]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Whether this replica takes part in the retention job (each run happens once across
    /// the replicas that do).
    pub enabled: bool,
    /// How often the job runs, in seconds.
    pub interval_secs: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_secs: 3600,
        }
    }
}

impl RetentionConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=86_400).contains(&self.interval_secs) {
            return Err(format!(
                "retention.interval_secs must be 1 to 86400, not {}",
                self.interval_secs
            ));
        }
        Ok(())
    }
}

/// The shorter of a manifest's retention and an install's own; `None` when neither sets one.
pub fn effective(manifest_days: Option<u32>, install_days: Option<u32>) -> Option<u32> {
    match (manifest_days, install_days) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// An install's retention as its administrators see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RetentionView {
    /// What the installed version's manifest declares (days; absent: kept until deleted).
    pub manifest_kv_days: Option<u32>,
    /// What the installed version's manifest declares for events.
    pub manifest_event_days: Option<u32>,
    /// The install's own setting, if its administrators made one.
    pub install: Option<InstallRetention>,
    /// What the retention job applies: the shorter of the two.
    pub kv_days: Option<u32>,
    /// What the retention job applies to events.
    pub event_days: Option<u32>,
}

async fn installed_manifest(
    store: &Store,
    scope: &TenantScope,
    plugin: &PluginName,
) -> Result<Manifest, Error> {
    let install = store
        .installs(scope)
        .get(plugin)
        .await?
        .ok_or_else(|| Error::NotFound(format!("{plugin} is not installed")))?;
    let version = store
        .catalogue()
        .version(plugin, &install.version)
        .await?
        .ok_or_else(|| {
            Error::NotFound(format!("no version {} of plugin {plugin}", install.version))
        })?;
    Ok(version.manifest)
}

fn view(manifest: &Manifest, install: Option<InstallRetention>) -> RetentionView {
    let declared = &manifest.data_protection;
    RetentionView {
        manifest_kv_days: declared.kv_retention_days,
        manifest_event_days: declared.event_retention_days,
        kv_days: effective(
            declared.kv_retention_days,
            install.as_ref().and_then(|i| i.kv_days),
        ),
        event_days: effective(
            declared.event_retention_days,
            install.as_ref().and_then(|i| i.event_days),
        ),
        install,
    }
}

/// An install's retention: the manifest's, the install's own and what applies.
pub async fn get_install(
    store: &Store,
    scope: &TenantScope,
    plugin: &PluginName,
) -> Result<RetentionView, Error> {
    let manifest = installed_manifest(store, scope, plugin).await?;
    let install = store.retention(scope).get(plugin).await?;
    Ok(view(&manifest, install))
}

/// Sets an install's own retention, which may only shorten its manifest's (both `None`
/// removes it). Returns whether one was set before, and the retention now.
pub async fn put_install(
    store: &Store,
    scope: &TenantScope,
    plugin: &PluginName,
    kv_days: Option<u32>,
    event_days: Option<u32>,
    actor: &str,
) -> Result<(bool, RetentionView), Error> {
    let manifest = installed_manifest(store, scope, plugin).await?;
    let declared = &manifest.data_protection;
    let mut problems = Vec::new();
    for (field, days, limit) in [
        ("kv_days", kv_days, declared.kv_retention_days),
        ("event_days", event_days, declared.event_retention_days),
    ] {
        let Some(days) = days else { continue };
        if !(1..=MAX_RETENTION_DAYS).contains(&days) {
            problems.push(FieldProblem {
                field: field.to_string(),
                reason: format!("must be 1 to {MAX_RETENTION_DAYS} days"),
            });
        } else if let Some(limit) = limit
            && days > limit
        {
            problems.push(FieldProblem {
                field: field.to_string(),
                reason: format!(
                    "{plugin} {} keeps this data for {limit} days; an install may keep it for \
                     less, not more",
                    manifest.version
                ),
            });
        }
    }
    if !problems.is_empty() {
        return Err(Error::Invalid {
            detail: "the retention is not valid".to_string(),
            fields: problems,
        });
    }
    let existed = store
        .retention(scope)
        .put(plugin, kv_days, event_days, actor)
        .await?;
    let install = store.retention(scope).get(plugin).await?;
    Ok((existed, view(&manifest, install)))
}

/// What one run of the job removed in each tenant that had anything to remove.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunSummary {
    /// Tenant id to what was removed there.
    pub tenants: std::collections::BTreeMap<String, Removed>,
    /// Installs that could not be looked at (their version is missing), with why.
    pub skipped: Vec<String>,
}

/// Runs the job once for the time slot `now` falls in, if no replica has: removes expired
/// key-value entries and each install's data past its retention in every tenant. `None`
/// when another replica holds this slot.
pub async fn run_once(
    store: &Store,
    runner: &str,
    interval_secs: u64,
    now: OffsetDateTime,
) -> Result<Option<RunSummary>, Error> {
    let interval = interval_secs.max(1) as i64;
    let slot = now.unix_timestamp().div_euclid(interval) * interval;
    if !store.maintenance_runs().claim(JOB, slot, runner).await? {
        return Ok(None);
    }
    let result = remove_past_retention(store, now).await;
    let outcome = match &result {
        Ok(summary) => serde_json::to_string(summary).unwrap_or_default(),
        Err(e) => format!("failed: {e}"),
    };
    store.maintenance_runs().finish(JOB, slot, &outcome).await?;
    result.map(Some)
}

/// [`run_once`] for the slot of the present moment.
pub async fn run_now(
    store: &Store,
    runner: &str,
    interval_secs: u64,
) -> Result<Option<RunSummary>, Error> {
    run_once(store, runner, interval_secs, OffsetDateTime::now_utc()).await
}

async fn remove_past_retention(store: &Store, now: OffsetDateTime) -> Result<RunSummary, Error> {
    let mut summary = RunSummary::default();
    for tenant in store.tenants().list().await? {
        let Some(scope) = store.scope(&tenant.id).await? else {
            continue;
        };
        // One tenant's failure (a statement timeout on a large first removal, the tenant
        // deleted meanwhile) is reported and the others still get their retention.
        match remove_in_tenant(store, &scope, now, &mut summary.skipped).await {
            Ok(removed) if removed.is_empty() => {}
            Ok(removed) => {
                tracing::info!(tenant = %tenant.id, removed = ?removed, "retention removed data");
                summary.tenants.insert(tenant.id.to_string(), removed);
            }
            Err(e) => {
                tracing::warn!(tenant = %tenant.id, error = %e, "retention failed in a tenant");
                summary.skipped.push(format!("{}: {e}", tenant.id));
            }
        }
    }
    Ok(summary)
}

/// Removes what is past its time in one tenant and records it on the tenant's chain.
async fn remove_in_tenant(
    store: &Store,
    scope: &TenantScope,
    now: OffsetDateTime,
    skipped: &mut Vec<String>,
) -> Result<Removed, Error> {
    let tenant = scope.tenant();
    let retention = store.retention(scope);
    let mut removed = retention.remove_expired_kv().await?;
    for install in store.installs(scope).list().await? {
        let plugin = &install.plugin;
        let Some(version) = store.catalogue().version(plugin, &install.version).await? else {
            skipped.push(format!(
                "{tenant}/{plugin}: version {} is missing",
                install.version
            ));
            continue;
        };
        let own = retention.get(plugin).await?;
        let declared = &version.manifest.data_protection;
        let before = |days: Option<u32>| days.map(|d| now - time::Duration::days(i64::from(d)));
        let kv_before = before(effective(
            declared.kv_retention_days,
            own.as_ref().and_then(|o| o.kv_days),
        ));
        let events_before = before(effective(
            declared.event_retention_days,
            own.as_ref().and_then(|o| o.event_days),
        ));
        if kv_before.is_some() || events_before.is_some() {
            removed.add(
                retention
                    .remove_older(plugin, kv_before, events_before)
                    .await?,
            );
        }
    }
    removed.kv_entries.retain(|_, n| *n > 0);
    removed.events.retain(|_, n| *n > 0);
    if !removed.is_empty() {
        store
            .audit(scope)
            .append(NewAuditEntry {
                actor: "platform",
                action: "retention.remove",
                object: "retention",
                outcome: "removed",
                request_id: "retention",
                detail: serde_json::to_value(&removed).unwrap_or_default(),
            })
            .await?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::effective;

    #[test]
    fn the_shorter_retention_applies() {
        assert_eq!(effective(None, None), None);
        assert_eq!(effective(Some(30), None), Some(30));
        assert_eq!(effective(None, Some(7)), Some(7));
        assert_eq!(effective(Some(30), Some(7)), Some(7));
        assert_eq!(effective(Some(7), Some(30)), Some(7));
    }
}
