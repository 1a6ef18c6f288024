//! Plain request and response values.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::urlencoded;

/// An HTTP method.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
    /// `PATCH`
    Patch,
    /// `OPTIONS`
    Options,
    /// `CONNECT`
    Connect,
    /// `TRACE`
    Trace,
    /// Any other method, as sent.
    Other(String),
}

impl Method {
    /// The method's name, e.g. `"GET"`.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Patch => "PATCH",
            Method::Options => "OPTIONS",
            Method::Connect => "CONNECT",
            Method::Trace => "TRACE",
            Method::Other(name) => name,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for Method {
    fn from(name: &str) -> Self {
        match name {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "PATCH" => Method::Patch,
            "OPTIONS" => Method::Options,
            "CONNECT" => Method::Connect,
            "TRACE" => Method::Trace,
            other => Method::Other(other.to_owned()),
        }
    }
}

/// An incoming request, with its whole body.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The path within the plugin, always starting with `/`: for a call to
    /// `/s/{tenant}/{council}/{plugin}/services.json` it is `/services.json`. Still
    /// percent-encoded.
    pub path: String,
    /// The query string without the leading `?`, still encoded; empty when there is none.
    pub query: String,
    /// Header names (lower case) and values, in the order received.
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Vec<u8>,
    /// Path parameters captured by the [`Router`](crate::Router), decoded; see
    /// [`Request::param`].
    pub params: Vec<(String, String)>,
}

impl Request {
    /// A request with no headers and no body, e.g. `Request::new(Method::Get, "/a?b=c")`;
    /// handy in tests.
    pub fn new(method: Method, path_and_query: &str) -> Self {
        let (path, query) = match path_and_query.split_once('?') {
            Some((path, query)) => (path, query),
            None => (path_and_query, ""),
        };
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        Request {
            method,
            path,
            query: query.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            params: Vec::new(),
        }
    }

    /// Adds a header; handy in tests.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// Replaces the body; handy in tests.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The media type of the body, lower case and without parameters: `text/csv` for
    /// `Content-Type: text/csv; charset=utf-8`.
    pub fn content_type(&self) -> Option<String> {
        let value = self.header("content-type")?;
        let media = value.split(';').next().unwrap_or("").trim();
        (!media.is_empty()).then(|| media.to_ascii_lowercase())
    }

    /// The decoded value of the first query parameter called `name`
    /// (`application/x-www-form-urlencoded` rules: `+` is a space).
    pub fn query_param(&self, name: &str) -> Option<String> {
        urlencoded::parse(&self.query)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// Every decoded query parameter, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        urlencoded::parse(&self.query)
    }

    /// A path parameter captured by the [`Router`](crate::Router), e.g. `code` for the pattern
    /// `/services/{code}.json`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<&str, BodyError> {
        std::str::from_utf8(&self.body).map_err(|_| BodyError::NotUtf8)
    }

    /// The body parsed as JSON into `T`.
    ///
    /// Does not insist on a `Content-Type`; check [`Request::content_type`] yourself if you
    /// care. Turn the error into a `400` answer with `Response::from(error)`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, BodyError> {
        serde_json::from_slice(&self.body).map_err(|e| BodyError::InvalidJson(e.to_string()))
    }

    /// The body decoded as `application/x-www-form-urlencoded` pairs.
    pub fn form(&self) -> Result<Vec<(String, String)>, BodyError> {
        Ok(urlencoded::parse(self.text()?))
    }
}

/// Why a request body could not be read as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// The body is not valid UTF-8.
    NotUtf8,
    /// The body is not valid JSON or does not have the expected shape; carries serde's
    /// message.
    InvalidJson(String),
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::NotUtf8 => f.write_str("the request body is not valid UTF-8"),
            BodyError::InvalidJson(message) => {
                write!(f, "the request body is not valid JSON: {message}")
            }
        }
    }
}

impl std::error::Error for BodyError {}

impl From<BodyError> for Response {
    /// A `400` problem response describing the error.
    fn from(error: BodyError) -> Self {
        Response::error(400, &error.to_string())
    }
}

/// An outgoing response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code, 100 to 599.
    pub status: u16,
    /// Header names and values. The SDK sets `content-length` itself.
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Vec<u8>,
}

