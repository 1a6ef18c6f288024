//! Subject access and erasure requests (`subject_requests`).
//!
//! A request is kept with its kind, the councils it covered, who made it, when, where it
//! stands and its outcome (what each service found or erased, counted by kind of record).
//! The identifiers the resident gave are kept only as hashes ([`hash_identifier`]), so the
//! record shows that a request about a given email address was made without holding the
//! address; the records found are returned to the requester and never stored.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::entities::subject_requests;
use crate::millis::{from_ms, now_ms};
use crate::{Result, TenantScope, scoped};

/// The hash kept for an identifier: SHA-256 over a domain tag, the tenant, the identifier's
/// name and its value folded to lower case with surrounding space removed, as hex.
pub fn hash_identifier(tenant: &str, name: &str, value: &str) -> String {
    let mut hash = Sha256::new();
    for part in [
        "guildhall-subject-identifier-v1",
        tenant,
        name,
        value.trim().to_lowercase().as_str(),
    ] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    hex::encode(hash.finalize())
}

/// A request to record as started.
#[derive(Debug, Clone)]
pub struct NewSubjectRequest<'a> {
    /// `access` or `erasure`.
    pub kind: &'a str,
    /// Identifier name to its [`hash_identifier`].
    pub identifiers: &'a serde_json::Map<String, serde_json::Value>,
    /// The councils asked for; `None` for every council.
    pub councils: Option<&'a [String]>,
    /// Who made it.
    pub requested_by: &'a str,
}

/// A recorded request.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SubjectRequestRecord {
    /// Its id (a UUIDv7).
    pub id: String,
    /// `access` or `erasure`.
    pub kind: String,
    /// Identifier name to its hash; never the values.
    #[schema(value_type = Object)]
    pub identifiers: serde_json::Value,
    /// The councils asked for; absent for every council.
    pub councils: Option<Vec<String>>,
    /// `running`, `completed` (every service answered) or `failed` (one or more did not).
    pub state: String,
    /// What each service found or erased, by council and kind of record.
    #[schema(value_type = Object)]
    pub outcome: Option<serde_json::Value>,
    /// Who made it.
    pub requested_by: String,
    /// When, RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub requested_at: OffsetDateTime,
    /// When it finished, RFC 3339.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    pub finished_at: Option<OffsetDateTime>,
}

/// One tenant's subject requests.
#[derive(Debug)]
pub struct SubjectRequests<'a> {
    db: &'a DatabaseConnection,
    scope: &'a TenantScope,
}

impl<'a> SubjectRequests<'a> {
    pub(crate) fn new(db: &'a DatabaseConnection, scope: &'a TenantScope) -> Self {
        Self { db, scope }
    }

    /// Records a request as `running` and returns it.
    pub async fn start(&self, request: NewSubjectRequest<'_>) -> Result<SubjectRequestRecord> {
        let tenant = self.scope.tenant().as_str();
        let txn = scoped::begin_write(self.db, tenant).await?;
        let row = subject_requests::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            tenant_id: Set(tenant.to_string()),
            kind: Set(request.kind.to_string()),
            identifiers: Set(serde_json::Value::Object(request.identifiers.clone()).to_string()),
            councils: Set(request
                .councils
                .map(|c| serde_json::to_string(c).expect("strings serialise"))),
            state: Set("running".to_string()),
            outcome: Set(None),
            requested_by: Set(request.requested_by.to_string()),
            requested_at_ms: Set(now_ms()),
            finished_at_ms: Set(None),
        };
        let row = subject_requests::Entity::insert(row)
            .exec_with_returning(&txn)
            .await?;
        txn.commit().await?;
        Ok(to_record(row))
    }

    /// Records how request `id` ended.
    pub async fn finish(
        &self,
        id: &str,
        completed: bool,
        outcome: &serde_json::Value,
    ) -> Result<Option<SubjectRequestRecord>> {
        let tenant = self.scope.tenant().as_str();
        let txn = scoped::begin_write(self.db, tenant).await?;
        subject_requests::Entity::update_many()
            .col_expr(
                subject_requests::Column::State,
                if completed { "completed" } else { "failed" }.into(),
            )
            .col_expr(
                subject_requests::Column::Outcome,
                outcome.to_string().into(),
            )
            .col_expr(subject_requests::Column::FinishedAtMs, now_ms().into())
            .filter(subject_requests::Column::TenantId.eq(tenant))
            .filter(subject_requests::Column::Id.eq(id))
            .exec(&txn)
            .await?;
        let row = subject_requests::Entity::find_by_id(id.to_string())
            .filter(subject_requests::Column::TenantId.eq(tenant))
            .one(&txn)
            .await?;
        txn.commit().await?;
        Ok(row.map(to_record))
    }

    /// Request `id`, if this tenant has it.
    pub async fn get(&self, id: &str) -> Result<Option<SubjectRequestRecord>> {
        let tenant = self.scope.tenant().as_str();
        let txn = scoped::begin(self.db, tenant).await?;
        let row = subject_requests::Entity::find_by_id(id.to_string())
            .filter(subject_requests::Column::TenantId.eq(tenant))
            .one(&txn)
            .await?;
        txn.commit().await?;
        Ok(row.map(to_record))
    }

    /// The newest `limit` requests, newest first.
    pub async fn list(&self, limit: u64) -> Result<Vec<SubjectRequestRecord>> {
        let tenant = self.scope.tenant().as_str();
        let txn = scoped::begin(self.db, tenant).await?;
        let rows = subject_requests::Entity::find()
            .filter(subject_requests::Column::TenantId.eq(tenant))
            .order_by_desc(subject_requests::Column::Id)
            .limit(limit)
            .all(&txn)
            .await?;
        txn.commit().await?;
        Ok(rows.into_iter().map(to_record).collect())
    }
}

fn to_record(row: subject_requests::Model) -> SubjectRequestRecord {
    SubjectRequestRecord {
        id: row.id,
        kind: row.kind,
        identifiers: serde_json::from_str(&row.identifiers).unwrap_or_default(),
        councils: row
            .councils
            .and_then(|text| serde_json::from_str(&text).ok()),
        state: row.state,
        outcome: row
            .outcome
            .and_then(|text| serde_json::from_str(&text).ok()),
        requested_by: row.requested_by,
        requested_at: from_ms(row.requested_at_ms),
        finished_at: row.finished_at_ms.map(from_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::hash_identifier;

    #[test]
    fn identifier_hashes_fold_case_and_space_and_differ_by_tenant_and_name() {
        let a = hash_identifier("north-downs", "email", " Jo@Example.org ");
        assert_eq!(a, hash_identifier("north-downs", "email", "jo@example.org"));
        assert_ne!(a, hash_identifier("wessex", "email", "jo@example.org"));
        assert_ne!(a, hash_identifier("north-downs", "name", "jo@example.org"));
        assert_eq!(a.len(), 64);
        assert!(!a.contains("jo"));
    }
}
