//! Who is calling and where: the tenant, council, plugin and principal of this request.
//!
//! Needs no capability.
//!
//! # Writing a council's data
//!
//! A plugin installed for several councils of an alliance serves each of them at its own URL,
//! `/s/{tenant}/{council}/{plugin}/...`, and [`council`] names the council of the URL. An
//! officer's roles may be limited to one council. Before a request changes a council's data,
//! ask [`writer`] (or [`acting_caller`] when the platform's policy decides the roles through
//! [`crate::authz`]); it refuses anonymous callers (`401`), callers without the roles (`403`)
//! and callers whose roles are limited to another council (`403`, even when the platform
//! would already have given them no roles here). Then write only under the URL's council,
//! for example with [`crate::kv::CouncilKv`]:
//!
//! ```no_run
//! use guildhall_plugin::{Response, context, kv::CouncilKv};
//!
//! fn save_note(text: &str) -> Response {
//!     if let Err(refusal) = context::writer(&["officer", "tenant-admin"]) {
//!         return refusal.into(); // 401 or 403 problem+json
//!     }
//!     match CouncilKv::current().set_json("note", text) {
//!         Ok(()) => Response::new(204),
//!         Err(e) => e.into(),
//!     }
//! }
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

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

/// How this council's pages look and where they live: what the header and footer of a GOV.UK
/// page show, and the plugin's root path. The [`crate::kit`] page kit puts it in every page as
/// `site`.
pub fn site() -> Site {
    // The fields are named here one by one so that the WIT record's name never matters.
    let site = wit::current_site();
    Site {
        tenant_name: site.tenant_name,
        council_name: site.council_name,
        assets: site.assets,
        brand_stylesheet: site.brand_stylesheet,
        logo: site.logo,
        contact_url: site.contact_url,
        accessibility_url: site.accessibility_url,
        base_path: site.base_path,
        feedback_path: site.feedback_path,
    }
}

/// How a council's pages look and where they live, from [`site`]. Serialises with these
/// field names, which is how templates see it (`site.council_name`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    /// The alliance's name, e.g. `North Downs Shared Services`.
    pub tenant_name: String,
    /// The council's name, e.g. `Tandridge District Council`.
    pub council_name: String,
    /// The path of the platform's shared GOV.UK Frontend assets, e.g.
    /// `/assets/govuk-frontend/3f2a9c01d4e5b6a7`; the stylesheet is
    /// `{assets}/govuk-frontend.min.css`.
    pub assets: String,
    /// The path of a stylesheet with the council's colour, when it has one.
    pub brand_stylesheet: Option<String>,
    /// The path of the council's logo image, when it has one.
    pub logo: Option<String>,
    /// A page where residents can contact the council.
    pub contact_url: Option<String>,
    /// The council's accessibility statement for its services.
    pub accessibility_url: Option<String>,
    /// This plugin's root for this council, e.g. `/s/north-downs/tandridge/report-a-problem`,
    /// without a trailing `/`.
    pub base_path: String,
    /// The platform's feedback page for this plugin and council.
    pub feedback_path: String,
}

impl Site {
    /// The address of one of this plugin's pages: `path` (starting with `/`) under
    /// [`Site::base_path`]. `site.url("/check-answers")` is
    /// `/s/north-downs/tandridge/report-a-problem/check-answers`.
    pub fn url(&self, path: &str) -> String {
        let base = self.base_path.trim_end_matches('/');
        if path.starts_with('/') {
            format!("{base}{path}")
        } else {
            format!("{base}/{path}")
        }
    }
}

/// The caller, when it may change data of the council this request came through
/// ([`council`]): authenticated, holding at least one of `roles`, and not limited to another
/// council. See [`Principal::may_write_for`].
pub fn writer(roles: &[&str]) -> Result<Subject, Refusal> {
    principal().may_write_for(&council(), roles).cloned()
}

/// The caller, when it may act for the council this request came through: authenticated,
/// holding some role in this tenant, and not limited to another council. For plugins that
/// leave the choice of roles to the platform's policy ([`crate::authz::allowed`]); see
/// [`Principal::acting_for`].
pub fn acting_caller() -> Result<Subject, Refusal> {
    principal().acting_for(&council()).cloned()
}

