//! Compiled components shared between replicas, so a new replica loads what another has
//! compiled instead of compiling every installed plugin again.
//!
//! **Architecture Invariant:** a shared artefact becomes machine code in every replica that
//! loads it, so the database alone is not trusted with it: each row carries an HMAC-SHA256,
//! under a key derived from the platform's secrets key, over the component's digest, the
//! engine's compatibility id and the bytes. [`SharedArtefacts::get`] returns only bytes whose
//! MAC holds; anyone who can write the table but does not hold the secrets key can make a
//! replica compile, never run code of their choosing.

use hmac::{Hmac, Mac};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};
use sha2::Sha256;

use crate::Result;
use crate::entities::compiled_artefacts;
use crate::millis::now_ms;

/// What the artefact key is derived for; changing it invalidates every shared artefact.
const PURPOSE: &[u8] = b"guildhall compiled artefacts v1";

/// How long artefacts of other engines (an earlier release, another configuration) are kept
/// for replicas that still run them: a rolling upgrade's length, generously.
const OTHER_ENGINES_KEPT_MS: i64 = 7 * 24 * 3_600_000;

/// The key artefacts are authenticated with, derived from the secrets key
/// ([`crate::Keyring::artefact_key`]).
#[derive(Clone)]
pub struct ArtefactKey([u8; 32]);

impl std::fmt::Debug for ArtefactKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ArtefactKey(hidden)")
    }
}

impl ArtefactKey {
    /// The key for artefacts, from a 32-byte secrets key.
    pub(crate) fn derive(secrets_key: &[u8; 32]) -> Self {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secrets_key)
            .expect("HMAC takes a key of any length");
        mac.update(PURPOSE);
        Self(mac.finalize().into_bytes().into())
    }

    fn mac(&self, digest: &str, engine: &str, bytes: &[u8]) -> Hmac<Sha256> {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        // Lengths first, so no two (digest, engine) pairs feed the same bytes.
        for part in [digest.as_bytes(), engine.as_bytes()] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.update(bytes);
        mac
    }
}

/// The shared artefacts, authenticated with one key.
#[derive(Debug)]
pub struct SharedArtefacts<'a> {
    db: &'a DatabaseConnection,
    key: &'a ArtefactKey,
}

impl<'a> SharedArtefacts<'a> {
    pub(crate) fn new(db: &'a DatabaseConnection, key: &'a ArtefactKey) -> Self {
        Self { db, key }
    }

    /// The artefact of `digest` for the engine `engine`, if one is shared and its MAC holds
    /// under this key. A row that fails the check is left in place (a replica with the
    /// current key replaces it when it next compiles) and reported as absent, with a warning.
    pub async fn get(&self, digest: &str, engine: &str) -> Result<Option<Vec<u8>>> {
        let Some(row) =
            compiled_artefacts::Entity::find_by_id((digest.to_string(), engine.to_string()))
                .one(self.db)
                .await?
        else {
            return Ok(None);
        };
        let mac = hex::decode(&row.mac).unwrap_or_default();
        if self
            .key
            .mac(digest, engine, &row.bytes)
            .verify_slice(&mac)
            .is_err()
        {
            tracing::warn!(
                digest,
                engine,
                "a shared compiled artefact fails its authentication (written under another secrets key, or altered); compiling instead"
            );
            return Ok(None);
        }
        Ok(Some(row.bytes))
    }

    /// Shares `bytes` as the artefact of `digest` for `engine`, replacing any there, and
    /// removes other engines' artefacts older than a week.
    pub async fn put(&self, digest: &str, engine: &str, bytes: &[u8]) -> Result<()> {
        let mac = hex::encode(self.key.mac(digest, engine, bytes).finalize().into_bytes());
        let now = now_ms();
        compiled_artefacts::Entity::insert(compiled_artefacts::ActiveModel {
            digest: Set(digest.to_string()),
            engine: Set(engine.to_string()),
            bytes: Set(bytes.to_vec()),
            mac: Set(mac),
            created_at_ms: Set(now),
        })
        .on_conflict(
            OnConflict::columns([
                compiled_artefacts::Column::Digest,
                compiled_artefacts::Column::Engine,
            ])
            .update_columns([
                compiled_artefacts::Column::Bytes,
                compiled_artefacts::Column::Mac,
                compiled_artefacts::Column::CreatedAtMs,
            ])
            .to_owned(),
        )
        .exec(self.db)
        .await?;
        compiled_artefacts::Entity::delete_many()
            .filter(compiled_artefacts::Column::Engine.ne(engine))
            .filter(compiled_artefacts::Column::CreatedAtMs.lt(now - OTHER_ENGINES_KEPT_MS))
            .exec(self.db)
            .await?;
        Ok(())
    }
}
