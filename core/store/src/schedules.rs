//! The runs of plugins' schedules (`schedule_runs`).
//!
//! A row per due time of a schedule, council and install is the claim of whichever replica
//! inserts it first: `INSERT … ON CONFLICT DO NOTHING` on the unique slot, so every due time
//! runs once across replicas. The row is also the runner's lease: until `lease_until_ms` it
//! belongs to its runner; a run still `running` past its lease (its replica stopped mid-run)
//! is taken over by the next replica that finds it due, which counts an attempt more.

use guildhall_domain::{CouncilId, PluginName};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, QueryResult, Statement};
use time::OffsetDateTime;

use crate::millis::from_ms;
use crate::plugin_data::placeholders;
use crate::{Result, TenantScope, scoped};

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Running now (or its runner stopped; see the lease).
    Running,
    /// The plugin's `run` returned success.
    Ok,
    /// It returned an error, or the call failed (deadline, trap, memory cap).
    Failed,
}

impl RunState {
    fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Ok => "ok",
            RunState::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "ok" => RunState::Ok,
            "failed" => RunState::Failed,
            _ => RunState::Running,
        }
    }
}

/// A run to claim.
#[derive(Debug, Clone, Copy)]
pub struct NewRun<'a> {
    /// The plugin.
    pub plugin: &'a PluginName,
    /// The council it runs for.
    pub council: &'a CouncilId,
    /// The declared schedule.
    pub schedule: &'a str,
    /// The due time it is for; `None` for a run an administrator asked for now.
    pub due_at: Option<OffsetDateTime>,
    /// Who runs it (the replica's id).
    pub runner: &'a str,
    /// How long the runner holds it before another replica may take it over.
    pub lease: std::time::Duration,
}

/// A run as recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RunRecord {
    /// The run's id (a UUIDv7).
    pub id: String,
    /// The plugin.
    pub plugin: String,
    /// The council.
    pub council: String,
    /// The schedule.
    pub schedule: String,
    /// `schedule` for a due time, `manual` for a run asked for.
    pub trigger: String,
    /// The due time (for a manual run, when it was asked for).
    #[serde(with = "time::serde::rfc3339")]
    pub due_at: OffsetDateTime,
    /// Where it stands.
    pub state: RunState,
    /// What the run said: the plugin's error, or the call's failure.
    pub outcome: Option<String>,
    /// Which replica ran it.
    pub runner: String,
    /// How many runners started it (more than one after a takeover).
    pub attempts: i32,
    /// When it started.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// When it finished.
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
}

fn ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The longest outcome kept, in characters.
const MAX_OUTCOME: usize = 2_000;

/// One tenant's schedule runs.
#[derive(Debug)]
pub struct ScheduleRuns<'a> {
    db: &'a DatabaseConnection,
    scope: &'a TenantScope,
}

impl<'a> ScheduleRuns<'a> {
    pub(crate) fn new(db: &'a DatabaseConnection, scope: &'a TenantScope) -> Self {
        Self { db, scope }
    }

    fn stmt(backend: DbBackend, sql: &str, values: Vec<sea_orm::Value>) -> Statement {
        Statement::from_sql_and_values(backend, placeholders(backend, sql), values)
    }

    /// Claims a run: for a due time, only when no replica has (or when its runner's lease
    /// ran out while it was still running); a manual run always. Returns the run's id when
    /// this runner holds it.
    pub async fn claim(&self, run: NewRun<'_>) -> Result<Option<String>> {
        let tenant = self.scope.tenant().as_str();
        let now = OffsetDateTime::now_utc();
        let id = uuid::Uuid::now_v7().to_string();
        let (slot, trigger, due) = match run.due_at {
            Some(due) => (format!("due:{}", ms(due)), "schedule", due),
            None => (format!("now:{id}"), "manual", now),
        };
        let lease_until = ms(now) + i64::try_from(run.lease.as_millis()).unwrap_or(i64::MAX / 2);
        let txn = scoped::begin_write(self.db, tenant).await?;
        let backend = txn.get_database_backend();
        let inserted = txn
            .execute_raw(Self::stmt(
                backend,
                "INSERT INTO schedule_runs (id, tenant_id, plugin, council, schedule, slot, \
                 trigger, due_at_ms, state, runner, attempts, lease_until_ms, started_at_ms) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, 1, ?, ?) \
                 ON CONFLICT (tenant_id, plugin, council, schedule, slot) DO NOTHING",
                vec![
                    id.clone().into(),
                    tenant.into(),
                    run.plugin.as_str().into(),
                    run.council.as_str().into(),
                    run.schedule.into(),
                    slot.clone().into(),
                    trigger.into(),
                    ms(due).into(),
                    run.runner.into(),
                    lease_until.into(),
                    ms(now).into(),
                ],
            ))
            .await?
            .rows_affected()
            > 0;
        let claimed = if inserted {
            Some(id)
        } else {
            // Taken over only from a runner that stopped: still running, lease run out.
            let row = txn
                .query_one_raw(Self::stmt(
                    backend,
                    "SELECT id FROM schedule_runs WHERE tenant_id = ? AND plugin = ? \
                     AND council = ? AND schedule = ? AND slot = ? AND state = 'running' \
                     AND lease_until_ms < ?",
                    vec![
                        tenant.into(),
                        run.plugin.as_str().into(),
                        run.council.as_str().into(),
                        run.schedule.into(),
                        slot.into(),
                        ms(now).into(),
                    ],
                ))
                .await?;
            match row {
                Some(row) => {
                    let id: String = row.try_get("", "id")?;
                    let taken = txn
                        .execute_raw(Self::stmt(
                            backend,
                            "UPDATE schedule_runs SET runner = ?, attempts = attempts + 1, \
                             lease_until_ms = ?, started_at_ms = ? \
                             WHERE tenant_id = ? AND id = ? AND state = 'running' \
                             AND lease_until_ms < ?",
                            vec![
                                run.runner.into(),
                                lease_until.into(),
                                ms(now).into(),
                                tenant.into(),
                                id.clone().into(),
                                ms(now).into(),
                            ],
                        ))
                        .await?
                        .rows_affected()
                        > 0;
                    taken.then_some(id)
                }
                None => None,
            }
        };
        txn.commit().await?;
        Ok(claimed)
    }

