//! Send emails and text messages with
//! [GOV.UK Notify](https://docs.notifications.service.gov.uk/rest-api.html).
//!
//! Needs outbound HTTP to Notify's host (`outbound_http = ["api.notifications.service.gov.uk"]`)
//! and an API key, best kept as a secret (`[secrets] notify_api_key = { ... }`, read with
//! [`crate::secrets::get`]). The key never appears in an error, a `Debug` or a log.
//!
//! Every request carries a fresh token (a JSON Web Token signed with HMAC-SHA256 by the
//! key's secret half, stamped with the wall clock's time): Notify refuses tokens more than 30
//! seconds out, so there is nothing to keep between requests.
//!
//! ```no_run
//! use guildhall_plugin::notify::{Client, Email};
//! use guildhall_plugin::secrets;
//!
//! # fn send() -> Result<(), Box<dyn std::error::Error>> {
//! let key = secrets::get("notify_api_key")?.ok_or("notify_api_key is not set")?;
//! let notify = Client::new("https://api.notifications.service.gov.uk", &key)?;
//! let mut personalisation = serde_json::Map::new();
//! personalisation.insert("name".into(), "Jo Bloggs".into());
//! let sent = notify.send_email(&Email {
//!     email_address: "jo@example.org".into(),
//!     template_id: "f33517ff-2a88-4f6e-b855-c550268ce08a".into(),
//!     personalisation,
//!     reference: Some("GW-000042".into()),
//! })?;
//! eprintln!("Notify accepted {}", sent.id);
//! # Ok(())
//! # }
//! ```

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::outbound::{self, OutboundError, OutboundRequest, OutboundResponse};

/// GOV.UK Notify's API.
pub const DEFAULT_BASE_URL: &str = "https://api.notifications.service.gov.uk";

/// The length of a UUID as text, `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
const UUID_LEN: usize = 36;

/// A client of Notify's API with one API key. Its `Debug` hides the key's secret.
#[derive(Clone)]
pub struct Client {
    base_url: String,
    service_id: String,
    secret: String,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .field("service_id", &self.service_id)
            .field("secret", &"<hidden>")
            .finish()
    }
}

/// An email to send with a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Email {
    /// The recipient.
    pub email_address: String,
    /// The template's id, from Notify's admin tool.
    pub template_id: String,
    /// The values of the template's placeholders, e.g. `{"name": "Jo Bloggs"}`.
    pub personalisation: Map<String, Value>,
    /// Your reference for the message, e.g. an application's reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// A text message to send with a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sms {
    /// The recipient's phone number.
    pub phone_number: String,
    /// The template's id, from Notify's admin tool.
    pub template_id: String,
    /// The values of the template's placeholders.
    pub personalisation: Map<String, Value>,
    /// Your reference for the message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// A message Notify accepted.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Sent {
    /// Notify's id of the message.
    pub id: String,
    /// Your reference, as sent.
    #[serde(default)]
    pub reference: Option<String>,
}

/// One error in Notify's answer, e.g. `BadRequestError` and its message.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ApiError {
    /// The kind, e.g. `BadRequestError`, `AuthError`, `RateLimitError`.
    pub error: String,
    /// Notify's message.
    pub message: String,
}

/// Why a message was not sent. Never carries the API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyError {
    /// The API key is not of the form `{key_name}-{service_id}-{secret}` (two UUIDs at the
    /// end).
    InvalidKey,
    /// Notify could not be reached, or its answer not read.
    Request(OutboundError),
    /// Notify answered with an error: its status and the errors its body lists.
    Status {
        /// The HTTP status.
        status: u16,
        /// Notify's errors, in order.
        errors: Vec<ApiError>,
    },
    /// Notify's answer is not what it documents; carries why.
    InvalidResponse(String),
}

