//! Open311 GeoReport v2 types and rules: services from configuration, checking a new
//! service request, the public view of a request, and the filters of `GET requests`. No
//! platform calls here, so all of it is tested on the host.

use guildhall_plugin::time;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The most requests `GET requests` answers with.
pub const MAX_RESULTS: usize = 1000;

/// The widest date range `GET requests` accepts, and the default window, in seconds.
pub const MAX_SPAN: i64 = 90 * 86_400;

/// The longest description the spec allows, in characters.
pub const MAX_DESCRIPTION: usize = 4000;

/// An error in GeoReport v2's format; a response carries a JSON array of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Open311Error {
    /// The HTTP status this error stands for.
    pub code: u16,
    /// What went wrong, for a person.
    pub description: String,
}

impl Open311Error {
    /// An error with `code` and `description`.
    pub fn new(code: u16, description: impl Into<String>) -> Self {
        Open311Error {
            code,
            description: description.into(),
        }
    }
}

/// A service offered, as listed by `GET services`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Service {
    /// Unique id of the service.
    pub service_code: String,
    /// Human-readable name.
    pub service_name: String,
    /// A brief description.
    pub description: Option<String>,
    /// Whether there are attributes to fetch with `GET services/{code}`.
    pub metadata: bool,
    /// `realtime`, `batch` or `blackbox`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Comma-separated keywords.
    pub keywords: Option<String>,
    /// The category the service belongs to.
    pub group: Option<String>,
    /// The service definition's attributes, given in configuration; not listed.
    #[serde(skip)]
    pub attributes: Vec<Value>,
}

/// Reads the `services` configuration: a JSON array of GeoReport service objects.
/// `service_code` and `service_name` are required; `metadata` defaults to whether
/// `attributes` (a non-standard addition holding the service definition's attributes) is a
/// non-empty array, `type` to `realtime`.
pub fn services_from_config(value: &Value) -> Result<Vec<Service>, String> {
    let Value::Array(items) = value else {
        return Err("the services setting must be a JSON array".to_owned());
    };
    let mut services: Vec<Service> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::Object(object) = item else {
            return Err(format!("services[{i}] must be an object"));
        };
        let text = |name: &str| -> Result<Option<String>, String> {
            match object.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(format!("services[{i}].{name} must be a string")),
            }
        };
        let required = |name: &str| -> Result<String, String> {
            text(name)?
                .filter(|s| !s.trim().is_empty())
                .ok_or_else(|| format!("services[{i}].{name} is required"))
        };
        let service_code = required("service_code")?;
        if services.iter().any(|s| s.service_code == service_code) {
            return Err(format!("service_code {service_code:?} is listed twice"));
        }
        let attributes = match object.get("attributes") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a.clone(),
            Some(_) => return Err(format!("services[{i}].attributes must be an array")),
        };
        let metadata = match object.get("metadata") {
            None | Some(Value::Null) => !attributes.is_empty(),
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(format!("services[{i}].metadata must be true or false")),
        };
        let kind = text("type")?.unwrap_or_else(|| "realtime".to_owned());
        if !matches!(kind.as_str(), "realtime" | "batch" | "blackbox") {
            return Err(format!(
                "services[{i}].type must be realtime, batch or blackbox"
            ));
        }
        services.push(Service {
            service_name: required("service_name")?,
            service_code,
            description: text("description")?,
            metadata,
            kind,
            keywords: text("keywords")?,
            group: text("group")?,
            attributes,
        });
    }
    Ok(services)
}

/// A checked `POST requests`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewRequest {
    /// The service asked for; known to exist.
    pub service_code: String,
    /// Latitude (WGS84).
    pub lat: Option<f64>,
    /// Longitude (WGS84).
    pub long: Option<f64>,
    /// The address as the reporter wrote it.
    pub address_string: Option<String>,
    /// An id of the address in the council's address database.
    pub address_id: Option<String>,
    /// What is wrong.
    pub description: Option<String>,
    /// A picture of the problem.
    pub media_url: Option<String>,
    /// Reporter's email (personal data: stored, never listed).
    pub email: Option<String>,
    /// Reporter's first name (personal data).
    pub first_name: Option<String>,
    /// Reporter's last name (personal data).
    pub last_name: Option<String>,
    /// Reporter's phone number (personal data).
    pub phone: Option<String>,
    /// Reporter's device id (personal data).
    pub device_id: Option<String>,
    /// Reporter's account id (personal data).
    pub account_id: Option<String>,
}

