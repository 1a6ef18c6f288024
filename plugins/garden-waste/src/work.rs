//! The work that calls the platform and the two GOV.UK services: settings, the Pay and
//! Notify clients with the council's keys, completing a paid application, the emails, and
//! the `renewal-reminders` run. The rules it follows are in [`crate::rules`].

use guildhall_plugin::kv::{self, KvError};
use guildhall_plugin::notify::{self, Email};
use guildhall_plugin::time::{self, Date};
use guildhall_plugin::{config, context, events, pay, secrets};

use crate::rules::{
    self, CREATED_EVENT, Leftover, NOTIFY_KEY, PAY_KEY, Pending, Settings, Subscription, Tally,
    keys,
};

/// The settings for the council of this call.
pub fn settings() -> Result<Settings, String> {
    Settings::from_config(&config::all()).map_err(|why| format!("the settings are wrong: {why}"))
}

/// The value of secret `name`, or why there is none. Never the value in an error.
fn secret(name: &str) -> Result<String, String> {
    secrets::require(name).map_err(|e| e.to_string())
}

/// A GOV.UK Pay client with the council's key.
pub fn pay_client(settings: &Settings) -> Result<pay::Client, String> {
    Ok(pay::Client::new(&settings.pay_base_url, secret(PAY_KEY)?))
}

/// A GOV.UK Notify client with the council's key.
pub fn notify_client(settings: &Settings) -> Result<notify::Client, String> {
    notify::Client::new(&settings.notify_base_url, &secret(NOTIFY_KEY)?).map_err(|e| e.to_string())
}

