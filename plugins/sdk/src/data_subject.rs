//! Subject access and erasure: the records a plugin holds about a resident, found and
//! erased when a council answers a request under UK GDPR.
//!
//! A plugin that keeps personal data (names, email addresses, phone numbers, addresses)
//! declares it in `plugin.toml`:
//!
//! ```toml
//! [data_protection]
//! subject_requests = true
//! ```
//!
//! implements [`DataSubject`] and exports it with
//! [`export_data_subject!`](crate::export_data_subject) beside
//! [`export_plugin!`](crate::export_plugin). The platform calls it once for each council the
//! plugin is installed for ([`crate::context::council`]); the caller is anonymous and there
//! is no session. Use the matching helpers on [`Identifiers`] so an email address matches
//! whatever its case and a phone number whatever its spacing.
//!
//! Name how your events refer to a record ([`Record::event_key`]): the platform keeps event
//! payloads apart from its audit chain, returns the matching events with the record and
//! erases their payloads when the record is erased.
//!
//! ```no_run
//! use guildhall_plugin::data_subject::{DataSubject, Erased, Identifiers, Record};
//! use guildhall_plugin::{Handler, Request, Response};
//!
//! struct Bookings;
//!
//! impl Handler for Bookings {
//!     fn handle(_req: Request) -> Response {
//!         Response::text(200, "bookings")
//!     }
//! }
//!
//! impl DataSubject for Bookings {
//!     fn access(subject: &Identifiers) -> Result<Vec<Record>, String> {
//!         // Look up the council's records and keep those that match.
//!         let (id, email) = ("17", "jo@example.org");
//!         Ok(if subject.email_is(Some(email)) {
//!             vec![
//!                 Record::new("booking", &serde_json::json!({ "id": id, "email": email }))
//!                     .event_key("booking_id", id),
//!             ]
//!         } else {
//!             Vec::new()
//!         })
//!     }
//!
//!     fn erase(subject: &Identifiers) -> Result<Vec<Erased>, String> {
//!         // Delete what matches, then say what went.
//!         Ok(Self::access(subject)?.into_iter().map(Record::erased).collect())
//!     }
//! }
//!
//! guildhall_plugin::export_plugin!(Bookings);
//! guildhall_plugin::export_data_subject!(Bookings);
//! ```

use serde::Serialize;

/// Bindings for the `guildhall:platform/data-subjects` world, used by
/// [`export_data_subject!`](crate::export_data_subject); not part of the SDK's interface.
#[doc(hidden)]
pub mod __bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "guildhall:platform/data-subjects",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "guildhall_plugin::data_subject::__bindings",
    });
}

use __bindings::exports::guildhall::platform::data_subject as wit;

/// What the resident gave to find their data. Any field may be absent; a record matches
/// when any identifier given matches it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identifiers {
    /// An email address.
    pub email: Option<String>,
    /// A telephone number.
    pub phone: Option<String>,
    /// A full name.
    pub name: Option<String>,
    /// A postal address as one line.
    pub address: Option<String>,
    /// A Unique Property Reference Number.
    pub uprn: Option<String>,
    /// A reference the service gave the resident.
    pub reference: Option<String>,
}