impl NotifyError {
    /// Whether trying again later may work: Notify unreachable, or answering `429` or `5xx`.
    pub fn is_transient(&self) -> bool {
        match self {
            NotifyError::Request(e) => e.is_transient(),
            NotifyError::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

impl fmt::Display for NotifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotifyError::InvalidKey => f.write_str(
                "the GOV.UK Notify API key is not of the form {key_name}-{service_id}-{secret}",
            ),
            NotifyError::Request(e) => write!(f, "GOV.UK Notify could not be reached: {e}"),
            NotifyError::Status { status, errors } => {
                write!(f, "GOV.UK Notify answered {status}")?;
                for (i, e) in errors.iter().enumerate() {
                    let sep = if i == 0 { ": " } else { "; " };
                    write!(f, "{sep}{}: {}", e.error, e.message)?;
                }
                Ok(())
            }
            NotifyError::InvalidResponse(why) => {
                write!(f, "GOV.UK Notify's answer is not as documented: {why}")
            }
        }
    }
}

impl std::error::Error for NotifyError {}

impl From<OutboundError> for NotifyError {
    fn from(error: OutboundError) -> Self {
        NotifyError::Request(error)
    }
}

/// The service id and the secret of a Notify API key `{key_name}-{service_id}-{secret}`:
/// the secret is the last 36 characters, the service id the 36 before the `-` that precedes
/// it. The error never repeats the key.
pub fn parse_key(api_key: &str) -> Result<(&str, &str), NotifyError> {
    let key = api_key.trim();
    let len = key.len();
    if !key.is_ascii() || len < 2 * UUID_LEN + 1 {
        return Err(NotifyError::InvalidKey);
    }
    let secret = &key[len - UUID_LEN..];
    let service_id = &key[len - 2 * UUID_LEN - 1..len - UUID_LEN - 1];
    let separated = key.as_bytes()[len - UUID_LEN - 1] == b'-'
        && (len == 2 * UUID_LEN + 1 || key.as_bytes()[len - 2 * UUID_LEN - 2] == b'-');
    if !separated || !is_uuid(service_id) || !is_uuid(secret) {
        return Err(NotifyError::InvalidKey);
    }
    Ok((service_id, secret))
}

