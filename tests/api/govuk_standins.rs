//! Stand-ins for GOV.UK Pay and GOV.UK Notify: their documented requests and responses on
//! loopback, recording what they were sent, for black-box tests of plugins that call them.
//!
//! Pay follows <https://docs.payments.service.gov.uk/api_reference/> and its sandbox's test
//! cards; Notify follows <https://docs.notifications.service.gov.uk/rest-api.html>. Each binds
//! 127.0.0.1 but names itself `localhost`, because plugins may only call host names, and stops
//! when dropped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A stand-in's server task, aborted when dropped.
#[derive(Debug)]
struct Server(tokio::task::JoinHandle<()>);

impl Server {
    /// A listener on a free loopback port, and the base URL that names it.
    async fn bind() -> (tokio::net::TcpListener, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let port = listener.local_addr().expect("the bound address").port();
        (listener, format!("http://localhost:{port}"))
    }

    fn spawn(listener: tokio::net::TcpListener, router: Router) -> Self {
        Self(tokio::spawn(async move {
            axum::serve(listener, router)
                .await
                .expect("stand-in server");
        }))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An API's error answer: its status and JSON body.
#[derive(Debug)]
struct Refusal(StatusCode, Value);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ")
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

// GOV.UK Pay.

/// The sandbox card number that Pay declines; any other of 12 to 19 digits is accepted.
pub const DECLINED_CARD: &str = "4000000000000002";

/// How the citizen ends a payment on the hosted page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Declined,
    Cancelled,
}

/// Where a payment is in Pay's lifecycle: `state.status` in the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentStatus {
    Created,
    Success,
    Failed,
    Cancelled,
}

impl PaymentStatus {
    fn state(self) -> Value {
        match self {
            Self::Created => json!({"status": "created", "finished": false}),
            Self::Success => json!({"status": "success", "finished": true}),
            Self::Failed => json!({"status": "failed", "finished": true,
                "code": "P0010", "message": "Payment method rejected"}),
            Self::Cancelled => json!({"status": "cancelled", "finished": true,
                "code": "P0030", "message": "Payment was cancelled by the user"}),
        }
    }
}

impl From<Outcome> for PaymentStatus {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Success => Self::Success,
            Outcome::Declined => Self::Failed,
            Outcome::Cancelled => Self::Cancelled,
        }
    }
}

/// A payment as the Pay stand-in holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedPayment {
    /// Pay's `payment_id`: 26 lowercase letters and digits.
    pub id: String,
    /// In pence.
    pub amount: i64,
    pub reference: String,
    pub description: String,
    pub return_url: String,
    pub email: Option<String>,
    pub status: PaymentStatus,
}

#[derive(Debug, Clone)]
struct Payment {
    recorded: RecordedPayment,
    /// The secret part of the hosted page's address.
    token: String,
    language: String,
    metadata: Option<Value>,
    created_date: String,
}

/// GOV.UK Pay on loopback: payments created and looked up with a bearer API key, and a
/// hosted payment page that settles them as the sandbox does.
#[derive(Debug)]
pub struct PayStandIn {
    pay: Arc<PayShared>,
    _server: Server,
}

#[derive(Debug)]
struct PayShared {
    api_key: String,
    base_url: String,
    requests: AtomicUsize,
    payments: Mutex<Vec<Payment>>,
}

impl PayStandIn {
    /// Starts Pay on a free port, accepting `api_key` as its one API key.
    pub async fn start(api_key: &str) -> Self {
        let (listener, base_url) = Server::bind().await;
        let pay = Arc::new(PayShared {
            api_key: api_key.to_owned(),
            base_url,
            requests: AtomicUsize::new(0),
            payments: Mutex::default(),
        });
        let router = Router::new()
            .route("/v1/payments", post(create_payment))
            .route("/v1/payments/{payment_id}", get(get_payment))
            .route("/secure/{token}", get(payment_page).post(submit_payment))
            .with_state(pay.clone());
        Self {
            pay,
            _server: Server::spawn(listener, router),
        }
    }

    /// `http://localhost:{port}`.
    pub fn base_url(&self) -> &str {
        &self.pay.base_url
    }

    /// Ends a payment as the citizen would on the hosted page, and returns the `return_url`
    /// they would be sent to. Panics if the payment is unknown or has ended otherwise.
    pub fn complete(&self, payment_id: &str, outcome: Outcome) -> String {
        let finished = self.pay.finish(payment_id, outcome);
        let (return_url, status) = finished.unwrap_or_else(|| panic!("no payment {payment_id}"));
        assert_eq!(
            status,
            outcome.into(),
            "payment {payment_id} had already finished"
        );
        return_url
    }