/// Turns a JSON object body into the same name/value pairs a form would give. Strings,
/// numbers and booleans become text; `null`, arrays and objects are left out.
pub fn pairs_from_json(object: &Map<String, Value>) -> Vec<(String, String)> {
    object
        .iter()
        .filter_map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            Some((k.clone(), text))
        })
        .collect()
}

/// Checks the parameters of `POST requests` against the spec and the known services.
/// Unknown parameters (`jurisdiction_id`, `api_key`, `attribute[...]`) are accepted and
/// ignored. Every problem found is reported, each as a `400`.
pub fn check_new_request(
    pairs: &[(String, String)],
    services: &[Service],
) -> Result<NewRequest, Vec<Open311Error>> {
    let get = |name: &str| -> Option<String> {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let mut errors = Vec::new();
    let mut bad = |description: String| errors.push(Open311Error::new(400, description));

    let service_code = get("service_code");
    match &service_code {
        None => bad("service_code is required".to_owned()),
        Some(code) if !services.iter().any(|s| &s.service_code == code) => {
            bad(format!("service_code {code} is not a service offered here"))
        }
        Some(_) => {}
    }

    let coordinate = |name: &str, range: f64, bad: &mut dyn FnMut(String)| -> Option<f64> {
        let text = get(name)?;
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() && v.abs() <= range => Some(v),
            _ => {
                bad(format!("{name} must be a number from -{range} to {range}"));
                None
            }
        }
    };
    let lat = coordinate("lat", 90.0, &mut bad);
    let long = coordinate("long", 180.0, &mut bad);
    let (has_lat, has_long) = (get("lat").is_some(), get("long").is_some());
    if has_lat != has_long {
        bad("lat and long must be given together".to_owned());
    }
    let address_string = get("address_string");
    let address_id = get("address_id");
    if !(has_lat && has_long) && address_string.is_none() && address_id.is_none() {
        bad("a location is required: lat and long, address_string or address_id".to_owned());
    }

    let description = get("description");
    if description
        .as_ref()
        .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION)
    {
        bad(format!(
            "description must be at most {MAX_DESCRIPTION} characters"
        ));
    }
    let email = get("email");
    if let Some(email) = &email {
        let valid = email.len() <= 254
            && !email.contains(char::is_whitespace)
            && email
                .split_once('@')
                .is_some_and(|(user, domain)| !user.is_empty() && domain.contains('.'));
        if !valid {
            bad("email must be an email address".to_owned());
        }
    }
    let media_url = get("media_url");
    if let Some(url) = &media_url
        && (!(url.starts_with("https://") || url.starts_with("http://")) || url.len() > 2048)
    {
        bad("media_url must be an http or https URL".to_owned());
    }
    let short = |name: &str, bad: &mut dyn FnMut(String)| -> Option<String> {
        let value = get(name)?;
        if value.chars().count() > 200 {
            bad(format!("{name} must be at most 200 characters"));
        }
        Some(value)
    };
    let first_name = short("first_name", &mut bad);
    let last_name = short("last_name", &mut bad);
    let phone = short("phone", &mut bad);
    let device_id = short("device_id", &mut bad);
    let account_id = short("account_id", &mut bad);
    let address_string = address_string.inspect(|a| {
        if a.chars().count() > 1000 {
            bad("address_string must be at most 1000 characters".to_owned());
        }
    });
    let address_id = address_id.inspect(|a| {
        if a.chars().count() > 200 {
            bad("address_id must be at most 200 characters".to_owned());
        }
    });

    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(NewRequest {
        service_code: service_code.unwrap_or_default(),
        lat,
        long,
        address_string,
        address_id,
        description,
        media_url,
        email,
        first_name,
        last_name,
        phone,
        device_id,
        account_id,
    })
}

