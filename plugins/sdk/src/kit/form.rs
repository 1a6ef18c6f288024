//! Submitted forms, their checks and their errors, in the GOV.UK Design System's way: every
//! problem found is reported at once, at most one per field, in the order of the page, with
//! the answers given shown again.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::http::{BodyError, Request};
use crate::time::{Date, MONTHS};
use crate::urlencoded;

/// The name of the hidden field that carries a session's token; never kept with answers.
pub const CSRF_FIELD: &str = "csrf";

/// A submitted form: the name/value pairs of an `application/x-www-form-urlencoded` body or
/// of a query string, in the order sent. Also what a [`crate::kit::Journey`] keeps of each
/// page, and what a page shows again (`form.values` in templates).
///
/// Reading is forgiving: [`Form::text`] trims surrounding space and answers `""` for a field
/// that was not sent, so `""` means "not answered" whether the field was empty or missing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    /// An empty form.
    pub fn new() -> Form {
        Form::default()
    }

    /// Decodes `application/x-www-form-urlencoded` text (`+` is a space).
    pub fn parse(encoded: &str) -> Form {
        Form {
            pairs: urlencoded::parse(encoded),
        }
    }

    /// The form from a request's body, for a `POST` form.
    pub fn from_body(req: &Request) -> Result<Form, BodyError> {
        Ok(Form::parse(req.text()?))
    }

    /// The form from a request's query string, for a `GET` form.
    pub fn from_query(req: &Request) -> Form {
        Form::parse(&req.query)
    }

    /// A form of these pairs.
    pub fn from_pairs<N: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Form {
        Form {
            pairs: pairs
                .into_iter()
                .map(|(n, v)| (n.into(), v.into()))
                .collect(),
        }
    }

    /// Every pair, in the order sent.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// Whether no field was sent.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The first value of field `name` as sent, untrimmed.
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of field `name`, trimmed; `""` when the field was not sent.
    pub fn text(&self, name: &str) -> &str {
        self.raw(name).map(str::trim).unwrap_or("")
    }

    /// The first value of field `name`, trimmed, or `None` when it is empty or was not sent.
    pub fn optional(&self, name: &str) -> Option<&str> {
        Some(self.text(name)).filter(|v| !v.is_empty())
    }

    /// Every non-empty value of field `name`, trimmed, in order: the boxes ticked in a group
    /// of checkboxes.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// The session token sent with the form, if any. The platform has already checked it.
    pub fn csrf(&self) -> Option<&str> {
        self.raw(CSRF_FIELD)
    }

    /// Sets field `name` to `value`, replacing every value it had.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.pairs.retain(|(n, _)| n != name);
        self.pairs.push((name.to_owned(), value.into()));
    }

    /// The form without the fields `names`.
    pub fn without(&self, names: &[&str]) -> Form {
        Form {
            pairs: self
                .pairs
                .iter()
                .filter(|(n, _)| !names.contains(&n.as_str()))
                .cloned()
                .collect(),
        }
    }

    /// The form with only the fields `names`, for keeping exactly a page's own fields.
    pub fn only(&self, names: &[&str]) -> Form {
        Form {
            pairs: self
                .pairs
                .iter()
                .filter(|(n, _)| names.contains(&n.as_str()))
                .cloned()
                .collect(),
        }
    }

    /// The date given in the three fields `{name}-day`, `{name}-month` and `{name}-year`, or
    /// `None` when they do not make a real date. Use [`Validator::date`] to say why.
    pub fn date(&self, name: &str) -> Option<Date> {
        let (day, month, year) = self.date_parts(name);
        parse_date(&day, &month, &year).ok().flatten()
    }

    fn date_parts(&self, name: &str) -> (String, String, String) {
        let part = |p: &str| self.text(&format!("{name}-{p}")).to_owned();
        (part("day"), part("month"), part("year"))
    }

    /// Starts checking this form's answers; see [`Validator`].
    pub fn check(&self) -> Validator<'_> {
        Validator {
            form: self,
            errors: Errors::new(),
        }
    }

    /// What templates see as `form.values` (the first value of each field) and `form.lists`
    /// (every value of each field).
    pub(crate) fn values_and_lists(&self) -> (BTreeMap<&str, &str>, BTreeMap<&str, Vec<&str>>) {
        let mut values = BTreeMap::new();
        let mut lists: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (name, value) in &self.pairs {
            if name == CSRF_FIELD {
                continue;
            }
            values.entry(name.as_str()).or_insert(value.as_str());
            lists.entry(name.as_str()).or_default().push(value.as_str());
        }
        (values, lists)
    }
}

