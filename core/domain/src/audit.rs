//! The audit log's hash chain: what is hashed and how, so writers and verifiers agree.
//!
//! Each chain (one per tenant, and one for the platform) is a sequence of entries where
//! `hash = sha256(prev_hash ‖ canonical entry)`, hex-encoded, and the first entry's
//! `prev_hash` is [`GENESIS`]. Changing any stored byte of an entry changes its hash, and
//! every later entry names the hash before it, so an alteration shows at the entry altered.

use serde::Serialize;
use sha2::{Digest as _, Sha256};

/// The chain key of the platform's own entries (publishing, creating tenants). Tenant ids
/// cannot take this form.
pub const PLATFORM_CHAIN: &str = "_platform";

/// The `prev_hash` of every chain's first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hashed fields of one entry, in their canonical order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainEntry<'a> {
    /// The chain: a tenant id or [`PLATFORM_CHAIN`].
    pub chain: &'a str,
    /// Position in the chain, from 1.
    pub seq: i64,
    /// RFC 3339 time, as stored.
    pub at: &'a str,
    /// Who acted: a principal's subject or `anonymous`.
    pub actor: &'a str,
    /// What was done, e.g. `installs.put`.
    pub action: &'a str,
    /// What it was done to, e.g. `installs/bin-collections`.
    pub object: &'a str,
    /// How it ended, e.g. `200` or `denied`.
    pub outcome: &'a str,
    /// The request it happened in.
    pub request_id: &'a str,
    /// JSON text with further detail, as stored.
    pub detail: &'a str,
}

impl ChainEntry<'_> {
    /// The canonical bytes: compact JSON with the fields in declaration order.
    pub fn canonical(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("strings and integers serialise")
    }

    /// `sha256(prev_hash ‖ canonical entry)`, hex.
    pub fn hash(&self, prev_hash: &str) -> String {
        let mut hasher = Sha256::new();
        hasher.update(prev_hash.as_bytes());
        hasher.update(self.canonical());
        hex::encode(hasher.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(actor: &str) -> ChainEntry<'_> {
        ChainEntry {
            chain: "north-downs",
            seq: 1,
            at: "2026-11-27T10:00:00.000000Z",
            actor,
            action: "installs.put",
            object: "installs/hello",
            outcome: "200",
            request_id: "r1",
            detail: "{}",
        }
    }

    #[test]
    fn hash_depends_on_every_field_and_the_previous_hash() {
        let base = entry("token:abc").hash(GENESIS);
        assert_eq!(base.len(), 64);
        assert_eq!(base, entry("token:abc").hash(GENESIS));
        assert_ne!(base, entry("token:abd").hash(GENESIS));
        assert_ne!(base, entry("token:abc").hash(&base));
    }

    #[test]
    fn canonical_form_is_stable() {
        expect_test::expect![[r#"{"chain":"north-downs","seq":1,"at":"2026-11-27T10:00:00.000000Z","actor":"token:abc","action":"installs.put","object":"installs/hello","outcome":"200","request_id":"r1","detail":"{}"}"#]]
            .assert_eq(&String::from_utf8(entry("token:abc").canonical()).unwrap());
    }
}
