//! The citizens' pages: report a problem in a browser, with the GOV.UK page kit.
//!
//! `GET /` (start) → `/where` (type of problem and location) → `/describe` → `/details`
//! (optional contact details) → `/check-answers` → `POST /check-answers` files the request
//! the way `POST /requests.json` does → `/confirmation` with its reference.
//!
//! Every question page is a `GET` that shows the form and a `POST` that checks it: good
//! answers are kept in the session ([`JOURNEY`]) and answered with `303 See Other` to the
//! next page; wrong answers show the same page again with the error summary, status `422`.
//! The pure parts (checks, rows, the request's fields) are plain functions tested on the
//! host.

use guildhall_plugin::kit::{Answers, Errors, Form, Journey, Kit, PageError, Site, SummaryRow};
use guildhall_plugin::{Request, Response, config, context, kv, session};
use serde::Serialize;
use serde_json::Value;

use crate::open311::{self, Service};

/// The question pages, in order; their answers are kept under the session key `report`.
pub const JOURNEY: Journey = Journey::new("report", &["where", "describe", "details"]);

/// The longest description the page accepts, in characters (GeoReport allows 4000).
pub const MAX_DESCRIPTION: usize = 2000;

// A description the page accepts is one `POST /requests.json` accepts too.
const _: () = assert!(MAX_DESCRIPTION <= open311::MAX_DESCRIPTION);

/// The longest location, in characters.
pub const MAX_LOCATION: usize = 200;

/// The longest name, in characters.
pub const MAX_NAME: usize = 200;

/// What a page's reply is: the page, or an error page.
type Reply = Result<Response, PageError>;

/// The kit with this plugin's templates.
pub fn kit() -> Kit {
    Kit::new()
        .service_name("Report a problem")
        .template("start.html", include_str!("../templates/start.html"))
        .template("where.html", include_str!("../templates/where.html"))
        .template("describe.html", include_str!("../templates/describe.html"))
        .template("details.html", include_str!("../templates/details.html"))
        .template(
            "check_answers.html",
            include_str!("../templates/check_answers.html"),
        )
        .template(
            "confirmation.html",
            include_str!("../templates/confirmation.html"),
        )
}

/// A page's handler as a route's: a [`PageError`] becomes a GOV.UK error page.
pub fn page(handler: fn(&Kit, Request) -> Reply) -> impl Fn(Request) -> Response {
    move |req| {
        let kit = kit();
        let reply = handler(&kit, req);
        kit.respond(reply)
    }
}

/// The configured services, or an error page when the setting is missing or invalid.
fn services() -> Result<Vec<Service>, PageError> {
    let value = config::get::<Value>("services").ok_or_else(|| PageError::problem(500))?;
    open311::services_from_config(&value).map_err(|why| {
        eprintln!(
            "[{}] the services setting is invalid: {why}",
            context::request_id()
        );
        PageError::problem(500)
    })
}

fn redirect(site: &Site, path: &str) -> Response {
    Response::see_other(&site.url(path))
}

/// `GET /`: the start page.
pub fn start(kit: &Kit, _req: Request) -> Reply {
    let services = services()?;
    let names: Vec<&str> = services.iter().map(|s| s.service_name.as_str()).collect();
    Ok(kit
        .page("start.html")
        .title("Report a problem")
        .with("services", &names)
        .respond())
}

/// One radio of the type of problem.
#[derive(Debug, PartialEq, Serialize)]
pub struct Item<'a> {
    value: &'a str,
    text: &'a str,
    hint: Option<&'a str>,
}

/// The radios of the type of problem: one per configured service, its description as hint.
pub fn service_items(services: &[Service]) -> Vec<Item<'_>> {
    services
        .iter()
        .map(|s| Item {
            value: &s.service_code,
            text: &s.service_name,
            hint: s.description.as_deref(),
        })
        .collect()
}

/// Checks the answers of `/where`.
pub fn check_where(form: &Form, services: &[Service]) -> Errors {
    let codes: Vec<&str> = services.iter().map(|s| s.service_code.as_str()).collect();
    let mut check = form.check();
    check.choice("service", &codes, "Select what the problem is");
    check
        .text("location")
        .required("Enter where the problem is")
        .max_chars(
            MAX_LOCATION,
            format!("Where the problem is must be {MAX_LOCATION} characters or fewer"),
        );
    check.into_errors()
}

