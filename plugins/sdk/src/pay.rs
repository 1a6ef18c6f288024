//! Take card payments with [GOV.UK Pay](https://docs.payments.service.gov.uk/).
//!
//! Needs outbound HTTP to Pay's host (`outbound_http = ["publicapi.payments.service.gov.uk"]`)
//! and the council's API key, best kept as a secret (`[secrets] pay_api_key = { ... }`, read
//! with [`crate::secrets::get`]). The key never appears in an error, a `Debug` or a log.
//!
//! The flow: [`Client::create_payment`] with the amount in pence and a `return_url` on your
//! service, send the citizen to [`Payment::next_url`] (a `303`), and when Pay sends them back
//! to `return_url`, [`Client::get_payment`] tells whether it was paid
//! ([`Payment::is_success`]) or ended otherwise ([`Payment::is_finished`]). A declined card
//! ends `failed` with code `P0010`; a citizen who gives up ends `cancelled` (`P0030`).
//!
//! ```no_run
//! use guildhall_plugin::pay::{Client, CreatePayment};
//! use guildhall_plugin::{Response, secrets};
//!
//! # fn start() -> Result<Response, Box<dyn std::error::Error>> {
//! let key = secrets::get("pay_api_key")?.ok_or("pay_api_key is not set")?;
//! let pay = Client::new("https://publicapi.payments.service.gov.uk", key);
//! let payment = pay.create_payment(&CreatePayment {
//!     amount: 4500,
//!     reference: "GW-000042".into(),
//!     description: "Garden waste subscription".into(),
//!     return_url: "https://example.gov.uk/s/a/b/garden-waste/payment-return?ref=GW-000042".into(),
//!     email: None,
//! })?;
//! // Keep payment.payment_id with the application, then:
//! Ok(Response::see_other(payment.next_url.as_deref().unwrap_or("/")))
//! # }
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::outbound::{self, OutboundError, OutboundRequest, OutboundResponse};

/// GOV.UK Pay's public API.
pub const DEFAULT_BASE_URL: &str = "https://publicapi.payments.service.gov.uk";

/// Where GOV.UK Pay's own payment pages are (a payment's `next_url`).
pub const PAYMENT_PAGES_ORIGIN: &str = "https://card.payments.service.gov.uk";

/// The `Content-Security-Policy` for the page whose form sends the resident to Pay: the
/// platform's default policy, with Pay's payment pages (and the API's origin, where a
/// stand-in serves both) allowed as the form's destination. Browsers apply `form-action` to
/// the redirect that answers the form, so without it the `303` to `next_url` is blocked.
///
/// ```
/// let policy = guildhall_plugin::pay::page_policy("https://publicapi.payments.service.gov.uk");
/// assert!(policy.contains("form-action 'self' https://card.payments.service.gov.uk"));
/// ```
pub fn page_policy(base_url: &str) -> String {
    let mut sources = format!("'self' {PAYMENT_PAGES_ORIGIN}");
    if let Ok(url) = outbound::Url::parse(base_url) {
        let scheme = match url.scheme {
            outbound::Scheme::Http => "http",
            outbound::Scheme::Https => "https",
        };
        let origin = format!("{scheme}://{}", url.authority());
        if origin != PAYMENT_PAGES_ORIGIN {
            sources.push(' ');
            sources.push_str(&origin);
        }
    }
    format!(
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; \
         form-action {sources}; frame-ancestors 'none'"
    )
}

/// A client of GOV.UK Pay's API with one API key. Its `Debug` hides the key.
#[derive(Clone)]
pub struct Client {
    base_url: String,
    api_key: String,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .field("api_key", &"<hidden>")
            .finish()
    }
}

