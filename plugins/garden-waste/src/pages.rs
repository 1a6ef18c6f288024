//! The residents' pages, with the GOV.UK page kit: `GET /` (start) → `/address` → `/bins`
//! → `/details` → `/check-answers` → GOV.UK Pay → `/payment-return`.
//!
//! Every question page is a `GET` that shows the form and a `POST` that checks it: good
//! answers are kept in the session ([`JOURNEY`]) and answered with `303 See Other` to the
//! next page; wrong answers show the same page again with the error summary, status `422`.
//! An address where the council does not collect leads to `/not-eligible` instead.
//! `POST /check-answers` takes a reference, creates the payment and sends the resident to
//! GOV.UK Pay; `/payment-return` is where Pay sends them back.

use guildhall_plugin::kit::{
    Answers, Errors, Form, Journey, Kit, Page, PageError, Site, SummaryRow,
};
use guildhall_plugin::pay::{self, CreatePayment, Payment};
use guildhall_plugin::time::{self, Date};
use guildhall_plugin::{Request, Response, context, kv, session};
use serde::Serialize;

use crate::rules::{
    self, PAYMENT_DESCRIPTION, Pending, Settings, Subscription, bins_text, format_pence, keys,
};
use crate::work;

/// The question pages, in order; their answers are kept under the session key `garden-waste`.
pub const JOURNEY: Journey = Journey::new("garden-waste", &["address", "bins", "details"]);

/// The longest first line of an address, in characters.
pub const MAX_ADDRESS: usize = 200;

/// The longest name, in characters.
pub const MAX_NAME: usize = 200;

/// The start page's heading.
pub const START_TITLE: &str = "Subscribe to garden waste collection";
/// The address page's heading.
pub const ADDRESS_TITLE: &str = "What is your address?";
/// The heading of the page for addresses the council does not collect from.
pub const NOT_ELIGIBLE_TITLE: &str = "We do not collect garden waste at this address";
/// The bins page's heading.
pub const BINS_TITLE: &str = "How many garden waste bins do you want?";
/// The details page's heading.
pub const DETAILS_TITLE: &str = "Your details";
/// The check-answers page's heading.
pub const CHECK_TITLE: &str = "Check your answers before paying";
/// The confirmation's heading.
pub const CONFIRMATION_TITLE: &str = "Subscription complete";
/// The heading of the page for a payment that ended unpaid.
pub const NOT_TAKEN_TITLE: &str = "Your payment was not taken";
/// The heading of the page for a payment not finished yet.
pub const PROCESSING_TITLE: &str = "Your payment is still being processed";

/// What a page's reply is: the page, or an error page.
type Reply = Result<Response, PageError>;