/// One problem with one field, shown in the error summary and beside the field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field's name, e.g. `location`, or a date field's name without `-day`.
    pub field: String,
    /// The id of the element the error summary links to: the field itself, the first radio
    /// or checkbox of a group (which carries the group's name), or the first part of a date
    /// in error (`{field}-day`, `{field}-month`, `{field}-year`).
    pub target: String,
    /// The message, e.g. `Enter a description of the problem`.
    pub text: String,
    /// For a date, the parts in error (`day`, `month`, `year`); empty for every part.
    pub parts: Vec<String>,
}

/// One entry of the error summary, as the layout and `govuk.error_summary` take it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SummaryError {
    /// `#` and the id of the element to go to.
    pub href: String,
    /// The message.
    pub text: String,
}

/// The problems found with a form, in the order of the page, at most one per field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Errors {
    list: Vec<FieldError>,
}

impl Errors {
    /// No errors.
    pub fn new() -> Errors {
        Errors::default()
    }

    /// Adds `message` for `field`, linked to the element with id `field`; ignored when the
    /// field already has an error (the first problem found is the one shown).
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.add_targeted(field, field, message, Vec::new());
    }

    /// Adds `message` for `field`, linked to the element with id `target`, with the parts
    /// in error (for a date); ignored when the field already has an error.
    pub fn add_targeted(
        &mut self,
        field: &str,
        target: &str,
        message: impl Into<String>,
        parts: Vec<String>,
    ) {
        if self.get(field).is_some() {
            return;
        }
        self.list.push(FieldError {
            field: field.to_owned(),
            target: target.to_owned(),
            text: message.into(),
            parts,
        });
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// The message for `field`, if it has one.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.list
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.text.as_str())
    }

    /// Every error, in order.
    pub fn iter(&self) -> impl Iterator<Item = &FieldError> {
        self.list.iter()
    }

    /// The error summary's entries: `{href: "#target", text}`, in order.
    pub fn summary(&self) -> Vec<SummaryError> {
        self.list
            .iter()
            .map(|e| SummaryError {
                href: format!("#{}", e.target),
                text: e.text.clone(),
            })
            .collect()
    }

    /// `Ok(())` when there are none, otherwise these errors.
    pub fn into_result(self) -> Result<(), Errors> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }

    /// What templates see as `form.error` (field → message) and `form.parts` (date field →
    /// parts in error).
    pub(crate) fn messages_and_parts(&self) -> (BTreeMap<&str, &str>, BTreeMap<&str, &[String]>) {
        let mut messages = BTreeMap::new();
        let mut parts = BTreeMap::new();
        for e in &self.list {
            messages.insert(e.field.as_str(), e.text.as_str());
            if !e.parts.is_empty() {
                parts.insert(e.field.as_str(), e.parts.as_slice());
            }
        }
        (messages, parts)
    }
}

impl fmt::Display for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let texts: Vec<&str> = self.list.iter().map(|e| e.text.as_str()).collect();
        f.write_str(&texts.join("; "))
    }
}

