//! The service's rules as plain functions, tested on the host: settings, postcodes and where
//! the council collects, prices, references, the records kept in `kv` and their keys, the
//! dates of a subscription, which reminders are due, and the return address given to
//! GOV.UK Pay.

use guildhall_plugin::outbound::{Scheme, Url};
use guildhall_plugin::time::Date;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What a payment is for, as GOV.UK Pay shows it.
pub const PAYMENT_DESCRIPTION: &str = "Garden waste subscription";

/// The event recorded when a subscription is paid for; its payload is the reference only.
pub const CREATED_EVENT: &str = "subscription.created";

/// The secret holding the council's GOV.UK Pay API key.
pub const PAY_KEY: &str = "pay_api_key";

/// The secret holding the GOV.UK Notify API key.
pub const NOTIFY_KEY: &str = "notify_api_key";

/// The install's settings for one council, read from `config` (the platform has merged the
/// council's own values into it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Where the council collects: normalised postcode prefixes ([`normalise_prefix`]).
    pub eligible_postcodes: Vec<String>,
    /// The price of one bin for one subscription, in pence.
    pub price_per_bin_pence: u64,
    /// The most bins one household may have.
    pub max_bins: u32,
    /// How many days a subscription lasts.
    pub subscription_days: u32,
    /// How many days before the end a reminder is sent.
    pub reminder_days: u32,
    /// The GOV.UK Pay API's address.
    pub pay_base_url: String,
    /// The GOV.UK Notify API's address.
    pub notify_base_url: String,
    /// The Notify template of the confirmation email.
    pub confirmation_template_id: String,
    /// The Notify template of the reminder email.
    pub reminder_template_id: String,
}

impl Settings {
    /// The settings in the configuration object `config`, with the manifest's defaults for
    /// those not given; an error names the first setting that is missing or wrong.
    pub fn from_config(config: &Value) -> Result<Settings, String> {
        let get = |key: &str| config.get(key).filter(|v| !v.is_null());
        let integer = |key: &str, default: Option<u64>, range: std::ops::RangeInclusive<u64>| {
            let value = match get(key) {
                Some(v) => v
                    .as_u64()
                    .ok_or_else(|| format!("{key} must be a whole number"))?,
                None => default.ok_or_else(|| format!("{key} is not set"))?,
            };
            if range.contains(&value) {
                Ok(value)
            } else {
                Err(format!(
                    "{key} must be from {} to {}",
                    range.start(),
                    range.end()
                ))
            }
        };
        let text = |key: &str, default: Option<&str>| -> Result<String, String> {
            match get(key) {
                Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
                Some(_) => Err(format!("{key} must be a non-empty string")),
                None => default
                    .map(str::to_owned)
                    .ok_or_else(|| format!("{key} is not set")),
            }
        };
        let prefixes = match get("eligible_postcodes") {
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str()
                        .and_then(normalise_prefix)
                        .ok_or_else(|| {
                            "eligible_postcodes must hold postcode prefixes such as \"RH8\" or \"RH8 0\""
                                .to_owned()
                        })
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err("eligible_postcodes must be a JSON array".to_owned()),
            None => return Err("eligible_postcodes is not set".to_owned()),
        };
        Ok(Settings {
            eligible_postcodes: prefixes,
            price_per_bin_pence: integer("price_per_bin_pence", None, 1..=1_000_000)?,
            max_bins: integer("max_bins", Some(3), 1..=20)? as u32,
            subscription_days: integer("subscription_days", Some(365), 1..=3660)? as u32,
            reminder_days: integer("reminder_days", Some(30), 0..=366)? as u32,
            pay_base_url: text(
                "pay_base_url",
                Some(guildhall_plugin::pay::DEFAULT_BASE_URL),
            )?,
            notify_base_url: text(
                "notify_base_url",
                Some(guildhall_plugin::notify::DEFAULT_BASE_URL),
            )?,
            confirmation_template_id: text("confirmation_template_id", None)?,
            reminder_template_id: text("reminder_template_id", None)?,
        })
    }

    /// The price of `bins` bins, in pence.
    pub fn cost(&self, bins: u32) -> u64 {
        self.price_per_bin_pence * u64::from(bins)
    }

    /// The radio values of the bins page: `1` to `max_bins`.
    pub fn bin_choices(&self) -> Vec<String> {
        (1..=self.max_bins).map(|n| n.to_string()).collect()
    }
}