/// Why a caller may not change a council's data. Becomes a problem response with
/// [`Refusal::status`] through `Response::from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The caller gave no credentials: `401`.
    Unauthenticated,
    /// The caller's roles are limited to another council, named here: `403`.
    OtherCouncil(String),
    /// The caller holds no role in this tenant: `403`.
    NoRole,
    /// The caller holds none of the roles needed, listed here: `403`.
    MissingRole(Vec<String>),
}

impl Refusal {
    /// `401` for [`Refusal::Unauthenticated`], `403` otherwise.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Unauthenticated => 401,
            _ => 403,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Unauthenticated => f.write_str("sign in as a council officer to do this"),
            Refusal::OtherCouncil(council) => write!(
                f,
                "your roles are for the council {council}, so you may not change another council's data"
            ),
            Refusal::NoRole => f.write_str("you hold no role in this alliance"),
            Refusal::MissingRole(roles) => {
                write!(f, "this needs one of the roles {}", roles.join(", "))
            }
        }
    }
}

impl std::error::Error for Refusal {}

impl From<Refusal> for crate::Response {
    /// A problem response with [`Refusal::status`]; a `401` also carries
    /// `WWW-Authenticate: Bearer`.
    fn from(refusal: Refusal) -> Self {
        let response = crate::Response::error(refusal.status(), &refusal.to_string());
        match refusal {
            Refusal::Unauthenticated => response.with_header("www-authenticate", "Bearer"),
            _ => response,
        }
    }
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

    /// The subject, when it may act for `council`: authenticated, holding some role, and not
    /// limited to another council.
    ///
    /// The council is checked before the roles: the platform gives a caller whose roles are
    /// limited to another council no roles at all, and the refusal should say why.
    pub fn acting_for(&self, council: &str) -> Result<&Subject, Refusal> {
        let subject = self.subject().ok_or(Refusal::Unauthenticated)?;
        if let Some(limit) = subject.council.as_deref()
            && limit != council
        {
            return Err(Refusal::OtherCouncil(limit.to_owned()));
        }
        if subject.roles.is_empty() {
            return Err(Refusal::NoRole);
        }
        Ok(subject)
    }

