//! Plugin owners (the crates.io model), yanking, and the signing keys registered to each
//! identity, for the API, the console and the command line.
//!
//! Who may manage a plugin is decided in the store, inside the transaction that changes
//! it ([`Actor::manages`]); these operations check the request's content (which subjects
//! can own a plugin, what a key's name and key are) and turn the store's refusals into
//! [`Error`]s.

use guildhall_authz::{Authz, Domain, Principal};
use guildhall_domain::signing::PublicKey;
use guildhall_domain::{PluginName, Subject};
use guildhall_store::{
    Actor, CLI_OPERATOR, KeyError, NewKey, OwnerError, OwnerRecord, PluginRecord, Store,
    VersionRecord,
};

use crate::Error;

/// Who is acting on the catalogue: the principal's subject, and whether it may manage
/// every plugin (the platform permission `catalogue:owners`, which operators hold).
pub fn actor<'a>(authz: &Authz, principal: &'a Principal) -> Actor<'a> {
    Actor {
        subject: principal.subject(),
        operator: authz.allowed(principal, Domain::Platform, "catalogue", "owners"),
    }
}

/// A plugin's owners, in the order they were added.
pub async fn owners(store: &Store, plugin: &PluginName) -> Result<Vec<OwnerRecord>, Error> {
    store
        .owners()
        .list(plugin)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no plugin {plugin}")))
}

/// The plugins `actor` may manage: those it owns, or every plugin for an operator.
pub async fn managed(store: &Store, actor: Actor<'_>) -> Result<Vec<PluginRecord>, Error> {
    let mut plugins = store.catalogue().list().await?;
    if !actor.operator {
        let owned = store.owners().plugins_of(actor.subject).await?;
        plugins.retain(|p| owned.iter().any(|o| o == p.name.as_str()));
    }
    Ok(plugins)
}

fn subject_problem(detail: String, reason: &str) -> Error {
    Error::field("subject", reason, detail)
}

/// Checks the subject of a new owner: a principal that can sign in and act on the
/// platform, written `token:<id>` or `oidc:<issuer id>:<sub>` (or the command line's
/// `cli:operator`). Role names and other strings that name nobody are refused, and so are
/// users of an identity provider limited to some tenants, which never act on the platform.
pub fn new_owner(authz: &Authz, raw: &str) -> Result<String, Error> {
    if raw == CLI_OPERATOR {
        return Ok(raw.to_string());
    }
    let parsed = Subject::parse(raw).map_err(|e| {
        let shown: String = raw.chars().take(64).collect();
        subject_problem(
            format!("{shown:?} is not an owner's subject: {e}"),
            "`token:<id>`, `oidc:<issuer id>:<sub>` or `cli:operator`",
        )
    })?;
    if let Some((issuer, _)) = parsed.oidc_parts() {
        let oidc = authz.oidc();
        if !oidc.knows_issuer(issuer) {
            return Err(subject_problem(
                format!("no identity provider {issuer:?} is configured"),
                "the issuer is not configured",
            ));
        }
        if oidc.issuer_is_restricted(issuer) {
            return Err(subject_problem(
                format!(
                    "identity provider {issuer:?} serves only some tenants; its users cannot own plugins"
                ),
                "the issuer is limited to some tenants",
            ));
        }
    }
    Ok(parsed.as_str().to_string())
}

/// Checks the subject of an owner to remove: any name an owner may be stored under
/// (including ones older than namespaced subjects), so each can still be removed.
pub fn existing_owner(raw: &str) -> Result<String, Error> {
    if raw.is_empty() || raw.len() > 512 || raw.chars().any(char::is_control) {
        return Err(subject_problem(
            "an owner is a subject of 1 to 512 characters without control characters".into(),
            "1 to 512 printable characters",
        ));
    }
    Ok(raw.to_string())
}

/// Adds `raw` as an owner of `plugin`; `true` when it was not one already. Whether the
/// actor may manage the plugin's owners comes first, so only they learn which subjects
/// could own it; the store checks again when it adds.
pub async fn add_owner(
    authz: &Authz,
    store: &Store,
    actor: Actor<'_>,
    plugin: &PluginName,
    raw: &str,
) -> Result<bool, Error> {
    let owners = store
        .owners()
        .list(plugin)
        .await?
        .ok_or_else(|| OwnerError::NoPlugin(plugin.clone()))?;
    if !actor.manages(owners.iter().map(|o| o.subject.as_str())) {
        return Err(OwnerError::NotOwner {
            plugin: plugin.clone(),
            subject: actor.subject.to_string(),
        }
        .into());
    }
    let subject = new_owner(authz, raw)?;
    Ok(store.owners().add(plugin, &subject, actor).await?)
}