/// Checks a form's fields one after another, collecting [`Errors`].
///
/// Check the fields in the order the page shows them, so the error summary lists them in
/// that order. Each check returns the answer when it is good, `None` otherwise.
///
/// ```
/// use guildhall_plugin::kit::Form;
///
/// let form = Form::parse("service=pothole&location=&email=jo%40example");
/// let mut check = form.check();
/// let service = check.choice("service", &["pothole", "graffiti"], "Select the type of problem");
/// let location = check
///     .text("location")
///     .required("Enter the street or landmark where the problem is")
///     .max_chars(200, "Location must be 200 characters or fewer")
///     .value();
/// let email = check
///     .text("email")
///     .email("Enter an email address in the correct format, like name@example.com")
///     .value();
/// let errors = check.into_errors();
/// assert_eq!(service.as_deref(), Some("pothole"));
/// assert_eq!((location, email), (None, None));
/// assert_eq!(errors.summary()[0].href, "#location");
/// assert_eq!(errors.len(), 2);
/// ```
#[derive(Debug)]
pub struct Validator<'f> {
    form: &'f Form,
    errors: Errors,
}

impl<'f> Validator<'f> {
    /// Checks the text field `name` (its value trimmed); chain the checks, then take
    /// [`TextCheck::value`].
    pub fn text(&mut self, name: &str) -> TextCheck<'_> {
        TextCheck {
            value: self.form.text(name).to_owned(),
            name: name.to_owned(),
            errors: &mut self.errors,
            failed: false,
        }
    }

    /// Checks a group of radios (or a select): an answer is required and must be one of
    /// `allowed`. `message` is for both cases, e.g. `Select where the problem is`.
    pub fn choice(
        &mut self,
        name: &str,
        allowed: &[&str],
        message: impl Into<String>,
    ) -> Option<String> {
        let value = self.form.text(name);
        if allowed.contains(&value) {
            Some(value.to_owned())
        } else {
            self.errors.add(name, message);
            None
        }
    }

    /// Checks a group of checkboxes: every ticked value must be one of `allowed` (a value
    /// that is not means a forged form: the group is in error with `required`'s message or
    /// a generic one), and when `required` is given at least one must be ticked.
    pub fn choices(&mut self, name: &str, allowed: &[&str], required: Option<&str>) -> Vec<String> {
        let ticked = self.form.all(name);
        let message = required.unwrap_or("Select from the options given");
        if ticked.iter().any(|v| !allowed.contains(v)) || (required.is_some() && ticked.is_empty())
        {
            self.errors.add(name, message);
            return Vec::new();
        }
        ticked.into_iter().map(str::to_owned).collect()
    }

    /// Checks the date in `{name}-day`, `{name}-month` and `{name}-year`. `label` names the
    /// date in messages as the GOV.UK pattern asks: with label `Date the problem started`,
    /// a missing month gives `Date the problem started must include a month` and 31 June
    /// gives `Date the problem started must be a real date`. A date left wholly empty is no
    /// error unless [`DateCheck::required`] says so.
    pub fn date(&mut self, name: &str, label: &str) -> DateCheck<'_> {
        let (day, month, year) = self.form.date_parts(name);
        let parsed = parse_date(&day, &month, &year);
        let mut check = DateCheck {
            name: name.to_owned(),
            errors: &mut self.errors,
            empty: false,
            failed: false,
            date: None,
        };
        match parsed {
            Ok(None) => check.empty = true,
            Ok(Some(date)) => check.date = Some(date),
            Err(problem) => check.fail_with(&problem.message(label), problem.parts()),
        }
        check
    }

    /// Adds an error of your own for `field`.
    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors.add(field, message);
    }

    /// The errors found so far.
    pub fn errors(&self) -> &Errors {
        &self.errors
    }

    /// The errors found.
    pub fn into_errors(self) -> Errors {
        self.errors
    }
}

/// The checks of one text field, from [`Validator::text`]. Each check runs only while the
/// field has no error yet, and the format checks ([`email`](Self::email),
/// [`phone`](Self::phone), [`parse`](Self::parse) ...) only when something was entered, so an
/// optional field may be left empty.
#[derive(Debug)]
pub struct TextCheck<'v> {
    name: String,
    value: String,
    errors: &'v mut Errors,
    failed: bool,
}

