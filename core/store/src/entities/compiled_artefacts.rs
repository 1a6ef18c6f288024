//! The `compiled_artefacts` table: components compiled by one replica, for the others.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "compiled_artefacts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub digest: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub engine: String,
    pub bytes: Vec<u8>,
    pub mac: String,
    pub created_at_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
