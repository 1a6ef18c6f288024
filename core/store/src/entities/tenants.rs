//! The `tenants` table: one row per alliance.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tenants")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub name: String,
    pub share_adoption: bool,
    pub created_at: TimeDateTimeWithTimeZone,
    pub updated_at: TimeDateTimeWithTimeZone,
    pub brand_colour: Option<String>,
    pub contact_url: Option<String>,
    pub accessibility_url: Option<String>,
    pub logo_digest: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::councils::Entity")]
    Councils,
}

impl Related<super::councils::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Councils.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
