//! The GOV.UK "question pages → check your answers → confirmation" pattern: the answers of
//! each question page kept in the citizen's session under one key, the next page to go to,
//! the rows of the check-answers page, and clearing up after the answers are sent.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::kit::form::{CSRF_FIELD, Form};
use crate::session::{self, SessionError};
use crate::time::Date;

/// A journey of question pages, each at `/{page}` under the plugin's root, followed by a
/// check-answers page and a confirmation page.
///
/// Its answers live in the citizen's session (so the plugin needs `session = true`) as JSON
/// under one key, one [`Form`] per page. Field names must be unique across the journey's
/// pages: [`Answers::text`] and friends look a field up in every page.
///
/// The rules it keeps, from the GOV.UK Design System:
/// - after a question page, go to the first page not yet answered, or to check answers when
///   every page is answered (so a "Change" link leads back to check answers);
/// - a question page whose earlier pages are not answered sends the citizen to the first
///   unanswered page ([`Journey::missing_before`]);
/// - after the answers are sent, the session is cleared ([`Journey::finish`]) and keeps only
///   the reference the confirmation page shows.
///
/// ```no_run
/// use guildhall_plugin::kit::{Form, Journey};
/// use guildhall_plugin::{Request, Response, context};
///
/// const JOURNEY: Journey = Journey::new("report", &["where", "describe", "details"]);
///
/// fn post_where(req: Request) -> Response {
///     let form = Form::from_body(&req).unwrap_or_default();
///     // ... check the form, and show the page again with its errors when it has any ...
///     // Keep only this page's fields: answers are read back by field name across pages.
///     match JOURNEY.record("where", &form.only(&["street", "blocking"])) {
///         Ok(answers) => Response::see_other(&context::site().url(&JOURNEY.next("where", &answers))),
///         Err(e) => e.into(),
///     }
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Journey {
    key: &'static str,
    pages: &'static [&'static str],
    check_answers: &'static str,
    confirmation: &'static str,
}

impl Journey {
    /// A journey keeping its answers under session key `key`, with question pages `pages` in
    /// order (each page's path is `/` and its name). Its check-answers page is
    /// `/check-answers` and its confirmation page `/confirmation`; change them with
    /// [`Journey::with_paths`].
    pub const fn new(key: &'static str, pages: &'static [&'static str]) -> Journey {
        Journey {
            key,
            pages,
            check_answers: "/check-answers",
            confirmation: "/confirmation",
        }
    }

    /// The same journey with other paths for its check-answers and confirmation pages.
    pub const fn with_paths(
        self,
        check_answers: &'static str,
        confirmation: &'static str,
    ) -> Journey {
        Journey {
            check_answers,
            confirmation,
            ..self
        }
    }

    /// The question pages, in order.
    pub fn pages(&self) -> &'static [&'static str] {
        self.pages
    }

    /// The path of question page `page`: `/where` for `where`.
    pub fn path(&self, page: &str) -> String {
        format!("/{page}")
    }

    /// The path of the check-answers page.
    pub fn check_answers_path(&self) -> &'static str {
        self.check_answers
    }

    /// The path of the confirmation page.
    pub fn confirmation_path(&self) -> &'static str {
        self.confirmation
    }

    /// The session key of the answers.
    pub fn key(&self) -> &'static str {
        self.key
    }

    fn reference_key(&self) -> String {
        format!("{}.reference", self.key)
    }

    /// The answers given so far (none when there is no session yet).
    pub fn answers(&self) -> Result<Answers, SessionError> {
        Ok(session::get_json::<Answers>(self.key)?.unwrap_or_default())
    }

    /// Keeps `form` (without the `csrf` field) as the answers of `page`, replacing what that
    /// page had, and returns every answer. Call it once the page's answers are checked, with
    /// the form narrowed to the page's own fields ([`Form::only`]): answers are read back by
    /// field name across pages, so a field a citizen adds to another page's post must not be
    /// kept there unchecked.
    pub fn record(&self, page: &str, form: &Form) -> Result<Answers, SessionError> {
        let mut answers = self.answers()?;
        if answers.id.is_none() {
            answers.id = Some(random_id());
        }
        answers.set(page, form);
        session::set_json(self.key, &answers)?;
        Ok(answers)
    }

    /// Where to go after `page` was answered: the first unanswered page after it (then
    /// before it), or the check-answers page when every page is answered.
    pub fn next(&self, page: &str, answers: &Answers) -> String {
        let at = self.pages.iter().position(|p| *p == page).unwrap_or(0);
        let after = self.pages[at..].iter().chain(self.pages[..at].iter());
        match after.into_iter().find(|p| !answers.has(p)) {
            Some(p) => self.path(p),
            None => self.check_answers.to_owned(),
        }
    }

    /// Where the back link of `page` goes: check answers when every page is answered (the
    /// citizen came through a "Change" link), otherwise the page before it, or `start` for
    /// the first page.
    pub fn back(&self, page: &str, answers: &Answers, start: &str) -> String {
        if self.is_complete(answers) {
            return self.check_answers.to_owned();
        }
        match self.pages.iter().position(|p| *p == page) {
            Some(i) if i > 0 => self.path(self.pages[i - 1]),
            _ => start.to_owned(),
        }
    }

    /// The path of the first unanswered page before `page` (every page for the check-answers
    /// page, `None` as the page), if any: where to send a citizen who skipped ahead.
    pub fn missing_before(&self, page: Option<&str>, answers: &Answers) -> Option<String> {
        let end = page
            .and_then(|page| self.pages.iter().position(|p| *p == page))
            .unwrap_or(self.pages.len());
        self.pages[..end]
            .iter()
            .find(|p| !answers.has(p))
            .map(|p| self.path(p))
    }

    /// Whether every question page is answered.
    pub fn is_complete(&self, answers: &Answers) -> bool {
        self.pages.iter().all(|p| answers.has(p))
    }

    /// Ends the journey after its answers were sent: clears the session (every value, the
    /// answers included) and keeps only `reference`, for the confirmation page to show.
    pub fn finish(&self, reference: &str) -> Result<(), SessionError> {
        session::clear()?;
        session::set_json(&self.reference_key(), reference)
    }

    /// The reference kept by [`Journey::finish`], or `None` when the journey was not
    /// finished in this session.
    pub fn reference(&self) -> Result<Option<String>, SessionError> {
        session::get_json(&self.reference_key())
    }
}

