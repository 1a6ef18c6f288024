//! What a plugin signature covers, and ed25519 keys written as text.
//!
//! A signature is an ed25519 signature over the bytes of [`statement`]:
//!
//! ```text
//! guildhall-signature-v1
//! name=<plugin name>
//! version=<version as written in plugin.toml, normalised by semver>
//! manifest-sha256=<64 lowercase hex digits: sha256 of plugin.toml's bytes as uploaded>
//! component-sha256=<64 lowercase hex digits: sha256 of the component's bytes>
//! ```
//!
//! Each line ends with a single `\n` (including the last); there is no other whitespace.
//! Because the statement names the plugin, the version and both digests, a signature made
//! for one version (or one manifest) cannot be replayed for another.
//!
//! Keys and signatures are written in standard base64 (with padding): a public key is 32
//! bytes, a private key file holds the 32-byte seed, a signature is 64 bytes.

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::{Digest, PluginName};

/// The first line of every statement; a new format gets a new line.
pub const STATEMENT_VERSION: &str = "guildhall-signature-v1";

/// The exact bytes a signature covers for this plugin version.
pub fn statement(
    name: &PluginName,
    version: &semver::Version,
    manifest: &Digest,
    component: &Digest,
) -> String {
    format!(
        "{STATEMENT_VERSION}\nname={name}\nversion={version}\nmanifest-sha256={}\ncomponent-sha256={}\n",
        manifest.hex(),
        component.hex()
    )
}

/// Why a key or a signature is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    /// The text is not standard base64.
    #[error("not base64")]
    NotBase64,
    /// The decoded bytes have the wrong length or are not a valid point.
    #[error("not a valid ed25519 {0}")]
    Invalid(&'static str),
    /// The signature does not verify against the key for the statement.
    #[error("the signature does not verify")]
    Mismatch,
}

fn decode(text: &str) -> Result<Vec<u8>, SigningError> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| SigningError::NotBase64)
}

fn encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// An ed25519 public key that has been checked to be a valid point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl PublicKey {
    /// Parses a base64 public key (32 bytes).
    pub fn parse(text: &str) -> Result<Self, SigningError> {
        let bytes: [u8; 32] = decode(text)?
            .try_into()
            .map_err(|_| SigningError::Invalid("public key (32 bytes)"))?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map_err(|_| SigningError::Invalid("public key"))?;
        // A weak (small-order) key would verify forged signatures; refuse it outright.
        if key.is_weak() {
            return Err(SigningError::Invalid("public key (weak)"));
        }
        Ok(Self(key))
    }

    /// The key in base64.
    pub fn to_base64(&self) -> String {
        encode(self.0.as_bytes())
    }

    /// A short, stable name for the key: `SHA256:` and the unpadded base64 of the sha256
    /// of its 32 bytes (the form OpenSSH shows).
    pub fn fingerprint(&self) -> String {
        let hash = Sha256::digest(self.0.as_bytes());
        format!(
            "SHA256:{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(hash)
        )
    }

    /// Checks a base64 signature over `statement` (strict verification: no malleable
    /// or small-order forms).
    pub fn verify(&self, statement: &str, signature: &str) -> Result<(), SigningError> {
        let sig = parse_signature(signature)?;
        self.0
            .verify_strict(statement.as_bytes(), &sig)
            .map_err(|_| SigningError::Mismatch)
    }
}

/// Parses a base64 signature (64 bytes).
pub fn parse_signature(text: &str) -> Result<ed25519_dalek::Signature, SigningError> {
    ed25519_dalek::Signature::from_slice(&decode(text)?)
        .map_err(|_| SigningError::Invalid("signature (64 bytes)"))
}

/// A private signing key (its 32-byte seed). Its `Debug` never shows the seed.
pub struct SecretKey(ed25519_dalek::SigningKey);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretKey")
            .field("public", &self.public().fingerprint())
            .finish()
    }
}

impl SecretKey {
    /// A key from 32 random bytes (the caller supplies the randomness).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// Parses the base64 seed a private key file holds.
    pub fn parse(text: &str) -> Result<Self, SigningError> {
        let seed: [u8; 32] = decode(text)?
            .try_into()
            .map_err(|_| SigningError::Invalid("private key (32 bytes)"))?;
        Ok(Self::from_seed(seed))
    }

    /// The seed in base64, as a private key file holds it.
    pub fn to_base64(&self) -> String {
        encode(self.0.as_bytes())
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs `statement`; the signature in base64.
    pub fn sign(&self, statement: &str) -> String {
        use ed25519_dalek::Signer as _;
        encode(&self.0.sign(statement.as_bytes()).to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name() -> PluginName {
        PluginName::parse("hello").unwrap()
    }

    #[test]
    fn the_statement_is_exactly_the_documented_bytes() {
        let s = statement(
            &name(),
            &semver::Version::new(1, 2, 3),
            &Digest::of(b"manifest"),
            &Digest::of(b"component"),
        );
        expect_test::expect![[r#"
            guildhall-signature-v1
            name=hello
            version=1.2.3
            manifest-sha256=05b3abf2579a5eb66403cd78be557fd860633a1fe2103c7642030defe32c657f
            component-sha256=6985ca1f4daa5a584a28eae043a239cb96689af1337ea13afb63e00c2bf512fa
        "#]]
        .assert_eq(&s);
    }

    #[test]
    fn a_signature_verifies_only_its_own_statement_and_key() {
        let key = SecretKey::from_seed([7; 32]);
        let other = SecretKey::from_seed([8; 32]);
        let v1 = statement(
            &name(),
            &semver::Version::new(1, 0, 0),
            &Digest::of(b"m"),
            &Digest::of(b"c"),
        );
        let v2 = v1.replace("version=1.0.0", "version=2.0.0");
        let sig = key.sign(&v1);
        assert_eq!(key.public().verify(&v1, &sig), Ok(()));
        assert_eq!(key.public().verify(&v2, &sig), Err(SigningError::Mismatch));
        assert_eq!(
            other.public().verify(&v1, &sig),
            Err(SigningError::Mismatch)
        );
        assert_eq!(
            key.public().verify(&v1, "not base64!"),
            Err(SigningError::NotBase64)
        );
        let parsed = PublicKey::parse(&key.public().to_base64()).unwrap();
        assert_eq!(parsed, key.public());
        assert!(parsed.fingerprint().starts_with("SHA256:"));
        assert_eq!(parsed.fingerprint().len(), 50);
        assert!(PublicKey::parse(&encode(&[0u8; 32])).is_err(), "weak key");
    }
}