/// A service request as stored under `request/<id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRequest {
    /// The request's id, `"1"`, `"2"`, ...
    pub service_request_id: String,
    /// The council it was reported to.
    pub council: String,
    /// `open` or `closed`.
    pub status: Status,
    /// Why the status is what it is.
    pub status_notes: Option<String>,
    /// The service's code.
    pub service_code: String,
    /// The service's name when the request was made.
    pub service_name: String,
    /// What is wrong.
    pub description: Option<String>,
    /// Who deals with it.
    pub agency_responsible: Option<String>,
    /// What the reporter was told to expect.
    pub service_notice: Option<String>,
    /// When it was made, RFC 3339.
    pub requested_datetime: String,
    /// When it was made, seconds since the epoch, for filtering.
    pub requested_unix: i64,
    /// When it last changed, RFC 3339.
    pub updated_datetime: String,
    /// When it is expected to be dealt with, RFC 3339.
    pub expected_datetime: Option<String>,
    /// The address given.
    pub address: Option<String>,
    /// The address id given.
    pub address_id: Option<String>,
    /// The postcode, when known.
    pub zipcode: Option<String>,
    /// Latitude.
    pub lat: Option<f64>,
    /// Longitude.
    pub long: Option<f64>,
    /// A picture of the problem.
    pub media_url: Option<String>,
    /// Personal data: never listed.
    pub email: Option<String>,
    /// Personal data: never listed.
    pub first_name: Option<String>,
    /// Personal data: never listed.
    pub last_name: Option<String>,
    /// Personal data: never listed.
    pub phone: Option<String>,
    /// Personal data: never listed.
    pub device_id: Option<String>,
    /// Personal data: never listed.
    pub account_id: Option<String>,
}

/// The status of a service request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Being dealt with.
    Open,
    /// Dealt with.
    Closed,
}

impl StoredRequest {
    /// A new open request with `id`, made at `now` (seconds since the epoch).
    pub fn create(
        id: String,
        council: String,
        request: NewRequest,
        service: &Service,
        agency_responsible: Option<String>,
        service_notice: Option<String>,
        now: i64,
    ) -> Self {
        let requested = time::format_rfc3339(now);
        StoredRequest {
            service_request_id: id,
            council,
            status: Status::Open,
            status_notes: None,
            service_code: request.service_code,
            service_name: service.service_name.clone(),
            description: request.description,
            agency_responsible,
            service_notice,
            requested_datetime: requested.clone(),
            requested_unix: now,
            updated_datetime: requested,
            expected_datetime: None,
            address: request.address_string,
            address_id: request.address_id,
            zipcode: None,
            lat: request.lat,
            long: request.long,
            media_url: request.media_url,
            email: request.email,
            first_name: request.first_name,
            last_name: request.last_name,
            phone: request.phone,
            device_id: request.device_id,
            account_id: request.account_id,
        }
    }

    /// The public view, in GeoReport v2's field order, without personal data.
    pub fn view(&self) -> RequestView<'_> {
        RequestView {
            service_request_id: &self.service_request_id,
            status: self.status,
            status_notes: self.status_notes.as_deref(),
            service_name: &self.service_name,
            service_code: &self.service_code,
            description: self.description.as_deref(),
            agency_responsible: self.agency_responsible.as_deref(),
            service_notice: self.service_notice.as_deref(),
            requested_datetime: &self.requested_datetime,
            updated_datetime: &self.updated_datetime,
            expected_datetime: self.expected_datetime.as_deref(),
            address: self.address.as_deref(),
            address_id: self.address_id.as_deref(),
            zipcode: self.zipcode.as_deref(),
            lat: self.lat,
            long: self.long,
            media_url: self.media_url.as_deref(),
        }
    }
}

/// A service request as GeoReport v2 lists it: no email, names or phone numbers.
#[derive(Debug, Clone, Serialize)]
#[allow(missing_docs)]
pub struct RequestView<'a> {
    pub service_request_id: &'a str,
    pub status: Status,
    pub status_notes: Option<&'a str>,
    pub service_name: &'a str,
    pub service_code: &'a str,
    pub description: Option<&'a str>,
    pub agency_responsible: Option<&'a str>,
    pub service_notice: Option<&'a str>,
    pub requested_datetime: &'a str,
    pub updated_datetime: &'a str,
    pub expected_datetime: Option<&'a str>,
    pub address: Option<&'a str>,
    pub address_id: Option<&'a str>,
    pub zipcode: Option<&'a str>,
    pub lat: Option<f64>,
    pub long: Option<f64>,
    pub media_url: Option<&'a str>,
}