/// Folds case and runs of white space, for names and addresses.
fn words(text: &str) -> String {
    text.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The digits of a phone number, with a leading `+44` or `44` read as `0`.
fn digits(phone: &str) -> String {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    match digits.strip_prefix("44") {
        Some(rest) if phone.trim_start().starts_with('+') || digits.len() == 12 => {
            format!("0{rest}")
        }
        _ => digits,
    }
}

/// Whether `given` (the resident's) and `held` (the record's) are both present and equal
/// after `normal`.
fn same(given: Option<&str>, held: Option<&str>, normal: impl Fn(&str) -> String) -> bool {
    match (given, held) {
        (Some(given), Some(held)) => {
            let given = normal(given);
            !given.is_empty() && given == normal(held)
        }
        _ => false,
    }
}

impl Identifiers {
    /// Whether no identifier was given; a plugin then matches nothing.
    pub fn is_empty(&self) -> bool {
        [
            &self.email,
            &self.phone,
            &self.name,
            &self.address,
            &self.uprn,
            &self.reference,
        ]
        .iter()
        .all(|field| field.as_deref().is_none_or(|value| value.trim().is_empty()))
    }

    /// Whether the record's email address is the resident's, whatever the case.
    pub fn email_is(&self, held: Option<&str>) -> bool {
        same(self.email.as_deref(), held, |e| e.trim().to_lowercase())
    }

    /// Whether the record's phone number is the resident's, whatever the spacing and
    /// punctuation (`+44 1632 960 001` is `01632960001`).
    pub fn phone_is(&self, held: Option<&str>) -> bool {
        same(self.phone.as_deref(), held, digits)
    }

    /// Whether the record's name is the resident's, whatever the case and spacing.
    pub fn name_is(&self, held: Option<&str>) -> bool {
        same(self.name.as_deref(), held, words)
    }

    /// Whether the record's address is the resident's, whatever the case and spacing.
    pub fn address_is(&self, held: Option<&str>) -> bool {
        same(self.address.as_deref(), held, words)
    }

    /// Whether the record's UPRN is the resident's (leading zeros aside).
    pub fn uprn_is(&self, held: Option<&str>) -> bool {
        same(self.uprn.as_deref(), held, |u| {
            u.trim().trim_start_matches('0').to_string()
        })
    }

    /// Whether the record's reference is the one the resident gave, whatever the case.
    pub fn reference_is(&self, held: Option<&str>) -> bool {
        same(self.reference.as_deref(), held, |r| r.trim().to_lowercase())
    }
}

/// One record held about the resident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    schema: String,
    data: String,
    event_keys: Vec<(String, String)>,
}

impl Record {
    /// A record of kind `schema` (such as `service-request`) holding `data`, serialised as
    /// JSON with the personal data in it.
    pub fn new(schema: impl Into<String>, data: &impl Serialize) -> Self {
        Self {
            schema: schema.into(),
            data: serde_json::to_string(data).unwrap_or_else(|e| {
                serde_json::json!({ "unserialisable": e.to_string() }).to_string()
            }),
            event_keys: Vec::new(),
        }
    }

    /// Says that this plugin's events whose payload has the top-level `field` equal to
    /// `value` are about this record.
    pub fn event_key(mut self, field: impl Into<String>, value: impl Into<String>) -> Self {
        self.event_keys.push((field.into(), value.into()));
        self
    }

    /// What erasing this record reports.
    pub fn erased(self) -> Erased {
        Erased {
            schema: self.schema,
            event_keys: self.event_keys,
        }
    }
}

/// One record erased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erased {
    schema: String,
    event_keys: Vec<(String, String)>,
}

impl Erased {
    /// A record of kind `schema` was erased.
    pub fn new(schema: impl Into<String>) -> Self {
        Self {
            schema: schema.into(),
            event_keys: Vec::new(),
        }
    }

    /// Says that this plugin's events whose payload has the top-level `field` equal to
    /// `value` were about the erased record; the platform erases their payloads.
    pub fn event_key(mut self, field: impl Into<String>, value: impl Into<String>) -> Self {
        self.event_keys.push((field.into(), value.into()));
        self
    }
}

/// A plugin's answers to subject requests.
///
/// Implement it (usually on the same unit struct as [`crate::Handler`]) and export it with
/// [`export_data_subject!`](crate::export_data_subject).
pub trait DataSubject {
    /// Every record held about `subject` for the council of [`crate::context::council`].
    /// `Err` with a short description (never personal data) when the records cannot be read.
    fn access(subject: &Identifiers) -> Result<Vec<Record>, String>;

    /// Erases every record held about `subject` for the council of
    /// [`crate::context::council`] and says what was erased.
    fn erase(subject: &Identifiers) -> Result<Vec<Erased>, String>;
}

fn event_keys(keys: Vec<(String, String)>) -> Vec<wit::EventKey> {
    keys.into_iter()
        .map(|(field, value)| wit::EventKey { field, value })
        .collect()
}

