//! The `tenant_revisions` table: the revision log, one row per platform revision naming the
//! tenant whose installs, councils or settings changed at it, so a replica drops only the
//! changed tenants' cached installs. A platform table with no foreign key: a deleted
//! tenant's rows stay until pruned, and a tenant created again with its id goes on from
//! them. Old rows are pruned ([`crate::Store::prune_tenant_revisions`]).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tenant_revisions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub revision: i64,
    pub tenant_id: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