impl TextCheck<'_> {
    fn fail(&mut self, message: impl Into<String>) {
        self.errors.add(&self.name, message);
        self.failed = true;
    }

    fn checking(&self) -> bool {
        !self.failed && !self.value.is_empty()
    }

    /// Something must be entered: `Enter a description of the problem`.
    pub fn required(mut self, message: impl Into<String>) -> Self {
        if !self.failed && self.value.is_empty() {
            self.fail(message);
        }
        self
    }

    /// At most `max` characters: `Description must be 2000 characters or fewer`.
    pub fn max_chars(mut self, max: usize, message: impl Into<String>) -> Self {
        if self.checking() && self.value.chars().count() > max {
            self.fail(message);
        }
        self
    }

    /// At least `min` characters: `Description must be 10 characters or more`.
    pub fn min_chars(mut self, min: usize, message: impl Into<String>) -> Self {
        if self.checking() && self.value.chars().count() < min {
            self.fail(message);
        }
        self
    }

    /// An email address ([`is_email`]): `Enter an email address in the correct format, like
    /// name@example.com`.
    pub fn email(mut self, message: impl Into<String>) -> Self {
        if self.checking() && !is_email(&self.value) {
            self.fail(message);
        }
        self
    }

    /// A telephone number ([`is_phone`]): `Enter a telephone number, like 01632 960 001,
    /// 07700 900 982 or +44 808 157 0192`.
    pub fn phone(mut self, message: impl Into<String>) -> Self {
        if self.checking() && !is_phone(&self.value) {
            self.fail(message);
        }
        self
    }

    /// One of `allowed`.
    pub fn one_of(mut self, allowed: &[&str], message: impl Into<String>) -> Self {
        if self.checking() && !allowed.contains(&self.value.as_str()) {
            self.fail(message);
        }
        self
    }

    /// Whatever `ok` accepts.
    pub fn matches(mut self, ok: impl FnOnce(&str) -> bool, message: impl Into<String>) -> Self {
        if self.checking() && !ok(&self.value) {
            self.fail(message);
        }
        self
    }

    /// The answer turned into a `T` by `parse` (for example a postcode normalised), or
    /// `message` when `parse` gives `None`; `None` when the field is empty or in error.
    pub fn parse<T>(
        mut self,
        parse: impl FnOnce(&str) -> Option<T>,
        message: impl Into<String>,
    ) -> Option<T> {
        if !self.checking() {
            return None;
        }
        let parsed = parse(&self.value);
        if parsed.is_none() {
            self.fail(message);
        }
        parsed
    }

    /// The trimmed answer when it passed every check and is not empty.
    pub fn value(self) -> Option<String> {
        self.checking().then_some(self.value)
    }
}

/// The checks of one date field, from [`Validator::date`].
#[derive(Debug)]
pub struct DateCheck<'v> {
    name: String,
    errors: &'v mut Errors,
    empty: bool,
    failed: bool,
    date: Option<Date>,
}

impl DateCheck<'_> {
    fn fail_with(&mut self, message: &str, parts: Vec<String>) {
        let target = format!(
            "{}-{}",
            self.name,
            parts.first().map(String::as_str).unwrap_or("day")
        );
        self.errors
            .add_targeted(&self.name, &target, message, parts);
        self.failed = true;
        self.date = None;
    }

    /// A date must be entered: `Enter the date the problem started`.
    pub fn required(mut self, message: &str) -> Self {
        if self.empty && !self.failed {
            self.fail_with(message, Vec::new());
        }
        self
    }

    /// The date must not be after `latest` (for example today): `Date the problem started
    /// must be today or in the past`.
    pub fn not_after(mut self, latest: Date, message: &str) -> Self {
        if self.date.is_some_and(|d| d > latest) {
            self.fail_with(message, Vec::new());
        }
        self
    }

    /// The date must not be before `earliest`: `Date of the event must be today or in the
    /// future`.
    pub fn not_before(mut self, earliest: Date, message: &str) -> Self {
        if self.date.is_some_and(|d| d < earliest) {
            self.fail_with(message, Vec::new());
        }
        self
    }

    /// The date, when one was entered and it passed every check.
    pub fn value(self) -> Option<Date> {
        self.date
    }
}

