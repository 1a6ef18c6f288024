//! The `plugin_events` table: named events emitted by plugins.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "plugin_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub council_id: String,
    pub plugin: String,
    pub version: String,
    pub name: String,
    pub payload: String,
    pub request_id: String,
    pub created_at: TimeDateTimeWithTimeZone,
    /// When the payload was erased (it then holds `null`), in Unix milliseconds.
    pub erased_at_ms: Option<i64>,
    /// Random hex the audit chain's hash of the payload is salted with; erased with it.
    pub payload_salt: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