/// A UK postcode in its usual form, upper case with one space before the last three
/// characters (`rh80bt` → `RH8 0BT`), or `None` when it is not shaped like one: an outward
/// code of one or two letters, a digit and an optional letter or digit, and an inward code
/// of a digit and two letters.
pub fn normalise_postcode(input: &str) -> Option<String> {
    let compact: String = input
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if !(5..=7).contains(&compact.len()) || !compact.is_ascii() {
        return None;
    }
    let (outward, inward) = compact.split_at(compact.len() - 3);
    let i = inward.as_bytes();
    let inward_ok = i[0].is_ascii_digit() && i[1].is_ascii_uppercase() && i[2].is_ascii_uppercase();
    if !inward_ok || !is_outward_code(outward) {
        return None;
    }
    Some(format!("{outward} {inward}"))
}

/// Whether `s` is an outward code: `A9`, `A99`, `AA9`, `AA99`, `A9A` or `AA9A`.
fn is_outward_code(s: &str) -> bool {
    let b = s.as_bytes();
    let letters = b.iter().take_while(|c| c.is_ascii_uppercase()).count();
    if !(1..=2).contains(&letters) || b.len() <= letters || !b[letters].is_ascii_digit() {
        return false;
    }
    match &b[letters + 1..] {
        [] => true,
        [c] => c.is_ascii_alphanumeric(),
        _ => false,
    }
}

/// A prefix of `eligible_postcodes` in the form postcodes are compared in: upper case,
/// trimmed, single spaces; `None` when empty or not letters, digits and spaces.
pub fn normalise_prefix(prefix: &str) -> Option<String> {
    let words: Vec<String> = prefix
        .split_whitespace()
        .map(str::to_ascii_uppercase)
        .collect();
    let joined = words.join(" ");
    let valid = !joined.is_empty()
        && words.len() <= 2
        && joined
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b' ');
    valid.then_some(joined)
}

/// Whether the council collects at normalised `postcode`, given normalised `prefixes`: a
/// prefix of letters only is a postcode area (`RH` takes `RH8 0BT` but not `R8 0BT`), one
/// without a space an outward code (`RH8` takes `RH8 0BT` but not `RH80 1AA`), and one with a
/// space a sector or whole postcode, matched from the start (`RH8 0` takes `RH8 0BT`).
pub fn is_eligible(postcode: &str, prefixes: &[String]) -> bool {
    let outward = postcode.split(' ').next().unwrap_or_default();
    let area: String = outward
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    prefixes.iter().any(|prefix| {
        if prefix.contains(' ') {
            postcode.starts_with(prefix.as_str())
        } else if prefix.bytes().all(|b| b.is_ascii_alphabetic()) {
            area == *prefix
        } else {
            outward == prefix
        }
    })
}