/// The answers of a journey: one [`Form`] per question page answered, and the journey's
/// random id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answers {
    /// Chosen when the first page is recorded; see [`Answers::id`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    pages: BTreeMap<String, Form>,
}

impl Answers {
    /// No answers.
    pub fn new() -> Answers {
        Answers::default()
    }

    /// The journey's random id (32 hex digits), chosen when its first page was recorded
    /// and kept until it is finished. Claim it before sending the answers, so a second post
    /// of the same answers (a double click, a retried request) sends nothing twice:
    ///
    /// ```no_run
    /// # use guildhall_plugin::kit::Answers;
    /// # use guildhall_plugin::kv::CouncilKv;
    /// # fn send(answers: &Answers) -> Result<bool, guildhall_plugin::kv::KvError> {
    /// let id = answers.id().unwrap_or_default();
    /// if !CouncilKv::current().set_if_absent(&format!("sent/{id}"), b"")? {
    ///     return Ok(false); // already sent
    /// }
    /// // ... send the answers ...
    /// # Ok(true)
    /// # }
    /// ```
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// Whether `page` was answered.
    pub fn has(&self, page: &str) -> bool {
        self.pages.contains_key(page)
    }

    /// The answers of `page`, to show on the page again (empty when not answered).
    pub fn page(&self, page: &str) -> Form {
        self.pages.get(page).cloned().unwrap_or_default()
    }

    /// Keeps `form` (without the `csrf` field) as the answers of `page`.
    pub fn set(&mut self, page: &str, form: &Form) {
        self.pages
            .insert(page.to_owned(), form.without(&[CSRF_FIELD]));
    }

    /// Forgets the answers of `page`.
    pub fn remove(&mut self, page: &str) {
        self.pages.remove(page);
    }

    fn field(&self, name: &str) -> Option<&Form> {
        self.pages.values().find(|f| f.raw(name).is_some())
    }

    /// The answer to field `name` on any page, trimmed; `""` when not answered.
    pub fn text(&self, name: &str) -> &str {
        self.field(name).map(|f| f.text(name)).unwrap_or("")
    }

    /// The answer to field `name` on any page, or `None` when empty or not answered.
    pub fn optional(&self, name: &str) -> Option<&str> {
        self.field(name).and_then(|f| f.optional(name))
    }

    /// Every value of field `name` (ticked checkboxes) on any page.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.field(name).map(|f| f.all(name)).unwrap_or_default()
    }

    /// The date answered in `{name}-day`, `{name}-month` and `{name}-year` on any page.
    pub fn date(&self, name: &str) -> Option<Date> {
        self.field(&format!("{name}-day"))
            .and_then(|f| f.date(name))
    }
}

/// One row of a summary list (`govuk.summary_list`), such as those of a check-answers page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SummaryRow {
    /// The question, e.g. `Location`.
    pub key: String,
    /// The answer.
    pub value: String,
    /// The answer on several lines (an address), shown instead of `value` when not empty.
    pub lines: Vec<String>,
    /// Where the action goes, e.g. the question's page.
    pub href: Option<String>,
    /// The action's text, `Change` unless set.
    pub action: Option<String>,
    /// The words after the action read by screen readers only, e.g. `location`.
    pub hidden: Option<String>,
}

