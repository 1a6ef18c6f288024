//! Roles move into their own namespace in casbin's rules: `operator` becomes `role:operator`,
//! and so on for every built-in role, so no subject can ever be spelt like a role.
//!
//! Role bindings (`g`) are renamed in place. The built-in policies (`p`) under the old names
//! are deleted: the server restores them under the new names at every start. OpenID Connect
//! member bindings made before subjects were namespaced (a bare `sub`) no longer match
//! anyone after this migration; the server rebinds them to `oidc:<issuer id>:<sub>` at start
//! when exactly one configured issuer serves the tenant (see `Authz::new`).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The built-in roles' names as they were stored before this migration.
const ROLES: &str = "('operator', 'publisher', 'tenant-admin', 'officer', 'auditor')";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(&format!(
            "DELETE FROM casbin_rules WHERE ptype = 'p' AND v0 IN {ROLES};
             UPDATE casbin_rules SET v1 = 'role:' || v1 WHERE ptype = 'g' AND v1 IN {ROLES};
             UPDATE platform_revision SET revision = revision + 1 WHERE id = 2;"
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(
            "DELETE FROM casbin_rules WHERE ptype = 'p' AND v0 LIKE 'role:%';
             UPDATE casbin_rules SET v1 = substr(v1, 6) WHERE ptype = 'g' AND v1 LIKE 'role:%';
             UPDATE platform_revision SET revision = revision + 1 WHERE id = 2;",
        )
        .await?;
        Ok(())
    }
}