/// A part of a date input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatePart {
    /// The day of the month.
    Day,
    /// The month.
    Month,
    /// The year.
    Year,
}

impl DatePart {
    /// `day`, `month` or `year`: the suffix of the part's field and its word in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            DatePart::Day => "day",
            DatePart::Month => "month",
            DatePart::Year => "year",
        }
    }
}

/// Why three date fields do not make a date, in the GOV.UK pattern's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DateProblem {
    /// Some parts, not all, are empty: "… must include a month".
    Incomplete(Vec<DatePart>),
    /// The year does not have 4 digits: "Year must include 4 numbers".
    YearDigits,
    /// The parts are not numbers of a date that exists (31 June, month 13, day `x`):
    /// "… must be a real date". Carries the parts that are wrong (all when it is their
    /// combination).
    NotReal(Vec<DatePart>),
}

impl DateProblem {
    /// The message for a date named `label`, e.g. `Date of birth must include a month`.
    pub fn message(&self, label: &str) -> String {
        match self {
            DateProblem::Incomplete(parts) => {
                let words: Vec<&str> = parts.iter().map(|p| p.as_str()).collect();
                format!("{label} must include a {}", words.join(" and "))
            }
            DateProblem::YearDigits => "Year must include 4 numbers".to_owned(),
            DateProblem::NotReal(_) => format!("{label} must be a real date"),
        }
    }

    /// The parts to show in error; empty for all of them.
    pub fn parts(&self) -> Vec<String> {
        let parts: &[DatePart] = match self {
            DateProblem::Incomplete(parts) | DateProblem::NotReal(parts) => parts,
            DateProblem::YearDigits => &[DatePart::Year],
        };
        if parts.len() == 3 {
            return Vec::new();
        }
        parts.iter().map(|p| p.as_str().to_owned()).collect()
    }
}