    /// Every payment created, oldest first, in its current state.
    pub fn payments(&self) -> Vec<RecordedPayment> {
        let payments = self.pay.payments.lock().expect("payments");
        payments.iter().map(|p| p.recorded.clone()).collect()
    }

    /// How many API requests (`/v1/…`) arrived, refused ones included.
    pub fn requests_seen(&self) -> usize {
        self.pay.requests.load(SeqCst)
    }
}

impl PayShared {
    fn authorise(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        self.requests.fetch_add(1, SeqCst);
        if bearer(headers) == Some(self.api_key.as_str()) {
            return Ok(());
        }
        let description = "Credentials are required to access this resource";
        Err(pay_error(
            StatusCode::UNAUTHORIZED,
            "P0920",
            None,
            description,
        ))
    }

    fn find(&self, matches: impl Fn(&Payment) -> bool) -> Option<Payment> {
        let payments = self.payments.lock().expect("payments");
        payments.iter().find(|p| matches(p)).cloned()
    }

    /// Moves a created payment to `outcome` (a finished one keeps its state), and returns its
    /// `return_url` and state.
    fn finish(&self, id: &str, outcome: Outcome) -> Option<(String, PaymentStatus)> {
        let mut payments = self.payments.lock().expect("payments");
        let payment = &mut payments.iter_mut().find(|p| p.recorded.id == id)?.recorded;
        if payment.status == PaymentStatus::Created {
            payment.status = outcome.into();
        }
        Some((payment.return_url.clone(), payment.status))
    }

    fn render(&self, payment: &Payment) -> Value {
        let (base, p) = (&self.base_url, &payment.recorded);
        let mut links =
            json!({"self": {"href": format!("{base}/v1/payments/{}", p.id), "method": "GET"}});
        if p.status == PaymentStatus::Created {
            let next = format!("{base}/secure/{}", payment.token);
            links["next_url"] = json!({"href": next, "method": "GET"});
        }
        let mut body = json!({
            "amount": p.amount, "description": p.description, "reference": p.reference,
            "language": payment.language, "state": p.status.state(), "payment_id": p.id,
            "payment_provider": "sandbox", "created_date": payment.created_date,
            "return_url": p.return_url, "_links": links,
        });
        if let Some(email) = &p.email {
            body["email"] = json!(email);
        }
        if let Some(metadata) = &payment.metadata {
            body["metadata"] = metadata.clone();
        }
        body
    }
}

fn pay_error(status: StatusCode, code: &str, field: Option<&str>, description: &str) -> Refusal {
    let mut body = json!({"code": code, "description": description});
    if let Some(field) = field {
        body["field"] = json!(field);
    }
    Refusal(status, body)
}

/// A create-payment body checked as Pay checks it: a missing attribute is 400 `P0101`, an
/// invalid one 422 `P0102`.
fn new_payment(body: &[u8]) -> Result<Payment, Refusal> {
    let Ok(body) = serde_json::from_slice::<Map<String, Value>>(body) else {
        return Err(pay_error(
            StatusCode::BAD_REQUEST,
            "P0197",
            None,
            "Unable to parse JSON",
        ));
    };
    let invalid = |field: &str, why: &str| {
        let description = format!("Invalid attribute value: {field}. {why}");
        pay_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "P0102",
            Some(field),
            &description,
        )
    };
    let missing = |field: &str| {
        let description = format!("Missing mandatory attribute: {field}");
        pay_error(StatusCode::BAD_REQUEST, "P0101", Some(field), &description)
    };
    let text = |field: &str, max: usize| match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(invalid(
            field,
            &format!("Must be less than or equal to {max} characters length"),
        )),
        Some(_) => Err(invalid(field, "Must be of type String")),
    };
    let required = |field, max| text(field, max)?.ok_or_else(|| missing(field));
    let amount = body.get("amount").ok_or_else(|| missing("amount"))?;
    let amount = amount
        .as_i64()
        .ok_or_else(|| invalid("amount", "Must be a valid numeric format"))?;
    if amount < 1 {
        return Err(invalid("amount", "Must be greater than or equal to 1"));
    } else if amount > 10_000_000 {
        return Err(invalid("amount", "Must be less than or equal to 10000000"));
    }
    let (reference, description) = (required("reference", 255)?, required("description", 255)?);
    let return_url = required("return_url", 2000)?;
    if !return_url.starts_with("https://") && !return_url.starts_with("http://") {
        return Err(invalid("return_url", "Must be a valid URL format"));
    }
    let language = text("language", 2)?.unwrap_or_else(|| "en".to_owned());
    if language != "en" && language != "cy" {
        return Err(invalid("language", "Must be \"en\" or \"cy\""));
    }
    let metadata = match body.get("metadata") {
        None | Some(Value::Null) => None,
        Some(m @ Value::Object(_)) => Some(m.clone()),
        Some(_) => {
            return Err(invalid(
                "metadata",
                "Must be an object of JSON key-value pairs",
            ));
        }
    };
    let now = time::OffsetDateTime::now_utc();
    let now = now
        .replace_millisecond(now.millisecond())
        .expect("whole milliseconds");
    let recorded = RecordedPayment {
        id: payment_id(),
        amount,
        reference,
        description,
        return_url,
        email: text("email", 254)?,
        status: PaymentStatus::Created,
    };
    Ok(Payment {
        recorded,
        token: Uuid::new_v4().simple().to_string(),
        language,
        metadata,
        created_date: now
            .format(&time::format_description::well_known::Rfc3339)
            .expect("a date"),
    })
}