/// The kit with this plugin's templates.
pub fn kit() -> Kit {
    Kit::new()
        .service_name("Garden waste collection")
        .template("start.html", include_str!("../templates/start.html"))
        .template("address.html", include_str!("../templates/address.html"))
        .template(
            "not_eligible.html",
            include_str!("../templates/not_eligible.html"),
        )
        .template("bins.html", include_str!("../templates/bins.html"))
        .template("details.html", include_str!("../templates/details.html"))
        .template(
            "check_answers.html",
            include_str!("../templates/check_answers.html"),
        )
        .template(
            "confirmation.html",
            include_str!("../templates/confirmation.html"),
        )
        .template(
            "not_taken.html",
            include_str!("../templates/not_taken.html"),
        )
        .template(
            "processing.html",
            include_str!("../templates/processing.html"),
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

/// The settings, or an error page (and a line in the log) when they are missing or wrong.
pub fn settings() -> Result<Settings, PageError> {
    work::settings().map_err(|why| {
        eprintln!("[{}] {why}", context::request_id());
        PageError::problem(500)
    })
}

fn redirect(site: &Site, path: &str) -> Response {
    Response::see_other(&site.url(path))
}

/// `GET /`: the start page.
pub fn start(kit: &Kit, _req: Request) -> Reply {
    let settings = settings()?;
    Ok(kit
        .page("start.html")
        .title(START_TITLE)
        .with("price", &format_pence(settings.price_per_bin_pence))
        .with("max_bins", &bins_text(settings.max_bins))
        .respond())
}

/// One radio.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct Item {
    value: String,
    text: String,
}

/// The radios of the bins page: `1 bin` to `{max_bins} bins`.
pub fn bin_items(settings: &Settings) -> Vec<Item> {
    (1..=settings.max_bins)
        .map(|n| Item {
            value: n.to_string(),
            text: bins_text(n),
        })
        .collect()
}

/// Checks the answers of `/address`; the postcode, normalised, when they are good.
pub fn check_address(form: &Form) -> Result<String, Errors> {
    let mut check = form.check();
    check
        .text("address_line_1")
        .required("Enter the first line of your address")
        .max_chars(
            MAX_ADDRESS,
            format!("First line of address must be {MAX_ADDRESS} characters or fewer"),
        );
    let postcode = check
        .text("postcode")
        .required("Enter your postcode")
        .parse(
            rules::normalise_postcode,
            "Enter a real postcode, like RH8 0BT",
        );
    let errors = check.into_errors();
    match postcode {
        Some(postcode) if errors.is_empty() => Ok(postcode),
        _ => Err(errors),
    }
}

/// Checks the answer of `/bins`.
pub fn check_bins(form: &Form, settings: &Settings) -> Errors {
    let choices = settings.bin_choices();
    let allowed: Vec<&str> = choices.iter().map(String::as_str).collect();
    let mut check = form.check();
    check.choice("bins", &allowed, "Select how many bins you want");
    check.into_errors()
}

/// Checks the answers of `/details`.
pub fn check_details(form: &Form) -> Errors {
    let mut check = form.check();
    check
        .text("name")
        .required("Enter your full name")
        .max_chars(
            MAX_NAME,
            format!("Full name must be {MAX_NAME} characters or fewer"),
        );
    check
        .text("email")
        .required("Enter your email address")
        .email("Enter an email address in the correct format, like name@example.com");
    check.into_errors()
}

/// What a question page shows besides its form.
fn extras<'k>(page: Page<'k>, name: &str, settings: &Settings) -> Page<'k> {
    match name {
        "bins" => page
            .with("bins", &bin_items(settings))
            .with("price", &format_pence(settings.price_per_bin_pence)),
        _ => page,
    }
}

/// Shows question page `name` with the answers given before, or sends the resident to an
/// earlier page not yet answered.
fn question(kit: &Kit, name: &str, title: &str) -> Reply {
    let settings = settings()?;
    let answers = JOURNEY.answers()?;
    let site = context::site();
    if let Some(path) = JOURNEY.missing_before(Some(name), &answers) {
        return Ok(redirect(&site, &path));
    }
    let token = session::csrf_token()?;
    let page = kit
        .page(&format!("{name}.html"))
        .title(title)
        .values(&answers.page(name))
        .csrf(&token)
        .with("back", &JOURNEY.back(name, &answers, "/"));
    Ok(extras(page, name, &settings).respond_for(&site))
}

/// Shows question page `name` again with the answers of `form` and their `errors` (`422`).
fn wrong(kit: &Kit, name: &str, title: &str, form: &Form, errors: &Errors) -> Reply {
    let settings = settings()?;
    let answers = JOURNEY.answers()?;
    let page = kit
        .page(&format!("{name}.html"))
        .title(title)
        .form(form, errors)
        .csrf(form.csrf().unwrap_or_default())
        .with("back", &JOURNEY.back(name, &answers, "/"));
    Ok(extras(page, name, &settings).respond())
}

/// Keeps the checked answers of page `name` and goes on to the next page.
fn onwards(name: &str, form: &Form) -> Reply {
    let answers = JOURNEY.record(name, form)?;
    Ok(redirect(&context::site(), &JOURNEY.next(name, &answers)))
}

/// `GET /address`.
pub fn get_address(kit: &Kit, _req: Request) -> Reply {
    question(kit, "address", ADDRESS_TITLE)
}

