//! How writes stay correct when several requests write the same row at once.
//!
//! Every create-or-update ("upsert") goes through [`claim`]: an `INSERT … ON CONFLICT DO
//! NOTHING` of the new row, then the row read back with `FOR UPDATE`. Whichever way it went,
//! the caller holds the row's lock for the rest of its transaction and knows whether it
//! created the row, so it can compare, update and record what it did. Two concurrent first
//! writes of one key meet on the primary key: PostgreSQL makes the second `INSERT` wait for
//! the first transaction, then do nothing, and the second writer then updates the committed
//! row as an ordinary later write. Nothing reads a row and later inserts on what it read.
//!
//! Writes to a tenant's configuration (councils, installs, members) take the tenant's row
//! first ([`lock_tenant`]), so they queue per tenant and always lock in one order: tenant,
//! then the row, then the cross-tenant counters (`plugin_adoption`, `platform_revision`).
//! One order means no deadlock between them, and counts derived from several rows (the
//! number of councils an install for all councils serves) are read and written by one
//! writer at a time.
//!
//! On SQLite the write transaction (`BEGIN IMMEDIATE`) already holds the database, so the
//! same statements run one writer at a time; `FOR UPDATE` is not sent there.

use guildhall_domain::TenantId;
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DbErr, EntityTrait, QuerySelect, Select, TryInsertResult,
};
use time::OffsetDateTime;

use crate::Result;
use crate::entities::tenants;

/// What [`claim`] found, with the row it now holds locked.
#[derive(Debug)]
pub(crate) enum Claim<M> {
    /// The row did not exist; the new row was inserted as given.
    Created(M),
    /// The row existed (perhaps committed a moment ago by a concurrent writer).
    Existing(M),
}

/// Inserts `row` unless a row with its primary key exists, then locks and returns the row
/// `find` selects (the same key). A row deleted between the two statements is inserted
/// again, so the caller always ends up holding one.
pub(crate) async fn claim<A, C>(
    db: &C,
    row: A,
    find: Select<A::Entity>,
) -> Result<Claim<<A::Entity as EntityTrait>::Model>>
where
    A: ActiveModelTrait + Clone + Send,
    C: ConnectionTrait,
{
    loop {
        let inserted = <A::Entity as EntityTrait>::insert(row.clone())
            .on_conflict_do_nothing()
            .exec_without_returning(db)
            .await?;
        let held = find.clone().lock_exclusive().one(db).await?;
        match (inserted, held) {
            (TryInsertResult::Inserted(n), Some(model)) if n > 0 => {
                return Ok(Claim::Created(model));
            }
            (_, Some(model)) => return Ok(Claim::Existing(model)),
            // Deleted by a concurrent writer after our insert found it: try again.
            (_, None) => continue,
        }
    }
}

/// Locks the tenant's row for the rest of the transaction (see the module's lock order). A
/// tenant deleted since its scope was built (the deletion holds this row until it commits)
/// is [`crate::Error::TenantGone`].
pub(crate) async fn lock_tenant<C: ConnectionTrait>(db: &C, tenant: &TenantId) -> Result<()> {
    tenants::Entity::find_by_id(tenant.to_string())
        .select_only()
        .column(tenants::Column::Id)
        .lock_exclusive()
        .into_tuple::<String>()
        .one(db)
        .await?
        .map(drop)
        .ok_or_else(|| crate::Error::TenantGone(tenant.clone()))
}

/// Holds the tenant's row against deletion for the rest of the transaction (a key share
/// lock: writers of the tenant's configuration are not held up, a deletion waits), for
/// writes that add rows to a tenant without locking its row first (audit appends, metered
/// usage): they queue behind a deletion in progress, then find the tenant gone
/// ([`crate::Error::TenantGone`]), instead of deadlocking with it.
pub(crate) async fn share_tenant<C: ConnectionTrait>(db: &C, tenant: &str) -> Result<()> {
    let found = tenants::Entity::find_by_id(tenant.to_string())
        .select_only()
        .column(tenants::Column::Id)
        .lock(sea_orm::sea_query::LockType::KeyShare)
        .into_tuple::<String>()
        .one(db)
        .await?;
    match found {
        Some(_) => Ok(()),
        None => Err(match TenantId::parse(tenant.to_string()) {
            Ok(id) => crate::Error::TenantGone(id),
            Err(e) => DbErr::Custom(format!("no tenant {tenant}: {e}")).into(),
        }),
    }
}

/// The ids of the tenant's councils, each row held against deletion for the rest of the
/// transaction (key share locks, as [`share_tenant`]), for writes of one council's rows
/// that do not lock the tenant (ratings, metered usage): a council deleted before they
/// look is not there, and one deleted after waits for them and removes what they wrote.
pub(crate) async fn share_councils<C: ConnectionTrait>(
    db: &C,
    tenant: &str,
) -> Result<Vec<String>> {
    use crate::entities::councils;
    use sea_orm::{ColumnTrait, QueryFilter};
    Ok(councils::Entity::find()
        .select_only()
        .column(councils::Column::Id)
        .filter(councils::Column::TenantId.eq(tenant))
        .lock(sea_orm::sea_query::LockType::KeyShare)
        .into_tuple::<String>()
        .all(db)
        .await?)
}

/// Makes this transaction the only holder of `name` until it ends: writers of something
/// with no row to lock (a subject's keys, an install's key-value total) queue here. On
/// PostgreSQL a transaction-scoped advisory lock on the name's hash; distinct names whose
/// hashes collide merely queue. On SQLite the write transaction already holds the database.
pub(crate) async fn lock_name<C: ConnectionTrait>(db: &C, name: &str) -> Result<(), DbErr> {
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        db.query_one_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            [name.into()],
        ))
        .await?;
    }
    Ok(())
}

/// The time a change is stamped with: now, but never before the row was created (a row a
/// concurrent writer created can carry a later clock reading than this writer's).
pub(crate) fn stamp(created_at: OffsetDateTime) -> OffsetDateTime {
    OffsetDateTime::now_utc().max(created_at)
}
