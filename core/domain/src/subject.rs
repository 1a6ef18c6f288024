//! Who a principal is: a subject namespaced by where its identity came from.
//!
//! Subjects are the names casbin binds roles to. Each is prefixed by its source, and roles by
//! `role:` ([`crate::Role::casbin_name`]), so no subject can ever be spelt like a role, and the
//! same `sub` from two identity providers names two different people:
//!
//! - `token:<token id>`: a Guildhall API token;
//! - `oidc:<issuer id>:<sub>`: the `sub` claim of a configured OpenID Connect issuer, whose
//!   short id ([`IssuerId`]) the operator chose in `[[auth.oidc]]`.
//!
//! The longest subject is 5 + 32 + 1 + 255 = 293 characters, within the 300 the database keeps.

use std::fmt;

/// Longest `sub` claim accepted (OpenID Connect Core 1.0 §2: at most 255 ASCII characters).
pub const MAX_SUB_LEN: usize = 255;
/// Longest issuer id.
pub const MAX_ISSUER_ID_LEN: usize = 32;

/// Why a subject or issuer id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubjectError {
    /// The issuer id does not match `[a-z0-9-]{2,32}`.
    #[error("invalid issuer id {0:?}: use 2 to 32 lowercase letters, digits or '-'")]
    IssuerId(String),
    /// The `sub` is empty, too long or holds control characters.
    #[error("a subject's `sub` has 1 to 255 characters and no control characters")]
    Sub,
    /// The text is neither `token:<id>` nor `oidc:<issuer id>:<sub>`.
    #[error("a subject is written `oidc:<issuer id>:<sub>` or `token:<id>`")]
    Form,
}

/// The short name an operator gives an OpenID Connect issuer (`[[auth.oidc]] id`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IssuerId(String);

impl IssuerId {
    /// Parses an issuer id: `[a-z0-9-]{2,32}`.
    pub fn parse(value: &str) -> Result<Self, SubjectError> {
        let ok = (2..=MAX_ISSUER_ID_LEN).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(value.to_string()))
        } else {
            Err(SubjectError::IssuerId(value.chars().take(64).collect()))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IssuerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for IssuerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// A namespaced subject. Parsing and the constructors are the only ways to build one.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Subject {
    text: String,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Kind {
    Token,
    Oidc { issuer_len: usize },
}

/// Checks a `sub` claim: 1 to 255 characters, none of them control characters.
pub fn check_sub(sub: &str) -> Result<(), SubjectError> {
    if sub.is_empty() || sub.len() > MAX_SUB_LEN || sub.chars().any(char::is_control) {
        Err(SubjectError::Sub)
    } else {
        Ok(())
    }
}

impl Subject {
    /// The subject of a Guildhall API token.
    pub fn token(id: &str) -> Self {
        Self {
            text: format!("token:{id}"),
            kind: Kind::Token,
        }
    }

    /// The subject of `sub` at the issuer `issuer`.
    pub fn oidc(issuer: &IssuerId, sub: &str) -> Result<Self, SubjectError> {
        check_sub(sub)?;
        Ok(Self {
            text: format!("oidc:{issuer}:{sub}"),
            kind: Kind::Oidc {
                issuer_len: issuer.0.len(),
            },
        })
    }

    /// Parses the written form, `token:<id>` or `oidc:<issuer id>:<sub>`. The issuer id has
    /// no `:`, so the first `:` after it ends it and the `sub` may hold any other character.
    pub fn parse(text: &str) -> Result<Self, SubjectError> {
        if let Some(id) = text.strip_prefix("token:") {
            let ok = !id.is_empty()
                && id.len() <= 64
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            return if ok {
                Ok(Self::token(id))
            } else {
                Err(SubjectError::Form)
            };
        }
        let rest = text.strip_prefix("oidc:").ok_or(SubjectError::Form)?;
        let (issuer, sub) = rest.split_once(':').ok_or(SubjectError::Form)?;
        Self::oidc(&IssuerId::parse(issuer)?, sub)
    }

    /// The written form, as casbin and the database hold it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The issuer id and `sub` of an OIDC subject.
    pub fn oidc_parts(&self) -> Option<(&str, &str)> {
        match self.kind {
            Kind::Oidc { issuer_len } => {
                let rest = &self.text["oidc:".len()..];
                Some((&rest[..issuer_len], &rest[issuer_len + 1..]))
            }
            Kind::Token => None,
        }
    }

    /// Whether this is an API token's subject.
    pub fn is_token(&self) -> bool {
        self.kind == Kind::Token
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Role;

    #[test]
    fn written_forms_round_trip() {
        let corp = IssuerId::parse("corp").unwrap();
        let s = Subject::oidc(&corp, "alice:with:colons").unwrap();
        assert_eq!(s.as_str(), "oidc:corp:alice:with:colons");
        assert_eq!(Subject::parse(s.as_str()).unwrap(), s);
        assert_eq!(s.oidc_parts(), Some(("corp", "alice:with:colons")));
        let t = Subject::token("abc-123");
        assert_eq!(Subject::parse("token:abc-123").unwrap(), t);
        assert!(t.is_token() && t.oidc_parts().is_none());
    }

    #[test]
    fn no_subject_is_spelt_like_a_role() {
        let corp = IssuerId::parse("corp").unwrap();
        for role in Role::ALL {
            for text in [role.as_str().to_string(), role.casbin_name().to_string()] {
                assert!(Subject::parse(&text).is_err(), "{text} parsed as a subject");
                let s = Subject::oidc(&corp, &text).unwrap();
                assert_ne!(s.as_str(), role.casbin_name());
                assert_ne!(s.as_str(), role.as_str());
            }
        }
    }

    #[test]
    fn hostile_forms_are_refused() {
        for bad in [
            "",
            "oidc:",
            "oidc:corp",
            "oidc:corp:",
            "oidc::alice",
            "oidc:Corp:alice",
            "oidc:c:alice",
            "oidc:corp:a\u{0}b",
            "oidc:corp:a\nb",
            "token:",
            "token:a:b",
            "token:../x",
            "role:operator",
            "*",
            "anonymous",
        ] {
            assert!(Subject::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let long = format!("oidc:corp:{}", "a".repeat(256));
        assert_eq!(Subject::parse(&long), Err(SubjectError::Sub));
        let longest = format!("oidc:{}:{}", "a".repeat(32), "b".repeat(255));
        assert!(Subject::parse(&longest).unwrap().as_str().len() <= 300);
        assert!(IssuerId::parse(&"a".repeat(33)).is_err());
    }
}
