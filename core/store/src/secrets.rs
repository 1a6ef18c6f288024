//! Install secrets: values such as API keys that an alliance's administrators set for a
//! plugin (for the whole install, or for one council), encrypted at rest with AES-256-GCM.
//!
//! Each value is sealed under the keyring's current key with a fresh random 96-bit nonce,
//! and the tenant, plugin, council and name as associated data, so a row copied to another
//! tenant, plugin, council or name does not open. A row records the id of its key (the
//! first 16 hex digits of the key's SHA-256), so values sealed under a previous key still
//! open after the operator changes keys, until `guildhall secrets rotate-key` seals them
//! again under the current one. No read returns a value except [`Secrets::value`], which the
//! plugin runtime calls for a plugin's `secrets.get`.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use guildhall_domain::{CouncilId, PluginName};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use crate::millis::{from_ms, now_ms};
use crate::plugin_data::placeholders;
use crate::{Result, TenantScope, scoped};

/// The `council` column of a value every council without its own gets.
const EVERY_COUNCIL: &str = "*";

/// A key's id: the first 16 hex digits of its SHA-256.
fn key_id(key: &[u8; 32]) -> String {
    hex::encode(&Sha256::digest(key)[..8])
}

/// Why a key or a stored value could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// A key is not 32 bytes in standard base64.
    #[error("{0}")]
    BadKey(String),
    /// A stored value was sealed under a key the keyring does not hold.
    #[error(
        "the secret was encrypted under key {0}, which is not configured (secrets.key or secrets.previous_keys)"
    )]
    UnknownKey(String),
    /// A stored value did not open: tampered with, or moved from another row.
    #[error("the secret could not be decrypted")]
    Undecryptable,
}

/// The keys secrets are sealed with: the current one, which seals, and previous ones, which
/// only open values not yet sealed again. Its `Debug` shows key ids only.
#[derive(Clone)]
pub struct Keyring {
    current: (String, Aes256Gcm),
    previous: Vec<(String, Aes256Gcm)>,
    /// Derived from the current key: authenticates shared compiled artefacts.
    artefacts: crate::ArtefactKey,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current.0)
            .field(
                "previous",
                &self.previous.iter().map(|(id, _)| id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Keyring {
    /// A keyring from base64 keys of 32 bytes each (`secrets.key`, `secrets.previous_keys`).
    pub fn from_base64(current: &str, previous: &[String]) -> Result<Self, SecretError> {
        let key_bytes = |text: &str, what: &str| -> Result<[u8; 32], SecretError> {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| SecretError::BadKey(format!("{what} is not base64")))?;
            bytes.try_into().map_err(|b: Vec<u8>| {
                SecretError::BadKey(format!(
                    "{what} is {} bytes; AES-256 needs 32 (make one with `guildhall secrets generate-key`)",
                    b.len()
                ))
            })
        };
        let cipher = |key: [u8; 32]| (key_id(&key), Aes256Gcm::new(&Key::<Aes256Gcm>::from(key)));
        let current_key = key_bytes(current, "secrets.key")?;
        let artefacts = crate::ArtefactKey::derive(&current_key);
        let current = cipher(current_key);
        let previous = previous
            .iter()
            .enumerate()
            .map(|(i, k)| key_bytes(k, &format!("secrets.previous_keys[{i}]")).map(cipher))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            current,
            previous,
            artefacts,
        })
    }

    /// A new random key, in base64.
    pub fn generate_key() -> String {
        base64::engine::general_purpose::STANDARD.encode(Aes256Gcm::generate_key(&mut OsRng))
    }

    /// The key shared compiled artefacts are authenticated with, derived from the current
    /// key (so rotating the key makes replicas compile again and share anew).
    pub fn artefact_key(&self) -> &crate::ArtefactKey {
        &self.artefacts
    }

    /// The id of the key that seals.
    pub fn current_id(&self) -> &str {
        &self.current.0
    }

    fn seal(&self, aad: &[u8], value: &[u8]) -> Result<(String, Vec<u8>, Vec<u8>), SecretError> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = self
            .current
            .1
            .encrypt(&nonce, Payload { msg: value, aad })
            .map_err(|_| SecretError::Undecryptable)?;
        Ok((self.current.0.clone(), nonce.to_vec(), sealed))
    }

    fn open(
        &self,
        key: &str,
        nonce: &[u8],
        sealed: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, SecretError> {
        let cipher = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|(id, _)| id == key)
            .map(|(_, c)| c)
            .ok_or_else(|| SecretError::UnknownKey(key.to_string()))?;
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| SecretError::Undecryptable)?;
        cipher
            .decrypt(&Nonce::from(nonce), Payload { msg: sealed, aad })
            .map_err(|_| SecretError::Undecryptable)
    }
}