#[doc(hidden)]
pub fn __identifiers(subject: wit::Identifiers) -> Identifiers {
    Identifiers {
        email: subject.email,
        phone: subject.phone,
        name: subject.name,
        address: subject.address,
        uprn: subject.uprn,
        reference: subject.reference,
    }
}

#[doc(hidden)]
pub fn __records(records: Result<Vec<Record>, String>) -> Result<Vec<wit::SubjectRecord>, String> {
    Ok(records?
        .into_iter()
        .map(|record| wit::SubjectRecord {
            schema: record.schema,
            data: record.data,
            event_keys: event_keys(record.event_keys),
        })
        .collect())
}

#[doc(hidden)]
pub fn __erased(erased: Result<Vec<Erased>, String>) -> Result<Vec<wit::ErasedRecord>, String> {
    Ok(erased?
        .into_iter()
        .map(|record| wit::ErasedRecord {
            schema: record.schema,
            event_keys: event_keys(record.event_keys),
        })
        .collect())
}

/// Exports a [`DataSubject`] implementation as the component's
/// `guildhall:platform/data-subject`.
///
/// Use it once, at the top level of your plugin crate, beside
/// [`export_plugin!`](crate::export_plugin): `guildhall_plugin::export_data_subject!(MyPlugin);`.
/// The manifest must declare `[data_protection] subject_requests = true`.
#[macro_export]
macro_rules! export_data_subject {
    ($plugin:ty) => {
        #[doc(hidden)]
        #[derive(Debug)]
        struct __GuildhallDataSubjectExport;

        impl $crate::data_subject::__bindings::exports::guildhall::platform::data_subject::Guest
            for __GuildhallDataSubjectExport
        {
            fn access(
                subject: $crate::data_subject::__bindings::exports::guildhall::platform::data_subject::Identifiers,
            ) -> ::std::result::Result<
                ::std::vec::Vec<
                    $crate::data_subject::__bindings::exports::guildhall::platform::data_subject::SubjectRecord,
                >,
                ::std::string::String,
            > {
                let subject = $crate::data_subject::__identifiers(subject);
                $crate::data_subject::__records(
                    <$plugin as $crate::data_subject::DataSubject>::access(&subject),
                )
            }

            fn erase(
                subject: $crate::data_subject::__bindings::exports::guildhall::platform::data_subject::Identifiers,
            ) -> ::std::result::Result<
                ::std::vec::Vec<
                    $crate::data_subject::__bindings::exports::guildhall::platform::data_subject::ErasedRecord,
                >,
                ::std::string::String,
            > {
                let subject = $crate::data_subject::__identifiers(subject);
                $crate::data_subject::__erased(
                    <$plugin as $crate::data_subject::DataSubject>::erase(&subject),
                )
            }
        }

        $crate::data_subject::__bindings::export!(
            __GuildhallDataSubjectExport with_types_in $crate::data_subject::__bindings
        );
    };
}

#[cfg(test)]
mod tests {
    use super::Identifiers;

    #[test]
    fn identifiers_match_as_residents_write_them() {
        let subject = Identifiers {
            email: Some(" Jo@Example.org".into()),
            phone: Some("+44 1632 960 001".into()),
            name: Some("jo  BLOGGS".into()),
            uprn: Some("000100012345".into()),
            ..Identifiers::default()
        };
        assert!(subject.email_is(Some("jo@example.org")));
        assert!(!subject.email_is(Some("jo@example.com")));
        assert!(!subject.email_is(None));
        assert!(subject.phone_is(Some("01632 960001")));
        assert!(!subject.phone_is(Some("01632 960002")));
        assert!(subject.name_is(Some("Jo Bloggs")));
        assert!(subject.uprn_is(Some("100012345")));
        assert!(!subject.address_is(Some("1 High Street")));
        assert!(!subject.reference_is(Some("7")));
        assert!(!subject.is_empty());
        let blank = Identifiers {
            email: Some("  ".into()),
            ..Identifiers::default()
        };
        assert!(blank.is_empty());
        assert!(!blank.email_is(Some("  ")));
    }
}