fn is_uuid(s: &str) -> bool {
    s.len() == UUID_LEN
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// The token for a request at `iat` (seconds since the epoch): a JSON Web Token with header
/// `{"typ":"JWT","alg":"HS256"}` and claims `{"iss": service_id, "iat": iat}`, signed with
/// HMAC-SHA256 keyed by the secret's UTF-8 bytes.
pub fn token(service_id: &str, secret: &str, iat: i64) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"HS256"}"#);
    // Written out rather than through a map, so the claims keep this order whatever
    // features serde_json is built with.
    let issuer = Value::String(service_id.to_owned());
    let claims = URL_SAFE_NO_PAD.encode(format!(r#"{{"iss":{issuer},"iat":{iat}}}"#));
    let signing_input = format!("{header}.{claims}");
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

impl Client {
    /// A client of the Notify API at `base_url` (usually [`DEFAULT_BASE_URL`]) with
    /// `api_key`; [`NotifyError::InvalidKey`] when the key is not of Notify's form.
    pub fn new(base_url: impl Into<String>, api_key: &str) -> Result<Client, NotifyError> {
        let (service_id, secret) = parse_key(api_key)?;
        Ok(Client {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            service_id: service_id.to_owned(),
            secret: secret.to_owned(),
        })
    }

    /// The Notify service the key belongs to.
    pub fn service_id(&self) -> &str {
        &self.service_id
    }

    /// Sends an email: `POST {base}/v2/notifications/email`, answered `201`.
    pub fn send_email(&self, email: &Email) -> Result<Sent, NotifyError> {
        let request = self.email_request(email, crate::time::now_unix())?;
        read_sent(&outbound::send(request)?)
    }

    /// Sends a text message: `POST {base}/v2/notifications/sms`, answered `201`.
    pub fn send_sms(&self, sms: &Sms) -> Result<Sent, NotifyError> {
        let request = self.sms_request(sms, crate::time::now_unix())?;
        read_sent(&outbound::send(request)?)
    }

    /// The request [`Client::send_email`] sends at `iat`.
    pub fn email_request(&self, email: &Email, iat: i64) -> Result<OutboundRequest, NotifyError> {
        self.post("/v2/notifications/email", email, iat)
    }

    /// The request [`Client::send_sms`] sends at `iat`.
    pub fn sms_request(&self, sms: &Sms, iat: i64) -> Result<OutboundRequest, NotifyError> {
        self.post("/v2/notifications/sms", sms, iat)
    }

    fn post<T: Serialize>(
        &self,
        path: &str,
        body: &T,
        iat: i64,
    ) -> Result<OutboundRequest, NotifyError> {
        let bearer = format!("Bearer {}", token(&self.service_id, &self.secret, iat));
        Ok(OutboundRequest::post(format!("{}{path}", self.base_url))
            .with_header("authorization", &bearer)
            .with_header("accept", "application/json")
            .json(body)?)
    }
}

/// Notify's error answer.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ApiError>,
}

/// The message in Notify's answer `response` to a send: `201` with the message, otherwise a
/// [`NotifyError::Status`] with the errors Notify lists.
pub fn read_sent(response: &OutboundResponse) -> Result<Sent, NotifyError> {
    if response.status != 201 {
        let errors = serde_json::from_slice::<ErrorBody>(&response.body)
            .map(|b| b.errors)
            .unwrap_or_default();
        return Err(NotifyError::Status {
            status: response.status,
            errors,
        });
    }
    serde_json::from_slice(&response.body).map_err(|e| NotifyError::InvalidResponse(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

    const SERVICE_ID: &str = "26785a09-ab16-4eb0-8407-a37497a57506";
    const SECRET: &str = "3d844edf-8d35-48ac-975b-e847b4f122b0";

    fn key() -> String {
        format!("my_test_key-{SERVICE_ID}-{SECRET}")
    }

    #[test]
    fn keys_split_from_the_end() {
        assert_eq!(parse_key(&key()).unwrap(), (SERVICE_ID, SECRET));
        // Key names may hold dashes of their own.
        let dashed = format!("council-live-key-{SERVICE_ID}-{SECRET}");
        assert_eq!(parse_key(&dashed).unwrap(), (SERVICE_ID, SECRET));
        assert_eq!(
            parse_key(&format!("{SERVICE_ID}-{SECRET}")).unwrap(),
            (SERVICE_ID, SECRET)
        );
        assert_eq!(
            parse_key(&format!(" {}\n", key())).unwrap(),
            (SERVICE_ID, SECRET)
        );
        for bad in [
            String::new(),
            SECRET.to_owned(),
            format!("name-{SERVICE_ID}{SECRET}"),
            format!("name_{SERVICE_ID}_{SECRET}"),
            format!("name{SERVICE_ID}-{SECRET}"),
            format!("name-{SERVICE_ID}-{}", SECRET.replace('d', "g")),
            format!("name-{}-{SECRET}", SERVICE_ID.replace('-', "x")),
            format!("näme-{SERVICE_ID}-{SECRET}é"),
        ] {
            assert_eq!(parse_key(&bad), Err(NotifyError::InvalidKey), "{bad}");
        }
        let error = Client::new(DEFAULT_BASE_URL, "live-oops-a-secret-1234").unwrap_err();
        assert!(!error.to_string().contains("a-secret-1234"));
        let client = Client::new(DEFAULT_BASE_URL, &key()).unwrap();
        assert_eq!(client.service_id(), SERVICE_ID);
        assert!(!format!("{client:?}").contains(SECRET));
    }

    /// Computed independently with Python's standard library:
    ///
    /// ```text
    /// import base64, hashlib, hmac, json
    /// b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    /// header = b64(b'{"typ":"JWT","alg":"HS256"}')
    /// claims = b64(json.dumps({"iss": SERVICE_ID, "iat": 1777627800}, separators=(",", ":")).encode())
    /// signature = b64(hmac.new(SECRET.encode(), f"{header}.{claims}".encode(), hashlib.sha256).digest())
    /// ```
    const TOKEN_AT_1777627800: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJpc3MiOiIyNjc4NWEwOS1hYjE2LTRlYjAtODQwNy1hMzc0OTdhNTc1MDYiLCJpYXQiOjE3Nzc2Mjc4MDB9.Z6ZkDd3KUaw7A6j84yyJvq6ep9WH5CVjDMefJJPB874";

    #[test]
    fn tokens_match_an_independent_signer() {
        assert_eq!(
            token(SERVICE_ID, SECRET, 1_777_627_800),
            TOKEN_AT_1777627800
        );
        let (header, rest) = TOKEN_AT_1777627800.split_once('.').unwrap();
        let claims = rest.split('.').next().unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.decode(header).unwrap(),
            br#"{"typ":"JWT","alg":"HS256"}"#
        );
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
        assert_eq!(
            claims,
            serde_json::json!({"iss": SERVICE_ID, "iat": 1_777_627_800})
        );
        assert_ne!(
            token(SERVICE_ID, SECRET, 1_777_627_801),
            TOKEN_AT_1777627800
        );
    }

    #[test]
    fn emails_post_json_with_a_token() {
        let client = Client::new("https://api.notifications.service.gov.uk/", &key()).unwrap();
        let mut personalisation = Map::new();
        personalisation.insert("name".into(), "Jo".into());
        personalisation.insert("bins".into(), 2.into());
        let request = client
            .email_request(
                &Email {
                    email_address: "jo@example.org".into(),
                    template_id: "f33517ff-2a88-4f6e-b855-c550268ce08a".into(),
                    personalisation,
                    reference: Some("GW-000001".into()),
                },
                1_777_627_800,
            )
            .unwrap();
        assert_eq!(request.method, Method::Post);
        assert_eq!(
            request.url,
            "https://api.notifications.service.gov.uk/v2/notifications/email"
        );
        assert_eq!(
            request.header("authorization"),
            Some(&*format!("Bearer {TOKEN_AT_1777627800}"))
        );
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "email_address": "jo@example.org",
                "template_id": "f33517ff-2a88-4f6e-b855-c550268ce08a",
                "personalisation": {"name": "Jo", "bins": 2},
                "reference": "GW-000001",
            })
        );
        let sms = client
            .sms_request(
                &Sms {
                    phone_number: "07700900982".into(),
                    template_id: "t".into(),
                    personalisation: Map::new(),
                    reference: None,
                },
                1,
            )
            .unwrap();
        assert!(sms.url.ends_with("/v2/notifications/sms"));
        let body: Value = serde_json::from_slice(&sms.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"phone_number": "07700900982", "template_id": "t", "personalisation": {}})
        );
    }

    #[test]
    fn reads_answers_and_errors() {
        let created = r#"{"id": "740e5834-3a29-46b4-9a6f-16142fde533a", "reference": "GW-000001",
            "content": {"subject": "Your subscription", "body": "Dear Jo", "from_email": "council@notifications.service.gov.uk"},
            "uri": "https://api.notifications.service.gov.uk/v2/notifications/740e5834",
            "template": {"id": "f33517ff", "version": 1, "uri": "https://api.notifications.service.gov.uk/v2/template/f33517ff"}}"#;
        let sent = read_sent(&OutboundResponse::new(201, created)).unwrap();
        assert_eq!(sent.id, "740e5834-3a29-46b4-9a6f-16142fde533a");
        assert_eq!(sent.reference.as_deref(), Some("GW-000001"));

        let refused = r#"{"status_code": 400, "errors": [{"error": "BadRequestError", "message": "Can't send to this recipient using a team-only API key"}]}"#;
        let error = read_sent(&OutboundResponse::new(400, refused)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "GOV.UK Notify answered 400: BadRequestError: Can't send to this recipient using a team-only API key"
        );
        assert!(!error.is_transient());
        let error = read_sent(&OutboundResponse::new(500, "oops")).unwrap_err();
        assert_eq!(
            error,
            NotifyError::Status {
                status: 500,
                errors: vec![]
            }
        );
        assert!(error.is_transient());
        assert!(matches!(
            read_sent(&OutboundResponse::new(201, "{}")),
            Err(NotifyError::InvalidResponse(_))
        ));
    }
}