/// What a row's seal is bound to.
fn associated(tenant: &str, plugin: &str, council: &str, name: &str) -> Vec<u8> {
    format!("guildhall-secret-v1\0{tenant}\0{plugin}\0{council}\0{name}").into_bytes()
}

/// A secret as listed: never its value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SecretRecord {
    /// The declared name.
    pub name: String,
    /// The council whose own value it is; `None` for the install's.
    pub council: Option<String>,
    /// Who set it.
    pub set_by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub set_at: OffsetDateTime,
}

/// One tenant's install secrets.
#[derive(Debug)]
pub struct Secrets<'a> {
    db: &'a DatabaseConnection,
    scope: &'a TenantScope,
}

fn council_column(council: Option<&CouncilId>) -> &str {
    council.map_or(EVERY_COUNCIL, CouncilId::as_str)
}

impl<'a> Secrets<'a> {
    pub(crate) fn new(db: &'a DatabaseConnection, scope: &'a TenantScope) -> Self {
        Self { db, scope }
    }

    fn stmt(&self, backend: DbBackend, sql: &str, values: Vec<sea_orm::Value>) -> Statement {
        Statement::from_sql_and_values(backend, placeholders(backend, sql), values)
    }

    /// Seals and stores `value` as `plugin`'s secret `name` (for `council`, or the install's
    /// when `None`), replacing any earlier value. Returns whether one was replaced.
    pub async fn put(
        &self,
        keyring: &Keyring,
        plugin: &PluginName,
        council: Option<&CouncilId>,
        name: &str,
        value: &str,
        set_by: &str,
    ) -> Result<bool> {
        let tenant = self.scope.tenant().as_str();
        let council = council_column(council);
        let aad = associated(tenant, plugin.as_str(), council, name);
        let (key, nonce, sealed) = keyring
            .seal(&aad, value.as_bytes())
            .map_err(|e| sea_orm::DbErr::Custom(e.to_string()))?;
        let txn = scoped::begin_write(self.db, tenant).await?;
        let backend = txn.get_database_backend();
        let existed = txn
            .query_one_raw(self.stmt(
                backend,
                "SELECT name FROM install_secrets \
                 WHERE tenant_id = ? AND plugin = ? AND council = ? AND name = ?",
                vec![
                    tenant.into(),
                    plugin.as_str().into(),
                    council.into(),
                    name.into(),
                ],
            ))
            .await?
            .is_some();
        txn.execute_raw(self.stmt(
            backend,
            "INSERT INTO install_secrets \
             (tenant_id, plugin, council, name, key_id, nonce, ciphertext, set_by, set_at_ms) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (tenant_id, plugin, council, name) DO UPDATE SET \
             key_id = excluded.key_id, nonce = excluded.nonce, ciphertext = excluded.ciphertext, \
             set_by = excluded.set_by, set_at_ms = excluded.set_at_ms",
            vec![
                tenant.into(),
                plugin.as_str().into(),
                council.into(),
                name.into(),
                key.into(),
                nonce.into(),
                sealed.into(),
                set_by.into(),
                now_ms().into(),
            ],
        ))
        .await?;
        txn.commit().await?;
        Ok(existed)
    }

    /// Removes a secret; returns whether it was set.
    pub async fn delete(
        &self,
        plugin: &PluginName,
        council: Option<&CouncilId>,
        name: &str,
    ) -> Result<bool> {
        let tenant = self.scope.tenant().as_str();
        let txn = scoped::begin_write(self.db, tenant).await?;
        let backend = txn.get_database_backend();
        let deleted = txn
            .execute_raw(self.stmt(
                backend,
                "DELETE FROM install_secrets \
                 WHERE tenant_id = ? AND plugin = ? AND council = ? AND name = ?",
                vec![
                    tenant.into(),
                    plugin.as_str().into(),
                    council_column(council).into(),
                    name.into(),
                ],
            ))
            .await?
            .rows_affected()
            > 0;
        txn.commit().await?;
        Ok(deleted)
    }