    /// Gives a claimed run back before it started (its plugin could not be admitted), so a
    /// later look claims the due time again.
    pub async fn release(&self, id: &str) -> Result<()> {
        let tenant = self.scope.tenant().as_str();
        let txn = scoped::begin_write(self.db, tenant).await?;
        let backend = txn.get_database_backend();
        txn.execute_raw(Self::stmt(
            backend,
            "DELETE FROM schedule_runs WHERE tenant_id = ? AND id = ? AND state = 'running'",
            vec![tenant.into(), id.into()],
        ))
        .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Records how a run ended.
    pub async fn finish(&self, id: &str, state: RunState, outcome: Option<&str>) -> Result<()> {
        let tenant = self.scope.tenant().as_str();
        let outcome = outcome.map(|o| o.chars().take(MAX_OUTCOME).collect::<String>());
        let txn = scoped::begin_write(self.db, tenant).await?;
        let backend = txn.get_database_backend();
        txn.execute_raw(Self::stmt(
            backend,
            "UPDATE schedule_runs SET state = ?, outcome = ?, finished_at_ms = ? \
             WHERE tenant_id = ? AND id = ?",
            vec![
                state.as_str().into(),
                outcome.into(),
                ms(OffsetDateTime::now_utc()).into(),
                tenant.into(),
                id.into(),
            ],
        ))
        .await?;
        txn.commit().await?;
        Ok(())
    }

    /// The latest runs of `plugin`'s `schedule`, newest first, at most `limit`; only
    /// `council`'s when given.
    pub async fn recent(
        &self,
        plugin: &PluginName,
        schedule: &str,
        council: Option<&CouncilId>,
        limit: u64,
    ) -> Result<Vec<RunRecord>> {
        let tenant = self.scope.tenant().as_str();
        let txn = scoped::begin(self.db, tenant).await?;
        let backend = txn.get_database_backend();
        let mut values: Vec<sea_orm::Value> =
            vec![tenant.into(), plugin.as_str().into(), schedule.into()];
        let filter = match council {
            Some(c) => {
                values.push(c.as_str().into());
                " AND schedule = ? AND council = ?"
            }
            None => " AND schedule = ?",
        };
        values.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
        let rows = txn
            .query_all_raw(Self::stmt(
                backend,
                &format!(
                    "SELECT id, plugin, council, schedule, trigger, due_at_ms, state, outcome, \
                     runner, attempts, started_at_ms, finished_at_ms FROM schedule_runs \
                     WHERE tenant_id = ? AND plugin = ?{filter} \
                     ORDER BY started_at_ms DESC, id DESC LIMIT ?"
                ),
                values,
            ))
            .await?;
        txn.commit().await?;
        Ok(rows
            .iter()
            .map(to_record)
            .collect::<Result<Vec<_>, sea_orm::DbErr>>()?)
    }
}

fn to_record(row: &QueryResult) -> Result<RunRecord, sea_orm::DbErr> {
    let state: String = row.try_get("", "state")?;
    Ok(RunRecord {
        id: row.try_get("", "id")?,
        plugin: row.try_get("", "plugin")?,
        council: row.try_get("", "council")?,
        schedule: row.try_get("", "schedule")?,
        trigger: row.try_get("", "trigger")?,
        due_at: from_ms(row.try_get("", "due_at_ms")?),
        state: RunState::parse(&state),
        outcome: row.try_get("", "outcome")?,
        runner: row.try_get("", "runner")?,
        attempts: row.try_get("", "attempts")?,
        started_at: from_ms(row.try_get("", "started_at_ms")?),
        finished_at: row
            .try_get::<Option<i64>>("", "finished_at_ms")?
            .map(from_ms),
    })
}
