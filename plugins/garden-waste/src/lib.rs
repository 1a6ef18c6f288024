//! Garden waste: a Guildhall example plugin where residents subscribe to the council's garden
//! waste collection, pay by card with GOV.UK Pay, and get their confirmation and renewal
//! reminder by email from GOV.UK Notify.
//!
//! Residents' pages (the `pages` module, GOV.UK page kit and a session journey): `GET /`
//! (start) → `/address` (first line and postcode; `/not-eligible` where the council does not
//! collect) → `/bins` → `/details` (name and email) → `/check-answers` → GOV.UK Pay →
//! `GET /payment-return?ref=GW-000001` (the confirmation, or why the payment was not taken).
//!
//! Officers: `GET /subscriptions` lists the council's subscriptions as JSON, for callers
//! with the role `officer` or `tenant-admin` who are not limited to another council.
//!
//! The schedule `renewal-reminders` (`work::renewal_reminders`) sends reminders, retries
//! confirmation emails and completes payments whose payer never came back.
//!
//! Everything is kept per council of the URL, in that council's part of `kv`
//! (`council/{council}/`, `rules::keys`): `references` (the reference counter),
//! `pending/{reference}` (applications waiting for their payment),
//! `subscriptions/{reference}`, `unsent/{reference}` (confirmation emails to send again)
//! and `reminded/{reference}/{expires}` (reminders sent).
//! Subscribers' names, email addresses and addresses are personal data: the `subject`
//! module answers subject access and erasure requests, and events name subscriptions by
//! `reference`.
//! Settings come from `config`, where the platform has merged the council's own values;
//! the Pay and Notify keys are the secrets `pay_api_key` and `notify_api_key`.

mod pages;
mod rules;
mod subject;
mod work;

use guildhall_plugin::kv;
use guildhall_plugin::{Handler, Request, Response, Router, Scheduled, context};

use rules::{Subscription, keys};

/// The roles that may list subscriptions.
const OFFICERS: &[&str] = &["officer", "tenant-admin"];

/// The schedule that sends renewal reminders.
const RENEWAL_REMINDERS: &str = "renewal-reminders";

/// The plugin.
struct GardenWaste;

impl Handler for GardenWaste {
    fn handle(req: Request) -> Response {
        Router::new()
            .get("/", pages::page(pages::start))
            .get("/address", pages::page(pages::get_address))
            .post("/address", pages::page(pages::post_address))
            .get("/not-eligible", pages::page(pages::not_eligible))
            .get("/bins", pages::page(pages::get_bins))
            .post("/bins", pages::page(pages::post_bins))
            .get("/details", pages::page(pages::get_details))
            .post("/details", pages::page(pages::post_details))
            .get("/check-answers", pages::page(pages::get_check_answers))
            .post("/check-answers", pages::page(pages::pay))
            .get("/payment-return", pages::page(pages::payment_return))
            .get("/subscriptions", list_subscriptions)
            .handle(req)
    }
}

impl Scheduled for GardenWaste {
    fn run(name: &str) -> Result<(), String> {
        match name {
            RENEWAL_REMINDERS => work::renewal_reminders(),
            other => Err(format!("unknown schedule {other:?}")),
        }
    }
}

guildhall_plugin::export_plugin!(GardenWaste);
guildhall_plugin::export_schedules!(GardenWaste);
guildhall_plugin::export_data_subject!(GardenWaste);

/// `GET /subscriptions`: the council's subscriptions, by reference, as
/// `{"subscriptions": [...]}`. Anonymous callers get `401`; callers without the role, or
/// limited to another council, `403`.
fn list_subscriptions(_req: Request) -> Response {
    let council = context::council();
    if let Err(refusal) = context::principal().may_write_for(&council, OFFICERS) {
        return refusal.into();
    }
    match subscriptions(&council) {
        Ok(list) => Response::json(200, &serde_json::json!({ "subscriptions": list })),
        Err(e) => e.into(),
    }
}

/// Every subscription of `council`, by reference.
fn subscriptions(council: &str) -> Result<Vec<Subscription>, kv::KvError> {
    let mut list = Vec::new();
    for key in kv::list_all_keys(&keys::subscriptions_prefix(council))? {
        if let Some(subscription) = kv::get_json::<Subscription>(&key)? {
            list.push(subscription);
        }
    }
    list.sort_by(|a, b| {
        rules::reference_order(&a.reference).cmp(&rules::reference_order(&b.reference))
    });
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use guildhall_plugin::Method;

    #[test]
    fn unknown_schedules_are_errors() {
        assert_eq!(
            GardenWaste::run("daily-digest"),
            Err("unknown schedule \"daily-digest\"".to_owned())
        );
    }

    #[test]
    fn unknown_paths_are_404s_and_wrong_methods_405s() {
        let response = GardenWaste::handle(Request::new(Method::Get, "/nope"));
        assert_eq!(response.status, 404);
        let response = GardenWaste::handle(Request::new(Method::Post, "/subscriptions"));
        assert_eq!(response.status, 405);
        let response = GardenWaste::handle(Request::new(Method::Delete, "/payment-return"));
        assert_eq!(response.status, 405);
    }
}
