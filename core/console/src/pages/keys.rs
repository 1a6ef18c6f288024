//! The signing keys registered to the signed-in identity: listing them, registering (or
//! replacing) one and removing one, through the decisions, operations and audit entries of
//! the API's `/api/v1/publisher-keys` routes.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use guildhall_operations::owners as ops;
use minijinja::context;
use serde::Serialize;

use crate::Console;
use crate::act::{self, Req, Section};
use crate::pages::{Flash, FormError, error_for, sentence, when};
use crate::render::{PageError, page};
use crate::session::{FormFields, SignedIn, urlencoding};

/// This module's templates.
pub(crate) const TEMPLATES: &[(&str, &str)] = crate::render::templates!["keys.html"];

/// This module's routes, relative to `/console`.
pub fn routes() -> Router<Console> {
    Router::new()
        .route("/keys", get(keys).post(put_key))
        .route("/keys/remove", post(remove_key))
}

const KEYS: &str = "/api/v1/publisher-keys";
const KEY: &str = "/api/v1/publisher-keys/{name}";

#[derive(Debug, Serialize)]
struct KeyRow {
    name: String,
    fingerprint: String,
    public_key: String,
    created: String,
}

#[derive(Debug, Default)]
struct TypedKey {
    name: String,
    public_key: String,
}

async fn render_keys(
    console: &Console,
    who: &SignedIn,
    typed: TypedKey,
    errors: Vec<FormError>,
    done: Option<&str>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let keys = console
        .app
        .store
        .publisher_keys()
        .list(who.principal.subject())
        .await?;
    let rows: Vec<KeyRow> = keys
        .into_iter()
        .map(|k| KeyRow {
            name: k.name,
            fingerprint: k.fingerprint,
            public_key: k.public_key,
            created: when(&k.created_at),
        })
        .collect();
    let can_write = act::may(console, who, Method::PUT, KEY, None);
    let mut chrome = act::chrome(console, who, "Your signing keys", None, Section::Plugins);
    chrome.has_errors = !errors.is_empty();
    Ok(page(
        status,
        "keys.html",
        &chrome,
        context! {
            keys => rows,
            subject => who.principal.subject(),
            can_write => can_write,
            name => typed.name,
            public_key => typed.public_key,
            errors => errors.clone(),
            name_error => error_for(&errors, "name"),
            public_key_error => error_for(&errors, "public_key"),
            done => done,
        },
    ))
}

/// `GET /console/keys`: the signing keys registered to the signed-in identity, as
/// `GET /api/v1/publisher-keys`.
pub async fn keys(
    State(console): State<Console>,
    who: SignedIn,
    Query(flash): Query<Flash>,
) -> Result<Response, PageError> {
    act::read(&console, &who, KEYS, None).await?;
    let done = match flash.done.as_deref() {
        Some("added") => Some("The key was added."),
        Some("replaced") => Some("The key was replaced."),
        Some("removed") => Some("The key was removed. Versions it signed keep their signature."),
        _ => None,
    };
    render_keys(
        &console,
        &who,
        TypedKey::default(),
        Vec::new(),
        done,
        StatusCode::OK,
    )
    .await
}

fn key_field(field: &str) -> &'static str {
    if field == "public_key" {
        "public_key"
    } else {
        "name"
    }
}

/// `POST /console/keys`: registers (or replaces) a key, as
/// `PUT /api/v1/publisher-keys/{name}`.
pub async fn put_key(
    State(console): State<Console>,
    who: SignedIn,
    req: Req,
    fields: FormFields,
) -> Result<Response, PageError> {
    let typed = TypedKey {
        name: fields.get("name").unwrap_or_default().trim().to_string(),
        public_key: fields
            .get("public_key")
            .unwrap_or_default()
            .trim()
            .to_string(),
    };
    let mut errors = Vec::new();
    if typed.name.is_empty() {
        errors.push(FormError::at("name", "Enter a name for the key"));
    }
    if typed.public_key.is_empty() {
        errors.push(FormError::at("public_key", "Enter the public key"));
    }
    let outcome = if errors.is_empty() {
        let api_path = format!("/api/v1/publisher-keys/{}", urlencoding(&typed.name));
        let console_ref = &console;
        let subject = who.principal.subject();
        let typed_ref = &typed;
        Some(
            act::write(
                &console,
                &who,
                &req,
                Method::PUT,
                KEY,
                &api_path,
                None,
                |_| async move {
                    let created = ops::put_key(
                        &console_ref.app.store,
                        subject,
                        &typed_ref.name,
                        &typed_ref.public_key,
                    )
                    .await?;
                    Ok((
                        created,
                        if created {
                            StatusCode::CREATED
                        } else {
                            StatusCode::OK
                        },
                    ))
                },
            )
            .await?,
        )
    } else {
        None
    };
    match outcome {
        Some(Ok(created)) => Ok(Redirect::to(&format!(
            "{}/keys?done={}",
            crate::PREFIX,
            if created { "added" } else { "replaced" }
        ))
        .into_response()),
        other => {
            act::read(&console, &who, KEYS, None).await?;
            if !act::may(&console, &who, Method::PUT, KEY, None) {
                return Err(PageError::forbidden(
                    "Registering signing keys needs the platform permission to publish plugins.",
                ));
            }
            if let Some(Err(e)) = other {
                if e.errors().is_empty() {
                    let at = if e.status() == StatusCode::CONFLICT {
                        "public_key"
                    } else {
                        "name"
                    };
                    errors.push(FormError::at(at, sentence(e.detail())));
                }
                for f in e.errors() {
                    let at = key_field(&f.field);
                    let text = if at == "name" {
                        "Enter a name of 1 to 64 letters, digits, hyphens, underscores or full stops".to_string()
                    } else {
                        format!("Enter an ed25519 public key in base64: {}", f.reason)
                    };
                    errors.push(FormError::at(at, text));
                }
            }
            render_keys(
                &console,
                &who,
                typed,
                errors,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

/// `POST /console/keys/remove`: removes a key, as `DELETE /api/v1/publisher-keys/{name}`.
pub async fn remove_key(
    State(console): State<Console>,
    who: SignedIn,
    req: Req,
    fields: FormFields,
) -> Result<Response, PageError> {
    let name = fields.get("name").unwrap_or_default().to_string();
    let api_path = format!("/api/v1/publisher-keys/{}", urlencoding(&name));
    let console_ref = &console;
    let subject = who.principal.subject();
    let name_ref = &name;
    let outcome = act::write(
        &console,
        &who,
        &req,
        Method::DELETE,
        KEY,
        &api_path,
        None,
        |_| async move {
            ops::remove_key(&console_ref.app.store, subject, name_ref).await?;
            Ok(((), StatusCode::OK))
        },
    )
    .await?;
    outcome.map_err(PageError::from)?;
    Ok(Redirect::to(&format!("{}/keys?done=removed", crate::PREFIX)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keys_page_renders_its_errors() {
        let views = crate::render::Views::new().unwrap();
        let chrome = crate::render::Chrome::public("Your signing keys");
        let errors = vec![FormError::at("public_key", "Enter the public key")];
        let html = views
            .render(
                "keys.html",
                &chrome,
                context! {
                    keys => vec![context! { name => "laptop", fingerprint => "SHA256:x", created => "now" }],
                    can_write => true,
                    errors => errors.clone(),
                    public_key_error => error_for(&errors, "public_key"),
                },
            )
            .unwrap();
        assert!(html.contains(r##"<a href="#public_key">Enter the public key</a>"##));
        assert!(html.contains(r#"name="name" value="laptop""#));
    }
}