/// A new payment: what [`Client::create_payment`] sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreatePayment {
    /// The amount in pence, e.g. `4500` for £45.00 (Pay takes 1 to 10,000,000).
    pub amount: u64,
    /// Your reference for the payment, shown to the citizen and in Pay's admin tool
    /// (at most 255 characters).
    pub reference: String,
    /// What the payment is for, shown to the citizen (at most 255 characters).
    pub description: String,
    /// The absolute URL Pay sends the citizen back to when the payment ends, however it
    /// ends.
    pub return_url: String,
    /// The citizen's email address, to prefill Pay's form and get Pay's receipt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// A payment as Pay reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// Pay's id of the payment.
    pub payment_id: String,
    /// The amount in pence.
    pub amount: u64,
    /// Your reference.
    pub reference: String,
    /// Where it stands.
    pub state: PaymentState,
    /// Where to send the citizen to pay, while the payment is not finished.
    pub next_url: Option<String>,
}

impl Payment {
    /// Whether the payment succeeded: its status is `success`.
    pub fn is_success(&self) -> bool {
        self.state.status == "success"
    }

    /// Whether the payment has ended, whatever the outcome (`success`, `failed`,
    /// `cancelled`, `error`); until then the citizen may still be paying.
    pub fn is_finished(&self) -> bool {
        self.state.finished
    }
}

/// The state of a [`Payment`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentState {
    /// `created`, `started`, `submitted`, `capturable`, `success`, `failed`, `cancelled` or
    /// `error`.
    pub status: String,
    /// Whether the payment has ended.
    pub finished: bool,
    /// Why it failed, e.g. `P0010` (declined), `P0020` (expired), `P0030` (cancelled by the
    /// citizen), `P0040` (cancelled by the service), `P0050` (Pay's error).
    #[serde(default)]
    pub code: Option<String>,
    /// Pay's words for why it failed.
    #[serde(default)]
    pub message: Option<String>,
}

/// Why a call to Pay failed. Never carries the API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayError {
    /// Pay could not be reached, or its answer not read.
    Request(OutboundError),
    /// Pay answered with an error: its status, and its `code` and `description` when its
    /// body gives them (e.g. `401` for a wrong key, `422` with `P0102` for a bad field).
    Status {
        /// The HTTP status.
        status: u16,
        /// Pay's error code, e.g. `P0102`.
        code: Option<String>,
        /// Pay's description of the error.
        description: Option<String>,
    },
    /// Pay's answer is not a payment; carries why.
    InvalidResponse(String),
    /// The payment id given is not one Pay could have made.
    InvalidPaymentId,
}

impl PayError {
    /// Whether trying again later may work: Pay unreachable, or answering `429` or `5xx`.
    pub fn is_transient(&self) -> bool {
        match self {
            PayError::Request(e) => e.is_transient(),
            PayError::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

impl fmt::Display for PayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PayError::Request(e) => write!(f, "GOV.UK Pay could not be reached: {e}"),
            PayError::Status {
                status,
                code,
                description,
            } => {
                write!(f, "GOV.UK Pay answered {status}")?;
                if let Some(code) = code {
                    write!(f, " {code}")?;
                }
                if let Some(description) = description {
                    write!(f, ": {description}")?;
                }
                Ok(())
            }
            PayError::InvalidResponse(why) => {
                write!(f, "GOV.UK Pay's answer is not a payment: {why}")
            }
            PayError::InvalidPaymentId => f.write_str("not a GOV.UK Pay payment id"),
        }
    }
}

impl std::error::Error for PayError {}

impl From<OutboundError> for PayError {
    fn from(error: OutboundError) -> Self {
        PayError::Request(error)
    }
}

impl Client {
    /// A client of the Pay API at `base_url` (usually [`DEFAULT_BASE_URL`], or a stand-in's
    /// in tests) with `api_key`.
    pub fn new(base_url: impl Into<String>, api_key: impl Into<String>) -> Client {
        Client {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            api_key: api_key.into(),
        }
    }

    /// The API's base URL, without a trailing `/`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Creates a payment: `POST {base}/v1/payments`, answered `201` with the payment.
    pub fn create_payment(&self, payment: &CreatePayment) -> Result<Payment, PayError> {
        let response = outbound::send(self.create_payment_request(payment)?)?;
        read_payment(&response, 201)
    }