/// 26 random lowercase letters and digits, the shape of Pay's payment ids.
fn payment_id() -> String {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    std::iter::repeat_with(|| Uuid::new_v4().into_bytes())
        .flatten()
        .filter(|b| *b < 252) // 252 = 7 × 36, so every character is equally likely.
        .map(|b| char::from(ALPHABET[usize::from(b % 36)]))
        .take(26)
        .collect()
}

async fn create_payment(
    State(pay): State<Arc<PayShared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    pay.authorise(&headers)?;
    let payment = new_payment(&body)?;
    let rendered = pay.render(&payment);
    pay.payments.lock().expect("payments").push(payment);
    Ok((StatusCode::CREATED, Json(rendered)).into_response())
}

async fn get_payment(
    State(pay): State<Arc<PayShared>>,
    Path(payment_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    pay.authorise(&headers)?;
    let payment = pay.find(|p| p.recorded.id == payment_id);
    let payment =
        payment.ok_or_else(|| pay_error(StatusCode::NOT_FOUND, "P0200", None, "Not found"))?;
    Ok(Json(pay.render(&payment)).into_response())
}

async fn payment_page(State(pay): State<Arc<PayShared>>, Path(token): Path<String>) -> Response {
    match pay.find(|p| p.token == token) {
        Some(payment) if payment.recorded.status != PaymentStatus::Created => {
            finished_page(&payment)
        }
        Some(payment) => card_page(&payment, None),
        None => not_found_page(),
    }
}

fn not_found_page() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Page not found",
        "<h1>Page not found</h1>\n",
    )
}

/// The card form's answer: `action=cancel` cancels, otherwise the card number decides; then
/// the citizen is sent back to the service.
async fn submit_payment(
    State(pay): State<Arc<PayShared>>,
    Path(token): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let Some(payment) = pay.find(|p| p.token == token) else {
        return not_found_page();
    };
    if payment.recorded.status != PaymentStatus::Created {
        return finished_page(&payment);
    }
    let card: String = form
        .get("card_number")
        .into_iter()
        .flat_map(|c| c.split_whitespace())
        .collect();
    let outcome = if form.get("action").is_some_and(|a| a == "cancel") {
        Outcome::Cancelled
    } else if !(12..=19).contains(&card.len()) || !card.bytes().all(|b| b.is_ascii_digit()) {
        return card_page(&payment, Some("Enter a valid card number"));
    } else if card == DECLINED_CARD {
        Outcome::Declined
    } else {
        Outcome::Success
    };
    match pay.finish(&payment.recorded.id, outcome) {
        Some((return_url, status)) if status == outcome.into() => {
            Redirect::to(&return_url).into_response()
        }
        _ => finished_page(&payment),
    }
}

fn page(status: StatusCode, title: &str, main: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{title} – GOV.UK Pay</title>\n</head>\n<body>\n\
         <main id=\"main-content\">\n{main}</main>\n</body>\n</html>\n"
    );
    (status, Html(html)).into_response()
}

fn card_page(payment: &Payment, error: Option<&str>) -> Response {
    let p = &payment.recorded;
    let (title, error_html, described_by) = match error {
        None => ("Enter card details", String::new(), ""),
        Some(error) => (
            "Error: Enter card details",
            format!("<p id=\"card-number-error\">Error: {error}</p>\n"),
            " aria-describedby=\"card-number-error\"",
        ),
    };
    let main = format!(
        "<h1>Enter card details</h1>\n<p>{description}</p>\n\
         <p>Total amount: <strong>£{pounds}.{pence:02}</strong></p>\n\
         <form method=\"post\" action=\"/secure/{token}\" novalidate>\n\
         <label for=\"card-number\">Card number</label>\n{error_html}\
         <input id=\"card-number\" name=\"card_number\" type=\"text\" inputmode=\"numeric\" \
         autocomplete=\"cc-number\"{described_by}>\n\
         <button type=\"submit\" name=\"action\" value=\"pay\">Confirm payment</button>\n\
         <button type=\"submit\" name=\"action\" value=\"cancel\">Cancel payment</button>\n\
         </form>\n",
        description = escape(&p.description),
        pounds = p.amount / 100,
        pence = p.amount % 100,
        token = payment.token,
    );
    page(StatusCode::OK, title, &main)
}