/// The filters of `GET requests`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filter {
    /// `service_request_id`, comma separated; when given, every other filter is ignored.
    pub ids: Option<Vec<String>>,
    /// `service_code`, comma separated.
    pub service_codes: Option<Vec<String>>,
    /// Earliest `requested_datetime`, seconds since the epoch.
    pub start: Option<i64>,
    /// Latest `requested_datetime`, seconds since the epoch.
    pub end: Option<i64>,
    /// `status`, comma separated.
    pub statuses: Option<Vec<Status>>,
}

/// Reads the filters of `GET requests` from the query. With neither `start_date` nor
/// `end_date`, requests of the last 90 days are listed; a range given with both may not
/// span more than 90 days.
pub fn parse_filter(pairs: &[(String, String)], now: i64) -> Result<Filter, Vec<Open311Error>> {
    let get = |name: &str| -> Option<&str> {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    };
    let list = |name: &str| -> Option<Vec<String>> {
        let items: Vec<String> = get(name)?
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        (!items.is_empty()).then_some(items)
    };
    let mut errors = Vec::new();
    let mut date = |name: &str| -> Option<i64> {
        let text = get(name)?;
        let parsed = time::parse_rfc3339(text);
        if parsed.is_none() {
            errors.push(Open311Error::new(
                400,
                format!("{name} must be a W3C date-time such as 2026-05-01T09:30:00Z"),
            ));
        }
        parsed
    };
    let mut start = date("start_date");
    let end = date("end_date");

    let mut statuses = None;
    if let Some(names) = list("status") {
        let mut parsed = Vec::new();
        for name in names {
            match name.as_str() {
                "open" => parsed.push(Status::Open),
                "closed" => parsed.push(Status::Closed),
                _ => errors.push(Open311Error::new(
                    400,
                    format!("status {name} is not open or closed"),
                )),
            }
        }
        statuses = Some(parsed);
    }
    if let (Some(s), Some(e)) = (start, end) {
        if e < s {
            errors.push(Open311Error::new(400, "end_date is before start_date"));
        } else if e - s > MAX_SPAN {
            errors.push(Open311Error::new(
                400,
                "start_date and end_date may not be more than 90 days apart",
            ));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if start.is_none() && end.is_none() {
        start = Some(now - MAX_SPAN);
    }
    Ok(Filter {
        ids: list("service_request_id"),
        service_codes: list("service_code"),
        start,
        end,
        statuses,
    })
}

/// The requests `filter` selects: with ids, those requests in the order asked; otherwise
/// the newest first, at most [`MAX_RESULTS`].
pub fn select(filter: &Filter, mut requests: Vec<StoredRequest>) -> Vec<StoredRequest> {
    if let Some(ids) = &filter.ids {
        let mut selected = Vec::new();
        for id in ids {
            if let Some(i) = requests.iter().position(|r| &r.service_request_id == id) {
                selected.push(requests.swap_remove(i));
            }
        }
        return selected;
    }
    requests.retain(|r| {
        filter
            .service_codes
            .as_ref()
            .is_none_or(|codes| codes.contains(&r.service_code))
            && filter
                .statuses
                .as_ref()
                .is_none_or(|s| s.contains(&r.status))
            && filter.start.is_none_or(|start| r.requested_unix >= start)
            && filter.end.is_none_or(|end| r.requested_unix <= end)
    });
    requests.sort_by(|a, b| {
        b.requested_unix
            .cmp(&a.requested_unix)
            .then_with(|| id_number(&b.service_request_id).cmp(&id_number(&a.service_request_id)))
    });
    requests.truncate(MAX_RESULTS);
    requests
}

/// A request id's number, for ordering; ids that are not numbers sort first.
pub fn id_number(id: &str) -> u64 {
    id.parse().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn services() -> Vec<Service> {
        services_from_config(&json!([
            {"service_code": "pothole", "service_name": "Pothole", "description": "A hole in the road",
             "metadata": false, "type": "realtime", "keywords": "road, hole", "group": "highways"},
            {"service_code": "fly-tipping", "service_name": "Fly-tipping",
             "attributes": [{"code": "waste", "datatype": "string"}]},
        ]))
        .unwrap()
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn services_serialise_as_georeport() {
        let services = services();
        assert_eq!(
            serde_json::to_value(&services[0]).unwrap(),
            json!({"service_code": "pothole", "service_name": "Pothole",
                   "description": "A hole in the road", "metadata": false, "type": "realtime",
                   "keywords": "road, hole", "group": "highways"})
        );
        let second = serde_json::to_value(&services[1]).unwrap();
        assert_eq!(second["metadata"], json!(true));
        assert_eq!(second["type"], json!("realtime"));
        assert_eq!(second["description"], Value::Null);
        assert!(second.get("attributes").is_none());
        assert_eq!(services[1].attributes.len(), 1);
    }

    #[test]
    fn bad_service_configuration() {
        for (config, expected) in [
            (json!({}), "must be a JSON array"),
            (json!([1]), "services[0] must be an object"),
            (
                json!([{"service_name": "x"}]),
                "services[0].service_code is required",
            ),
            (
                json!([{"service_code": "x"}]),
                "services[0].service_name is required",
            ),
            (
                json!([{"service_code": "x", "service_name": "X", "type": "later"}]),
                "type must be",
            ),
            (
                json!([{"service_code": "x", "service_name": "X"}, {"service_code": "x", "service_name": "Y"}]),
                "listed twice",
            ),
        ] {
            let err = services_from_config(&config).unwrap_err();
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn a_good_request() {
        let request = check_new_request(
            &pairs(&[
                ("service_code", "pothole"),
                ("lat", "51.2437"),
                ("long", "-0.0152"),
                ("description", "Deep hole"),
                ("email", "jo@example.org"),
                ("first_name", "Jo"),
                ("attribute[depth]", "deep"),
                ("jurisdiction_id", "tandridge.gov.uk"),
                ("phone", ""),
            ]),
            &services(),
        )
        .unwrap();
        assert_eq!(request.service_code, "pothole");
        assert_eq!(request.lat, Some(51.2437));
        assert_eq!(request.long, Some(-0.0152));
        assert_eq!(request.email.as_deref(), Some("jo@example.org"));
        assert_eq!(request.phone, None);
    }

    #[test]
    fn an_address_is_enough() {
        let request = check_new_request(
            &pairs(&[
                ("service_code", "fly-tipping"),
                ("address_string", "1 High St"),
            ]),
            &services(),
        )
        .unwrap();
        assert_eq!(request.address_string.as_deref(), Some("1 High St"));
        assert!(
            check_new_request(
                &pairs(&[("service_code", "pothole"), ("address_id", "1000610001")]),
                &services()
            )
            .is_ok()
        );
    }

    #[test]
    fn missing_and_invalid_fields_are_400s() {
        let errors = check_new_request(&[], &services()).unwrap_err();
        assert_eq!(
            errors,
            vec![
                Open311Error::new(400, "service_code is required"),
                Open311Error::new(
                    400,
                    "a location is required: lat and long, address_string or address_id"
                ),
            ]
        );
        let errors = check_new_request(
            &pairs(&[
                ("service_code", "nope"),
                ("lat", "91"),
                ("email", "not-an-email"),
                ("media_url", "ftp://x"),
            ]),
            &services(),
        )
        .unwrap_err();
        let descriptions: Vec<&str> = errors.iter().map(|e| e.description.as_str()).collect();
        assert_eq!(
            descriptions,
            vec![
                "service_code nope is not a service offered here",
                "lat must be a number from -90 to 90",
                "lat and long must be given together",
                "a location is required: lat and long, address_string or address_id",
                "email must be an email address",
                "media_url must be an http or https URL",
            ]
        );
        let long = "x".repeat(MAX_DESCRIPTION + 1);
        let errors = check_new_request(
            &pairs(&[
                ("service_code", "pothole"),
                ("address_string", "a"),
                ("description", &long),
            ]),
            &services(),
        )
        .unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(
            serde_json::to_string(&errors)
                .unwrap()
                .starts_with(r#"[{"code":400,"description":"description must be"#)
        );
    }

    #[test]
    fn json_bodies_become_pairs() {
        let body = json!({"service_code": "pothole", "lat": 51.5, "long": -0.1, "x": null,
                          "attribute": {"a": 1}, "flag": true});
        let Value::Object(object) = body else {
            unreachable!()
        };
        let mut got = pairs_from_json(&object);
        got.sort();
        assert_eq!(
            got,
            pairs(&[
                ("flag", "true"),
                ("lat", "51.5"),
                ("long", "-0.1"),
                ("service_code", "pothole")
            ])
        );
    }

    fn stored(id: &str, code: &str, at: i64, status: Status) -> StoredRequest {
        let request = NewRequest {
            service_code: code.to_owned(),
            address_string: Some("1 High St".to_owned()),
            email: Some("jo@example.org".to_owned()),
            phone: Some("01234 567890".to_owned()),
            first_name: Some("Jo".to_owned()),
            ..NewRequest::default()
        };
        let service = &services()[0];
        let mut r = StoredRequest::create(
            id.to_owned(),
            "tandridge".to_owned(),
            request,
            service,
            Some("tandridge".to_owned()),
            None,
            at,
        );
        r.status = status;
        r
    }

    #[test]
    fn the_view_has_the_georeport_fields_and_no_personal_data() {
        let view = serde_json::to_value(stored("7", "pothole", 1_777_627_800, Status::Open).view())
            .unwrap();
        let Value::Object(fields) = &view else {
            unreachable!()
        };
        let names: Vec<&str> = fields.keys().map(String::as_str).collect();
        let mut expected = vec![
            "service_request_id",
            "status",
            "status_notes",
            "service_name",
            "service_code",
            "description",
            "agency_responsible",
            "service_notice",
            "requested_datetime",
            "updated_datetime",
            "expected_datetime",
            "address",
            "address_id",
            "zipcode",
            "lat",
            "long",
            "media_url",
        ];
        expected.sort();
        let mut names_sorted = names.clone();
        names_sorted.sort();
        assert_eq!(names_sorted, expected);
        assert_eq!(view["requested_datetime"], "2026-05-01T09:30:00Z");
        assert_eq!(view["status"], "open");
        let text = view.to_string();
        assert!(!text.contains("jo@example.org"));
        assert!(!text.contains("01234"));
        assert!(!text.contains("Jo\""));
    }

    #[test]
    fn filters() {
        let now = 1_777_627_800;
        let day = 86_400;
        let all = vec![
            stored("1", "pothole", now - 100 * day, Status::Open),
            stored("2", "pothole", now - 10 * day, Status::Closed),
            stored("3", "fly-tipping", now - 5 * day, Status::Open),
            stored("4", "pothole", now - day, Status::Open),
        ];
        let ids = |filter: &Filter| -> Vec<String> {
            select(filter, all.clone())
                .into_iter()
                .map(|r| r.service_request_id)
                .collect()
        };
        let filter = |query: &str| parse_filter(&guildhall_plugin::urlencoded::parse(query), now);

        assert_eq!(ids(&filter("").unwrap()), vec!["4", "3", "2"]);
        assert_eq!(
            ids(&filter("service_code=pothole").unwrap()),
            vec!["4", "2"]
        );
        assert_eq!(
            ids(&filter("service_code=pothole,fly-tipping&status=open").unwrap()),
            vec!["4", "3"]
        );
        assert_eq!(ids(&filter("status=closed").unwrap()), vec!["2"]);
        assert_eq!(
            ids(&filter("service_request_id=3,1,99&status=closed").unwrap()),
            vec!["3", "1"]
        );
        let start = time::format_rfc3339(now - 200 * day);
        let end = time::format_rfc3339(now - 120 * day);
        assert!(ids(&filter(&format!("start_date={start}&end_date={end}")).unwrap()).is_empty());
        let start = time::format_rfc3339(now - 100 * day);
        let end = time::format_rfc3339(now - 10 * day);
        assert_eq!(
            ids(&filter(&format!("start_date={start}&end_date={end}")).unwrap()),
            vec!["2", "1"]
        );
        assert_eq!(
            ids(&filter("start_date=2026-04-25T00:00:00%2B01:00").unwrap()),
            vec!["4", "3"]
        );
        assert_eq!(
            ids(&filter("end_date=2026-04-23T00:00:00Z").unwrap()),
            vec!["2", "1"]
        );
    }

    #[test]
    fn bad_filters_are_400s() {
        let now = 1_777_627_800;
        let filter = |query: &str| parse_filter(&guildhall_plugin::urlencoded::parse(query), now);
        for query in [
            "start_date=yesterday",
            "end_date=2026-13-01T00:00:00Z",
            "status=pending",
            "start_date=2026-01-01T00:00:00Z&end_date=2026-05-01T00:00:00Z",
            "start_date=2026-05-01T00:00:00Z&end_date=2026-04-01T00:00:00Z",
        ] {
            let errors = filter(query).unwrap_err();
            assert_eq!(errors[0].code, 400, "{query}");
        }
    }
}
