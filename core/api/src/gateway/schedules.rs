//! Plugins' scheduled work: each replica looks every `schedules.poll_interval_secs` for
//! schedules that fell due, claims each due time of each council in the database
//! (`ScheduleRuns::claim`: one replica wins, or takes over a run whose runner stopped) and
//! runs the plugin's `scheduled.run` with the same limits, share, metering and tracing as a
//! request. Due times missed while no replica ran are caught up only within
//! `schedules.catch_up_secs`, the latest one only.

use std::time::Duration;

use axum::http::StatusCode;
use guildhall_domain::manifest::{ScheduleDecl, due_times};
use guildhall_domain::{CouncilId, TenantId};
use guildhall_runtime::{CallContext, CallError, Caller};
use guildhall_store::{NewRun, RunState, TenantScope};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tracing::Instrument;

use super::Resolved;
use super::handler::{Where, record_outcome};
use crate::AppState;
use crate::error::ApiError;

/// The longest catch-up window: a week.
const MAX_CATCH_UP_SECS: u64 = 7 * 24 * 3600;

/// The most due times a window can hold: one a minute for a week.
const MAX_DUE_IN_WINDOW: usize = (MAX_CATCH_UP_SECS / 60) as usize + 1;

/// `[schedules]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulesConfig {
    /// Whether this replica runs plugins' schedules (every replica may: each due time runs
    /// once across them).
    pub enabled: bool,
    /// How often this replica looks for due schedules, in seconds.
    pub poll_interval_secs: u64,
    /// How far back a due time missed while no replica ran is still run, in seconds.
    pub catch_up_secs: u64,
}

impl Default for SchedulesConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            poll_interval_secs: 20,
            catch_up_secs: 3_600,
        }
    }
}

impl SchedulesConfig {
    /// Checks the values fit together.
    pub fn validate(&self) -> Result<(), String> {
        if self.poll_interval_secs == 0 || self.poll_interval_secs > 60 {
            return Err(
                "schedules.poll_interval_secs must be 1 to 60 (schedules are due by the minute)"
                    .into(),
            );
        }
        if !(60..=MAX_CATCH_UP_SECS).contains(&self.catch_up_secs) {
            return Err(format!(
                "schedules.catch_up_secs must be 60 to {MAX_CATCH_UP_SECS} (a week)"
            ));
        }
        Ok(())
    }
}

/// How one run ended, as the API reports it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RunOutcome {
    /// The run's id.
    pub id: String,
    /// The council it ran for.
    pub council: String,
    /// `ok` or `failed`.
    pub state: String,
    /// The plugin's error, or how the call failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

/// This replica's id in `schedule_runs.runner`.
fn runner_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "guildhall".to_string());
        let host: String = host.chars().take(40).collect();
        format!("{host}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
    })
}

/// Starts this replica's scheduler. When `stop` is cancelled it claims nothing more and
/// ends once the run in progress, if any, has finished.
pub fn spawn_scheduler(
    state: AppState,
    stop: tokio_util::sync::CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    let config = state.schedules.clone();
    if !config.enabled {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(config.poll_interval_secs));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = stop.cancelled() => return,
            }
            if let Err(e) = run_due(&state, &config, &stop).await {
                tracing::warn!(error = %e, "cannot look for due schedules");
            }
        }
    }))
}

/// One look for due schedules across every tenant. An install that cannot be resolved or
/// run now (its version fails to prepare, the database hiccups) is logged and skipped, so
/// it never holds up the others.
async fn run_due(
    state: &AppState,
    config: &SchedulesConfig,
    stop: &tokio_util::sync::CancellationToken,
) -> Result<(), ApiError> {
    let now = OffsetDateTime::now_utc();
    let window = now - time::Duration::seconds(config.catch_up_secs as i64);
    for tenant in state.store.tenants().list().await? {
        let scope = TenantScope::already_checked(tenant.id.clone());
        let installs = match state.store.installs(&scope).list().await {
            Ok(installs) => installs,
            Err(e) => {
                tracing::warn!(tenant = %tenant.id, error = %e, "cannot list installs for schedules");
                continue;
            }
        };
        for install in installs {
            if let Err(e) = run_install(state, &tenant.id, &install.plugin, window, now, stop).await
            {
                tracing::warn!(
                    tenant = %tenant.id,
                    plugin = %install.plugin,
                    error = %e,
                    "cannot run the install's due schedules"
                );
            }
        }
    }
    Ok(())
}

/// Runs one install's schedules due after `window` (and after it was installed).
async fn run_install(
    state: &AppState,
    tenant: &TenantId,
    plugin: &guildhall_domain::PluginName,
    window: OffsetDateTime,
    now: OffsetDateTime,
    stop: &tokio_util::sync::CancellationToken,
) -> Result<(), ApiError> {
    let Some(resolved) = state.gateway.resolve(tenant, plugin).await? else {
        return Ok(());
    };
    let manifest = resolved.prepared.manifest();
    let after = window.max(resolved.installed_at);
    for schedule in &manifest.schedules {
        let Ok(cron) = schedule.parsed() else {
            continue;
        };
        let Some(due) = due_times(&cron, after, now, MAX_DUE_IN_WINDOW).pop() else {
            continue;
        };
        for council in councils(&resolved) {
            if stop.is_cancelled() {
                return Ok(());
            }
            run(state, &resolved, &council, schedule, Some(due)).await?;
        }
    }
    Ok(())
}

/// The councils an install serves, in order.
fn councils(resolved: &Resolved) -> Vec<CouncilId> {
    let mut councils: Vec<CouncilId> = resolved
        .sites
        .keys()
        .filter(|c| resolved.serves(c))
        .cloned()
        .collect();
    councils.sort();
    councils
}