fn finished_page(payment: &Payment) -> Response {
    let how = match payment.recorded.status {
        PaymentStatus::Success => "Your payment was successful.",
        PaymentStatus::Failed => "Your payment was declined.",
        PaymentStatus::Cancelled | PaymentStatus::Created => "Your payment was cancelled.",
    };
    let url = escape(&payment.recorded.return_url);
    let main = format!(
        "<h1>This payment has finished</h1>\n<p>{how}</p>\n\
         <p><a href=\"{url}\">Go back to the service</a></p>\n"
    );
    page(StatusCode::OK, "This payment has finished", &main)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

// GOV.UK Notify.

/// A Notify API key for tests, `{key_name}-{service_id}-{secret_key}`, with fresh ids.
pub fn test_notify_key() -> String {
    format!("guildhall_test-{}-{}", Uuid::new_v4(), Uuid::new_v4())
}

/// Which endpoint a notification was sent through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationKind {
    Email,
    Sms,
}

/// A notification the Notify stand-in accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedNotification {
    /// The `id` of the 201 answer.
    pub id: Uuid,
    pub kind: NotificationKind,
    /// The email address or phone number exactly as sent.
    pub recipient: String,
    pub template_id: Uuid,
    /// The `personalisation` object, or `{}` when none was sent.
    pub personalisation: Value,
    pub reference: Option<String>,
}

/// GOV.UK Notify on loopback: emails and text messages, authenticated with a JWT signed by
/// the secret half of an API key.
#[derive(Debug)]
pub struct NotifyStandIn {
    notify: Arc<NotifyShared>,
    _server: Server,
}

#[derive(Debug)]
struct NotifyShared {
    service_id: String,
    secret_key: String,
    base_url: String,
    fail_next: AtomicUsize,
    rejected: AtomicUsize,
    notifications: Mutex<Vec<RecordedNotification>>,
}

impl NotifyStandIn {
    /// Starts Notify on a free port for the service and secret named in `api_key`
    /// (`{key_name}-{service_id}-{secret_key}`, as [`test_notify_key`] makes).
    pub async fn start(api_key: &str) -> Self {
        let (service_id, secret_key) = notify_key_ids(api_key)
            .expect("a Notify API key ends with two UUIDs: {service_id}-{secret_key}");
        let (listener, base_url) = Server::bind().await;
        let notify = Arc::new(NotifyShared {
            service_id: service_id.to_owned(),
            secret_key: secret_key.to_owned(),
            base_url,
            fail_next: AtomicUsize::new(0),
            rejected: AtomicUsize::new(0),
            notifications: Mutex::default(),
        });
        let send = |kind| {
            move |State(notify): State<Arc<NotifyShared>>, headers: HeaderMap, body: Bytes| async move {
                notify
                    .accept(kind, &headers, &body)
                    .unwrap_or_else(|refusal| {
                        notify.rejected.fetch_add(1, SeqCst);
                        refusal.into_response()
                    })
            }
        };
        let router = Router::new()
            .route(
                "/v2/notifications/email",
                post(send(NotificationKind::Email)),
            )
            .route("/v2/notifications/sms", post(send(NotificationKind::Sms)))
            .with_state(notify.clone());
        Self {
            notify,
            _server: Server::spawn(listener, router),
        }
    }

    /// `http://localhost:{port}`.
    pub fn base_url(&self) -> &str {
        &self.notify.base_url
    }

    /// Makes the next `n` authenticated sends answer 500, as Notify does when it fails.
    pub fn fail_next(&self, n: usize) {
        self.notify.fail_next.store(n, SeqCst);
    }

    /// Every notification accepted, oldest first.
    pub fn notifications(&self) -> Vec<RecordedNotification> {
        let notifications = self.notify.notifications.lock().expect("notifications");
        notifications.clone()
    }

    /// How many requests were answered with an error: refused tokens, invalid bodies and the
    /// failures asked for with [`NotifyStandIn::fail_next`].
    pub fn rejected(&self) -> usize {
        self.notify.rejected.load(SeqCst)
    }
}

