//! The residents' pages: find your bin collection days in a browser, with the GOV.UK page kit.
//!
//! `GET /` (the postcode) → `GET /address?postcode=…` (choose the address among those the
//! schedule has at that postcode) → `GET /collections?postcode=…&uprn=…` (the next
//! collection of each bin, and the dates after).
//!
//! Every form is a `GET` with the answers in the query string: a lookup changes nothing, so
//! it needs no session and no token, and each page can be bookmarked. A wrong answer shows the
//! page that asked again with the error summary, status `422`: a postcode that is missing, not
//! a postcode, or has no address in the schedule shows the postcode form again; an address
//! not chosen (or not at that postcode) shows the address page again.
//!
//! The schedule is per property (UPRN), uploaded with its postcode and address, so the
//! address page lists the schedule's properties at the postcode; a property not in the
//! schedule cannot be found here.

use std::collections::BTreeMap;

use guildhall_plugin::kit::{Errors, Form, Kit, Page, PageError, Site, SummaryRow};
use guildhall_plugin::kv::CouncilKv;
use guildhall_plugin::time::Date;
use guildhall_plugin::{Request, Response, context, urlencoded};
use serde::Serialize;

use crate::postcode;
use crate::schedule::{self, Bin, Collection};

/// How many addresses are shown as radios; more are a select.
pub const MAX_RADIOS: usize = 20;

/// How many later collection dates the result page lists.
pub const LATER_DATES: usize = 8;

const START_TITLE: &str = "Find your bin collection days";
const ADDRESS_TITLE: &str = "Select your address";
const COLLECTIONS_TITLE: &str = "Your bin collection days";

/// The kit with this plugin's templates.
pub fn kit() -> Kit {
    Kit::new()
        .service_name(START_TITLE)
        .template("start.html", include_str!("../templates/start.html"))
        .template("address.html", include_str!("../templates/address.html"))
        .template(
            "collections.html",
            include_str!("../templates/collections.html"),
        )
}

/// `GET /`: the postcode form, filled in from `?postcode=` when coming back.
pub fn start(req: Request) -> Response {
    let form = Form::from_query(&req).only(&["postcode"]);
    kit()
        .page("start.html")
        .title(START_TITLE)
        .values(&form)
        .respond()
}

/// Checks the postcode: required, and a UK postcode's shape. Answers it normalised.
pub fn check_postcode(form: &Form) -> Result<String, Errors> {
    let mut check = form.check();
    let postcode = check
        .text("postcode")
        .required("Enter a postcode")
        .max_chars(16, "Enter a real postcode")
        .parse(postcode::normalise, "Enter a real postcode");
    match postcode {
        Some(postcode) => Ok(postcode),
        None => Err(check.into_errors()),
    }
}

/// The error when the schedule has no address at `postcode`.
pub fn no_addresses(postcode: &str, council_name: &str) -> Errors {
    let mut errors = Errors::new();
    errors.add(
        "postcode",
        format!(
            "We have no addresses at {postcode} – check the postcode, or enter one in the {council_name} area"
        ),
    );
    errors
}

/// One address to choose.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct AddressItem {
    /// The UPRN.
    pub value: String,
    /// The address.
    pub text: String,
}

/// The address page's items: the addresses as radios, or as a select (with a first option
/// saying how many there are) when there are more than [`MAX_RADIOS`].
pub fn address_items(addresses: &[(String, String)]) -> (Vec<AddressItem>, bool) {
    let use_select = addresses.len() > MAX_RADIOS;
    let mut items = Vec::with_capacity(addresses.len() + 1);
    if use_select {
        items.push(AddressItem {
            value: String::new(),
            text: format!("{} addresses found", addresses.len()),
        });
    }
    items.extend(addresses.iter().map(|(uprn, address)| AddressItem {
        value: uprn.clone(),
        text: address.clone(),
    }));
    (items, use_select)
}

