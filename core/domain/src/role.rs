//! Roles: what a principal may do, globally or in one tenant.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A role. `operator` and `publisher` are global; the others hold in one tenant.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Runs the platform: every action everywhere.
    Operator,
    /// May publish plugin versions to the catalogue and yank them.
    Publisher,
    /// Runs one alliance: councils, members, tokens, installs, audit and usage.
    TenantAdmin,
    /// A council officer: reads the alliance's set-up and uses its services' officer
    /// functions, optionally for one council only.
    Officer,
    /// Reads one alliance's audit log and usage.
    Auditor,
    /// Answers residents' subject access and erasure requests for one alliance's councils.
    DataProtectionOfficer,
}

impl Role {
    /// Every role, global ones first.
    pub const ALL: [Role; 6] = [
        Role::Operator,
        Role::Publisher,
        Role::TenantAdmin,
        Role::Officer,
        Role::Auditor,
        Role::DataProtectionOfficer,
    ];

    /// Parses a role name as written in the CLI and API.
    pub fn parse(name: &str) -> Result<Self, UnknownRole> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == name)
            .ok_or_else(|| UnknownRole(name.to_string()))
    }

    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Publisher => "publisher",
            Role::TenantAdmin => "tenant-admin",
            Role::Officer => "officer",
            Role::Auditor => "auditor",
            Role::DataProtectionOfficer => "data-protection-officer",
        }
    }

    /// The role's name in casbin's rules: `role:<name>`, a namespace no subject can enter
    /// (subjects are `token:…` or `oidc:…`).
    pub fn casbin_name(self) -> &'static str {
        match self {
            Role::Operator => "role:operator",
            Role::Publisher => "role:publisher",
            Role::TenantAdmin => "role:tenant-admin",
            Role::Officer => "role:officer",
            Role::Auditor => "role:auditor",
            Role::DataProtectionOfficer => "role:data-protection-officer",
        }
    }

    /// The role a casbin role name stands for.
    pub fn from_casbin(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.casbin_name() == name)
    }

    /// Whether the role holds platform-wide rather than in one tenant.
    pub fn is_global(self) -> bool {
        matches!(self, Role::Operator | Role::Publisher)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of [`Role::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown role {0:?}: expected one of operator, publisher, tenant-admin, officer, auditor, data-protection-officer"
)]
pub struct UnknownRole(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Ok(role));
        }
        assert!(Role::parse("admin").is_err());
        for role in Role::ALL {
            assert_eq!(Role::from_casbin(role.casbin_name()), Some(role));
            assert_eq!(Role::from_casbin(role.as_str()), None);
        }
        assert!(Role::Operator.is_global() && !Role::Officer.is_global());
    }
}