impl SummaryRow {
    /// A row without action.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> SummaryRow {
        SummaryRow {
            key: key.into(),
            value: value.into(),
            lines: Vec::new(),
            href: None,
            action: None,
            hidden: None,
        }
    }

    /// A row whose answer is several lines.
    pub fn lines(key: impl Into<String>, lines: Vec<String>) -> SummaryRow {
        SummaryRow {
            lines,
            ..SummaryRow::new(key, "")
        }
    }

    /// Adds a `Change` link to `href`, with the key in lower case as the words screen readers
    /// hear after it ("Change location").
    pub fn change(self, href: impl Into<String>) -> SummaryRow {
        let hidden = self.key.to_lowercase();
        SummaryRow {
            href: Some(href.into()),
            action: Some("Change".to_owned()),
            hidden: Some(hidden),
            ..self
        }
    }
}

/// 16 random bytes from the host, as 32 hex digits.
fn random_id() -> String {
    crate::wasi::random::random::get_random_bytes(16)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const JOURNEY: Journey = Journey::new("report", &["where", "describe", "details"]);

    fn answered(pages: &[&str]) -> Answers {
        let mut answers = Answers::new();
        for page in pages {
            answers.set(page, &Form::parse(&format!("{page}-field=x&csrf=t")));
        }
        answers
    }

    #[test]
    fn next_pages() {
        let none = Answers::new();
        assert_eq!(JOURNEY.next("where", &answered(&["where"])), "/describe");
        assert_eq!(
            JOURNEY.next("describe", &answered(&["where", "describe"])),
            "/details"
        );
        assert_eq!(
            JOURNEY.next("details", &answered(&["where", "describe", "details"])),
            "/check-answers"
        );
        // Answered out of order: the first unanswered page after, then before.
        assert_eq!(JOURNEY.next("details", &answered(&["details"])), "/where");
        assert_eq!(JOURNEY.next("unknown", &none), "/where");
        let custom = JOURNEY.with_paths("/check", "/done");
        assert_eq!(
            custom.next("details", &answered(&["where", "describe", "details"])),
            "/check"
        );
        assert_eq!(custom.confirmation_path(), "/done");
    }

    #[test]
    fn skipping_ahead_and_going_back() {
        let none = Answers::new();
        assert_eq!(JOURNEY.missing_before(Some("where"), &none), None);
        assert_eq!(
            JOURNEY.missing_before(Some("details"), &answered(&["where"])),
            Some("/describe".to_owned())
        );
        assert_eq!(
            JOURNEY.missing_before(None, &answered(&["where", "describe"])),
            Some("/details".to_owned())
        );
        assert_eq!(
            JOURNEY.missing_before(None, &answered(&["where", "describe", "details"])),
            None
        );
        assert!(!JOURNEY.is_complete(&answered(&["where", "describe"])));
        assert_eq!(JOURNEY.back("where", &none, "/"), "/");
        assert_eq!(JOURNEY.back("details", &none, "/"), "/describe");
        assert_eq!(
            JOURNEY.back("where", &answered(&["where", "describe", "details"]), "/"),
            "/check-answers"
        );
    }

    #[test]
    fn answers_drop_the_token_and_round_trip_as_json() {
        let mut answers = Answers::new();
        answers.set(
            "where",
            &Form::parse("service=pothole&location=High+St&csrf=secret"),
        );
        answers.set(
            "when",
            &Form::parse("started-day=1&started-month=5&started-year=2026&kind=a&kind=b"),
        );
        assert_eq!(answers.text("location"), "High St");
        assert_eq!(answers.optional("missing"), None);
        assert_eq!(answers.all("kind"), vec!["a", "b"]);
        assert_eq!(answers.date("started"), Date::parse("2026-05-01"));
        assert_eq!(answers.page("where").csrf(), None);
        assert!(answers.page("nope").is_empty());
        let json = serde_json::to_string(&answers).unwrap();
        assert!(!json.contains("secret"), "{json}");
        let back: Answers = serde_json::from_str(&json).unwrap();
        assert_eq!(back, answers);
        answers.remove("where");
        assert!(!answers.has("where"));
    }

    #[test]
    fn change_rows() {
        let row = SummaryRow::new("Type of problem", "Pothole").change("/s/a/b/c/where");
        assert_eq!(row.action.as_deref(), Some("Change"));
        assert_eq!(row.hidden.as_deref(), Some("type of problem"));
        assert_eq!(row.href.as_deref(), Some("/s/a/b/c/where"));
        let plain = SummaryRow::lines("Address", vec!["1 High St".into(), "Oxted".into()]);
        assert_eq!(plain.href, None);
        assert_eq!(plain.lines.len(), 2);
    }
}
