//! The `tenant_revisions` table: the platform revision of each tenant's last change, so a
//! replica drops only the changed tenants' cached installs. A platform table with no
//! foreign key: a deleted tenant's row stays, and a tenant created again with its id goes on
//! from it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tenant_revisions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    pub revision: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
