//! Who calls a service: what the gateway tells a plugin about its caller, and what the
//! plugin's `authz` questions are decided for.

use crate::{CouncilId, Role};

/// The caller of one service request, as access control resolved it for the tenant and
/// council the request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No credentials, e.g. a citizen.
    Anonymous,
    /// An authenticated caller.
    Subject {
        /// The namespaced subject (`token:<id>` or `oidc:<issuer id>:<sub>`).
        id: String,
        /// The caller's roles in the tenant; none when they are limited to another council.
        roles: Vec<Role>,
        /// The council the caller's roles are limited to, if any.
        council: Option<CouncilId>,
    },
}

impl Caller {
    /// The subject, or `anonymous`.
    pub fn subject(&self) -> &str {
        match self {
            Caller::Anonymous => "anonymous",
            Caller::Subject { id, .. } => id,
        }
    }

    /// Whether the caller holds any role that counts in `council`.
    pub fn acts_in(&self, council: &CouncilId) -> bool {
        match self {
            Caller::Anonymous => false,
            Caller::Subject {
                roles,
                council: limit,
                ..
            } => !roles.is_empty() && limit.as_ref().is_none_or(|c| c == council),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn council(id: &str) -> CouncilId {
        CouncilId::parse(id).unwrap()
    }

    #[test]
    fn roles_count_only_in_the_council_they_are_limited_to() {
        let officer = Caller::Subject {
            id: "token:abc".into(),
            roles: vec![Role::Officer],
            council: Some(council("tandridge")),
        };
        assert!(officer.acts_in(&council("tandridge")));
        assert!(!officer.acts_in(&council("mole-valley")));
        let admin = Caller::Subject {
            id: "token:def".into(),
            roles: vec![Role::TenantAdmin],
            council: None,
        };
        assert!(admin.acts_in(&council("mole-valley")));
        let nobody = Caller::Subject {
            id: "oidc:idp:x".into(),
            roles: Vec::new(),
            council: None,
        };
        assert!(!nobody.acts_in(&council("tandridge")));
        assert!(!Caller::Anonymous.acts_in(&council("tandridge")));
        assert_eq!(Caller::Anonymous.subject(), "anonymous");
    }
}