/// The service id and secret key at the end of a Notify API key; the key name before them
/// may itself contain hyphens.
fn notify_key_ids(api_key: &str) -> Option<(&str, &str)> {
    let ids = api_key.get(api_key.len().checked_sub(73)?..)?;
    let (service_id, secret_key) = (ids.get(..36)?, ids.get(37..)?);
    let both = Uuid::try_parse(service_id).is_ok() && Uuid::try_parse(secret_key).is_ok();
    both.then_some((service_id, secret_key))
}

fn notify_error(status: StatusCode, error: &str, messages: &[String]) -> Refusal {
    let errors: Vec<Value> = messages
        .iter()
        .map(|m| json!({"error": error, "message": m}))
        .collect();
    Refusal(
        status,
        json!({"status_code": status.as_u16(), "errors": errors}),
    )
}

/// HMAC-SHA256 (RFC 2104) over SHA-256's 64-byte blocks.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > block.len() {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner = Sha256::new()
        .chain_update(block.map(|b| b ^ 0x36))
        .chain_update(message);
    let outer = Sha256::new().chain_update(block.map(|b| b ^ 0x5c));
    outer.chain_update(inner.finalize()).finalize().into()
}

/// Compares in time that depends only on the lengths, so a signature cannot be found a byte
/// at a time.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |diff, (x, y)| diff | (x ^ y)) == 0
}

impl NotifyShared {
    /// Checks the bearer JWT as Notify does: HS256 over `header.claims` with the secret key,
    /// `iss` naming the service and `iat` within 30 seconds of now.
    fn authenticate(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let refuse =
            |status, message: &str| notify_error(status, "AuthError", &[message.to_owned()]);
        let forbidden = |message: &str| refuse(StatusCode::FORBIDDEN, message);
        let bad_signature = || forbidden("Invalid token: signature, api token not found");
        let Some(token) = bearer(headers) else {
            let message = "Unauthorized: authentication token must be provided";
            return Err(refuse(StatusCode::UNAUTHORIZED, message));
        };
        let json =
            |part: &str| serde_json::from_slice::<Value>(&URL_SAFE_NO_PAD.decode(part).ok()?).ok();
        let (signed, signature) = token.rsplit_once('.').ok_or_else(bad_signature)?;
        let (head, claims) = signed.split_once('.').ok_or_else(bad_signature)?;
        let (Some(head), Some(claims), Ok(signature)) =
            (json(head), json(claims), URL_SAFE_NO_PAD.decode(signature))
        else {
            return Err(bad_signature());
        };
        if head["alg"] != "HS256" {
            return Err(forbidden("Invalid token: algorithm used is not HS256"));
        }
        match claims["iss"].as_str() {
            None => return Err(forbidden("Invalid token: iss field not provided")),
            Some(iss) if iss != self.service_id => {
                return Err(forbidden("Invalid token: service not found"));
            }
            Some(_) => {}
        }
        let expected = hmac_sha256(self.secret_key.as_bytes(), signed.as_bytes());
        if !constant_time_eq(&expected, &signature) {
            return Err(bad_signature());
        }
        match claims["iat"].as_i64() {
            Some(iat) if (unix_now() - iat).abs() <= 30 => Ok(()),
            _ => Err(forbidden(
                "Error: Your system clock must be accurate to within 30 seconds",
            )),
        }
    }

    fn accept(
        &self,
        kind: NotificationKind,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Response, Refusal> {
        self.authenticate(headers)?;
        let fail_next = &self.fail_next;
        if fail_next
            .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            let message = ["Internal server error".to_owned()];
            return Err(notify_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Exception",
                &message,
            ));
        }
        let sent = new_notification(kind, body)?;
        let (base, id, template) = (&self.base_url, sent.id, sent.template_id);
        // The stand-in has no templates, so the content lists the personalisation.
        let text: String = match &sent.personalisation {
            Value::Object(fields) => fields.iter().map(|(k, v)| format!("{k}: {v}\n")).collect(),
            _ => String::new(),
        };
        let content = match kind {
            NotificationKind::Email => {
                json!({"subject": format!("Template {template}"), "body": text,
                "from_email": "guildhall.test@notifications.service.gov.uk"})
            }
            NotificationKind::Sms => json!({"body": text, "from_number": "GOVUK"}),
        };
        let template_uri = format!("{base}/services/{}/templates/{template}", self.service_id);
        let answer = json!({
            "id": id, "reference": sent.reference, "content": content,
            "uri": format!("{base}/v2/notifications/{id}"),
            "template": {"id": template, "version": 1, "uri": template_uri},
        });
        self.notifications.lock().expect("notifications").push(sent);
        Ok((StatusCode::CREATED, Json(answer)).into_response())
    }
}