/// Checks the answer of `/describe`.
pub fn check_describe(form: &Form) -> Errors {
    let mut check = form.check();
    check
        .text("description")
        .required("Enter a description of the problem")
        .max_chars(
            MAX_DESCRIPTION,
            "Description of the problem must be 2,000 characters or fewer",
        );
    check.into_errors()
}

/// Checks the answers of `/details`: each is optional, but must be right when given.
pub fn check_details(form: &Form) -> Errors {
    let mut check = form.check();
    check.text("name").max_chars(
        MAX_NAME,
        format!("Full name must be {MAX_NAME} characters or fewer"),
    );
    check
        .text("email")
        .email("Enter an email address in the correct format, like name@example.com");
    check
        .text("phone")
        .phone("Enter a phone number, like 01632 960 001, 07700 900 982 or +44 808 157 0192");
    check.into_errors()
}

/// Shows question page `name` with the answers given before, or sends the citizen to an
/// earlier page not yet answered.
fn question(kit: &Kit, name: &str, title: &str, services: Option<&[Service]>) -> Reply {
    let answers = JOURNEY.answers()?;
    let site = context::site();
    if let Some(path) = JOURNEY.missing_before(Some(name), &answers) {
        return Ok(redirect(&site, &path));
    }
    let token = session::csrf_token()?;
    let mut page = kit
        .page(&format!("{name}.html"))
        .title(title)
        .values(&answers.page(name))
        .csrf(&token)
        .with("back", &JOURNEY.back(name, &answers, "/"))
        .with("max_chars", &MAX_DESCRIPTION);
    if let Some(services) = services {
        page = page.with("services", &service_items(services));
    }
    Ok(page.respond_for(&site))
}

/// Checks a question page's `POST`: shows it again with its errors, or keeps the answers and
/// goes on to the next page.
fn answer(
    kit: &Kit,
    req: &Request,
    name: &str,
    title: &str,
    fields: &[&str],
    check: impl FnOnce(&Form) -> Errors,
    services: Option<&[Service]>,
) -> Reply {
    let form = Form::from_body(req)?;
    let errors = check(&form);
    let site = context::site();
    if !errors.is_empty() {
        let answers = JOURNEY.answers()?;
        let mut page = kit
            .page(&format!("{name}.html"))
            .title(title)
            .form(&form, &errors)
            .csrf(form.csrf().unwrap_or_default())
            .with("back", &JOURNEY.back(name, &answers, "/"))
            .with("max_chars", &MAX_DESCRIPTION);
        if let Some(services) = services {
            page = page.with("services", &service_items(services));
        }
        return Ok(page.respond_for(&site));
    }
    let answers = JOURNEY.record(name, &form.only(fields))?;
    Ok(redirect(&site, &JOURNEY.next(name, &answers)))
}

const WHERE_TITLE: &str = "What is the problem and where is it?";
const DESCRIBE_TITLE: &str = "Describe the problem";
const DETAILS_TITLE: &str = "How can the council contact you about it?";

/// `GET /where`.
pub fn get_where(kit: &Kit, _req: Request) -> Reply {
    let services = services()?;
    question(kit, "where", WHERE_TITLE, Some(&services))
}

/// `POST /where`.
pub fn post_where(kit: &Kit, req: Request) -> Reply {
    let services = services()?;
    answer(
        kit,
        &req,
        "where",
        WHERE_TITLE,
        &["service", "location"],
        |form| check_where(form, &services),
        Some(&services),
    )
}

/// `GET /describe`.
pub fn get_describe(kit: &Kit, _req: Request) -> Reply {
    question(kit, "describe", DESCRIBE_TITLE, None)
}

/// `POST /describe`.
pub fn post_describe(kit: &Kit, req: Request) -> Reply {
    answer(
        kit,
        &req,
        "describe",
        DESCRIBE_TITLE,
        &["description"],
        check_describe,
        None,
    )
}

/// `GET /details`.
pub fn get_details(kit: &Kit, _req: Request) -> Reply {
    question(kit, "details", DETAILS_TITLE, None)
}