/// Removes `raw` as an owner of `plugin`. Only an owner or an operator may, and never the
/// last owner; a subject that is not an owner is "not found".
pub async fn remove_owner(
    store: &Store,
    actor: Actor<'_>,
    plugin: &PluginName,
    raw: &str,
) -> Result<(), Error> {
    let subject = existing_owner(raw)?;
    if store.owners().remove(plugin, &subject, actor).await? {
        Ok(())
    } else {
        Err(Error::NotFound(format!(
            "{subject} is not an owner of plugin {plugin}"
        )))
    }
}

/// Yanks a version: no new installs; running installs keep working. Only an owner or an
/// operator may; yanking a yanked version changes nothing.
pub async fn yank(
    store: &Store,
    actor: Actor<'_>,
    plugin: &PluginName,
    version: &str,
) -> Result<VersionRecord, Error> {
    store
        .catalogue()
        .yank(plugin, version, actor)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no version {version} of plugin {plugin}")))
}

/// Checks a signing key's name: 1 to 64 letters, digits, `-`, `_` or `.`.
pub fn key_name(raw: &str) -> Result<String, Error> {
    let ok = !raw.is_empty()
        && raw.len() <= 64
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(raw.to_string())
    } else {
        Err(Error::field(
            "name",
            "1 to 64 of [A-Za-z0-9._-]",
            "a key name is 1 to 64 letters, digits, '-', '_' or '.'".to_string(),
        ))
    }
}

/// Registers (or replaces) `subject`'s signing key `name`: an ed25519 public key in
/// base64. `true` when the name is new. A public key belongs to one identity under one
/// name, so registering it again elsewhere is a conflict.
pub async fn put_key(
    store: &Store,
    subject: &str,
    name: &str,
    public_key: &str,
) -> Result<bool, Error> {
    let name = key_name(name)?;
    let key = PublicKey::parse(public_key)
        .map_err(|e| Error::field("public_key", e.to_string(), format!("public_key: {e}")))?;
    store
        .publisher_keys()
        .put(NewKey {
            subject,
            name: &name,
            public_key: &key.to_base64(),
            fingerprint: &key.fingerprint(),
        })
        .await
        .map_err(|e| match e {
            e @ KeyError::Taken { .. } => Error::Conflict(e.to_string()),
            KeyError::Store(e) => Error::Store(e),
        })
}

/// Removes `subject`'s signing key `name`. Versions it signed keep their record.
pub async fn remove_key(store: &Store, subject: &str, name: &str) -> Result<(), Error> {
    if store.publisher_keys().remove(subject, name).await? {
        Ok(())
    } else {
        Err(Error::NotFound(format!("you have no key named {name}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(e: &Error) -> &str {
        match e {
            Error::Invalid { fields, .. } => &fields[0].field,
            other => panic!("not a field problem: {other:?}"),
        }
    }

    #[test]
    fn key_names_are_short_and_plain() {
        for ok in ["laptop", "ci.2026", "a", &"k".repeat(64), "Release_Key-1"] {
            assert_eq!(key_name(ok).unwrap(), ok);
        }
        for bad in ["", &"k".repeat(65) as &str, "my key", "a/b", "clé"] {
            assert_eq!(field_of(&key_name(bad).unwrap_err()), "name", "{bad:?}");
        }
    }

    #[test]
    fn an_owner_to_remove_is_any_printable_stored_name() {
        assert_eq!(existing_owner("publisher").unwrap(), "publisher");
        assert_eq!(existing_owner("token:abc").unwrap(), "token:abc");
        for bad in ["", "a\nb", &"x".repeat(513) as &str] {
            assert_eq!(field_of(&existing_owner(bad).unwrap_err()), "subject");
        }
    }

    #[test]
    fn an_actor_manages_what_it_owns_or_everything_as_an_operator() {
        let owners = ["token:a", "oidc:corp:b"];
        let owner = Actor {
            subject: "token:a",
            operator: false,
        };
        let stranger = Actor {
            subject: "token:z",
            operator: false,
        };
        let operator = Actor {
            subject: "token:z",
            operator: true,
        };
        assert!(owner.manages(owners));
        assert!(!stranger.manages(owners));
        assert!(operator.manages(owners));
        assert!(!stranger.manages([]));
    }
}