/// A send body checked as Notify checks it, naming every problem at once.
fn new_notification(kind: NotificationKind, body: &[u8]) -> Result<RecordedNotification, Refusal> {
    let Ok(body) = serde_json::from_slice::<Map<String, Value>>(body) else {
        let message = ["Invalid JSON supplied in POST data".to_owned()];
        return Err(notify_error(
            StatusCode::BAD_REQUEST,
            "BadRequestError",
            &message,
        ));
    };
    let (field, valid, problem): (_, fn(&str) -> bool, _) = match kind {
        NotificationKind::Email => ("email_address", is_email, "Not a valid email address"),
        NotificationKind::Sms => ("phone_number", is_uk_mobile, "Not a UK mobile number"),
    };
    let recipient = match body.get(field) {
        None => Err(format!("{field} is a required property")),
        Some(Value::String(to)) if valid(to) => Ok(to.clone()),
        Some(_) => Err(format!("{field} {problem}")),
    };
    let template_id = match body.get("template_id") {
        None => Err("template_id is a required property".to_owned()),
        Some(id) => id
            .as_str()
            .and_then(|id| Uuid::try_parse(id).ok())
            .ok_or("template_id is not a valid UUID".to_owned()),
    };
    let personalisation = match body.get("personalisation") {
        None | Some(Value::Null) => Ok(json!({})),
        Some(p @ Value::Object(_)) => Ok(p.clone()),
        Some(p) => Err(format!("personalisation {p} is not of type object")),
    };
    let reference = match body.get("reference") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(r)) => Ok(Some(r.clone())),
        Some(r) => Err(format!("reference {r} is not of type string")),
    };
    match (recipient, template_id, personalisation, reference) {
        (Ok(recipient), Ok(template_id), Ok(personalisation), Ok(reference)) => {
            Ok(RecordedNotification {
                id: Uuid::new_v4(),
                kind,
                recipient,
                template_id,
                personalisation,
                reference,
            })
        }
        (recipient, template_id, personalisation, reference) => {
            let errors = [
                recipient.err(),
                template_id.err(),
                personalisation.err(),
                reference.err(),
            ];
            let errors: Vec<String> = errors.into_iter().flatten().collect();
            Err(notify_error(
                StatusCode::BAD_REQUEST,
                "ValidationError",
                &errors,
            ))
        }
    }
}

/// Something before an `@`, and a domain with a dot inside it after.
fn is_email(address: &str) -> bool {
    address.rsplit_once('@').is_some_and(|(local, domain)| {
        let domain_dot = domain.trim_matches('.') == domain && domain.contains('.');
        !local.is_empty() && domain_dot && !address.contains(char::is_whitespace)
    })
}

/// A UK mobile number: `07` and nine more digits, or `+44 7…`, spaces allowed.
fn is_uk_mobile(number: &str) -> bool {
    let digits: String = number.split(' ').collect();
    let national = digits
        .strip_prefix("+44")
        .map_or(digits.clone(), |rest| format!("0{rest}"));
    national.len() == 11
        && national.starts_with("07")
        && national.bytes().all(|b| b.is_ascii_digit())
}

// The stand-ins' own tests, over real loopback HTTP.

fn client() -> reqwest::Client {
    let no_redirects = reqwest::redirect::Policy::none();
    reqwest::Client::builder()
        .redirect(no_redirects)
        .build()
        .expect("client")
}

async fn answer(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.expect("an answer");
    (
        response.status(),
        response.json().await.expect("a JSON answer"),
    )
}

async fn create(pay: &PayStandIn, key: &str, body: &Value) -> (StatusCode, Value) {
    answer(
        client()
            .post(format!("{}/v1/payments", pay.base_url()))
            .bearer_auth(key)
            .json(body),
    )
    .await
}

async fn state(pay: &PayStandIn, payment: &Value) -> Value {
    let id = payment["payment_id"].as_str().expect("a payment id");
    let url = format!("{}/v1/payments/{id}", pay.base_url());
    let (status, payment) = answer(client().get(url).bearer_auth("api_test_key")).await;
    assert_eq!(status, StatusCode::OK, "{payment}");
    assert_eq!(
        payment["_links"].get("next_url").is_none(),
        payment["state"]["finished"] == true
    );
    payment["state"].clone()
}

async fn page_text(url: &str) -> String {
    let response = client().get(url).send().await.expect("a page");
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.expect("HTML")
}