    /// Reads a payment: `GET {base}/v1/payments/{payment_id}`.
    pub fn get_payment(&self, payment_id: &str) -> Result<Payment, PayError> {
        let response = outbound::send(self.get_payment_request(payment_id)?)?;
        read_payment(&response, 200)
    }

    /// The request [`Client::create_payment`] sends.
    pub fn create_payment_request(
        &self,
        payment: &CreatePayment,
    ) -> Result<OutboundRequest, PayError> {
        Ok(self
            .request(OutboundRequest::post(format!(
                "{}/v1/payments",
                self.base_url
            )))
            .json(payment)?)
    }

    /// The request [`Client::get_payment`] sends.
    pub fn get_payment_request(&self, payment_id: &str) -> Result<OutboundRequest, PayError> {
        let valid = !payment_id.is_empty()
            && payment_id.len() <= 64
            && payment_id.bytes().all(|b| b.is_ascii_alphanumeric());
        if !valid {
            return Err(PayError::InvalidPaymentId);
        }
        Ok(self.request(OutboundRequest::get(format!(
            "{}/v1/payments/{payment_id}",
            self.base_url
        ))))
    }

    fn request(&self, request: OutboundRequest) -> OutboundRequest {
        request
            .with_header("authorization", &format!("Bearer {}", self.api_key))
            .with_header("accept", "application/json")
    }
}

/// Pay's payment, as JSON.
#[derive(Deserialize)]
struct PaymentBody {
    payment_id: String,
    amount: u64,
    reference: String,
    state: PaymentState,
    #[serde(default, rename = "_links")]
    links: Option<Links>,
}

#[derive(Deserialize)]
struct Links {
    #[serde(default)]
    next_url: Option<Link>,
}

#[derive(Deserialize)]
struct Link {
    href: String,
}

/// Pay's error, as JSON.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