    /// The subject, when it may change data of `council`: [`acting_for`](Self::acting_for)
    /// and holding at least one of `roles`. Pass [`council()`] (the council of the URL), never
    /// a council taken from the request body or query: a caller chooses those.
    pub fn may_write_for(&self, council: &str, roles: &[&str]) -> Result<&Subject, Refusal> {
        let subject = self.acting_for(council)?;
        if !subject.has_any_role(roles) {
            return Err(Refusal::MissingRole(
                roles.iter().map(|r| (*r).to_owned()).collect(),
            ));
        }
        Ok(subject)
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
    fn site_urls() {
        let site = Site {
            base_path: "/s/north-downs/tandridge/report-a-problem".to_owned(),
            ..Site::default()
        };
        assert_eq!(
            site.url("/check-answers"),
            "/s/north-downs/tandridge/report-a-problem/check-answers"
        );
        assert_eq!(
            site.url("where"),
            "/s/north-downs/tandridge/report-a-problem/where"
        );
        assert_eq!(site.url("/"), "/s/north-downs/tandridge/report-a-problem/");
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

    fn subject(roles: &[&str], council: Option<&str>) -> Principal {
        Principal::Subject(Subject {
            id: "token:0123456789abcdef".to_owned(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            council: council.map(str::to_owned),
        })
    }

    const WRITERS: &[&str] = &["officer", "tenant-admin"];

    #[test]
    fn writers_must_be_signed_in_with_a_writing_role() {
        assert_eq!(
            Principal::Anonymous
                .may_write_for("tandridge", WRITERS)
                .map(|_| ()),
            Err(Refusal::Unauthenticated)
        );
        assert_eq!(
            subject(&[], None)
                .may_write_for("tandridge", WRITERS)
                .map(|_| ()),
            Err(Refusal::NoRole)
        );
        assert_eq!(
            subject(&["auditor"], None)
                .may_write_for("tandridge", WRITERS)
                .map(|_| ()),
            Err(Refusal::MissingRole(vec![
                "officer".to_owned(),
                "tenant-admin".to_owned()
            ]))
        );
        // No role's name is special: `*` or a role-like prefix is not a role.
        for odd in ["*", "role:officer", "Officer", "officer ", ""] {
            assert!(matches!(
                subject(&[odd], None)
                    .may_write_for("tandridge", WRITERS)
                    .map(|_| ()),
                Err(Refusal::MissingRole(_))
            ));
        }
        for roles in [&["officer"][..], &["tenant-admin"], &["auditor", "officer"]] {
            assert!(
                subject(roles, None)
                    .may_write_for("tandridge", WRITERS)
                    .map(|_| ())
                    .is_ok()
            );
        }
    }

    #[test]
    fn writers_limited_to_a_council_write_only_for_it() {
        let limited = subject(&["officer"], Some("tandridge"));
        assert!(
            limited
                .may_write_for("tandridge", WRITERS)
                .map(|_| ())
                .is_ok()
        );
        assert_eq!(
            limited.may_write_for("mole-valley", WRITERS).map(|_| ()),
            Err(Refusal::OtherCouncil("tandridge".to_owned()))
        );
        // The platform strips a limited caller's roles in another council; the refusal still
        // names the council rather than claiming the caller holds no role.
        assert_eq!(
            subject(&[], Some("tandridge"))
                .may_write_for("mole-valley", WRITERS)
                .map(|_| ()),
            Err(Refusal::OtherCouncil("tandridge".to_owned()))
        );
        // Council names are compared exactly: no prefix, case or wildcard match.
        for other in ["tandridge-2", "tandridg", "TANDRIDGE", "*", ""] {
            assert_eq!(
                limited.may_write_for(other, WRITERS).map(|_| ()),
                Err(Refusal::OtherCouncil("tandridge".to_owned())),
                "{other}"
            );
        }
        assert_eq!(
            subject(&["officer"], Some("*"))
                .may_write_for("tandridge", WRITERS)
                .map(|_| ()),
            Err(Refusal::OtherCouncil("*".to_owned()))
        );
        // An unlimited officer may write for the council it calls through.
        assert!(
            subject(&["officer"], None)
                .may_write_for("mole-valley", WRITERS)
                .map(|_| ())
                .is_ok()
        );
    }

    #[test]
    fn acting_callers_need_a_role_and_the_council() {
        assert_eq!(
            Principal::Anonymous.acting_for("tandridge").map(|_| ()),
            Err(Refusal::Unauthenticated)
        );
        assert_eq!(
            subject(&[], None).acting_for("tandridge").map(|_| ()),
            Err(Refusal::NoRole)
        );
        assert!(
            subject(&["auditor"], None)
                .acting_for("tandridge")
                .map(|_| ())
                .is_ok()
        );
        assert_eq!(
            subject(&["officer"], Some("mole-valley"))
                .acting_for("tandridge")
                .map(|_| ()),
            Err(Refusal::OtherCouncil("mole-valley".to_owned()))
        );
    }

    #[test]
    fn refusals_become_problems() {
        let response = crate::Response::from(Refusal::Unauthenticated);
        assert_eq!(response.status, 401);
        assert_eq!(response.header("www-authenticate"), Some("Bearer"));
        assert_eq!(
            response.header("content-type"),
            Some("application/problem+json")
        );
        let response = crate::Response::from(Refusal::OtherCouncil("tandridge".to_owned()));
        assert_eq!(response.status, 403);
        assert_eq!(response.header("www-authenticate"), None);
        assert!(
            response.body_text().contains("tandridge"),
            "{}",
            response.body_text()
        );
        assert_eq!(crate::Response::from(Refusal::NoRole).status, 403);
        assert_eq!(
            crate::Response::from(Refusal::MissingRole(vec![])).status,
            403
        );
    }
}
