//! The `plugin_versions` table: immutable published versions.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "plugin_versions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub plugin: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub version: String,
    pub digest: String,
    /// The manifest as JSON.
    pub manifest: String,
    pub signature: Option<String>,
    pub signed_by: Option<String>,
    pub yanked: bool,
    pub published_at: TimeDateTimeWithTimeZone,
    /// `sha256:` and the digest of plugin.toml as uploaded (versions since owners).
    pub manifest_sha256: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