/// `POST /details`.
pub fn post_details(kit: &Kit, req: Request) -> Reply {
    answer(
        kit,
        &req,
        "details",
        DETAILS_TITLE,
        &["name", "email", "phone"],
        check_details,
        None,
    )
}

/// The rows of the check-answers page: the problem's, and the contact details'.
pub fn summary_rows(
    answers: &Answers,
    services: &[Service],
    site: &Site,
) -> (Vec<SummaryRow>, Vec<SummaryRow>) {
    let code = answers.text("service");
    let service = services
        .iter()
        .find(|s| s.service_code == code)
        .map_or(code, |s| s.service_name.as_str());
    let given = |name: &str| answers.optional(name).unwrap_or("Not provided").to_owned();
    let problem = vec![
        SummaryRow::new("Problem", service).change(site.url("/where")),
        SummaryRow::new("Location", answers.text("location")).change(site.url("/where")),
        SummaryRow::new("Description", answers.text("description")).change(site.url("/describe")),
    ];
    let contact = vec![
        SummaryRow::new("Full name", given("name")).change(site.url("/details")),
        SummaryRow::new("Email address", given("email")).change(site.url("/details")),
        SummaryRow::new("Phone number", given("phone")).change(site.url("/details")),
    ];
    (problem, contact)
}