/// Checks the chosen address: one of the UPRNs at the postcode.
pub fn check_address(form: &Form, addresses: &[(String, String)]) -> Result<String, Errors> {
    let uprns: Vec<&str> = addresses.iter().map(|(uprn, _)| uprn.as_str()).collect();
    let mut check = form.check();
    match check.choice("uprn", &uprns, "Select your address") {
        Some(uprn) => Ok(uprn),
        None => Err(check.into_errors()),
    }
}

/// The result page's rows: the next collection of each bin in the schedule (in the order
/// refuse, recycling, garden, food), and then each later date with its bins, at most
/// [`LATER_DATES`] of them.
pub fn collection_rows(
    collections: &[Collection],
    today: Date,
) -> (Vec<SummaryRow>, Vec<[String; 2]>) {
    let upcoming = schedule::upcoming(collections, today, None);
    let mut next: BTreeMap<Bin, Date> = BTreeMap::new();
    for c in &upcoming {
        next.entry(c.bin).or_insert(c.date);
    }
    let rows = next
        .iter()
        .map(|(bin, date)| SummaryRow::new(bin.label(), describe_day(*date, today)))
        .collect();
    let mut later: BTreeMap<Date, Vec<&str>> = BTreeMap::new();
    for c in &upcoming {
        if next.get(&c.bin) != Some(&c.date) {
            later.entry(c.date).or_default().push(c.bin.label());
        }
    }
    let table = later
        .into_iter()
        .take(LATER_DATES)
        .map(|(date, bins)| [date.to_govuk_with_weekday(), bins.join(", ")])
        .collect();
    (rows, table)
}

/// `Friday 1 May 2026`, with `(today)` or `(tomorrow)` when it is.
fn describe_day(date: Date, today: Date) -> String {
    let day = date.to_govuk_with_weekday();
    if date == today {
        format!("{day} (today)")
    } else if date == today.add_days(1) {
        format!("{day} (tomorrow)")
    } else {
        day
    }
}

fn start_again(kit: &Kit, site: &Site, form: &Form, errors: &Errors) -> Response {
    kit.page("start.html")
        .title(START_TITLE)
        .form(&form.only(&["postcode"]), errors)
        .respond_for(site)
}

fn address_page<'k>(kit: &'k Kit, postcode: &str, addresses: &[(String, String)]) -> Page<'k> {
    let (items, use_select) = address_items(addresses);
    kit.page("address.html")
        .title(ADDRESS_TITLE)
        .with("postcode", postcode)
        .with("postcode_query", &urlencoded::encode(postcode))
        .with("addresses", &items)
        .with("use_select", &use_select)
        .with(
            "hint",
            &format!(
                "{} {} at {postcode}",
                addresses.len(),
                if addresses.len() == 1 {
                    "address"
                } else {
                    "addresses"
                }
            ),
        )
}

/// What looking up a postcode gave.
enum Lookup {
    /// The normalised postcode and its addresses (at least one).
    Found(String, Vec<(String, String)>),
    /// The postcode form again, with why the postcode was not good.
    Again(Response),
}

/// Checks the query's postcode and finds its addresses in this council's schedule.
fn lookup(kit: &Kit, site: &Site, form: &Form) -> Result<Lookup, PageError> {
    let postcode = match check_postcode(form) {
        Ok(postcode) => postcode,
        Err(errors) => return Ok(Lookup::Again(start_again(kit, site, form, &errors))),
    };
    let addresses = crate::addresses_at(&CouncilKv::current(), &postcode)?;
    if addresses.is_empty() {
        let errors = no_addresses(&postcode, &site.council_name);
        return Ok(Lookup::Again(start_again(kit, site, form, &errors)));
    }
    Ok(Lookup::Found(postcode, addresses))
}

/// `GET /address?postcode=…`.
pub fn address(req: Request) -> Response {
    let kit = kit();
    let site = context::site();
    let form = Form::from_query(&req);
    match lookup(&kit, &site, &form) {
        Ok(Lookup::Found(postcode, addresses)) => address_page(&kit, &postcode, &addresses)
            .values(&form.only(&["uprn"]))
            .respond_for(&site),
        Ok(Lookup::Again(response)) => response,
        Err(error) => kit.error_page_for(&site, &error),
    }
}

