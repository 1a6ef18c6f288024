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

/// Property tests: whatever a caller sends as a bearer token, parsing never panics, and only
/// text of exactly the generated shape yields an id.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    /// Tokens an attacker would try: near misses of the real shape, role names, wildcards,
    /// NUL bytes, unicode and very long text.
    fn adversarial() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just(PREFIX.to_string()),
            Just("*".to_string()),
            Just("operator".to_string()),
            Just("role:operator".to_string()),
            Just("token:0123456789abcdef".to_string()),
            Just(format!("{PREFIX}0123456789abcdef_")),
            Just(format!("{PREFIX}0123456789ABCDEF_{}", "a".repeat(43))),
            Just(format!("{PREFIX}0123456789abcdef_{}\0", "a".repeat(42))),
            Just(format!("{PREFIX}../../etc/passwd_{}", "a".repeat(43))),
            Just(format!("{PREFIX}{}_{}", "é".repeat(8), "a".repeat(43))),
            Just("ghall_".repeat(20_000)),
            // Right lengths, any characters.
            ("\\PC{16}", "\\PC{43}").prop_map(|(id, secret)| format!("{PREFIX}{id}_{secret}")),
            // Right alphabet, any lengths.
            ("[0-9a-f]{0,20}", "[A-Za-z0-9_-]{0,50}")
                .prop_map(|(id, secret)| format!("{PREFIX}{id}_{secret}")),
            any::<String>(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn any_text_parses_without_panicking(token in adversarial()) {
            if let Some(id) = id_of(&token) {
                // Only the generated shape has an id: 16 lowercase hex digits, then a
                // 43-character base64url secret.
                prop_assert_eq!(id.len(), 16);
                prop_assert!(id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
                prop_assert_eq!(token.len(), PREFIX.len() + 16 + 1 + 43);
                prop_assert!(token.is_ascii());
            }
            // Hashing and comparing any text is total too, and never matches a different
            // token's hash.
            let generated = generate();
            prop_assert_eq!(matches(&token, &generated.hash), token == generated.token);
            prop_assert!(matches(&token, &hash(&token)));
            prop_assert!(!matches(&token, &token));
        }

        #[test]
        fn stored_hashes_of_any_shape_do_not_panic(token in adversarial(), stored in any::<String>()) {
            let _ = matches(&token, &stored);
        }
    }
}