impl Response {
    /// An empty response with `status`.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A `text/plain; charset=utf-8` response.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Response::new(status)
            .with_header("content-type", "text/plain; charset=utf-8")
            .with_body(body.into())
    }

    /// A `text/html; charset=utf-8` response, such as a page rendered by the
    /// [`crate::kit`] page kit.
    pub fn html(status: u16, body: impl Into<String>) -> Self {
        Response::new(status)
            .with_header("content-type", "text/html; charset=utf-8")
            .with_body(body.into())
    }

    /// A `303 See Other` to `location`, usually an absolute path such as
    /// `site.url("/check-answers")`: what a form's `POST` answers so that the browser
    /// fetches the next page with a `GET` (Post/Redirect/Get).
    pub fn see_other(location: &str) -> Self {
        Response::new(303).with_header("location", location)
    }

    /// An `application/json` response with `value` serialised; a `500` problem response if
    /// `value` cannot be serialised (e.g. a map with non-string keys).
    pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => Response::new(status)
                .with_header("content-type", "application/json")
                .with_body(body),
            Err(e) => Response::error(500, &format!("could not serialise the response: {e}")),
        }
    }

    /// An `application/problem+json` response (RFC 9457):
    /// `{"type": "about:blank", "title": <reason phrase>, "status": status, "detail": detail}`.
    pub fn error(status: u16, detail: &str) -> Self {
        Response::new(status)
            .with_header("content-type", "application/problem+json")
            .with_body(problem_json(status, detail, ""))
    }

    /// Like [`Response::error`], with extra members merged into the problem object, e.g.
    /// `json!({"errors": [...]})`. Members named `type`, `title`, `status` or `detail`, and
    /// anything that is not a JSON object, are ignored.
    pub fn error_with(status: u16, detail: &str, extensions: serde_json::Value) -> Self {
        Response::new(status)
            .with_header("content-type", "application/problem+json")
            .with_body(problem_json(status, detail, &extension_members(extensions)))
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Replaces the body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text, with invalid UTF-8 replaced; handy in tests.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The reason phrase of a status code, used as a problem's `title`.
pub(crate) fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        409 => "Conflict",
        410 => "Gone",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        507 => "Insufficient Storage",
        _ => match status / 100 {
            1 => "Informational",
            2 => "Success",
            3 => "Redirection",
            4 => "Client Error",
            _ => "Server Error",
        },
    }
}

/// Builds a problem document. Written by hand for the common case so that a plugin that
/// never touches JSON does not carry a JSON serialiser.
/// `members` is either empty or `,"name":value...` ready to append.
fn problem_json(status: u16, detail: &str, members: &str) -> Vec<u8> {
    let mut out = String::with_capacity(96 + detail.len());
    out.push_str("{\"type\":\"about:blank\",\"title\":");
    push_json_string(&mut out, reason_phrase(status));
    out.push_str(",\"status\":");
    out.push_str(&status.to_string());
    out.push_str(",\"detail\":");
    push_json_string(&mut out, detail);
    out.push_str(members);
    out.push('}');
    out.into_bytes()
}

/// Renders the members of `extensions` (an object) as `,"name":value...`, leaving out the
/// standard members.
fn extension_members(extensions: serde_json::Value) -> String {
    let mut out = String::new();
    if let serde_json::Value::Object(members) = extensions {
        for (name, value) in members {
            if matches!(name.as_str(), "type" | "title" | "status" | "detail") {
                continue;
            }
            out.push(',');
            push_json_string(&mut out, &name);
            out.push(':');
            out.push_str(&value.to_string());
        }
    }
    out
}

fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_is_valid_json_with_the_rfc_9457_members() {
        let resp = Response::error(404, "no \"such\" thing\n");
        assert_eq!(resp.status, 404);
        assert_eq!(
            resp.header("Content-Type"),
            Some("application/problem+json")
        );
        let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "type": "about:blank",
                "title": "Not Found",
                "status": 404,
                "detail": "no \"such\" thing\n",
            })
        );
    }

    #[test]
    fn problem_extensions_are_merged_but_cannot_override() {
        let resp = Response::error_with(
            422,
            "bad rows",
            serde_json::json!({"errors": [{"line": 2}], "status": 200}),
        );
        let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
        assert_eq!(v["status"], 422);
        assert_eq!(v["errors"][0]["line"], 2);
        assert_eq!(v["title"], "Unprocessable Content");
    }

    #[test]
    fn control_characters_are_escaped() {
        let body = problem_json(400, "a\u{1}b", "");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["detail"], "a\u{1}b");
    }

    #[test]
    fn request_helpers() {
        let req = Request::new(Method::Post, "/x?limit=5&q=a+b%21&q=second")
            .with_header("Content-Type", "Text/CSV; charset=utf-8")
            .with_body("a=1&b=two+words");
        assert_eq!(req.path, "/x");
        assert_eq!(req.query_param("limit").as_deref(), Some("5"));
        assert_eq!(req.query_param("q").as_deref(), Some("a b!"));
        assert_eq!(req.query_param("missing"), None);
        assert_eq!(req.content_type().as_deref(), Some("text/csv"));
        assert_eq!(
            req.form().unwrap(),
            vec![
                ("a".to_owned(), "1".to_owned()),
                ("b".to_owned(), "two words".to_owned())
            ]
        );
    }

    #[test]
    fn html_and_redirects() {
        let page = Response::html(200, "<p>hi</p>");
        assert_eq!(
            page.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(page.body_text(), "<p>hi</p>");
        let redirect = Response::see_other("/s/t/c/p/check-answers");
        assert_eq!(redirect.status, 303);
        assert_eq!(redirect.header("location"), Some("/s/t/c/p/check-answers"));
        assert!(redirect.body.is_empty());
    }

    #[test]
    fn json_body_errors_become_400_problems() {
        let req = Request::new(Method::Post, "/").with_body("{not json");
        let err = req.json::<serde_json::Value>().unwrap_err();
        let resp = Response::from(err);
        assert_eq!(resp.status, 400);
    }

    #[test]
    fn json_response() {
        let resp = Response::json(201, &serde_json::json!({"a": 1}));
        assert_eq!(resp.status, 201);
        assert_eq!(resp.header("content-type"), Some("application/json"));
        assert_eq!(resp.body, br#"{"a":1}"#);
    }
}