fn garden_waste() -> Value {
    json!({"amount": 4500, "reference": "GW-2026-0001", "description": "Garden waste 2026 & 2027",
        "return_url": "https://council.example/garden-waste/paid", "email": "resident@example.com"})
}

/// Submits the hosted page's form with `card` and returns where the citizen is sent.
async fn pay_on_page(payment: &Value, card: &str) -> String {
    let next_url = payment["_links"]["next_url"]["href"]
        .as_str()
        .expect("a next_url");
    let html = page_text(next_url).await;
    for shown in [
        "<html lang=\"en\">",
        "<title>",
        "<main",
        "<h1>Enter card details</h1>",
        "£45.00",
        "Garden waste 2026 &amp; 2027",
        "<label for=\"card-number\">Card number</label>",
        "name=\"card_number\"",
        ">Confirm payment<",
        ">Cancel payment<",
    ] {
        assert!(html.contains(shown), "the page shows {shown}: {html}");
    }
    let form = [("card_number", card), ("action", "pay")];
    let response = client()
        .post(next_url)
        .form(&form)
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    response.headers()[header::LOCATION]
        .to_str()
        .expect("a location")
        .to_owned()
}

#[tokio::test]
async fn pay_settles_payments_on_its_hosted_page_as_the_sandbox_does() {
    let pay = PayStandIn::start("api_test_key").await;
    let (status, paid) = create(&pay, "api_test_key", &garden_waste()).await;
    assert_eq!(status, StatusCode::CREATED, "{paid}");
    assert_eq!(paid["payment_id"].as_str().map(str::len), Some(26));
    assert_eq!(
        state(&pay, &paid).await,
        json!({"status": "created", "finished": false})
    );
    let back = pay_on_page(&paid, "4444 3333 2222 1111").await;
    assert_eq!(back, "https://council.example/garden-waste/paid");
    assert_eq!(
        state(&pay, &paid).await,
        json!({"status": "success", "finished": true})
    );
    let next_url = paid["_links"]["next_url"]["href"]
        .as_str()
        .expect("a next_url");
    let finished = page_text(next_url).await;
    assert!(
        finished.contains("This payment has finished")
            && finished.contains(&format!("href=\"{back}\""))
    );

    let (_, declined) = create(&pay, "api_test_key", &garden_waste()).await;
    pay_on_page(&declined, DECLINED_CARD).await;
    let failed = json!({"status": "failed", "finished": true, "code": "P0010", "message": "Payment method rejected"});
    assert_eq!(state(&pay, &declined).await, failed);

    let (_, cancelled) = create(&pay, "api_test_key", &garden_waste()).await;
    let id = cancelled["payment_id"].as_str().expect("a payment id");
    assert_eq!(pay.complete(id, Outcome::Cancelled), back);
    assert_eq!(state(&pay, &cancelled).await["code"], "P0030");

    let statuses: Vec<_> = pay.payments().iter().map(|p| p.status).collect();
    assert_eq!(
        statuses,
        [
            PaymentStatus::Success,
            PaymentStatus::Failed,
            PaymentStatus::Cancelled
        ]
    );
    assert_eq!(
        pay.payments()[0].email.as_deref(),
        Some("resident@example.com")
    );
    assert_eq!(pay.requests_seen(), 7);
}

#[tokio::test]
async fn pay_refuses_a_wrong_key_and_invalid_payments() {
    let pay = PayStandIn::start("api_test_key").await;
    let (status, body) = create(&pay, "api_test_other", &garden_waste()).await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::UNAUTHORIZED, &json!("P0920"))
    );
    let mut payment = garden_waste();
    payment["amount"] = json!(10_000_001);
    let (status, body) = create(&pay, "api_test_key", &payment).await;
    assert_eq!(
        (status, &body["field"], &body["code"]),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!("amount"),
            &json!("P0102")
        )
    );
    let description = body["description"].as_str().expect("a description");
    assert!(
        description.starts_with("Invalid attribute value: amount."),
        "{description}"
    );
    payment.as_object_mut().expect("an object").remove("amount");
    let (status, body) = create(&pay, "api_test_key", &payment).await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::BAD_REQUEST, &json!("P0101"))
    );
    let url = format!("{}/v1/payments/nosuchpayment", pay.base_url());
    let (status, body) = answer(client().get(url).bearer_auth("api_test_key")).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::NOT_FOUND,
            json!({"code": "P0200", "description": "Not found"})
        )
    );
    assert!(pay.payments().is_empty());
    assert_eq!(pay.requests_seen(), 4);
}