/// An amount in pence as GOV.UK writes money: `£45.00`, `£1,234.50`.
pub fn format_pence(pence: u64) -> String {
    let pounds = (pence / 100).to_string();
    let mut grouped = String::new();
    for (i, digit) in pounds.chars().enumerate() {
        if i > 0 && (pounds.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    format!("£{grouped}.{:02}", pence % 100)
}

/// The words for a number of bins: `1 bin`, `2 bins`.
pub fn bins_text(bins: u32) -> String {
    if bins == 1 {
        "1 bin".to_owned()
    } else {
        format!("{bins} bins")
    }
}

/// The reference of subscription number `number`: `GW-000042`.
pub fn format_reference(number: i64) -> String {
    format!("GW-{number:06}")
}

/// Whether `s` is a reference this service hands out: `GW-` and at least six digits.
pub fn is_reference(s: &str) -> bool {
    s.strip_prefix("GW-")
        .is_some_and(|n| (6..=18).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The order of references: by number, so `GW-1000000` comes after `GW-999999`.
pub fn reference_order(reference: &str) -> (usize, &str) {
    (reference.len(), reference)
}

/// The keys this service keeps in `kv`, each in the council's part of the install's store,
/// `council/<council>/` (the SDK's `kv::CouncilKv`), like the other examples' data.
pub mod keys {
    use guildhall_plugin::kv::CouncilKv;

    fn of(council: &str, key: &str) -> String {
        CouncilKv::for_council(council).key(key)
    }

    /// The counter of the council's references (the last number handed out).
    pub fn references(council: &str) -> String {
        of(council, "references")
    }

    /// An application waiting for its payment: a [`super::Pending`].
    pub fn pending(council: &str, reference: &str) -> String {
        of(council, &format!("pending/{reference}"))
    }

    /// Every pending application of a council.
    pub fn pending_prefix(council: &str) -> String {
        of(council, "pending/")
    }

    /// A paid subscription: a [`super::Subscription`].
    pub fn subscription(council: &str, reference: &str) -> String {
        of(council, &format!("subscriptions/{reference}"))
    }

    /// Every subscription of a council.
    pub fn subscriptions_prefix(council: &str) -> String {
        of(council, "subscriptions/")
    }

    /// A subscription whose confirmation email is still to be sent.
    pub fn unsent(council: &str, reference: &str) -> String {
        of(council, &format!("unsent/{reference}"))
    }

    /// Every subscription of a council whose confirmation email is still to be sent.
    pub fn unsent_prefix(council: &str) -> String {
        of(council, "unsent/")
    }

    /// The claim of the renewal reminder of a subscription ending on `expires`.
    pub fn reminded(council: &str, reference: &str, expires: &str) -> String {
        of(council, &format!("reminded/{reference}/{expires}"))
    }
}

/// An application sent to GOV.UK Pay and waiting for the payment's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// The subscription's reference, also the payment's.
    pub reference: String,
    /// GOV.UK Pay's id of the payment.
    pub payment_id: String,
    /// The normalised postcode.
    pub postcode: String,
    /// The first line of the address.
    pub address: String,
    /// How many bins.
    pub bins: u32,
    /// The amount paid, in pence.
    pub amount: u64,
    /// The subscriber's full name.
    pub name: String,
    /// The subscriber's email address.
    pub email: String,
    /// When the payment was created, seconds since the epoch.
    #[serde(default)]
    pub created: i64,
}

/// A paid subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// Its reference, e.g. `GW-000042`.
    pub reference: String,
    /// The subscriber's full name.
    pub name: String,
    /// The subscriber's email address.
    pub email: String,
    /// The normalised postcode.
    pub postcode: String,
    /// The first line of the address.
    pub address: String,
    /// How many bins.
    pub bins: u32,
    /// The amount paid, in pence.
    pub amount: u64,
    /// The day it was paid for, in the UK.
    pub start: Date,
    /// The day it ends: `start` plus the `subscription_days` setting.
    pub expires: Date,
    /// GOV.UK Pay's id of the payment.
    pub payment_id: String,
}

impl Subscription {
    /// The subscription `pending` becomes when paid for on `today`, lasting `days` days.
    pub fn paid(pending: &Pending, today: Date, days: u32) -> Subscription {
        Subscription {
            reference: pending.reference.clone(),
            name: pending.name.clone(),
            email: pending.email.clone(),
            postcode: pending.postcode.clone(),
            address: pending.address.clone(),
            bins: pending.bins,
            amount: pending.amount,
            start: today,
            expires: expiry(today, days),
            payment_id: pending.payment_id.clone(),
        }
    }

    /// The placeholders of the confirmation email.
    pub fn confirmation_personalisation(&self) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("name".into(), self.name.clone().into());
        map.insert("reference".into(), self.reference.clone().into());
        map.insert("bins".into(), self.bins.into());
        map.insert("expires".into(), self.expires.to_govuk().into());
        map.insert("amount".into(), format_pence(self.amount).into());
        map
    }

    /// The placeholders of the reminder email.
    pub fn reminder_personalisation(&self) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("name".into(), self.name.clone().into());
        map.insert("reference".into(), self.reference.clone().into());
        map.insert("expires".into(), self.expires.to_govuk().into());
        map
    }
}

/// The day a subscription starting on `start` ends.
pub fn expiry(start: Date, days: u32) -> Date {
    start.add_days(i64::from(days))
}

/// Whether the reminder of a subscription ending on `expires` is due on `today`: it ends
/// within `reminder_days` and has not ended yet.
pub fn reminder_due(today: Date, expires: Date, reminder_days: u32) -> bool {
    today <= expires && expires <= today.add_days(i64::from(reminder_days))
}

/// What to do with a pending application the payer never came back from, given its
/// payment's outcome and the time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leftover {
    /// Paid: complete the subscription.
    Complete,
    /// Ended unpaid over a day ago: forget it.
    Forget,
    /// Still in progress, or ended too recently for the payer to have seen the outcome.
    Keep,
}