/// `POST /address`: an address where the council does not collect goes to
/// `/not-eligible`, and is not kept.
pub fn post_address(kit: &Kit, req: Request) -> Reply {
    let form = Form::from_body(&req)?;
    let postcode = match check_address(&form) {
        Ok(postcode) => postcode,
        Err(errors) => return wrong(kit, "address", ADDRESS_TITLE, &form, &errors),
    };
    let settings = settings()?;
    if !rules::is_eligible(&postcode, &settings.eligible_postcodes) {
        // An eligible address given before must not stand in for this one.
        let mut answers = JOURNEY.answers()?;
        if answers.has("address") {
            answers.remove("address");
            session::set_json(JOURNEY.key(), &answers)?;
        }
        return Ok(redirect(&context::site(), "/not-eligible"));
    }
    let mut kept = form.only(&["address_line_1", "postcode"]);
    kept.set("postcode", postcode);
    onwards("address", &kept)
}

/// `GET /not-eligible`.
pub fn not_eligible(kit: &Kit, _req: Request) -> Reply {
    Ok(kit
        .page("not_eligible.html")
        .title(NOT_ELIGIBLE_TITLE)
        .respond())
}

/// `GET /bins`.
pub fn get_bins(kit: &Kit, _req: Request) -> Reply {
    question(kit, "bins", BINS_TITLE)
}

/// `POST /bins`.
pub fn post_bins(kit: &Kit, req: Request) -> Reply {
    let form = Form::from_body(&req)?;
    let errors = check_bins(&form, &settings()?);
    if !errors.is_empty() {
        return wrong(kit, "bins", BINS_TITLE, &form, &errors);
    }
    onwards("bins", &form.only(&["bins"]))
}

/// `GET /details`.
pub fn get_details(kit: &Kit, _req: Request) -> Reply {
    question(kit, "details", DETAILS_TITLE)
}

/// `POST /details`.
pub fn post_details(kit: &Kit, req: Request) -> Reply {
    let form = Form::from_body(&req)?;
    let errors = check_details(&form);
    if !errors.is_empty() {
        return wrong(kit, "details", DETAILS_TITLE, &form, &errors);
    }
    onwards("details", &form.only(&["name", "email"]))
}

/// A complete application, from the journey's answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    /// The first line of the address.
    pub address: String,
    /// The normalised postcode.
    pub postcode: String,
    /// How many bins.
    pub bins: u32,
    /// The full name.
    pub name: String,
    /// The email address.
    pub email: String,
    /// The price, in pence.
    pub amount: u64,
}

/// Why the answers no longer make an application under the current settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stale {
    /// The council stopped collecting at the postcode.
    NotEligible,
    /// The number of bins is no longer offered.
    Bins,
}

/// The application the answers make, checked again against `settings` (which the council
/// may have changed since the pages were answered).
pub fn application(answers: &Answers, settings: &Settings) -> Result<Application, Stale> {
    let postcode = answers.text("postcode").to_owned();
    if !rules::is_eligible(&postcode, &settings.eligible_postcodes) {
        return Err(Stale::NotEligible);
    }
    let bins = answers
        .text("bins")
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=settings.max_bins).contains(n))
        .ok_or(Stale::Bins)?;
    Ok(Application {
        address: answers.text("address_line_1").to_owned(),
        postcode,
        bins,
        name: answers.text("name").to_owned(),
        email: answers.text("email").to_owned(),
        amount: settings.cost(bins),
    })
}

/// The rows of the check-answers page.
pub fn summary_rows(application: &Application, site: &Site) -> Vec<SummaryRow> {
    vec![
        SummaryRow::lines(
            "Address",
            vec![application.address.clone(), application.postcode.clone()],
        )
        .change(site.url("/address")),
        SummaryRow::new("Number of bins", application.bins.to_string()).change(site.url("/bins")),
        SummaryRow::new("Full name", &application.name).change(site.url("/details")),
        SummaryRow::new("Email address", &application.email).change(site.url("/details")),
        SummaryRow::new(
            "Cost",
            format!("{} a year", format_pence(application.amount)),
        ),
    ]
}

