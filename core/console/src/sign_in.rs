//! Signing in and out.
//!
//! - **Identity provider**: OpenID Connect's authorization code flow with PKCE against the
//!   issuers the API trusts (`[[auth.oidc]]`). The `state` is kept hashed in the database
//!   (with the nonce and the code verifier) and in a cookie of the browser that began, so
//!   an answer is accepted once, from that browser, within [`SIGN_IN_WINDOW`].
//! - **Token**: an API token pasted into a form, for small installs with no identity
//!   provider. Off by default once a provider offers sign-in. The session ends when the
//!   token is revoked or expires.
//!
//! Both go through the same checks as the API's: the token's hash and the failure limits,
//! or the provider's signature, audience, nonce and multi-factor rule.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use guildhall_authz::{AuthError, Credential, OidcError, Principal};
use guildhall_store::{NewSession, SignInRecord};
use minijinja::context;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::Console;
use crate::render::{Chrome, PageError, page};
use crate::session::{self, FormFields, SignedIn};

/// How long the identity provider has to send someone back.
pub const SIGN_IN_WINDOW: Duration = Duration::from_secs(10 * 60);

#[derive(Debug, Deserialize)]
pub struct SignInQuery {
    return_to: Option<String>,
    ended: Option<String>,
    signed_out: Option<String>,
}

#[derive(Debug, Serialize)]
struct Provider {
    href: String,
    text: String,
}

#[derive(Debug, Serialize)]
struct ErrorItem {
    field: Option<&'static str>,
    text: String,
}

/// A console path to return to after signing in: only paths inside the console.
fn safe_return(to: Option<&str>) -> String {
    match to {
        Some(path)
            if path.starts_with(&format!("{}/", crate::PREFIX))
                && !path.starts_with("//")
                && !path.contains('\\')
                && path.bytes().all(|b| b.is_ascii_graphic())
                && path.len() <= 500 =>
        {
            path.to_string()
        }
        _ => crate::PREFIX.to_string(),
    }
}