/// How long an unpaid application is kept after it was made, so that its payer can still
/// see why the payment was not taken.
pub const KEEP_UNPAID_SECONDS: i64 = 24 * 60 * 60;

/// What to do with a pending application made at `created` whose payment is `success` or
/// not and finished or not, at `now`.
pub fn leftover(success: bool, finished: bool, created: i64, now: i64) -> Leftover {
    if success {
        Leftover::Complete
    } else if finished && now - created > KEEP_UNPAID_SECONDS {
        Leftover::Forget
    } else {
        Leftover::Keep
    }
}

/// Whether `host` (a `Host` header, perhaps with a port) names this machine.
pub fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    let name = name.to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost") || name == "::1" || name.starts_with("127.")
}

/// Whether `host` is a `Host` header's value: a name or address, perhaps with a port.
fn is_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b))
}

/// The scheme and host residents reach the service at, e.g. `https://guildhall.example`,
/// from the request's headers (`header` answers one by its name):
///
/// 0. `X-Guildhall-Origin`, which the platform sets on every call from the `Host` the
///    resident asked (callers cannot set it);
/// 1. `Host`, or else `X-Forwarded-Host` from a proxy in front of the platform, with the
///    scheme of `X-Forwarded-Proto`, or else `http` for this machine and `https` for any
///    other host;
/// 2. else the `Origin` a browser sends with a form's `POST`;
/// 3. else the scheme and host of the `Referer`.
///
/// (The platform's WebAssembly runtime keeps `Host` from plugins, so behind the platform the
/// answer comes from `X-Guildhall-Origin`; the rest serve the plugin run elsewhere.) `None`
/// when no header gives a usable one.
pub fn public_origin<'h>(header: impl Fn(&str) -> Option<&'h str>) -> Option<String> {
    if let Some(origin) = header("x-guildhall-origin").map(str::trim)
        && let Ok(url) = Url::parse(origin)
    {
        let scheme = match url.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        return Some(format!("{scheme}://{}", url.authority()));
    }
    let first = |name: &str| {
        header(name)
            .and_then(|v| v.split(',').next())
            .map(str::trim)
    };
    let host = ["host", "x-forwarded-host"]
        .into_iter()
        .find_map(|name| first(name).filter(|h| is_host(h)));
    if let Some(host) = host {
        let scheme = match first("x-forwarded-proto")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("https") => "https",
            Some("http") => "http",
            _ if is_loopback_host(host) => "http",
            _ => "https",
        };
        return Some(format!("{scheme}://{host}"));
    }
    ["origin", "referer"].into_iter().find_map(|name| {
        let url = Url::parse(header(name)?.trim()).ok()?;
        let scheme = match url.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        Some(format!("{scheme}://{}", url.authority()))
    })
}

/// The absolute address GOV.UK Pay sends the payer back to:
/// `{origin}{base_path}/payment-return?ref={reference}`, with `origin` from
/// [`public_origin`].
pub fn return_url(origin: &str, base_path: &str, reference: &str) -> String {
    let base = base_path.trim_end_matches('/');
    format!("{origin}{base}/payment-return?ref={reference}")
}

/// The failures of one kind of work in a scheduled run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// How many were tried.
    pub attempted: usize,
    /// What went wrong, one line each, naming references only (no personal data).
    pub failures: Vec<String>,
}

impl Tally {
    /// Counts one attempt, failed with `why` when it is `Err`.
    pub fn record(&mut self, reference: &str, outcome: Result<(), String>) {
        self.attempted += 1;
        if let Err(why) = outcome {
            self.failures.push(format!("{reference}: {why}"));
        }
    }

    fn summary(&self, what: &str) -> Option<String> {
        const SHOWN: usize = 5;
        if self.failures.is_empty() {
            return None;
        }
        let mut text = format!(
            "{} of {} {what} failed: {}",
            self.failures.len(),
            self.attempted,
            self.failures
                .iter()
                .take(SHOWN)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        );
        if self.failures.len() > SHOWN {
            text.push_str(&format!(" and {} more", self.failures.len() - SHOWN));
        }
        Some(text)
    }
}