    /// The secrets set for `plugin`, by name and then council (the install's first).
    pub async fn list(&self, plugin: &PluginName) -> Result<Vec<SecretRecord>> {
        let tenant = self.scope.tenant().as_str();
        let txn = scoped::begin(self.db, tenant).await?;
        let backend = txn.get_database_backend();
        let rows = txn
            .query_all_raw(self.stmt(
                backend,
                "SELECT name, council, set_by, set_at_ms FROM install_secrets \
                 WHERE tenant_id = ? AND plugin = ? ORDER BY name, council",
                vec![tenant.into(), plugin.as_str().into()],
            ))
            .await?;
        txn.commit().await?;
        let mut records = rows
            .into_iter()
            .map(|row| {
                let council: String = row.try_get("", "council")?;
                Ok(SecretRecord {
                    name: row.try_get("", "name")?,
                    council: (council != EVERY_COUNCIL).then_some(council),
                    set_by: row.try_get("", "set_by")?,
                    set_at: from_ms(row.try_get("", "set_at_ms")?),
                })
            })
            .collect::<Result<Vec<_>, sea_orm::DbErr>>()?;
        // `*` sorts before letters in both databases' collations, but say it here.
        records.sort_by(|a, b| (&a.name, &a.council).cmp(&(&b.name, &b.council)));
        Ok(records)
    }

    /// `plugin`'s secret `name` for `council`: the council's own value, else the
    /// install's, else `None`.
    pub async fn value(
        &self,
        keyring: &Keyring,
        plugin: &PluginName,
        council: &CouncilId,
        name: &str,
    ) -> Result<Option<String>, ValueError> {
        let tenant = self.scope.tenant().as_str();
        let txn = scoped::begin(self.db, tenant).await?;
        let backend = txn.get_database_backend();
        let rows = txn
            .query_all_raw(self.stmt(
                backend,
                "SELECT council, key_id, nonce, ciphertext FROM install_secrets \
                 WHERE tenant_id = ? AND plugin = ? AND name = ? AND council IN (?, ?)",
                vec![
                    tenant.into(),
                    plugin.as_str().into(),
                    name.into(),
                    council.as_str().into(),
                    EVERY_COUNCIL.into(),
                ],
            ))
            .await?;
        txn.commit().await?;
        let row = rows
            .iter()
            .find(|r| r.try_get::<String>("", "council").ok().as_deref() == Some(council.as_str()))
            .or_else(|| rows.first());
        let Some(row) = row else {
            return Ok(None);
        };
        let row_council: String = row.try_get("", "council").map_err(crate::Error::from)?;
        let key: String = row.try_get("", "key_id").map_err(crate::Error::from)?;
        let nonce: Vec<u8> = row.try_get("", "nonce").map_err(crate::Error::from)?;
        let sealed: Vec<u8> = row.try_get("", "ciphertext").map_err(crate::Error::from)?;
        let aad = associated(tenant, plugin.as_str(), &row_council, name);
        let bytes = keyring.open(&key, &nonce, &sealed, &aad)?;
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| ValueError::Secret(SecretError::Undecryptable))
    }

    /// Seals every value of this tenant not under the keyring's current key again under
    /// it, one transaction per value, going on past values that do not open. Returns how
    /// many were sealed again and, for each that did not open, where it is and why.
    pub async fn rotate(&self, keyring: &Keyring) -> Result<Rotation, ValueError> {
        let tenant = self.scope.tenant().as_str();
        let txn = scoped::begin(self.db, tenant).await?;
        let backend = txn.get_database_backend();
        let stale = txn
            .query_all_raw(self.stmt(
                backend,
                "SELECT plugin, council, name FROM install_secrets \
                 WHERE tenant_id = ? AND key_id <> ?",
                vec![tenant.into(), keyring.current_id().into()],
            ))
            .await?;
        txn.commit().await?;
        let mut rotation = Rotation::default();
        for row in stale {
            let plugin: String = row.try_get("", "plugin").map_err(crate::Error::from)?;
            let council: String = row.try_get("", "council").map_err(crate::Error::from)?;
            let name: String = row.try_get("", "name").map_err(crate::Error::from)?;
            let txn = scoped::begin_write(self.db, tenant).await?;
            let found = txn
                .query_one_raw(self.stmt(
                    backend,
                    "SELECT key_id, nonce, ciphertext FROM install_secrets \
                     WHERE tenant_id = ? AND plugin = ? AND council = ? AND name = ?",
                    vec![
                        tenant.into(),
                        plugin.clone().into(),
                        council.clone().into(),
                        name.clone().into(),
                    ],
                ))
                .await?;
            let Some(found) = found else {
                continue;
            };
            let key: String = found.try_get("", "key_id").map_err(crate::Error::from)?;
            if key == keyring.current_id() {
                continue;
            }
            let nonce: Vec<u8> = found.try_get("", "nonce").map_err(crate::Error::from)?;
            let sealed: Vec<u8> = found
                .try_get("", "ciphertext")
                .map_err(crate::Error::from)?;
            let aad = associated(tenant, &plugin, &council, &name);
            let value = match keyring.open(&key, &nonce, &sealed, &aad) {
                Ok(value) => value,
                Err(e) => {
                    txn.rollback().await?;
                    rotation
                        .failed
                        .push(format!("{plugin} {council} {name}: {e}"));
                    continue;
                }
            };
            let (new_key, new_nonce, new_sealed) = keyring.seal(&aad, &value)?;
            // Only the value just opened is replaced: a value set meanwhile (under the
            // current key, with its own nonce) is left as it is.
            let replaced = txn
                .execute_raw(self.stmt(
                    backend,
                    "UPDATE install_secrets SET key_id = ?, nonce = ?, ciphertext = ? \
                     WHERE tenant_id = ? AND plugin = ? AND council = ? AND name = ? \
                     AND key_id = ? AND nonce = ?",
                    vec![
                        new_key.into(),
                        new_nonce.into(),
                        new_sealed.into(),
                        tenant.into(),
                        plugin.into(),
                        council.into(),
                        name.into(),
                        key.into(),
                        nonce.into(),
                    ],
                ))
                .await?
                .rows_affected();
            txn.commit().await?;
            rotation.rotated += usize::try_from(replaced).unwrap_or(0);
        }
        Ok(rotation)
    }
}

