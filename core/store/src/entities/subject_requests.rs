//! The `subject_requests` table: subject access and erasure requests, identifiers hashed.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "subject_requests")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub kind: String,
    pub identifiers: String,
    pub councils: Option<String>,
    pub state: String,
    pub outcome: Option<String>,
    pub requested_by: String,
    pub requested_at_ms: i64,
    pub finished_at_ms: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