/// Runs `name` now for `council` (every council the install serves when `None`), as an
/// administrator asked: one run each, recorded like a due one.
pub(crate) async fn run_now(
    state: &AppState,
    tenant: &TenantId,
    plugin: &guildhall_domain::PluginName,
    name: &str,
    council: Option<&CouncilId>,
) -> Result<Vec<RunOutcome>, ApiError> {
    let resolved = state
        .gateway
        .resolve(tenant, plugin)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("{plugin} is not installed in {tenant}")))?;
    let schedule = resolved
        .prepared
        .manifest()
        .schedule(name)
        .cloned()
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "{plugin} {} declares no schedule {name:?}",
                resolved.prepared.manifest().version
            ))
        })?;
    let targets = match council {
        Some(c) if resolved.serves(c) => vec![c.clone()],
        Some(c) => {
            return Err(ApiError::not_found(format!(
                "{plugin} is not installed for council {c}"
            )));
        }
        None => councils(&resolved),
    };
    // In a task of its own: a caller who goes away does not leave runs half done.
    let state = state.clone();
    tokio::spawn(async move {
        let mut outcomes = Vec::new();
        for council in targets {
            if let Some(outcome) = run(&state, &resolved, &council, &schedule, None).await? {
                outcomes.push(outcome);
            }
        }
        Ok(outcomes)
    })
    .await
    .map_err(|e| ApiError::internal(format!("a scheduled run's task failed: {e}")))?
}

/// Claims and runs one run of `schedule` for `council`: the due time's when `due` is
/// given (nothing happens when another replica holds it), a manual one otherwise.
async fn run(
    state: &AppState,
    resolved: &Resolved,
    council: &CouncilId,
    schedule: &ScheduleDecl,
    due: Option<OffsetDateTime>,
) -> Result<Option<RunOutcome>, ApiError> {
    let prepared = &resolved.prepared;
    let plugin = prepared.plugin();
    let runs = state.store.schedule_runs(&resolved.scope);
    // The lease outlasts the call's deadline and the wait for a share.
    let lease = prepared.timeout() * 2 + Duration::from_secs(60);
    let Some(id) = runs
        .claim(NewRun {
            plugin,
            council,
            schedule: &schedule.name,
            due_at: due,
            runner: runner_id(),
            lease,
        })
        .await?
    else {
        return Ok(None);
    };
    let tenant = resolved.scope.tenant();
    let version = prepared.version().to_string();
    let started = std::time::Instant::now();
    let span = tracing::info_span!(
        "scheduled run",
        otel.name = %format!("scheduled run {plugin} {}", schedule.name),
        guildhall.tenant = %tenant,
        guildhall.council = %council,
        guildhall.plugin = %plugin,
        guildhall.plugin.version = %version,
        guildhall.schedule = %schedule.name,
        guildhall.outcome = tracing::field::Empty,
    );
    let busy = |why: &str| {
        (
            RunState::Failed,
            Some(why.to_string()),
            StatusCode::TOO_MANY_REQUESTS,
            None,
        )
    };
    let (state_of_run, outcome, status, ran) = match state.gateway.admit(tenant).await {
        Err(_) => busy("the alliance's share of plugin calls was full"),
        Ok(_permit) => match state.runtime.reserve_memory(prepared).await {
            Err(_) => busy("the platform's memory budget was in use"),
            Ok(_memory) => {
                let call = CallContext {
                    tenant: tenant.clone(),
                    council: council.clone(),
                    principal: Caller::Anonymous,
                    config: resolved.config(council),
                    request_id: format!("schedule-{id}"),
                    traceparent: guildhall_telemetry::propagation::outbound_traceparent(
                        &span,
                        &http::HeaderMap::new(),
                    ),
                    site: resolved.sites.get(council).cloned().unwrap_or_default(),
                    session: None,
                };
                let (result, report) = state
                    .runtime
                    .run_schedule(prepared, call, &schedule.name)
                    .instrument(span.clone())
                    .await;
                let (run_state, outcome, status) = match result {
                    Ok(Ok(())) => (RunState::Ok, None, StatusCode::OK),
                    Ok(Err(message)) => (
                        RunState::Failed,
                        Some(message),
                        StatusCode::INTERNAL_SERVER_ERROR,
                    ),
                    Err(e) => (
                        RunState::Failed,
                        Some(describe(&e)),
                        StatusCode::BAD_GATEWAY,
                    ),
                };
                (run_state, outcome, status, Some((report, span.clone())))
            }
        },
    };
    record_outcome(
        state,
        Where {
            tenant,
            council,
            plugin,
            version: &version,
            labels: &resolved.labels,
        },
        status,
        started.elapsed(),
        ran,
    );
    if due.is_some() && status == StatusCode::TOO_MANY_REQUESTS {
        // The plugin never ran: the due time is given back, and the next look runs it.
        runs.release(&id).await?;
        return Ok(None);
    }
    runs.finish(&id, state_of_run, outcome.as_deref()).await?;
    tracing::info!(
        tenant = %tenant,
        council = %council,
        plugin = %plugin,
        schedule = %schedule.name,
        run = %id,
        state = ?state_of_run,
        "scheduled run"
    );
    Ok(Some(RunOutcome {
        id,
        council: council.to_string(),
        state: match state_of_run {
            RunState::Ok => "ok",
            _ => "failed",
        }
        .to_string(),
        outcome,
    }))
}

fn describe(e: &CallError) -> String {
    format!("{}: {e}", e.kind())
}

/// The next due time of `schedule` after now.
pub(crate) fn next_due(schedule: &ScheduleDecl) -> Option<OffsetDateTime> {
    let cron = schedule.parsed().ok()?;
    let now = OffsetDateTime::now_utc();
    due_times(&cron, now, now + time::Duration::days(400), 1).pop()
}