/// The fields of `POST /requests.json` the answers make: the location as `address_string`,
/// the full name as `first_name` (GeoReport has no field for a whole name, and splitting
/// names guesses wrong too often).
pub fn request_pairs(answers: &Answers) -> Vec<(String, String)> {
    let mut pairs = vec![
        ("service_code", answers.text("service")),
        ("address_string", answers.text("location")),
        ("description", answers.text("description")),
    ];
    for (field, name) in [
        ("first_name", "name"),
        ("email", "email"),
        ("phone", "phone"),
    ] {
        if let Some(value) = answers.optional(name) {
            pairs.push((field, value));
        }
    }
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// `GET /check-answers`.
pub fn get_check_answers(kit: &Kit, _req: Request) -> Reply {
    let answers = JOURNEY.answers()?;
    let site = context::site();
    if let Some(path) = JOURNEY.missing_before(None, &answers) {
        return Ok(redirect(&site, &path));
    }
    let services = services()?;
    let token = session::csrf_token()?;
    let (problem, contact) = summary_rows(&answers, &services, &site);
    Ok(kit
        .page("check_answers.html")
        .title("Check your answers before sending your report")
        .with("problem_rows", &problem)
        .with("contact_rows", &contact)
        .csrf(&token)
        .respond_for(&site))
}

/// `POST /check-answers`: files the request as `POST /requests.json` does, clears the
/// session, and goes to the confirmation.
pub fn send(_kit: &Kit, _req: Request) -> Reply {
    let answers = JOURNEY.answers()?;
    let site = context::site();
    if let Some(path) = JOURNEY.missing_before(None, &answers) {
        // A post of answers already sent (the session holds only the reference now).
        if JOURNEY.reference()?.is_some() {
            return Ok(redirect(&site, JOURNEY.confirmation_path()));
        }
        return Ok(redirect(&site, &path));
    }
    let services = services()?;
    let new = open311::check_new_request(&request_pairs(&answers), &services).map_err(|errors| {
        // Only when the answers no longer fit the configuration (a service withdrawn since).
        eprintln!(
            "[{}] answers refused: {}",
            context::request_id(),
            errors
                .iter()
                .map(|e| e.description.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        );
        PageError::new(
            422,
            "Sorry, we could not send your report",
            "Something in your answers is no longer accepted, such as a type of problem the council stopped taking reports for. Start again.",
        )
        .with_start_again()
    })?;
    let Some(service) = services.iter().find(|s| s.service_code == new.service_code) else {
        return Err(PageError::problem(500));
    };
    // One report per journey, however often its answers are posted (a double click, a
    // retried request, two tabs): the first post claims the journey's id.
    // (Answers recorded before journeys had ids are sent unclaimed.)
    let store = kv::CouncilKv::current();
    let claim = answers.id().map(|id| format!("sent/{id}"));
    if let Some(claim) = &claim
        && !store.set_if_absent(claim, b"")?
    {
        // Sent already: show its reference once the first post has it.
        let reference = store.get(claim)?.unwrap_or_default();
        if !reference.is_empty() {
            JOURNEY.finish(&String::from_utf8_lossy(&reference))?;
        }
        return Ok(redirect(&site, JOURNEY.confirmation_path()));
    }
    let filed = crate::file_request(new, service)?;
    if let Some(claim) = &claim {
        store.set(claim, filed.id.as_bytes())?;
    }
    JOURNEY.finish(&filed.id)?;
    Ok(redirect(&site, JOURNEY.confirmation_path()))
}

/// `GET /confirmation`: the reference of the report just sent; the start page when none
/// was sent in this session.
pub fn confirmation(kit: &Kit, _req: Request) -> Reply {
    let site = context::site();
    let Some(reference) = JOURNEY.reference()? else {
        return Ok(redirect(&site, "/"));
    };
    let notice = config::get::<String>("service_notice");
    Ok(kit
        .page("confirmation.html")
        .title("Report sent")
        .with("reference", &reference)
        .with("notice", &notice)
        .respond_for(&site))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn services() -> Vec<Service> {
        open311::services_from_config(&json!([
            {"service_code": "pothole", "service_name": "Pothole", "description": "A hole in the road"},
            {"service_code": "fly-tipping", "service_name": "Fly-tipping"},
        ]))
        .unwrap()
    }

    fn site() -> Site {
        Site {
            tenant_name: "North Downs".to_owned(),
            council_name: "Tandridge District Council".to_owned(),
            assets: "/assets/govuk-frontend/abc".to_owned(),
            base_path: "/s/north-downs/tandridge/report-a-problem".to_owned(),
            feedback_path: "/s/north-downs/tandridge/report-a-problem/_feedback".to_owned(),
            ..Site::default()
        }
    }

    fn messages(errors: &Errors) -> Vec<(String, String)> {
        errors
            .summary()
            .into_iter()
            .map(|e| (e.href, e.text))
            .collect()
    }

    fn answers() -> Answers {
        let mut answers = Answers::new();
        answers.set(
            "where",
            &Form::parse("service=pothole&location=Outside+12+High+St"),
        );
        answers.set("describe", &Form::parse("description=Deep+hole"));
        answers.set("details", &Form::parse("name=Jo+Bloggs&email=&phone="));
        answers
    }

    #[test]
    fn where_needs_a_service_and_a_location() {
        let errors = check_where(&Form::parse("location=+"), &services());
        assert_eq!(
            messages(&errors),
            vec![
                (
                    "#service".to_owned(),
                    "Select what the problem is".to_owned()
                ),
                (
                    "#location".to_owned(),
                    "Enter where the problem is".to_owned()
                ),
            ]
        );
        // A forged service code is refused like a missing one.
        let errors = check_where(&Form::parse("service=nope&location=High+St"), &services());
        assert_eq!(errors.get("service"), Some("Select what the problem is"));
        let long = format!("service=pothole&location={}", "x".repeat(MAX_LOCATION + 1));
        assert_eq!(
            check_where(&Form::parse(&long), &services()).get("location"),
            Some("Where the problem is must be 200 characters or fewer")
        );
        assert!(
            check_where(
                &Form::parse("service=fly-tipping&location=Lay-by+on+A25"),
                &services()
            )
            .is_empty()
        );
    }

    #[test]
    fn descriptions_are_required_and_bounded() {
        assert_eq!(
            check_describe(&Form::parse("description=")).get("description"),
            Some("Enter a description of the problem")
        );
        let long = format!("description={}", "é".repeat(MAX_DESCRIPTION + 1));
        assert_eq!(
            check_describe(&Form::parse(&long)).get("description"),
            Some("Description of the problem must be 2,000 characters or fewer")
        );
        let exact = format!("description={}", "é".repeat(MAX_DESCRIPTION));
        assert!(check_describe(&Form::parse(&exact)).is_empty());
    }

    #[test]
    fn contact_details_are_optional_but_checked() {
        assert!(check_details(&Form::parse("name=&email=&phone=")).is_empty());
        assert!(
            check_details(&Form::parse(
                "name=Jo&email=jo%40example.org&phone=07700+900+982"
            ))
            .is_empty()
        );
        let errors = check_details(&Form::parse("name=Jo&email=jo%40example&phone=12345"));
        assert_eq!(
            messages(&errors),
            vec![
                (
                    "#email".to_owned(),
                    "Enter an email address in the correct format, like name@example.com"
                        .to_owned()
                ),
                (
                    "#phone".to_owned(),
                    "Enter a phone number, like 01632 960 001, 07700 900 982 or +44 808 157 0192"
                        .to_owned()
                ),
            ]
        );
    }

    #[test]
    fn check_answers_rows_link_back_to_their_pages() {
        let (problem, contact) = summary_rows(&answers(), &services(), &site());
        let shown: Vec<(&str, &str, &str)> = problem
            .iter()
            .chain(&contact)
            .map(|r| (r.key.as_str(), r.value.as_str(), r.href.as_deref().unwrap()))
            .collect();
        let base = "/s/north-downs/tandridge/report-a-problem";
        assert_eq!(
            shown,
            vec![
                ("Problem", "Pothole", &*format!("{base}/where")),
                ("Location", "Outside 12 High St", &*format!("{base}/where")),
                ("Description", "Deep hole", &*format!("{base}/describe")),
                ("Full name", "Jo Bloggs", &*format!("{base}/details")),
                ("Email address", "Not provided", &*format!("{base}/details")),
                ("Phone number", "Not provided", &*format!("{base}/details")),
            ]
        );
        assert_eq!(problem[1].hidden.as_deref(), Some("location"));
    }

    #[test]
    fn answers_make_the_same_request_as_the_api() {
        let pairs = request_pairs(&answers());
        let new = open311::check_new_request(&pairs, &services()).unwrap();
        assert_eq!(new.service_code, "pothole");
        assert_eq!(new.address_string.as_deref(), Some("Outside 12 High St"));
        assert_eq!(new.description.as_deref(), Some("Deep hole"));
        assert_eq!(new.first_name.as_deref(), Some("Jo Bloggs"));
        assert_eq!(new.email, None);
        assert_eq!(new.phone, None);
    }

    #[test]
    fn every_template_compiles_and_renders() {
        let kit = kit();
        kit.check().unwrap();
        let site = site();
        let services = services();
        let items = service_items(&services);
        let (problem, contact) = summary_rows(&answers(), &services, &site);
        let pages = [
            kit.page("start.html")
                .title("Report a problem")
                .with("services", &["Pothole"]),
            kit.page("where.html")
                .title(WHERE_TITLE)
                .with("services", &items)
                .with("back", "/")
                .csrf("t"),
            kit.page("describe.html")
                .title(DESCRIBE_TITLE)
                .with("back", "/where")
                .with("max_chars", &MAX_DESCRIPTION)
                .csrf("t"),
            kit.page("details.html")
                .title(DETAILS_TITLE)
                .with("back", "/describe")
                .csrf("t"),
            kit.page("check_answers.html")
                .title("Check your answers before sending your report")
                .with("problem_rows", &problem)
                .with("contact_rows", &contact)
                .csrf("t"),
            kit.page("confirmation.html")
                .title("Report sent")
                .with("reference", "42")
                .with("notice", &None::<String>),
        ];
        for page in pages {
            let html = page.render_for(&site).unwrap();
            assert_eq!(html.matches("<h1").count(), 1, "{html}");
            assert!(!html.contains("style="));
        }
    }

    #[test]
    fn a_wrong_answer_shows_the_page_again() {
        let kit = kit();
        let form = Form::parse("service=&location=<script>&csrf=t");
        let errors = check_where(&form, &services());
        let response = kit
            .page("where.html")
            .title(WHERE_TITLE)
            .form(&form, &errors)
            .csrf("t")
            .with("services", &service_items(&services()))
            .with("back", "/")
            .respond_for(&site());
        assert_eq!(response.status, 422);
        let html = response.body_text();
        assert!(html.contains("<title>Error: What is the problem and where is it? – Report a problem – Tandridge District Council</title>"), "{html}");
        assert!(html.contains(r##"<a href="#service">Select what the problem is</a>"##));
        assert!(html.contains(r#"value="&lt;script&gt;""#));
        assert!(html.contains(r#"<input type="hidden" name="csrf" value="t">"#));
    }
}