/// The journey's application, or where to send a resident whose answers are missing or no
/// longer good.
fn current_application(
    settings: &Settings,
    site: &Site,
) -> Result<Result<Application, Response>, PageError> {
    let answers = JOURNEY.answers()?;
    if let Some(path) = JOURNEY.missing_before(None, &answers) {
        return Ok(Err(redirect(site, &path)));
    }
    Ok(match application(&answers, settings) {
        Ok(application) => Ok(application),
        Err(Stale::NotEligible) => Err(redirect(site, "/not-eligible")),
        Err(Stale::Bins) => Err(redirect(site, "/bins")),
    })
}

/// `GET /check-answers`.
pub fn get_check_answers(kit: &Kit, _req: Request) -> Reply {
    let settings = settings()?;
    let site = context::site();
    let application = match current_application(&settings, &site)? {
        Ok(application) => application,
        Err(elsewhere) => return Ok(elsewhere),
    };
    let token = session::csrf_token()?;
    // Its form is answered with a redirect to Pay's payment page, which the page's policy
    // must allow.
    Ok(kit
        .page("check_answers.html")
        .title(CHECK_TITLE)
        .with("rows", &summary_rows(&application, &site))
        .csrf(&token)
        .respond_for(&site)
        .with_header(
            "content-security-policy",
            &pay::page_policy(&settings.pay_base_url),
        ))
}

/// The error page when GOV.UK Pay cannot be used: `503`, nothing of the cause.
fn pay_unavailable() -> PageError {
    PageError::new(
        503,
        "Sorry, there is a problem with the service",
        "We could not take you to the payment page. No money has been taken. Try again later.",
    )
}

/// A GOV.UK Pay client with the council's key, or the error page when the key is not set.
fn pay_client(settings: &Settings) -> Result<pay::Client, PageError> {
    work::pay_client(settings).map_err(|why| {
        eprintln!("[{}] {why}", context::request_id());
        pay_unavailable()
    })
}

/// `POST /check-answers`: takes the next reference, creates the payment, keeps the
/// application until Pay sends the resident back, and sends them to Pay.
pub fn pay(_kit: &Kit, req: Request) -> Reply {
    let settings = settings()?;
    let site = context::site();
    let application = match current_application(&settings, &site)? {
        Ok(application) => application,
        Err(elsewhere) => return Ok(elsewhere),
    };
    let client = pay_client(&settings)?;
    let origin = rules::public_origin(|name| req.header(name)).ok_or_else(|| {
        eprintln!(
            "[{}] no Host, X-Forwarded-Host, Origin or Referer header to build the payment's return address from",
            context::request_id()
        );
        PageError::problem(400)
    })?;
    let council = context::council();
    let reference = rules::format_reference(kv::increment(&keys::references(&council), 1)?);
    let return_url = rules::return_url(&origin, &site.base_path, &reference);
    let payment = client
        .create_payment(&CreatePayment {
            amount: application.amount,
            reference: reference.clone(),
            description: PAYMENT_DESCRIPTION.to_owned(),
            return_url,
            email: Some(application.email.clone()),
        })
        .map_err(|e| {
            eprintln!(
                "[{}] payment for {reference} not created: {e}",
                context::request_id()
            );
            pay_unavailable()
        })?;
    let Some(next_url) = payment.next_url.clone() else {
        eprintln!(
            "[{}] GOV.UK Pay gave payment {} no next_url",
            context::request_id(),
            payment.payment_id
        );
        return Err(pay_unavailable());
    };
    let pending = Pending {
        reference: reference.clone(),
        payment_id: payment.payment_id,
        postcode: application.postcode,
        address: application.address,
        bins: application.bins,
        amount: application.amount,
        name: application.name,
        email: application.email,
        created: time::now_unix(),
    };
    kv::set_json(&keys::pending(&council, &reference), &pending)?;
    Ok(Response::see_other(&next_url))
}

