//! The one error type of the operations.

use guildhall_runtime::PrepareError;
use guildhall_store::{OwnerError, PublishError};

/// One field of a request that broke a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// A path to the field, e.g. `councils[1]` or `manifest.version`.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Why an operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request's content breaks a rule; `fields` names the fields when known.
    #[error("{detail}")]
    Invalid {
        /// What is wrong, for the caller.
        detail: String,
        /// The fields at fault.
        fields: Vec<FieldProblem>,
    },
    /// The upload is larger than the platform accepts.
    #[error("{0}")]
    TooLarge(String),
    /// The request conflicts with what is stored (a version with other bytes, a yanked
    /// version, the last owner).
    #[error("{0}")]
    Conflict(String),
    /// The actor may not do this to this object (not an owner of the plugin).
    #[error("{0}")]
    Forbidden(String),
    /// What the request is about does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A destructive request that must repeat what it destroys did not (see
    /// [`crate::tenant_archive::confirm`]).
    #[error("{0}")]
    Unconfirmed(String),
    /// Writing or reading an archive's files failed (the disk, not the archive's content,
    /// which is [`Error::Invalid`]).
    #[error("{0}")]
    Archive(String),
    /// The runtime refused or could not prepare a component.
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    /// Access control refused a binding or token, or failed.
    #[error(transparent)]
    Access(#[from] guildhall_authz::ManageError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] guildhall_store::Error),
}

impl Error {
    /// A refusal of one field.
    pub fn field(field: impl Into<String>, reason: impl Into<String>, detail: String) -> Self {
        Error::Invalid {
            detail,
            fields: vec![FieldProblem {
                field: field.into(),
                reason: reason.into(),
            }],
        }
    }

    /// The detail with every field problem, on one line, for the command line.
    pub fn describe(&self) -> String {
        let mut out = self.to_string();
        if let Error::Invalid { fields, .. } = self {
            for f in fields {
                out.push_str(&format!("; {}: {}", f.field, f.reason));
            }
        }
        if let Error::Prepare(PrepareError::Manifest(errors)) = self {
            for e in errors {
                out.push_str(&format!("; manifest.{}: {}", e.field, e.reason));
            }
        }
        out
    }
}

impl From<OwnerError> for Error {
    fn from(e: OwnerError) -> Self {
        match e {
            e @ OwnerError::NoPlugin(_) => Error::NotFound(e.to_string()),
            e @ OwnerError::NotOwner { .. } => Error::Forbidden(e.to_string()),
            e @ OwnerError::LastOwner { .. } => Error::Conflict(e.to_string()),
            OwnerError::Store(e) => Error::Store(e),
        }
    }
}

impl From<PublishError> for Error {
    fn from(e: PublishError) -> Self {
        match e {
            e @ PublishError::VersionConflict { .. } => Error::Conflict(e.to_string()),
            e @ PublishError::NotOwner { .. } => Error::Forbidden(e.to_string()),
            e @ PublishError::SignerNotOwner { .. } => Error::field(
                "signature",
                "not an owner's key",
                format!("bad signature: {e}"),
            ),
            PublishError::Store(e) => Error::Store(e),
        }
    }
}