/// What [`Secrets::rotate`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// Values sealed again under the current key.
    pub rotated: usize,
    /// Values that did not open (plugin, council, name and why), left as they were.
    pub failed: Vec<String>,
}

/// Why a secret's value could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ValueError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] crate::Error),
    /// The value did not open.
    #[error(transparent)]
    Secret(#[from] SecretError),
}

impl From<sea_orm::DbErr> for ValueError {
    fn from(e: sea_orm::DbErr) -> Self {
        ValueError::Store(e.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring() -> (Keyring, String) {
        let key = Keyring::generate_key();
        (Keyring::from_base64(&key, &[]).unwrap(), key)
    }

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_its_row() {
        let (ring, key) = keyring();
        let aad = associated("t", "p", "*", "api_key");
        let (id, nonce, sealed) = ring.seal(&aad, b"s3cret").unwrap();
        assert_eq!(ring.open(&id, &nonce, &sealed, &aad).unwrap(), b"s3cret");
        assert!(!sealed.windows(6).any(|w| w == b"s3cret"));
        // Another row's associated data: moved to another tenant, council or name.
        for other in [
            associated("u", "p", "*", "api_key"),
            associated("t", "p", "c", "api_key"),
            associated("t", "p", "*", "other"),
        ] {
            assert!(matches!(
                ring.open(&id, &nonce, &sealed, &other),
                Err(SecretError::Undecryptable)
            ));
        }
        // A new key opens nothing of the old until the old one is kept as a previous key.
        let (new_ring, new_key) = keyring();
        assert!(matches!(
            new_ring.open(&id, &nonce, &sealed, &aad),
            Err(SecretError::UnknownKey(_))
        ));
        let rotating = Keyring::from_base64(&new_key, &[key]).unwrap();
        assert_eq!(
            rotating.open(&id, &nonce, &sealed, &aad).unwrap(),
            b"s3cret"
        );
        assert_ne!(rotating.current_id(), id);
    }

    #[test]
    fn bad_keys_are_named_and_debug_shows_no_key() {
        assert!(Keyring::from_base64("not base64!", &[]).is_err());
        let short = base64::engine::general_purpose::STANDARD.encode([0u8; 16]);
        let e = Keyring::from_base64(&short, &[]).unwrap_err().to_string();
        assert!(e.contains("16 bytes"), "{e}");
        let (ring, key) = keyring();
        let shown = format!("{ring:?}");
        assert!(!shown.contains(&key) && shown.contains(ring.current_id()));
    }
}