/// Reads a date from its three fields: `Ok(None)` when all are empty, `Ok(Some(date))` for a
/// real date, otherwise why not. Day and month are numbers (`07` and `7` alike); the month may
/// also be its name or first three letters (`Jan`, `january`), as the GOV.UK pattern
/// suggests accepting; the year has 4 digits.
pub fn parse_date(day: &str, month: &str, year: &str) -> Result<Option<Date>, DateProblem> {
    let (day, month, year) = (day.trim(), month.trim(), year.trim());
    let missing: Vec<DatePart> = [
        (DatePart::Day, day),
        (DatePart::Month, month),
        (DatePart::Year, year),
    ]
    .into_iter()
    .filter(|(_, v)| v.is_empty())
    .map(|(p, _)| p)
    .collect();
    if missing.len() == 3 {
        return Ok(None);
    }
    if !missing.is_empty() {
        return Err(DateProblem::Incomplete(missing));
    }
    let number = |s: &str, max_digits: usize| -> Option<u32> {
        (s.len() <= max_digits && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let d = number(day, 2).filter(|d| (1..=31).contains(d));
    let m = number(month, 2)
        .or_else(|| month_from_name(month))
        .filter(|m| (1..=12).contains(m));
    let mut wrong = Vec::new();
    if d.is_none() {
        wrong.push(DatePart::Day);
    }
    if m.is_none() {
        wrong.push(DatePart::Month);
    }
    if !year.bytes().all(|b| b.is_ascii_digit()) {
        wrong.push(DatePart::Year);
    }
    if !wrong.is_empty() {
        return Err(DateProblem::NotReal(wrong));
    }
    if year.len() != 4 {
        return Err(DateProblem::YearDigits);
    }
    let (Some(d), Some(m), Ok(y)) = (d, m, year.parse::<i32>()) else {
        return Err(DateProblem::NotReal(vec![
            DatePart::Day,
            DatePart::Month,
            DatePart::Year,
        ]));
    };
    // Day and month are each in range here, so a date that does not exist is the day's fault
    // (31 June, 29 February 2025), or the year's for year 0.
    match Date::new(y, m as u8, d as u8) {
        Some(date) => Ok(Some(date)),
        None if y < 1 => Err(DateProblem::NotReal(vec![DatePart::Year])),
        None => Err(DateProblem::NotReal(vec![DatePart::Day])),
    }
}

fn month_from_name(name: &str) -> Option<u32> {
    let lower = name.to_ascii_lowercase();
    if lower.len() < 3 {
        return None;
    }
    MONTHS
        .iter()
        .position(|m| {
            let m = m.to_ascii_lowercase();
            m == lower
                || (lower.len() == 3 && m.starts_with(&lower))
                || (m == "september" && lower == "sept")
        })
        .map(|i| i as u32 + 1)
}

/// Whether `s` looks like an email address: one `@` with something before it, a domain with
/// a dot and no empty labels after it, no spaces, at most 254 characters. (Whether it
/// receives mail only sending one can tell.)
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    s.len() <= 254
        && !local.is_empty()
        && !domain.contains('@')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        && domain.contains('.')
        && domain.split('.').all(|label| !label.is_empty())
}

/// Whether `s` looks like a telephone number, allowing spaces, hyphens, dots and brackets: a
/// UK number of 10 or 11 digits starting with `0` (`01632 960 001`, `07700 900 982`), or an
/// international one, `+` (or `00`) and 8 to 15 digits (`+44 808 157 0192`).
pub fn is_phone(s: &str) -> bool {
    let compact: String = s
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let international = compact
        .strip_prefix('+')
        .or_else(|| compact.strip_prefix("00"));
    let digits_only = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    match international {
        Some(rest) => digits_only(rest) && (8..=15).contains(&rest.len()),
        None => {
            digits_only(&compact) && compact.starts_with('0') && (10..=11).contains(&compact.len())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

    #[test]
    fn forms_parse_bodies_and_queries() {
        let req = Request::new(Method::Post, "/where?postcode=rh8+0bt")
            .with_body("service=pothole&location=++High+St%21++&kind=a&kind=&kind=b&csrf=tok");
        let form = Form::from_body(&req).unwrap();
        assert_eq!(form.text("service"), "pothole");
        assert_eq!(form.text("location"), "High St!");
        assert_eq!(form.raw("location"), Some("  High St!  "));
        assert_eq!(form.text("missing"), "");
        assert_eq!(form.optional("missing"), None);
        assert_eq!(form.all("kind"), vec!["a", "b"]);
        assert_eq!(form.csrf(), Some("tok"));
        assert_eq!(form.without(&["csrf"]).csrf(), None);
        assert_eq!(form.only(&["service"]).pairs().len(), 1);
        assert_eq!(Form::from_query(&req).text("postcode"), "rh8 0bt");
        let bad = Request::new(Method::Post, "/").with_body(vec![0xff, 0xfe]);
        assert_eq!(Form::from_body(&bad), Err(BodyError::NotUtf8));
    }

    #[test]
    fn values_skip_the_token() {
        let form = Form::parse("a=1&a=2&csrf=t&b=");
        let (values, lists) = form.values_and_lists();
        assert_eq!(values.get("a"), Some(&"1"));
        assert_eq!(values.get("b"), Some(&""));
        assert_eq!(values.get("csrf"), None);
        assert_eq!(lists.get("a"), Some(&vec!["1", "2"]));
    }

    #[test]
    fn errors_keep_order_and_one_per_field() {
        let form = Form::parse("service=&location=&description=x");
        let mut check = form.check();
        let service = check.choice("service", &["pothole"], "Select the type of problem");
        let location = check
            .text("location")
            .required("Enter the street or landmark")
            .max_chars(5, "too long")
            .value();
        let description = check
            .text("description")
            .required("Enter a description of the problem")
            .min_chars(10, "Description must be 10 characters or more")
            .max_chars(1, "never reached: one error per field")
            .value();
        check.error("location", "a second error for a field is ignored");
        let errors = check.into_errors();
        assert_eq!((service, location, description), (None, None, None));
        assert_eq!(
            errors.summary(),
            vec![
                SummaryError {
                    href: "#service".to_owned(),
                    text: "Select the type of problem".to_owned()
                },
                SummaryError {
                    href: "#location".to_owned(),
                    text: "Enter the street or landmark".to_owned()
                },
                SummaryError {
                    href: "#description".to_owned(),
                    text: "Description must be 10 characters or more".to_owned()
                },
            ]
        );
        assert_eq!(errors.get("location"), Some("Enter the street or landmark"));
        assert!(errors.clone().into_result().is_err());
        assert!(Errors::new().into_result().is_ok());
    }

    #[test]
    fn optional_fields_are_checked_only_when_given() {
        let form = Form::parse("email=&phone=01632+960+001&name=Jo&postcode=rh80bt&other=x");
        let mut check = form.check();
        assert_eq!(check.text("email").email("bad email").value(), None);
        assert_eq!(
            check.text("phone").phone("bad phone").value().as_deref(),
            Some("01632 960 001")
        );
        assert_eq!(
            check
                .text("postcode")
                .parse(|p| Some(p.to_ascii_uppercase()), "bad postcode"),
            Some("RH80BT".to_owned())
        );
        assert_eq!(
            check.text("other").one_of(&["a"], "Select a or b").value(),
            None
        );
        assert_eq!(
            check
                .text("name")
                .matches(|n| n.len() > 5, "Name is too short")
                .value(),
            None
        );
        let errors = check.into_errors();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["other", "name"]);
    }

    #[test]
    fn checkboxes() {
        let form = Form::parse("kind=a&kind=b");
        let mut check = form.check();
        assert_eq!(
            check.choices("kind", &["a", "b", "c"], None),
            vec!["a", "b"]
        );
        assert!(check.choices("none", &["a"], None).is_empty());
        assert!(
            check
                .choices("none2", &["a"], Some("Select at least one"))
                .is_empty()
        );
        assert!(check.choices("kind", &["a"], None).is_empty());
        let errors = check.into_errors();
        assert_eq!(errors.get("none2"), Some("Select at least one"));
        assert_eq!(errors.get("kind"), Some("Select from the options given"));
        assert_eq!(errors.get("none"), None);
    }

    #[test]
    fn email_and_phone_formats() {
        for good in ["name@example.com", "a.b+c@sub.example.co.uk"] {
            assert!(is_email(good), "{good}");
        }
        for bad in [
            "",
            "name",
            "@example.com",
            "name@example",
            "name@@example.com",
            "na me@example.com",
            "name@example..com",
            "name@.com",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
        for good in [
            "01632 960 001",
            "07700 900 982",
            "+44 808 157 0192",
            "(01632) 960-001",
            "0044 808 157 0192",
        ] {
            assert!(is_phone(good), "{good}");
        }
        for bad in [
            "",
            "12345",
            "01632 960 00x",
            "1632960001",
            "+44",
            "0163296000112",
        ] {
            assert!(!is_phone(bad), "{bad}");
        }
    }

    fn date(day: &str, month: &str, year: &str) -> Result<Option<String>, DateProblem> {
        parse_date(day, month, year).map(|d| d.map(|d| d.to_string()))
    }

    #[test]
    fn dates_parse() {
        assert_eq!(date("", "", ""), Ok(None));
        assert_eq!(date(" 7 ", "03", "2026"), Ok(Some("2026-03-07".to_owned())));
        assert_eq!(date("29", "2", "2024"), Ok(Some("2024-02-29".to_owned())));
        assert_eq!(date("1", "Jan", "2026"), Ok(Some("2026-01-01".to_owned())));
        assert_eq!(
            date("1", "september", "2026"),
            Ok(Some("2026-09-01".to_owned()))
        );
        assert_eq!(
            date("", "3", "2026"),
            Err(DateProblem::Incomplete(vec![DatePart::Day]))
        );
        assert_eq!(
            date("", "", "2026"),
            Err(DateProblem::Incomplete(vec![
                DatePart::Day,
                DatePart::Month
            ]))
        );
        assert_eq!(
            date("31", "6", "2026"),
            Err(DateProblem::NotReal(vec![DatePart::Day]))
        );
        assert_eq!(
            date("29", "2", "2025"),
            Err(DateProblem::NotReal(vec![DatePart::Day]))
        );
        assert_eq!(
            date("1", "13", "2026"),
            Err(DateProblem::NotReal(vec![DatePart::Month]))
        );
        assert_eq!(
            date("x", "y", "z"),
            Err(DateProblem::NotReal(vec![
                DatePart::Day,
                DatePart::Month,
                DatePart::Year
            ]))
        );
        assert_eq!(date("1", "1", "26"), Err(DateProblem::YearDigits));
        assert_eq!(
            date("1", "1", "0000"),
            Err(DateProblem::NotReal(vec![DatePart::Year]))
        );
        assert_eq!(
            date("123", "1", "2026"),
            Err(DateProblem::NotReal(vec![DatePart::Day]))
        );
    }

    #[test]
    fn date_messages_follow_the_govuk_pattern() {
        let label = "Date the problem started";
        let check = |query: &str, required: bool| -> Errors {
            let form = Form::parse(query);
            let mut v = form.check();
            let mut d = v.date("started", label);
            if required {
                d = d.required("Enter the date the problem started");
            }
            let today = Date::parse("2026-05-01").unwrap();
            d.not_after(
                today,
                "Date the problem started must be today or in the past",
            )
            .value();
            v.into_errors()
        };
        let one = |query: &str, required: bool| -> (String, String, Vec<String>) {
            let errors = check(query, required);
            let e = errors.iter().next().expect("an error").clone();
            (e.target, e.text, e.parts)
        };
        assert!(check("", false).is_empty());
        assert!(check("started-day=1&started-month=5&started-year=2026", true).is_empty());
        assert_eq!(
            one("", true),
            (
                "started-day".to_owned(),
                "Enter the date the problem started".to_owned(),
                vec![]
            )
        );
        assert_eq!(
            one("started-day=1&started-year=2026", false),
            (
                "started-month".to_owned(),
                "Date the problem started must include a month".to_owned(),
                vec!["month".to_owned()]
            )
        );
        assert_eq!(
            one("started-year=2026", true),
            (
                "started-day".to_owned(),
                "Date the problem started must include a day and month".to_owned(),
                vec!["day".to_owned(), "month".to_owned()]
            )
        );
        assert_eq!(
            one("started-day=31&started-month=6&started-year=2025", true).1,
            "Date the problem started must be a real date"
        );
        assert_eq!(
            one("started-day=1&started-month=6&started-year=25", true),
            (
                "started-year".to_owned(),
                "Year must include 4 numbers".to_owned(),
                vec!["year".to_owned()]
            )
        );
        assert_eq!(
            one("started-day=2&started-month=5&started-year=2026", true).1,
            "Date the problem started must be today or in the past"
        );
        let form = Form::parse("started-day=1&started-month=5&started-year=2026");
        assert_eq!(form.date("started"), Date::parse("2026-05-01"));
        assert_eq!(Form::parse("started-day=31").date("started"), None);
    }
}