fn render_sign_in(
    console: &Console,
    status: StatusCode,
    csrf: &str,
    return_to: &str,
    banner: Option<&str>,
    errors: Vec<ErrorItem>,
) -> Response {
    let providers: Vec<Provider> = if console.config.redirect_uri.is_some() {
        console
            .app
            .authz
            .oidc()
            .sign_in_issuers()
            .into_iter()
            .map(|issuer| Provider {
                href: format!(
                    "{}/sign-in/oidc/{}?return_to={}",
                    crate::PREFIX,
                    issuer.id,
                    session::urlencoding(return_to)
                ),
                text: issuer.display_name,
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut chrome = Chrome::public("Sign in");
    chrome.csrf = csrf.to_string();
    chrome.has_errors = !errors.is_empty();
    page(
        status,
        "sign_in.html",
        &chrome,
        context! {
            providers => providers,
            token_sign_in => console.config.token_sign_in,
            return_to => return_to,
            banner => banner,
            errors => errors,
        },
    )
}

/// The sign-in cookie's value, or a new one (returned with the header that sets it).
fn sign_in_secret(console: &Console, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    let secure = console.config.secure_cookies;
    match session::cookie_value(headers, session::sign_in_cookie(secure)) {
        Some(value) if value.len() >= 32 && value.len() <= 64 => (value, None),
        _ => {
            let value = session::secret();
            let cookie = session::set_cookie(
                session::sign_in_cookie(secure),
                &value,
                secure,
                Some(SIGN_IN_WINDOW),
            );
            (value, HeaderValue::from_str(&cookie).ok())
        }
    }
}

/// `GET /console/sign-in`.
pub async fn sign_in_page(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(query): Query<SignInQuery>,
) -> Response {
    if session::load(&console, &headers).await.is_ok() {
        return Redirect::to(&safe_return(query.return_to.as_deref())).into_response();
    }
    let (csrf, set) = sign_in_secret(&console, &headers);
    let banner = if query.signed_out.is_some() {
        Some("You have signed out.")
    } else if query.ended.is_some() {
        Some("Your session has ended. Sign in again to continue.")
    } else {
        None
    };
    let return_to = safe_return(query.return_to.as_deref());
    let mut response = render_sign_in(
        &console,
        StatusCode::OK,
        &csrf,
        &return_to,
        banner,
        Vec::new(),
    );
    if let Some(set) = set {
        response.headers_mut().append(header::SET_COOKIE, set);
    }
    response
}

/// Starts a session for `principal` and sends the browser on to `return_to`.
async fn start_session(
    console: &Console,
    subject: &str,
    issuer: Option<&str>,
    token_id: Option<&str>,
    ends_by: Option<OffsetDateTime>,
    return_to: &str,
) -> Result<Response, PageError> {
    let secret = session::secret();
    let csrf = session::secret();
    let now = OffsetDateTime::now_utc();
    let mut expires_at = now + console.config.absolute;
    if let Some(end) = ends_by {
        expires_at = expires_at.min(end);
    }
    console
        .app
        .store
        .console_sessions()
        .create(NewSession {
            id_hash: &session::hash(&secret),
            subject,
            issuer,
            token_id,
            csrf: &csrf,
            expires_at,
        })
        .await?;
    let secure = console.config.secure_cookies;
    let lifetime =
        Duration::from_secs(u64::try_from((expires_at - now).whole_seconds()).unwrap_or(0));
    let mut response = Redirect::to(return_to).into_response();
    let headers = response.headers_mut();
    for cookie in [
        session::set_cookie(
            session::session_cookie(secure),
            &secret,
            secure,
            Some(lifetime),
        ),
        session::set_cookie(session::sign_in_cookie(secure), "", secure, None),
    ] {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    Ok(response)
}

/// `POST /console/sign-in`: signing in with an API token.
pub async fn with_token(
    State(console): State<Console>,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> Result<Response, PageError> {
    if !console.config.token_sign_in {
        return Err(PageError::forbidden(
            "Signing in with a token is switched off here. Sign in with your organisation’s account.",
        ));
    }
    let fields = request
        .extensions()
        .get::<FormFields>()
        .cloned()
        .unwrap_or_default();
    let client = console
        .app
        .trusted_proxies
        .client_of(&headers, request.extensions());
    let return_to = safe_return(fields.get("return_to"));
    let csrf = fields.get("csrf").unwrap_or_default().to_string();
    let token = fields.get("token").unwrap_or_default().trim().to_string();
    let refuse = |status: StatusCode, text: &str| {
        render_sign_in(
            &console,
            status,
            &csrf,
            &return_to,
            None,
            vec![ErrorItem {
                field: Some("token"),
                text: text.to_string(),
            }],
        )
    };
    if token.is_empty() {
        return Ok(refuse(StatusCode::UNPROCESSABLE_ENTITY, "Enter your token"));
    }
    let bearer = format!("Bearer {token}");
    let principal = match console.app.authz.authenticate(Some(&bearer), client).await {
        Ok(principal) => principal,
        Err(AuthError::RateLimited(wait)) => {
            let mut response = refuse(
                StatusCode::TOO_MANY_REQUESTS,
                &format!(
                    "There have been too many attempts. Wait {} seconds, then try again",
                    wait.as_secs().max(1)
                ),
            );
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(wait.as_secs().max(1)),
            );
            return Ok(response);
        }
        Err(AuthError::Store(e)) => return Err(e.into()),
        Err(AuthError::Expired) => {
            return Ok(refuse(StatusCode::UNAUTHORIZED, "This token has expired"));
        }
        Err(AuthError::Revoked) => {
            return Ok(refuse(
                StatusCode::UNAUTHORIZED,
                "This token has been revoked",
            ));
        }
        Err(_) => {
            return Ok(refuse(
                StatusCode::UNAUTHORIZED,
                "Enter a valid Guildhall token. It starts with ghall_",
            ));
        }
    };
    let Principal::Authenticated {
        subject,
        credential: Credential::Token { record },
    } = principal
    else {
        return Ok(refuse(
            StatusCode::UNAUTHORIZED,
            "Enter a Guildhall token. To use your organisation’s account, choose it above",
        ));
    };
    start_session(
        &console,
        &subject,
        None,
        Some(&record.id),
        Some(record.expires_at),
        &return_to,
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct StartQuery {
    return_to: Option<String>,
}

/// `GET /console/sign-in/oidc/{issuer}`: off to the identity provider.
pub async fn start_oidc(
    State(console): State<Console>,
    Path(issuer): Path<String>,
    Query(query): Query<StartQuery>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Result<Response, PageError> {
    let Some(redirect_uri) = console.config.redirect_uri.clone() else {
        return Err(PageError::not_found());
    };
    let oidc = console.app.authz.oidc();
    if !oidc
        .sign_in_issuers()
        .iter()
        .any(|i| i.id.as_str() == issuer)
    {
        return Err(PageError::not_found());
    }
    if let Some(client) = console.app.trusted_proxies.client_of(&headers, &extensions)
        && let Err(wait) = console
            .sign_in_starts
            .take(guildhall_authz::FailureKey::from(client))
    {
        return Err(PageError::too_many(wait.as_secs().max(1)));
    }
    let request = oidc
        .begin_sign_in(&issuer, &redirect_uri)
        .await
        .map_err(|e| provider_unavailable(&e))?;
    console
        .app
        .store
        .console_sessions()
        .begin_sign_in(
            &session::hash(&request.state),
            &SignInRecord {
                issuer: issuer.clone(),
                nonce: request.nonce.clone(),
                verifier: request.verifier.clone(),
                return_to: safe_return(query.return_to.as_deref()),
                created_at: OffsetDateTime::now_utc(),
            },
        )
        .await?;
    let secure = console.config.secure_cookies;
    let cookie = session::set_cookie(
        session::sign_in_cookie(secure),
        &request.state,
        secure,
        Some(SIGN_IN_WINDOW),
    );
    let mut response = Redirect::to(&request.url).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

fn provider_unavailable(e: &OidcError) -> PageError {
    PageError::unavailable(
        "Signing in with your identity provider is not working at the moment. Try again later.",
        format!("identity provider: {e}"),
    )
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /console/sign-in/callback`: the identity provider's answer.
pub async fn callback(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Result<Response, PageError> {
    let Some(redirect_uri) = console.config.redirect_uri.clone() else {
        return Err(PageError::not_found());
    };
    let secure = console.config.secure_cookies;
    let (csrf, _) = sign_in_secret(&console, &headers);
    let failed = |text: String| {
        render_sign_in(
            &console,
            StatusCode::UNAUTHORIZED,
            &csrf,
            crate::PREFIX,
            None,
            vec![ErrorItem { field: None, text }],
        )
    };
    let Some(state) = query.state.filter(|s| !s.is_empty() && s.len() <= 128) else {
        return Ok(failed(
            "The sign-in could not be completed. Try again.".into(),
        ));
    };
    // The browser that began this sign-in holds its state; another browser cannot finish it.
    let ours = session::cookie_value(&headers, session::sign_in_cookie(secure))
        .is_some_and(|held| session::same(&held, &state));
    let pending = console
        .app
        .store
        .console_sessions()
        .take_sign_in(&session::hash(&state))
        .await?;
    let Some(pending) = pending.filter(|_| ours) else {
        return Ok(failed(
            "The sign-in could not be completed: it was started in another browser, or has already been used. Try again.".into(),
        ));
    };
    if OffsetDateTime::now_utc() - pending.created_at > SIGN_IN_WINDOW {
        return Ok(failed("The sign-in took too long. Try again.".into()));
    }
    if query.error.is_some() {
        return Ok(failed(
            "Your identity provider did not sign you in. Try again, or ask your administrator."
                .into(),
        ));
    }
    let Some(code) = query.code.filter(|c| !c.is_empty() && c.len() <= 2048) else {
        return Ok(failed(
            "The sign-in could not be completed. Try again.".into(),
        ));
    };
    let identity = match console
        .app
        .authz
        .oidc()
        .finish_sign_in(
            &pending.issuer,
            &code,
            &pending.verifier,
            &pending.nonce,
            &redirect_uri,
        )
        .await
    {
        Ok(identity) => identity,
        Err(OidcError::MfaRequired) => {
            return Ok(failed(
                "Your organisation requires a second factor (such as a code from an app) to sign in here. Sign in again and confirm it with your identity provider.".into(),
            ));
        }
        Err(e @ OidcError::Jwks(_)) => return Err(provider_unavailable(&e)),
        Err(e) => {
            tracing::warn!(issuer = %pending.issuer, error = %e, "console sign-in refused");
            return Ok(failed(
                "Your identity provider’s answer could not be accepted. Try again.".into(),
            ));
        }
    };
    start_session(
        &console,
        identity.subject.as_str(),
        Some(identity.issuer.as_str()),
        None,
        None,
        &pending.return_to,
    )
    .await
}

/// `POST /console/sign-out`.
pub async fn sign_out(
    State(console): State<Console>,
    who: SignedIn,
) -> Result<Response, PageError> {
    console
        .app
        .store
        .console_sessions()
        .end(&who.session.id_hash)
        .await?;
    let secure = console.config.secure_cookies;
    let mut response =
        Redirect::to(&format!("{}/sign-in?signed_out=1", crate::PREFIX)).into_response();
    if let Ok(value) = HeaderValue::from_str(&session::set_cookie(
        session::session_cookie(secure),
        "",
        secure,
        None,
    )) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_console_paths_are_returned_to() {
        assert_eq!(safe_return(Some("/console/t/x")), "/console/t/x");
        for bad in [
            "https://evil.example",
            "//evil.example/console/",
            "/console",
            "/consolex",
            "/api/v1/tenants",
            "/console/\\evil",
            "/console/t/x\u{1}y",
            "/console/t/x\ty",
            "/console/t/x y",
            "/console/t/é",
        ] {
            assert_eq!(safe_return(Some(bad)), "/console", "{bad}");
        }
    }
}