/// `GET /payment-return?ref=GW-000001`: where GOV.UK Pay sends the resident back. A paid
/// application becomes a subscription (once, however often this is visited) and the
/// confirmation is shown; an unpaid one says so.
pub fn payment_return(kit: &Kit, req: Request) -> Reply {
    let reference = req
        .query_param("ref")
        .filter(|r| rules::is_reference(r))
        .ok_or_else(PageError::not_found)?;
    let council = context::council();
    if let Some(subscription) =
        kv::get_json::<Subscription>(&keys::subscription(&council, &reference))?
    {
        return Ok(confirmation(kit, &subscription));
    }
    let pending = kv::get_json::<Pending>(&keys::pending(&council, &reference))?
        .ok_or_else(PageError::not_found)?;
    let settings = settings()?;
    let payment: Payment = pay_client(&settings)?
        .get_payment(&pending.payment_id)
        .map_err(|e| {
            eprintln!(
                "[{}] payment for {reference} not read: {e}",
                context::request_id()
            );
            PageError::new(
                503,
                "Sorry, there is a problem with the service",
                "We could not check your payment. Try again later by refreshing this page.",
            )
        })?;
    let site = context::site();
    if payment.is_success() {
        let subscription = work::complete(&council, &settings, &pending, Date::today_in_uk())?;
        if let Err(e) = JOURNEY.finish(&subscription.reference) {
            eprintln!("[{}] journey not cleared: {e}", context::request_id());
        }
        return Ok(confirmation(kit, &subscription));
    }
    if payment.is_finished() {
        return Ok(kit
            .page("not_taken.html")
            .title(NOT_TAKEN_TITLE)
            .with("cancelled", &(payment.state.status == "cancelled"))
            .respond_for(&site));
    }
    Ok(kit
        .page("processing.html")
        .title(PROCESSING_TITLE)
        .with("again", &format!("/payment-return?ref={reference}"))
        .respond_for(&site))
}

