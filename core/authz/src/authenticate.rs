//! Authentication: a request's `Authorization` header to a [`Principal`], with the
//! failure limits that stop guessing.

use super::*;

impl Authz {
    /// Turns an `Authorization` header into a principal. No header is [`Principal::Anonymous`].
    ///
    /// A credential that checks out is never refused, whatever failed before it from the
    /// same address. Failures count against the presented token's id when the credential is a
    /// well-formed Guildhall token of a known id, and against `client` otherwise (garbage,
    /// unknown ids, refused identity tokens, whose claims anyone can write). A key over its
    /// limit is answered 429 instead of 401.
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
        client: Option<IpAddr>,
    ) -> Result<Principal, AuthError> {
        let Some(header) = authorization else {
            return Ok(Principal::Anonymous);
        };
        let (error, token_id) = match self.check_credential(header).await {
            Ok(principal) => return Ok(principal),
            // Our own failures (database, the provider's keys unreachable) are not the
            // caller's and do not count against it.
            Err((e @ (AuthError::Store(_) | AuthError::Oidc(OidcError::Jwks(_))), _)) => {
                return Err(e);
            }
            Err(failure) => failure,
        };
        let key = match token_id {
            Some(id) => Some(FailureKey::Token(id)),
            None => client.map(FailureKey::from),
        };
        if let Some(key) = key {
            let wait = self.inner.limiter.blocked(&key);
            self.inner.limiter.failed(key);
            if let Some(wait) = wait {
                return Err(AuthError::RateLimited(wait));
            }
        }
        Err(error)
    }

    /// Checks a credential. A failure carries the token's id when the credential was a
    /// well-formed token of an id that exists, so the failure counts against that token.
    async fn check_credential(
        &self,
        header: &str,
    ) -> Result<Principal, (AuthError, Option<String>)> {
        let credential = bearer(header).ok_or((AuthError::BadScheme, None))?;
        if let Some(id) = tokens::id_of(credential) {
            let record = self
                .inner
                .store
                .tokens()
                .find(id)
                .await
                .map_err(|e| (e.into(), None))?
                .ok_or((AuthError::Invalid, None))?;
            let known = || Some(record.id.clone());
            if !tokens::matches(credential, &record.hash) {
                return Err((AuthError::Invalid, known()));
            }
            if record.revoked_at.is_some() {
                return Err((AuthError::Revoked, known()));
            }
            if record.expires_at <= OffsetDateTime::now_utc() {
                return Err((AuthError::Expired, known()));
            }
            return Ok(Principal::Authenticated {
                subject: token_subject(&record.id),
                credential: Credential::Token {
                    record: Box::new(record),
                },
            });
        }
        if self.inner.oidc.is_enabled() && Oidc::looks_like_jwt(credential) {
            let identity = self
                .inner
                .oidc
                .verify(credential)
                .await
                .map_err(|e| (e.into(), None))?;
            // `oidc:<issuer id>:<sub>`: whatever the provider puts in `sub`, the subject
            // cannot name a token, a role or another issuer's user.
            return Ok(Principal::Authenticated {
                subject: identity.subject.as_str().to_string(),
                credential: Credential::Oidc {
                    issuer: identity.issuer,
                },
            });
        }
        Err((AuthError::Invalid, None))
    }
}

/// The credential of a `Bearer` header.
fn bearer(header: &str) -> Option<&str> {
    header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|c| !c.is_empty())
}