/// The payment in Pay's answer `response`, which should have status `expected`; any other
/// status is a [`PayError::Status`] with Pay's error code and description when given.
pub fn read_payment(response: &OutboundResponse, expected: u16) -> Result<Payment, PayError> {
    if response.status != expected {
        let error = serde_json::from_slice::<ErrorBody>(&response.body).ok();
        let (code, description) = error.map_or((None, None), |e| (e.code, e.description));
        return Err(PayError::Status {
            status: response.status,
            code,
            description,
        });
    }
    let body: PaymentBody = serde_json::from_slice(&response.body)
        .map_err(|e| PayError::InvalidResponse(e.to_string()))?;
    Ok(Payment {
        payment_id: body.payment_id,
        amount: body.amount,
        reference: body.reference,
        state: body.state,
        next_url: body.links.and_then(|l| l.next_url).map(|l| l.href),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

    const KEY: &str = "api_test_abcdefghijklmnopqrstuvwxyz0123456789";

    fn client() -> Client {
        Client::new("https://publicapi.payments.service.gov.uk/", KEY)
    }

    #[test]
    fn create_payment_posts_json_with_the_key() {
        let request = client()
            .create_payment_request(&CreatePayment {
                amount: 9000,
                reference: "GW-000001".into(),
                description: "Garden waste subscription".into(),
                return_url: "https://example.gov.uk/return?ref=GW-000001".into(),
                email: None,
            })
            .unwrap();
        assert_eq!(request.method, Method::Post);
        assert_eq!(
            request.url,
            "https://publicapi.payments.service.gov.uk/v1/payments"
        );
        assert_eq!(
            request.header("authorization"),
            Some(&*format!("Bearer {KEY}"))
        );
        assert_eq!(request.header("content-type"), Some("application/json"));
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "amount": 9000,
                "reference": "GW-000001",
                "description": "Garden waste subscription",
                "return_url": "https://example.gov.uk/return?ref=GW-000001",
            })
        );
        assert!(!format!("{request:?}").contains(KEY));
        assert!(!format!("{:?}", client()).contains(KEY));
    }

    #[test]
    fn get_payment_checks_the_id() {
        let request = client()
            .get_payment_request("hu20sqlact5260q2nanm0q8u93")
            .unwrap();
        assert_eq!(request.method, Method::Get);
        assert_eq!(
            request.url,
            "https://publicapi.payments.service.gov.uk/v1/payments/hu20sqlact5260q2nanm0q8u93"
        );
        for bad in ["", "../refunds", "a/b", "a?b", &"x".repeat(65)] {
            assert_eq!(
                client().get_payment_request(bad).unwrap_err(),
                PayError::InvalidPaymentId
            );
        }
    }

    #[test]
    fn reads_a_created_payment() {
        let body = r#"{
            "amount": 9000, "description": "Garden waste subscription",
            "reference": "GW-000001", "language": "en",
            "state": {"status": "created", "finished": false},
            "payment_id": "hu20sqlact5260q2nanm0q8u93",
            "return_url": "https://example.gov.uk/return",
            "created_date": "2026-05-01T09:30:00.000Z",
            "_links": {
                "self": {"href": "https://publicapi.payments.service.gov.uk/v1/payments/hu20", "method": "GET"},
                "next_url": {"href": "https://card.payments.service.gov.uk/secure/ef1b6ff1", "method": "GET"},
                "next_url_post": {"type": "application/x-www-form-urlencoded", "params": {"chargeTokenId": "ef1b"}, "href": "https://card.payments.service.gov.uk/secure", "method": "POST"}
            }
        }"#;
        let payment = read_payment(&OutboundResponse::new(201, body), 201).unwrap();
        assert_eq!(payment.payment_id, "hu20sqlact5260q2nanm0q8u93");
        assert_eq!(payment.amount, 9000);
        assert_eq!(payment.reference, "GW-000001");
        assert_eq!(
            payment.next_url.as_deref(),
            Some("https://card.payments.service.gov.uk/secure/ef1b6ff1")
        );
        assert!(!payment.is_finished());
        assert!(!payment.is_success());
    }

    #[test]
    fn reads_finished_payments() {
        let success = r#"{"amount": 9000, "reference": "GW-000001", "payment_id": "abc",
            "state": {"status": "success", "finished": true}, "_links": {"next_url": null}}"#;
        let payment = read_payment(&OutboundResponse::new(200, success), 200).unwrap();
        assert!(payment.is_success() && payment.is_finished());
        assert_eq!(payment.next_url, None);

        let declined = r#"{"amount": 9000, "reference": "GW-000001", "payment_id": "abc",
            "state": {"status": "failed", "finished": true, "code": "P0010", "message": "Payment method rejected"}}"#;
        let payment = read_payment(&OutboundResponse::new(200, declined), 200).unwrap();
        assert!(!payment.is_success() && payment.is_finished());
        assert_eq!(payment.state.code.as_deref(), Some("P0010"));
        assert_eq!(
            payment.state.message.as_deref(),
            Some("Payment method rejected")
        );
    }

    #[test]
    fn errors_name_the_status_and_pays_code() {
        let body = r#"{"field": "amount", "code": "P0102", "description": "Invalid attribute value: amount. Must be less than or equal to 10000000"}"#;
        let error = read_payment(&OutboundResponse::new(422, body), 201).unwrap_err();
        assert_eq!(
            error.to_string(),
            "GOV.UK Pay answered 422 P0102: Invalid attribute value: amount. Must be less than or equal to 10000000"
        );
        assert!(!error.is_transient());
        let error = read_payment(&OutboundResponse::new(401, ""), 200).unwrap_err();
        assert_eq!(error.to_string(), "GOV.UK Pay answered 401");
        let error = read_payment(&OutboundResponse::new(503, "<html>"), 200).unwrap_err();
        assert!(error.is_transient());
        let error = read_payment(&OutboundResponse::new(200, "{}"), 200).unwrap_err();
        assert!(matches!(error, PayError::InvalidResponse(_)));
    }
}