/// Sends `subscription`'s confirmation email.
pub fn send_confirmation(settings: &Settings, subscription: &Subscription) -> Result<(), String> {
    let email = Email {
        email_address: subscription.email.clone(),
        template_id: settings.confirmation_template_id.clone(),
        personalisation: subscription.confirmation_personalisation(),
        reference: Some(subscription.reference.clone()),
    };
    notify_client(settings)?
        .send_email(&email)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Sends `subscription`'s renewal reminder.
pub fn send_reminder(settings: &Settings, subscription: &Subscription) -> Result<(), String> {
    let email = Email {
        email_address: subscription.email.clone(),
        template_id: settings.reminder_template_id.clone(),
        personalisation: subscription.reminder_personalisation(),
        reference: Some(subscription.reference.clone()),
    };
    notify_client(settings)?
        .send_email(&email)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Turns the paid application `pending` into its subscription, paid for on `today`, and
/// answers the subscription as stored. Only the call that stores it records the
/// `subscription.created` event and sends the confirmation email; any other (a second visit
/// of the return page, the daily run) finds it stored and does neither.
///
/// The email is marked unsent before it is sent and the mark removed once Notify accepts
/// it, so an email that fails, or a call stopped half way, is sent by the next
/// `renewal-reminders` run; a failure never loses the subscription.
pub fn complete(
    council: &str,
    settings: &Settings,
    pending: &Pending,
    today: Date,
) -> Result<Subscription, KvError> {
    let key = keys::subscription(council, &pending.reference);
    let fresh = Subscription::paid(pending, today, settings.subscription_days);
    if !kv::set_json_if_absent(&key, &fresh)? {
        let stored = kv::get_json::<Subscription>(&key)?.unwrap_or(fresh);
        forget_pending(council, &pending.reference);
        return Ok(stored);
    }
    let reference = &fresh.reference;
    if let Err(e) = events::emit(
        CREATED_EVENT,
        &serde_json::json!({ "reference": reference }),
    ) {
        eprintln!(
            "[{}] {CREATED_EVENT} for {reference} not recorded: {e}",
            context::request_id()
        );
    }
    let unsent = keys::unsent(council, reference);
    let marked = kv::set(&unsent, b"");
    match send_confirmation(settings, &fresh) {
        Ok(()) => {
            if marked.is_ok()
                && let Err(e) = kv::delete(&unsent)
            {
                eprintln!(
                    "[{}] unsent mark of {reference} not removed: {e}",
                    context::request_id()
                );
            }
        }
        Err(why) => {
            eprintln!(
                "[{}] confirmation email for {reference} not sent: {why}",
                context::request_id()
            );
            if let Err(e) = marked {
                eprintln!(
                    "[{}] confirmation email for {reference} not marked for sending again: {e}",
                    context::request_id()
                );
            }
        }
    }
    forget_pending(council, reference);
    Ok(fresh)
}

/// Removes a pending application that became a subscription.
fn forget_pending(council: &str, reference: &str) {
    if let Err(e) = kv::delete(&keys::pending(council, reference)) {
        eprintln!(
            "[{}] pending application {reference} not removed: {e}",
            context::request_id()
        );
    }
}

/// What a failure of storage in a run says.
fn storage(e: KvError) -> String {
    format!("storage failed: {e}")
}

/// The `renewal-reminders` run for the council of this call:
///
/// 1. applications whose payer never came back from GOV.UK Pay: completed when paid,
///    forgotten a day after they ended unpaid;
/// 2. confirmation emails not sent yet: sent again;
/// 3. subscriptions ending within `reminder_days` (and not ended): the reminder, claimed
///    first under `council/{council}/reminded/{reference}/{expires}` so that it goes once per
///    subscription and end date however many runs see it; a reminder that fails gives its
///    claim back for the next run.
///
/// `Err` when anything failed, counting each kind of work (see [`rules::run_outcome`]).
pub fn renewal_reminders() -> Result<(), String> {
    let council = context::council();
    let settings = settings()?;
    let today = Date::today_in_uk();
    let now = time::now_unix();

    let mut payments = Tally::default();
    for key in kv::list_all_keys(&keys::pending_prefix(&council)).map_err(storage)? {
        let Some(pending) = kv::get_json::<Pending>(&key).map_err(storage)? else {
            continue;
        };
        let outcome = settle(&council, &settings, &pending, today, now);
        payments.record(&pending.reference, outcome);
    }

    let mut confirmations = Tally::default();
    let unsent_prefix = keys::unsent_prefix(&council);
    for key in kv::list_all_keys(&unsent_prefix).map_err(storage)? {
        let reference = key.strip_prefix(&unsent_prefix).unwrap_or_default();
        let stored = kv::get_json::<Subscription>(&keys::subscription(&council, reference))
            .map_err(storage)?;
        let Some(subscription) = stored else {
            kv::delete(&key).map_err(storage)?;
            continue;
        };
        let outcome = send_confirmation(&settings, &subscription);
        if outcome.is_ok() {
            kv::delete(&key).map_err(storage)?;
        }
        confirmations.record(reference, outcome);
    }

    let mut reminders = Tally::default();
    for key in kv::list_all_keys(&keys::subscriptions_prefix(&council)).map_err(storage)? {
        let Some(subscription) = kv::get_json::<Subscription>(&key).map_err(storage)? else {
            continue;
        };
        if !rules::reminder_due(today, subscription.expires, settings.reminder_days) {
            continue;
        }
        let reference = &subscription.reference;
        let claim = keys::reminded(&council, reference, &subscription.expires.to_string());
        if !kv::set_if_absent(&claim, b"").map_err(storage)? {
            continue;
        }
        let outcome = send_reminder(&settings, &subscription);
        if outcome.is_err() {
            kv::delete(&claim).map_err(storage)?;
        }
        reminders.record(reference, outcome);
    }

    rules::run_outcome(&reminders, &confirmations, &payments)
}

/// Looks up the payment of an application whose payer has not come back, and acts on it.
fn settle(
    council: &str,
    settings: &Settings,
    pending: &Pending,
    today: Date,
    now: i64,
) -> Result<(), String> {
    let payment = pay_client(settings)?
        .get_payment(&pending.payment_id)
        .map_err(|e| e.to_string())?;
    match rules::leftover(
        payment.is_success(),
        payment.is_finished(),
        pending.created,
        now,
    ) {
        Leftover::Complete => complete(council, settings, pending, today)
            .map(|_| ())
            .map_err(storage),
        Leftover::Forget => kv::delete(&keys::pending(council, &pending.reference))
            .map(|_| ())
            .map_err(storage),
        Leftover::Keep => Ok(()),
    }
}