/// A Notify token signed by `jsonwebtoken`, an implementation independent of the stand-in's.
fn notify_jwt(key: &str, iat: i64) -> String {
    let (service_id, secret_key) = notify_key_ids(key).expect("a Notify API key");
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    let secret = jsonwebtoken::EncodingKey::from_secret(secret_key.as_bytes());
    jsonwebtoken::encode(&header, &json!({"iss": service_id, "iat": iat}), &secret).expect("a JWT")
}

async fn send(notify: &NotifyStandIn, token: &str, kind: &str, body: Value) -> (StatusCode, Value) {
    let url = format!("{}/v2/notifications/{kind}", notify.base_url());
    answer(client().post(url).bearer_auth(token).json(&body)).await
}

#[test]
fn hmac_sha256_matches_rfc_4231() {
    let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
    assert_eq!(
        hex::encode(mac),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

#[tokio::test]
async fn notify_accepts_signed_sends_and_refuses_tampered_and_stale_tokens() {
    let key = test_notify_key();
    let notify = NotifyStandIn::start(&key).await;
    let (template, token) = (Uuid::new_v4(), notify_jwt(&key, unix_now()));
    let email = json!({"email_address": "resident@example.com", "template_id": template,
        "personalisation": {"round": "Tuesday"}, "reference": "GW-2026-0001"});
    let (status, body) = send(&notify, &token, "email", email.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        (&body["template"]["id"], &body["reference"]),
        (&json!(template), &json!("GW-2026-0001"))
    );
    assert!(
        body["content"]["body"]
            .as_str()
            .is_some_and(|b| b.contains("Tuesday")),
        "{body}"
    );
    let sms = json!({"phone_number": "+44 7700 900123", "template_id": template});
    assert_eq!(
        send(&notify, &token, "sms", sms).await.0,
        StatusCode::CREATED
    );

    let (signed, signature) = token.rsplit_once('.').expect("a JWT");
    let flipped = if signature.starts_with('A') { 'B' } else { 'A' };
    let other_key = format!("{}{}", &key[..key.len() - 36], Uuid::new_v4());
    for (token, message) in [
        (
            format!("{signed}.{flipped}{}", &signature[1..]),
            "Invalid token: signature, api token not found",
        ),
        (
            notify_jwt(&other_key, unix_now()),
            "Invalid token: signature, api token not found",
        ),
        (
            notify_jwt(&key, unix_now() - 60),
            "Error: Your system clock must be accurate to within 30 seconds",
        ),
    ] {
        let refused =
            json!({"status_code": 403, "errors": [{"error": "AuthError", "message": message}]});
        assert_eq!(
            send(&notify, &token, "email", email.clone()).await,
            (StatusCode::FORBIDDEN, refused)
        );
    }

    let sent = notify.notifications();
    assert_eq!(sent.len(), 2);
    assert_eq!(body["id"], json!(sent[0].id));
    assert_eq!(
        (sent[0].kind, sent[0].recipient.as_str()),
        (NotificationKind::Email, "resident@example.com")
    );
    assert_eq!(sent[0].personalisation, json!({"round": "Tuesday"}));
    assert_eq!(sent[0].reference.as_deref(), Some("GW-2026-0001"));
    assert_eq!(
        (sent[1].kind, sent[1].recipient.as_str()),
        (NotificationKind::Sms, "+44 7700 900123")
    );
    assert_eq!(notify.rejected(), 3);
}

#[tokio::test]
async fn notify_validates_sends_and_fails_when_told() {
    let key = test_notify_key();
    let notify = NotifyStandIn::start(&key).await;
    let (template, token) = (Uuid::new_v4(), notify_jwt(&key, unix_now()));
    let bad = json!({"email_address": "resident.example.com", "template_id": template});
    let invalid =
        json!([{"error": "ValidationError", "message": "email_address Not a valid email address"}]);
    let (status, body) = send(&notify, &token, "email", bad).await;
    assert_eq!(
        (status, &body["errors"]),
        (StatusCode::BAD_REQUEST, &invalid)
    );
    let landline = json!({"phone_number": "01632 960001", "template_id": template});
    assert_eq!(
        send(&notify, &token, "sms", landline).await.0,
        StatusCode::BAD_REQUEST
    );

    notify.fail_next(1);
    let good = json!({"email_address": "resident@example.com", "template_id": template});
    let failed = json!({"status_code": 500, "errors": [{"error": "Exception", "message": "Internal server error"}]});
    assert_eq!(
        send(&notify, &token, "email", good.clone()).await,
        (StatusCode::INTERNAL_SERVER_ERROR, failed)
    );
    assert_eq!(
        send(&notify, &token, "email", good).await.0,
        StatusCode::CREATED
    );
    assert_eq!((notify.notifications().len(), notify.rejected()), (1, 3));
}
