//! The `publisher_keys` table: ed25519 public keys registered to an identity for signing.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "publisher_keys")]
pub struct Model {
    /// `SHA256:` and the unpadded base64 sha256 of the key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub fingerprint: String,
    pub subject: String,
    pub name: String,
    /// The 32-byte key in base64.
    pub public_key: String,
    pub created_at: TimeDateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