/// The confirmation of `subscription`: its reference, bins and end, nothing personal (the
/// page's address holds only the reference, which is easily guessed).
fn confirmation(kit: &Kit, subscription: &Subscription) -> Response {
    kit.page("confirmation.html")
        .title(CONFIRMATION_TITLE)
        .with("reference", &subscription.reference)
        .with("bins", &bins_text(subscription.bins))
        .with("expires", &subscription.expires.to_govuk())
        .respond()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings() -> Settings {
        Settings::from_config(&json!({
            "eligible_postcodes": ["RH8", "RH9"],
            "price_per_bin_pence": 4500,
            "confirmation_template_id": "c",
            "reminder_template_id": "r",
        }))
        .unwrap()
    }

    fn site() -> Site {
        Site {
            tenant_name: "North Downs".to_owned(),
            council_name: "Tandridge District Council".to_owned(),
            assets: "/assets/govuk-frontend/abc".to_owned(),
            base_path: "/s/north-downs/tandridge/garden-waste".to_owned(),
            feedback_path: "/s/north-downs/tandridge/garden-waste/_feedback".to_owned(),
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
            "address",
            &Form::parse("address_line_1=12+High+Street&postcode=RH8+0BT"),
        );
        answers.set("bins", &Form::parse("bins=2"));
        answers.set(
            "details",
            &Form::parse("name=Jo+Bloggs&email=jo%40example.org"),
        );
        answers
    }

    #[test]
    fn addresses_need_a_line_and_a_real_postcode() {
        let errors = check_address(&Form::parse("address_line_1=&postcode=")).unwrap_err();
        assert_eq!(
            messages(&errors),
            vec![
                (
                    "#address_line_1".to_owned(),
                    "Enter the first line of your address".to_owned()
                ),
                ("#postcode".to_owned(), "Enter your postcode".to_owned()),
            ]
        );
        let errors =
            check_address(&Form::parse("address_line_1=12+High+St&postcode=RH8")).unwrap_err();
        assert_eq!(
            errors.get("postcode"),
            Some("Enter a real postcode, like RH8 0BT")
        );
        let long = format!(
            "address_line_1={}&postcode=RH8+0BT",
            "x".repeat(MAX_ADDRESS + 1)
        );
        assert_eq!(
            check_address(&Form::parse(&long))
                .unwrap_err()
                .get("address_line_1"),
            Some("First line of address must be 200 characters or fewer")
        );
        assert_eq!(
            check_address(&Form::parse("address_line_1=12+High+St&postcode=rh80bt")),
            Ok("RH8 0BT".to_owned())
        );
    }

    #[test]
    fn bins_are_one_of_the_choices() {
        let settings = settings();
        assert!(check_bins(&Form::parse("bins=3"), &settings).is_empty());
        for bad in ["bins=", "bins=0", "bins=4", "bins=two", ""] {
            assert_eq!(
                check_bins(&Form::parse(bad), &settings).get("bins"),
                Some("Select how many bins you want"),
                "{bad}"
            );
        }
        let items = bin_items(&settings);
        assert_eq!(items.len(), 3);
        assert_eq!(
            items[0],
            Item {
                value: "1".into(),
                text: "1 bin".into()
            }
        );
        assert_eq!(
            items[2],
            Item {
                value: "3".into(),
                text: "3 bins".into()
            }
        );
    }

    #[test]
    fn details_need_a_name_and_an_email() {
        let errors = check_details(&Form::parse("name=&email="));
        assert_eq!(
            messages(&errors),
            vec![
                ("#name".to_owned(), "Enter your full name".to_owned()),
                ("#email".to_owned(), "Enter your email address".to_owned()),
            ]
        );
        assert_eq!(
            check_details(&Form::parse("name=Jo&email=jo%40example")).get("email"),
            Some("Enter an email address in the correct format, like name@example.com")
        );
        assert!(check_details(&Form::parse("name=Jo&email=jo%40example.org")).is_empty());
    }

    #[test]
    fn answers_make_an_application_checked_again() {
        let settings = settings();
        let application = application(&answers(), &settings).unwrap();
        assert_eq!(
            application,
            Application {
                address: "12 High Street".into(),
                postcode: "RH8 0BT".into(),
                bins: 2,
                name: "Jo Bloggs".into(),
                email: "jo@example.org".into(),
                amount: 9000,
            }
        );
        let mut fewer = settings.clone();
        fewer.max_bins = 1;
        assert_eq!(super::application(&answers(), &fewer), Err(Stale::Bins));
        let mut elsewhere = settings;
        elsewhere.eligible_postcodes = vec!["CR6".into()];
        assert_eq!(
            super::application(&answers(), &elsewhere),
            Err(Stale::NotEligible)
        );
    }

    #[test]
    fn check_answers_rows() {
        let application = application(&answers(), &settings()).unwrap();
        let rows = summary_rows(&application, &site());
        let base = "/s/north-downs/tandridge/garden-waste";
        let shown: Vec<(&str, String, Option<&str>)> = rows
            .iter()
            .map(|r| {
                let value = if r.lines.is_empty() {
                    r.value.clone()
                } else {
                    r.lines.join(", ")
                };
                (r.key.as_str(), value, r.href.as_deref())
            })
            .collect();
        assert_eq!(
            shown,
            vec![
                (
                    "Address",
                    "12 High Street, RH8 0BT".to_owned(),
                    Some(&*format!("{base}/address"))
                ),
                (
                    "Number of bins",
                    "2".to_owned(),
                    Some(&*format!("{base}/bins"))
                ),
                (
                    "Full name",
                    "Jo Bloggs".to_owned(),
                    Some(&*format!("{base}/details"))
                ),
                (
                    "Email address",
                    "jo@example.org".to_owned(),
                    Some(&*format!("{base}/details"))
                ),
                ("Cost", "£90.00 a year".to_owned(), None),
            ]
        );
    }

    #[test]
    fn every_template_compiles_and_renders() {
        let kit = kit();
        kit.check().unwrap();
        let site = site();
        let settings = settings();
        let application = application(&answers(), &settings).unwrap();
        let pages = [
            kit.page("start.html")
                .title(START_TITLE)
                .with("price", "£45.00")
                .with("max_bins", "3 bins"),
            kit.page("address.html")
                .title(ADDRESS_TITLE)
                .with("back", "/")
                .csrf("t"),
            kit.page("not_eligible.html").title(NOT_ELIGIBLE_TITLE),
            extras(
                kit.page("bins.html")
                    .title(BINS_TITLE)
                    .with("back", "/address")
                    .csrf("t"),
                "bins",
                &settings,
            ),
            kit.page("details.html")
                .title(DETAILS_TITLE)
                .with("back", "/bins")
                .csrf("t"),
            kit.page("check_answers.html")
                .title(CHECK_TITLE)
                .with("rows", &summary_rows(&application, &site))
                .csrf("t"),
            kit.page("confirmation.html")
                .title(CONFIRMATION_TITLE)
                .with("reference", "GW-000001")
                .with("bins", "2 bins")
                .with("expires", "1 May 2027"),
            kit.page("not_taken.html")
                .title(NOT_TAKEN_TITLE)
                .with("cancelled", &false),
            kit.page("processing.html")
                .title(PROCESSING_TITLE)
                .with("again", "/payment-return?ref=GW-000001"),
        ];
        for page in pages {
            let html = page.render_for(&site).unwrap();
            assert_eq!(html.matches("<h1").count(), 1, "{html}");
            assert!(!html.contains("style="));
            if html.contains("<form") {
                assert!(
                    html.contains(r#"<input type="hidden" name="csrf" value="t">"#),
                    "{html}"
                );
            }
        }
    }

    /// The page with MiniJinja's escaped slashes put back, to look for links in.
    fn render(page: Page<'_>) -> String {
        page.render_for(&site()).unwrap().replace("&#x2f;", "/")
    }

    #[test]
    fn pages_show_what_residents_act_on() {
        let kit = kit();
        let base = "/s/north-downs/tandridge/garden-waste";
        let start = render(
            kit.page("start.html")
                .title(START_TITLE)
                .with("price", "£45.00")
                .with("max_bins", "3 bins"),
        );
        assert!(start.contains("£45.00 a year for each bin"), "{start}");
        assert!(start.contains("up to 3 bins"), "{start}");
        assert!(
            start.contains(&format!(r#"href="{base}/address" role="button""#)),
            "{start}"
        );
        assert!(start.contains("Start now"), "{start}");

        let bins = render(extras(
            kit.page("bins.html")
                .title(BINS_TITLE)
                .with("back", "/address")
                .csrf("t"),
            "bins",
            &settings(),
        ));
        assert!(
            bins.contains(r#"name="bins" type="radio" value="3""#),
            "{bins}"
        );
        assert!(bins.contains(">3 bins</label>"), "{bins}");
        assert!(bins.contains("Each bin costs £45.00 a year."), "{bins}");

        let application = application(&answers(), &settings()).unwrap();
        let check = render(
            kit.page("check_answers.html")
                .title(CHECK_TITLE)
                .with("rows", &summary_rows(&application, &site()))
                .csrf("t"),
        );
        assert!(check.contains("Continue to payment"), "{check}");
        assert!(check.contains("£90.00 a year"), "{check}");
        assert!(
            check.contains(&format!(r#"action="{base}/check-answers""#)),
            "{check}"
        );

        let not_taken = render(
            kit.page("not_taken.html")
                .title(NOT_TAKEN_TITLE)
                .with("cancelled", &true),
        );
        assert!(
            not_taken.contains("You cancelled your payment."),
            "{not_taken}"
        );
        assert!(
            not_taken.contains(&format!(r#"href="{base}/check-answers""#)),
            "{not_taken}"
        );

        let done = render(
            kit.page("confirmation.html")
                .title(CONFIRMATION_TITLE)
                .with("reference", "GW-000001")
                .with("bins", "2 bins")
                .with("expires", "1 May 2027"),
        );
        assert!(done.contains("<strong>GW-000001</strong>"), "{done}");
        assert!(
            done.contains("for 2 bins is paid for until 1 May 2027"),
            "{done}"
        );
    }

    #[test]
    fn a_wrong_answer_shows_the_page_again() {
        let kit = kit();
        let form = Form::parse("address_line_1=<script>&postcode=nope&csrf=t");
        let errors = check_address(&form).unwrap_err();
        let response = kit
            .page("address.html")
            .title(ADDRESS_TITLE)
            .form(&form, &errors)
            .csrf("t")
            .with("back", "/")
            .respond_for(&site());
        assert_eq!(response.status, 422);
        let html = response.body_text();
        assert!(html.contains("<title>Error: What is your address? – Garden waste collection – Tandridge District Council</title>"), "{html}");
        assert!(html.contains(r##"<a href="#postcode">Enter a real postcode, like RH8 0BT</a>"##));
        assert!(html.contains(r#"value="&lt;script&gt;""#));
    }
}
