//! Who is calling and where: the tenant, council, plugin and principal of this request.
//!
//! Needs no capability.

use crate::bindings::guildhall::platform::context as wit;

pub use wit::{Principal, Subject};

/// The tenant (alliance) id, e.g. `north-downs`.
pub fn tenant() -> String {
    wit::tenant()
}

/// The council id the request is for, e.g. `tandridge`.
pub fn council() -> String {
    wit::council()
}

/// This plugin's name, e.g. `bin-collections`.
pub fn plugin() -> String {
    wit::plugin()
}

/// This plugin's version, e.g. `1.2.0`.
pub fn version() -> String {
    wit::version()
}

/// The platform's id for this request; include it in anything you log.
pub fn request_id() -> String {
    wit::request_id()
}

/// Who is calling. The caller's token is never passed to the plugin.
pub fn principal() -> Principal {
    wit::caller()
}

impl Principal {
    /// The authenticated subject, or `None` for an anonymous caller.
    pub fn subject(&self) -> Option<&Subject> {
        match self {
            Principal::Anonymous => None,
            Principal::Subject(subject) => Some(subject),
        }
    }

    /// Whether the caller gave no credentials.
    pub fn is_anonymous(&self) -> bool {
        matches!(self, Principal::Anonymous)
    }

    /// Whether the caller is authenticated and has at least one of `roles` in this tenant.
    pub fn has_any_role(&self, roles: &[&str]) -> bool {
        self.subject().is_some_and(|s| s.has_any_role(roles))
    }
}

impl Subject {
    /// Whether the subject has at least one of `roles`.
    pub fn has_any_role(&self, roles: &[&str]) -> bool {
        self.roles.iter().any(|r| roles.contains(&r.as_str()))
    }

    /// Whether the subject may act for `council`: true when its roles are not limited to one
    /// council, or are limited to that one.
    pub fn acts_for(&self, council: &str) -> bool {
        self.council.as_deref().is_none_or(|c| c == council)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn officer(council: Option<&str>) -> Principal {
        Principal::Subject(Subject {
            id: "alice".to_owned(),
            roles: vec!["officer".to_owned()],
            council: council.map(str::to_owned),
        })
    }

    #[test]
    fn roles_and_councils() {
        assert!(!Principal::Anonymous.has_any_role(&["officer"]));
        assert!(Principal::Anonymous.is_anonymous());
        assert!(officer(None).has_any_role(&["tenant-admin", "officer"]));
        assert!(!officer(None).has_any_role(&["tenant-admin"]));
        let limited = officer(Some("tandridge"));
        let subject = limited.subject().unwrap();
        assert!(subject.acts_for("tandridge"));
        assert!(!subject.acts_for("mole-valley"));
        assert!(officer(None).subject().unwrap().acts_for("anywhere"));
    }
}
