//! The `plugin_owners` table: who owns each plugin name (crates.io model).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "plugin_owners")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub plugin: String,
    /// A principal's subject, e.g. `token:<id>` or `oidc:<issuer>:<sub>`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub subject: String,
    pub added_by: String,
    pub created_at: TimeDateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