/// `GET /collections?postcode=…&uprn=…`.
pub fn collections(req: Request) -> Response {
    let kit = kit();
    let site = context::site();
    let form = Form::from_query(&req);
    show_collections(&kit, &site, &form).unwrap_or_else(|error| kit.error_page_for(&site, &error))
}

fn show_collections(kit: &Kit, site: &Site, form: &Form) -> Result<Response, PageError> {
    let (postcode, addresses) = match lookup(kit, site, form)? {
        Lookup::Found(postcode, addresses) => (postcode, addresses),
        Lookup::Again(response) => return Ok(response),
    };
    let chosen = check_address(form, &addresses);
    let record = match &chosen {
        Ok(uprn) => crate::record(&CouncilKv::current(), uprn)?,
        Err(_) => None,
    };
    let Some(record) = record else {
        // Not chosen, not at the postcode, or removed from the schedule since.
        let errors = chosen.err().unwrap_or_else(|| {
            let mut errors = Errors::new();
            errors.add("uprn", "Select your address");
            errors
        });
        return Ok(address_page(kit, &postcode, &addresses)
            .form(&form.only(&["uprn"]), &errors)
            .respond_for(site));
    };
    let (next, later) = collection_rows(&record.collections, Date::today_in_uk());
    Ok(kit
        .page("collections.html")
        .title(COLLECTIONS_TITLE)
        .with("address", &record.address)
        .with("postcode_query", &urlencoded::encode(&postcode))
        .with("next", &next)
        .with("later", &later)
        .respond_for(site))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> Site {
        Site {
            tenant_name: "North Downs".to_owned(),
            council_name: "Tandridge District Council".to_owned(),
            assets: "/assets/govuk-frontend/abc".to_owned(),
            base_path: "/s/north-downs/tandridge/bin-collections".to_owned(),
            feedback_path: "/s/north-downs/tandridge/bin-collections/_feedback".to_owned(),
            ..Site::default()
        }
    }

    fn addresses(n: usize) -> Vec<(String, String)> {
        (1..=n)
            .map(|i| (format!("10006{i}"), format!("{i} High Street, Oxted")))
            .collect()
    }

    #[test]
    fn postcodes() {
        let check = |q: &str| check_postcode(&Form::parse(q)).map_err(|e| e.to_string());
        assert_eq!(check("postcode=rh8+0bt"), Ok("RH8 0BT".to_owned()));
        assert_eq!(check("postcode=++"), Err("Enter a postcode".to_owned()));
        assert_eq!(check(""), Err("Enter a postcode".to_owned()));
        assert_eq!(
            check("postcode=RH8"),
            Err("Enter a real postcode".to_owned())
        );
        assert_eq!(
            check(&format!("postcode={}", "A".repeat(100))),
            Err("Enter a real postcode".to_owned())
        );
        let errors = no_addresses("RH8 0BT", "Tandridge District Council");
        assert_eq!(errors.summary()[0].href, "#postcode");
        assert!(errors.to_string().contains("RH8 0BT"));
    }

    #[test]
    fn addresses_are_radios_then_a_select() {
        let (items, select) = address_items(&addresses(3));
        assert!(!select);
        assert_eq!(items[0].value, "100061");
        assert_eq!(items[0].text, "1 High Street, Oxted");
        let (items, select) = address_items(&addresses(MAX_RADIOS + 1));
        assert!(select);
        assert_eq!(items.len(), MAX_RADIOS + 2);
        assert_eq!(items[0].value, "");
        assert_eq!(items[0].text, "21 addresses found");
    }

    #[test]
    fn an_address_must_be_one_at_the_postcode() {
        let at = addresses(2);
        assert_eq!(
            check_address(&Form::parse("uprn=100062"), &at),
            Ok("100062".to_owned())
        );
        for query in ["", "uprn=", "uprn=999"] {
            let errors = check_address(&Form::parse(query), &at).unwrap_err();
            assert_eq!(errors.summary()[0].href, "#uprn");
            assert_eq!(errors.to_string(), "Select your address");
        }
    }

    #[test]
    fn the_next_collection_of_each_bin_then_later_dates() {
        let d = |s: &str| Date::parse(s).unwrap();
        let c = |date: &str, bin: Bin| Collection { date: d(date), bin };
        let collections = vec![
            c("2026-04-30", Bin::Refuse),
            c("2026-05-01", Bin::Recycling),
            c("2026-05-02", Bin::Refuse),
            c("2026-05-08", Bin::Refuse),
            c("2026-05-08", Bin::Recycling),
            c("2026-05-15", Bin::Garden),
        ];
        let (next, later) = collection_rows(&collections, d("2026-05-01"));
        let shown: Vec<(&str, &str)> = next
            .iter()
            .map(|r| (r.key.as_str(), r.value.as_str()))
            .collect();
        assert_eq!(
            shown,
            vec![
                ("Rubbish (general waste)", "Saturday 2 May 2026 (tomorrow)"),
                ("Recycling", "Friday 1 May 2026 (today)"),
                ("Garden waste", "Friday 15 May 2026"),
            ]
        );
        assert_eq!(
            later,
            vec![[
                "Friday 8 May 2026".to_owned(),
                "Rubbish (general waste), Recycling".to_owned()
            ]]
        );
        let (next, later) = collection_rows(&collections, d("2026-06-01"));
        assert!(next.is_empty() && later.is_empty());
    }

    #[test]
    fn pages_render() {
        let kit = kit();
        kit.check().unwrap();
        let site = site();
        let form = Form::parse("postcode=nope");
        let errors = check_postcode(&form).unwrap_err();
        let page = start_again(&kit, &site, &form, &errors);
        assert_eq!(page.status, 422);
        let html = page.body_text();
        assert!(
            html.contains("<title>Error: Find your bin collection days"),
            "{html}"
        );
        assert!(html.contains(r##"<a href="#postcode">Enter a real postcode</a>"##));
        assert!(html.contains(r#"value="nope""#));
        assert!(!html.contains("csrf"));

        let at = addresses(2);
        let errors = check_address(&Form::parse("uprn=9"), &at).unwrap_err();
        let page = address_page(&kit, "RH8 0BT", &at)
            .form(&Form::parse("uprn=9"), &errors)
            .respond_for(&site);
        assert_eq!(page.status, 422);
        let html = page.body_text().replace("&#x2f;", "/");
        assert!(html.contains(r#"<h1 class="govuk-fieldset__heading">Select your address</h1>"#));
        assert!(html.contains(r#"<input type="hidden" name="postcode" value="RH8 0BT">"#));
        assert!(
            html.contains("/s/north-downs/tandridge/bin-collections/?postcode=RH8%200BT"),
            "{html}"
        );
        assert!(html.contains(r#"<form method="get" action="/s/north-downs/tandridge/bin-collections/collections" novalidate>"#));
        let page = address_page(&kit, "RH8 0BT", &addresses(30)).respond_for(&site);
        assert!(page.body_text().contains("<select"));

        let d = |s: &str| Date::parse(s).unwrap();
        let (next, later) = collection_rows(
            &[Collection {
                date: d("2026-05-04"),
                bin: Bin::Food,
            }],
            d("2026-05-01"),
        );
        let html = kit
            .page("collections.html")
            .title(COLLECTIONS_TITLE)
            .with("address", "1 High Street")
            .with("postcode_query", "RH8%200BT")
            .with("next", &next)
            .with("later", &later)
            .respond_for(&site)
            .body_text();
        assert!(html.contains("Monday 4 May 2026"));
        assert!(!html.contains("<table"));
        assert_eq!(html.matches("<h1").count(), 1);
    }
}
