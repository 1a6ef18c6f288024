//! API tokens: `ghall_<id>_<secret>`.
//!
//! The id (64 random bits, hex) finds the stored record; the secret is 256 random bits,
//! base64url. Only the SHA-256 of the whole token is stored, and a presented token is
//! compared with it in constant time. The prefix makes tokens easy to recognise in secret
//! scanners and logs.

use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// Every token starts with this.
pub const PREFIX: &str = "ghall_";

/// A freshly generated token: the text to hand out once, its id and its hash.
#[derive(Debug)]
pub struct NewSecret {
    /// The id part, stored in the clear.
    pub id: String,
    /// The whole token; shown once, never stored.
    pub token: String,
    /// SHA-256 of `token`, hex.
    pub hash: String,
}

/// Generates a token from the operating system's random source.
pub fn generate() -> NewSecret {
    let mut id = [0u8; 8];
    let mut secret = [0u8; 32];
    getrandom::fill(&mut id).expect("the operating system's random source works");
    getrandom::fill(&mut secret).expect("the operating system's random source works");
    let id = hex::encode(id);
    let token = format!(
        "{PREFIX}{id}_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
    );
    let hash = hash(&token);
    NewSecret { id, token, hash }
}

/// SHA-256 of a token, hex. Tokens carry 256 random bits, so a fast hash is enough: there
/// is nothing to guess.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The id inside a well-formed token, or `None` for anything else.
pub fn id_of(token: &str) -> Option<&str> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let well_formed = id.len() == 16
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        && secret.len() == 43
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then_some(id)
}

/// Whether `token` hashes to `stored` (hex), compared in constant time.
pub fn matches(token: &str, stored: &str) -> bool {
    hash(token).as_bytes().ct_eq(stored.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_and_match_only_themselves() {
        let a = generate();
        let b = generate();
        assert!(a.token.starts_with(PREFIX));
        assert_eq!(id_of(&a.token), Some(a.id.as_str()));
        assert!(matches(&a.token, &a.hash));
        assert!(!matches(&b.token, &a.hash));
        assert_ne!(a.token, b.token);
    }

    #[test]
    fn malformed_tokens_have_no_id() {
        let a = generate();
        assert_eq!(id_of(&a.token[1..]), None);
        assert_eq!(id_of(&format!("{}x", a.token)), None);
        assert_eq!(id_of("ghall_0123456789abcdef_short"), None);
        assert_eq!(id_of("Bearer"), None);
    }
}