/// The outcome of a `renewal-reminders` run: `Ok` when nothing failed, otherwise one line per
/// kind of work that had failures, e.g. `1 of 3 reminders failed: GW-000002: …`.
pub fn run_outcome(
    reminders: &Tally,
    confirmations: &Tally,
    payments: &Tally,
) -> Result<(), String> {
    let parts: Vec<String> = [
        reminders.summary("reminders"),
        confirmations.summary("confirmation emails"),
        payments.summary("payment checks"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if parts.is_empty() {
        Ok(())
    } else {
        Err(parts.join(" | "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn date(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    fn config() -> Value {
        json!({
            "eligible_postcodes": ["rh8", " RH9  ", "cr6 9", "TN"],
            "price_per_bin_pence": 4500,
            "confirmation_template_id": "c-template",
            "reminder_template_id": "r-template",
        })
    }

    fn prefixes() -> Vec<String> {
        Settings::from_config(&config()).unwrap().eligible_postcodes
    }

    #[test]
    fn settings_have_defaults_and_checks() {
        let settings = Settings::from_config(&config()).unwrap();
        assert_eq!(settings.eligible_postcodes, ["RH8", "RH9", "CR6 9", "TN"]);
        assert_eq!(settings.max_bins, 3);
        assert_eq!(settings.subscription_days, 365);
        assert_eq!(settings.reminder_days, 30);
        assert_eq!(
            settings.pay_base_url,
            "https://publicapi.payments.service.gov.uk"
        );
        assert_eq!(
            settings.notify_base_url,
            "https://api.notifications.service.gov.uk"
        );
        assert_eq!(settings.cost(2), 9000);
        assert_eq!(settings.bin_choices(), ["1", "2", "3"]);

        let mut overridden = config();
        overridden["max_bins"] = json!(5);
        overridden["pay_base_url"] = json!("http://localhost:9100");
        let settings = Settings::from_config(&overridden).unwrap();
        assert_eq!(settings.max_bins, 5);
        assert_eq!(settings.pay_base_url, "http://localhost:9100");

        for (key, value, message) in [
            (
                "price_per_bin_pence",
                Value::Null,
                "price_per_bin_pence is not set",
            ),
            (
                "price_per_bin_pence",
                json!("45"),
                "price_per_bin_pence must be a whole number",
            ),
            ("max_bins", json!(0), "max_bins must be from 1 to 20"),
            (
                "eligible_postcodes",
                json!("RH8"),
                "eligible_postcodes must be a JSON array",
            ),
            (
                "confirmation_template_id",
                json!(""),
                "confirmation_template_id must be a non-empty string",
            ),
            (
                "reminder_template_id",
                Value::Null,
                "reminder_template_id is not set",
            ),
        ] {
            let mut bad = config();
            bad[key] = value;
            assert_eq!(Settings::from_config(&bad).unwrap_err(), message);
        }
        let mut bad = config();
        bad["eligible_postcodes"] = json!(["RH8", 7]);
        assert!(Settings::from_config(&bad).is_err());
    }

    #[test]
    fn postcodes_are_normalised() {
        for (input, expected) in [
            ("rh8 0bt", "RH8 0BT"),
            ("RH80BT", "RH8 0BT"),
            ("  rh8   0bt ", "RH8 0BT"),
            ("SW1A 1AA", "SW1A 1AA"),
            ("m11ae", "M1 1AE"),
            ("W1A0AX", "W1A 0AX"),
            ("CR6 9QH", "CR6 9QH"),
            ("EC1A 1BB", "EC1A 1BB"),
        ] {
            assert_eq!(
                normalise_postcode(input).as_deref(),
                Some(expected),
                "{input}"
            );
        }
        for bad in [
            "", "RH8", "RH8 0B", "RH8 BBT", "123 4AB", "RH8 0BT1", "ABC1 1AA", "RH8-0BT", "ŘH8 0BT",
        ] {
            assert_eq!(normalise_postcode(bad), None, "{bad}");
        }
    }

    #[test]
    fn eligibility_follows_areas_districts_and_sectors() {
        let p = prefixes();
        assert!(is_eligible("RH8 0BT", &p));
        assert!(is_eligible("RH9 8AB", &p));
        assert!(is_eligible("CR6 9QH", &p));
        assert!(is_eligible("TN8 5AA", &p));
        assert!(is_eligible("TN16 1AA", &p));
        // A district is not a string prefix: RH80 is another district.
        assert!(!is_eligible("RH80 1AA", &p));
        assert!(!is_eligible("CR6 8AA", &p));
        assert!(!is_eligible("RH1 1AA", &p));
        assert!(!is_eligible("T1 1AA", &p));
        assert!(!is_eligible("RH8 0BT", &[]));
        assert!(is_eligible("RH8 0BT", &["RH8 0BT".to_owned()]));
        assert_eq!(normalise_prefix("  cr6   9 ").as_deref(), Some("CR6 9"));
        assert_eq!(normalise_prefix(" "), None);
        assert_eq!(normalise_prefix("RH8*"), None);
    }

    #[test]
    fn money_and_words() {
        assert_eq!(format_pence(4500), "£45.00");
        assert_eq!(format_pence(5), "£0.05");
        assert_eq!(format_pence(123_450), "£1,234.50");
        assert_eq!(format_pence(100_000_000), "£1,000,000.00");
        assert_eq!(bins_text(1), "1 bin");
        assert_eq!(bins_text(3), "3 bins");
    }

    #[test]
    fn references() {
        assert_eq!(format_reference(1), "GW-000001");
        assert_eq!(format_reference(1_234_567), "GW-1234567");
        assert!(is_reference("GW-000001"));
        assert!(is_reference("GW-1234567"));
        for bad in [
            "",
            "GW-1",
            "gw-000001",
            "GW-00000a",
            "GW-000001/../x",
            "XX-000001",
        ] {
            assert!(!is_reference(bad), "{bad}");
        }
        let mut refs = vec!["GW-1000000", "GW-000002", "GW-999999", "GW-000010"];
        refs.sort_by_key(|r| reference_order(r));
        assert_eq!(refs, ["GW-000002", "GW-000010", "GW-999999", "GW-1000000"]);
    }

    #[test]
    fn keys_are_per_council() {
        assert_eq!(
            keys::references("tandridge"),
            "council/tandridge/references"
        );
        assert_eq!(
            keys::pending("tandridge", "GW-000001"),
            "council/tandridge/pending/GW-000001"
        );
        assert_eq!(
            keys::subscription("tandridge", "GW-000001"),
            "council/tandridge/subscriptions/GW-000001"
        );
        assert!(
            keys::subscription("tandridge", "GW-000001")
                .starts_with(&keys::subscriptions_prefix("tandridge"))
        );
        assert!(
            !keys::subscription("tandridge-north", "GW-000001")
                .starts_with(&keys::subscriptions_prefix("tandridge"))
        );
        assert_eq!(
            keys::unsent("tandridge", "GW-000001"),
            "council/tandridge/unsent/GW-000001"
        );
        assert_eq!(
            keys::reminded("tandridge", "GW-000001", "2027-05-01"),
            "council/tandridge/reminded/GW-000001/2027-05-01"
        );
    }

    fn pending() -> Pending {
        Pending {
            reference: "GW-000007".into(),
            payment_id: "hu20sqlact5260q2nanm0q8u93".into(),
            postcode: "RH8 0BT".into(),
            address: "12 High Street".into(),
            bins: 2,
            amount: 9000,
            name: "Jo Bloggs".into(),
            email: "jo@example.org".into(),
            created: 1_777_627_800,
        }
    }

    #[test]
    fn a_paid_subscription_runs_for_its_days() {
        let s = Subscription::paid(&pending(), date("2026-05-01"), 365);
        assert_eq!(s.start, date("2026-05-01"));
        assert_eq!(s.expires, date("2027-05-01"));
        // Across a leap day.
        assert_eq!(expiry(date("2028-01-01"), 365), date("2028-12-31"));
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["start"], "2026-05-01");
        assert_eq!(json["expires"], "2027-05-01");
        assert_eq!(serde_json::from_value::<Subscription>(json).unwrap(), s);
        assert_eq!(
            Value::Object(s.confirmation_personalisation()),
            json!({"name": "Jo Bloggs", "reference": "GW-000007", "bins": 2, "expires": "1 May 2027", "amount": "£90.00"})
        );
        assert_eq!(
            Value::Object(s.reminder_personalisation()),
            json!({"name": "Jo Bloggs", "reference": "GW-000007", "expires": "1 May 2027"})
        );
    }

    #[test]
    fn reminders_are_due_within_the_window() {
        let today = date("2027-04-01");
        assert!(reminder_due(today, date("2027-05-01"), 30));
        assert!(reminder_due(today, date("2027-04-01"), 30));
        assert!(!reminder_due(today, date("2027-05-02"), 30));
        assert!(!reminder_due(today, date("2027-03-31"), 30));
        assert!(reminder_due(today, today, 0));
        assert!(!reminder_due(today, today.add_days(1), 0));
    }

    #[test]
    fn leftover_payments() {
        let made = 1_777_627_800;
        assert_eq!(leftover(true, true, made, made + 10), Leftover::Complete);
        assert_eq!(
            leftover(false, false, made, made + 10 * 86_400),
            Leftover::Keep
        );
        assert_eq!(leftover(false, true, made, made + 3600), Leftover::Keep);
        assert_eq!(leftover(false, true, made, made + 86_401), Leftover::Forget);
    }

    fn origin(headers: &[(&str, &str)]) -> Option<String> {
        public_origin(|name| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| *v))
    }

    #[test]
    fn public_origins() {
        assert_eq!(
            origin(&[("host", "guildhall.example")]).as_deref(),
            Some("https://guildhall.example")
        );
        assert_eq!(
            origin(&[("host", "localhost:8080")]).as_deref(),
            Some("http://localhost:8080")
        );
        assert_eq!(
            origin(&[("host", "127.0.0.1:3000")]).as_deref(),
            Some("http://127.0.0.1:3000")
        );
        assert_eq!(
            origin(&[("host", "[::1]:80")]).as_deref(),
            Some("http://[::1]:80")
        );
        assert_eq!(
            origin(&[
                ("host", "localhost:8443"),
                ("x-forwarded-proto", "https, http")
            ])
            .as_deref(),
            Some("https://localhost:8443")
        );
        assert_eq!(
            origin(&[
                ("x-forwarded-host", "intranet.example"),
                ("x-forwarded-proto", "HTTP")
            ])
            .as_deref(),
            Some("http://intranet.example")
        );
        // Behind the platform: no Host, the browser's Origin.
        assert_eq!(
            origin(&[("origin", "http://127.0.0.1:41234")]).as_deref(),
            Some("http://127.0.0.1:41234")
        );
        assert_eq!(
            origin(&[
                ("origin", "null"),
                (
                    "referer",
                    "https://Guildhall.example/s/a/b/garden-waste/check-answers"
                )
            ])
            .as_deref(),
            Some("https://guildhall.example")
        );
        // A Host wins over the Origin; a Host that is not one is passed over.
        assert_eq!(
            origin(&[("host", "a.example"), ("origin", "https://b.example")]).as_deref(),
            Some("https://a.example")
        );
        assert_eq!(
            origin(&[("host", "evil.example/x?"), ("origin", "https://b.example")]).as_deref(),
            Some("https://b.example")
        );
        assert_eq!(origin(&[]), None);
        assert_eq!(origin(&[("host", ""), ("origin", "null")]), None);
        assert!(!is_loopback_host("localhost.example.org"));
        assert!(is_loopback_host("app.localhost"));
    }

    #[test]
    fn return_urls() {
        let base = "/s/north-downs/tandridge/garden-waste";
        assert_eq!(
            return_url("https://guildhall.example", base, "GW-000001"),
            "https://guildhall.example/s/north-downs/tandridge/garden-waste/payment-return?ref=GW-000001"
        );
        assert_eq!(
            return_url("http://localhost:8080", &format!("{base}/"), "GW-000001"),
            "http://localhost:8080/s/north-downs/tandridge/garden-waste/payment-return?ref=GW-000001"
        );
    }

    #[test]
    fn run_outcomes_count_failures() {
        let mut reminders = Tally::default();
        reminders.record("GW-000001", Ok(()));
        reminders.record("GW-000002", Err("GOV.UK Notify answered 500".into()));
        reminders.record("GW-000003", Ok(()));
        assert_eq!(
            run_outcome(&reminders, &Tally::default(), &Tally::default()),
            Err("1 of 3 reminders failed: GW-000002: GOV.UK Notify answered 500".to_owned())
        );
        let mut confirmations = Tally::default();
        for n in 0..7 {
            confirmations.record(&format!("GW-{n:06}"), Err("x".into()));
        }
        let outcome =
            run_outcome(&Tally::default(), &confirmations, &Tally::default()).unwrap_err();
        assert!(
            outcome.starts_with("7 of 7 confirmation emails failed: GW-000000: x;"),
            "{outcome}"
        );
        assert!(outcome.ends_with(" and 2 more"), "{outcome}");
        assert_eq!(
            run_outcome(&Tally::default(), &Tally::default(), &Tally::default()),
            Ok(())
        );
    }
}
