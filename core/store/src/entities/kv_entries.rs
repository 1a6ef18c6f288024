//! The `kv_entries` table: each plugin's key-value data, per tenant.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "kv_entries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub plugin: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    /// Key length plus value length, summed for the quota.
    pub size: i64,
    pub updated_at: TimeDateTimeWithTimeZone,
    /// When the entry expires (it then reads as absent), in Unix milliseconds.
    pub expires_at_ms: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
