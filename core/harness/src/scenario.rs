//! Test scenarios in TOML, the same for a plugin in any language: `tests/*.toml` beside
//! its `plugin.toml`, run by `guildhall plugins test`.
//!
//! One file is one scenario. Its steps run in order against one harness, so what a step
//! writes (kv, events, the citizen's session) is there for the next; every file starts
//! afresh.
//!
//! ```toml
//! name = "an officer posts a notice"
//!
//! [install]
//! council = "dev"                  # the steps' council (default "dev")
//! config = { greeting = "Hello" }  # checked against plugin.toml's [config]
//! secrets = { api_key = "test" }   # declared secrets
//! allow = [{ role = "officer", action = "write", object = "notices" }]  # authz answers
//!
//! [kv]                             # kv entries before the first step
//! "council/dev/next-id" = "41"
//!
//! [[outbound]]                     # canned answers to outbound requests
//! method = "POST"
//! url = "https://api.example.org/v1/things"
//! status = 201
//! json = { id = "abc" }            # or body = "…"
//!
//! [[step]]
//! name = "post a notice"
//! method = "POST"                  # default GET
//! path = "/notices"
//! caller = { id = "alice", roles = ["officer"] }   # default anonymous
//! json = { title = "Road closed" } # or body = "…", or form = { … } (csrf added)
//! [step.expect]
//! status = 201
//! json = { id = 42 }               # the body is JSON holding these (recursively)
//! body_contains = ["Road closed"]
//! headers = { location = "/notices/42" }
//! kv = { "council/dev/next-id" = "42" }
//! kv_absent = ["council/dev/draft"]
//! events = [{ name = "notice.posted", payload = { id = 42 } }]
//! outbound = [{ method = "POST", url = "https://api.example.org/v1/things" }]
//!
//! [[step]]
//! schedule = "renewal-reminders"   # runs a declared schedule instead of a request
//! [step.expect]
//! ok = true
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use guildhall_runtime::RuntimeConfig;
use serde::Deserialize;
use serde_json::Value;

use crate::{Harness, HarnessError, TestRequest};

/// One scenario file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// What it shows; the file's name when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// The install.
    #[serde(default)]
    pub install: Install,
    /// kv entries before the first step.
    #[serde(default)]
    pub kv: BTreeMap<String, String>,
    /// Canned answers to outbound requests.
    #[serde(default)]
    pub outbound: Vec<Canned>,
    /// The steps, in order.
    #[serde(default)]
    pub step: Vec<Step>,
}

/// How the plugin is installed for the scenario.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Install {
    /// The steps' council.
    #[serde(default)]
    pub council: Option<String>,
    /// The install's configuration.
    #[serde(default)]
    pub config: Option<Value>,
    /// Secret values by name.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// Access rules for `authz`.
    #[serde(default)]
    pub allow: Vec<Allow>,
}

/// An access rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allow {
    /// The role, e.g. `officer`.
    pub role: String,
    /// The action, or `*`.
    pub action: String,
    /// The object, or `*`.
    pub object: String,
}

/// A canned answer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Canned {
    /// The method.
    #[serde(default = "get")]
    pub method: String,
    /// The absolute URL.
    pub url: String,
    /// The status (200 when absent).
    #[serde(default = "ok")]
    pub status: u16,
    /// Headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A text body.
    #[serde(default)]
    pub body: Option<String>,
    /// A JSON body.
    #[serde(default)]
    pub json: Option<Value>,
}

fn get() -> String {
    "GET".into()
}

fn ok() -> u16 {
    200
}

/// Who calls.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum CallerSpec {
    /// `"anonymous"`.
    Named(String),
    /// A subject with roles.
    Subject {
        /// The subject's id.
        id: String,
        /// Role names.
        #[serde(default)]
        roles: Vec<String>,
        /// The council the roles are limited to.
        #[serde(default)]
        council: Option<String>,
    },
}

/// One step: a request, or a schedule's run.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// What it does.
    #[serde(default)]
    pub name: Option<String>,
    /// The method.
    #[serde(default)]
    pub method: Option<String>,
    /// The path under the plugin's root.
    #[serde(default)]
    pub path: Option<String>,
    /// Runs this declared schedule instead of sending a request.
    #[serde(default)]
    pub schedule: Option<String>,
    /// The council, when not the scenario's.
    #[serde(default)]
    pub council: Option<String>,
    /// Who calls.
    #[serde(default)]
    pub caller: Option<CallerSpec>,
    /// Headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A text body.
    #[serde(default)]
    pub body: Option<String>,
    /// A JSON body.
    #[serde(default)]
    pub json: Option<Value>,
    /// A urlencoded form.
    #[serde(default)]
    pub form: Option<BTreeMap<String, String>>,
    /// What must hold afterwards.
    #[serde(default)]
    pub expect: Expect,
}

/// What must hold after a step.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The status.
    #[serde(default)]
    pub status: Option<u16>,
    /// Substrings of the body.
    #[serde(default)]
    pub body_contains: Vec<String>,
    /// Substrings the body must not have.
    #[serde(default)]
    pub body_not_contains: Vec<String>,
    /// Fields the JSON body holds (recursively; arrays element by element).
    #[serde(default)]
    pub json: Option<Value>,
    /// Exact header values.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// kv entries and their exact values.
    #[serde(default)]
    pub kv: BTreeMap<String, String>,
    /// kv keys that must not exist.
    #[serde(default)]
    pub kv_absent: Vec<String>,
    /// The events this step emitted, in order (each matched as a subset).
    #[serde(default)]
    pub events: Option<Vec<Value>>,
    /// The outbound requests this step made, in order (method and URL).
    #[serde(default)]
    pub outbound: Option<Vec<Value>>,
    /// For a schedule's run: whether it succeeded.
    #[serde(default)]
    pub ok: Option<bool>,
    /// For a schedule's run: a substring of its error.
    #[serde(default)]
    pub error_contains: Option<String>,
}

/// The outcome of one step.
#[derive(Debug, Clone)]
pub struct StepReport {
    /// The step's name, or what it did.
    pub name: String,
    /// What did not hold; empty when it passed.
    pub failures: Vec<String>,
}

/// The outcome of one scenario.
#[derive(Debug, Clone)]
pub struct Report {
    /// The file.
    pub file: PathBuf,
    /// The scenario's name.
    pub name: String,
    /// Each step that ran (a scenario stops at its first failing step).
    pub steps: Vec<StepReport>,
    /// Why the scenario could not run at all.
    pub error: Option<String>,
}

impl Report {
    /// Whether every step passed.
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.steps.iter().all(|s| s.failures.is_empty())
    }
}

/// The scenario files in `dir/tests`, in name order.
pub fn files(dir: &Path) -> Result<Vec<PathBuf>, HarnessError> {
    let tests = dir.join("tests");
    let entries = std::fs::read_dir(&tests).map_err(|source| HarnessError::Read {
        path: tests.clone(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Runs the scenario in `file` against a fresh harness for the plugin in `built` (its
/// `plugin.toml` and component), with the platform's default limits.
pub async fn run_file(built: &Path, file: &Path) -> Report {
    run_file_with(built, file, &RuntimeConfig::default()).await
}

/// [`run_file`] with the runtime settings an operator's `[runtime]` gives.
pub async fn run_file_with(built: &Path, file: &Path, config: &RuntimeConfig) -> Report {
    let mut report = Report {
        file: file.to_path_buf(),
        name: file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        steps: Vec::new(),
        error: None,
    };
    let scenario: Scenario = match std::fs::read_to_string(file)
        .map_err(|e| e.to_string())
        .and_then(|text| toml::from_str(&text).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => {
            report.error = Some(format!("{}: {e}", file.display()));
            return report;
        }
    };
    if let Some(name) = &scenario.name {
        report.name = name.clone();
    }
    if scenario.step.is_empty() {
        report.error = Some(format!(
            "{}: no [[step]]: a scenario checks something",
            file.display()
        ));
        return report;
    }
    let harness = match set_up(built, &scenario, config).await {
        Ok(h) => h,
        Err(e) => {
            report.error = Some(e.to_string());
            return report;
        }
    };
    for (i, step) in scenario.step.iter().enumerate() {
        let outcome = run_step(&harness, step).await;
        let name = step.name.clone().unwrap_or_else(|| describe(i, step));
        let failures = match outcome {
            Ok(failures) => failures,
            Err(e) => vec![e.to_string()],
        };
        let failed = !failures.is_empty();
        report.steps.push(StepReport { name, failures });
        if failed {
            break;
        }
    }
    report
}

fn describe(i: usize, step: &Step) -> String {
    match &step.schedule {
        Some(s) => format!("step {}: run schedule {s}", i + 1),
        None => format!(
            "step {}: {} {}",
            i + 1,
            step.method.as_deref().unwrap_or("GET"),
            step.path.as_deref().unwrap_or("/")
        ),
    }
}

async fn set_up(
    built: &Path,
    scenario: &Scenario,
    config: &RuntimeConfig,
) -> Result<Harness, HarnessError> {
    let mut harness = Harness::load_with(built, config.clone()).await?;
    if let Some(council) = &scenario.install.council {
        harness.set_council(council)?;
    }
    harness.set_config(
        scenario
            .install
            .config
            .clone()
            .unwrap_or_else(|| serde_json::json!({})),
    )?;
    for (name, value) in &scenario.install.secrets {
        harness.set_secret(name, value, None)?;
    }
    for rule in &scenario.install.allow {
        harness.allow(&rule.role, &rule.action, &rule.object);
    }
    for (key, value) in &scenario.kv {
        harness.kv_set(key, value.as_bytes());
    }
    for canned in &scenario.outbound {
        let method = http::Method::from_bytes(canned.method.as_bytes())
            .map_err(|_| HarnessError::Invalid(format!("outbound method {:?}", canned.method)))?;
        let mut response = http::Response::builder().status(canned.status);
        let body = match (&canned.json, &canned.body) {
            (Some(json), _) => {
                response = response.header("content-type", "application/json");
                Bytes::from(json.to_string())
            }
            (None, Some(body)) => Bytes::from(body.clone()),
            (None, None) => Bytes::new(),
        };
        for (name, value) in &canned.headers {
            response = response.header(name, value);
        }
        let response = response.body(body).map_err(|e| {
            HarnessError::Invalid(format!("outbound answer for {}: {e}", canned.url))
        })?;
        harness.answer(method, &canned.url, response);
    }
    Ok(harness)
}

fn caller(spec: &Option<CallerSpec>) -> Result<crate::Caller, HarnessError> {
    match spec {
        None => Ok(crate::Caller::Anonymous),
        Some(CallerSpec::Named(name)) if name == "anonymous" => Ok(crate::Caller::Anonymous),
        Some(CallerSpec::Named(name)) => Err(HarnessError::Invalid(format!(
            "caller {name:?}: write \"anonymous\" or {{ id = \"…\", roles = [\"…\"] }}"
        ))),
        Some(CallerSpec::Subject { id, roles, council }) => {
            let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
            crate::subject(id, &roles, council.as_deref())
        }
    }
}

/// Refuses a step whose fields cannot all be checked: request fields on a schedule's run,
/// a run's checks on a request, or contradictory expectations.
fn check_shape(step: &Step) -> Result<(), HarnessError> {
    let expect = &step.expect;
    let request_fields = [
        ("method", step.method.is_some()),
        ("path", step.path.is_some()),
        ("caller", step.caller.is_some()),
        ("headers", !step.headers.is_empty()),
        ("body", step.body.is_some()),
        ("json", step.json.is_some()),
        ("form", step.form.is_some()),
        ("expect.status", expect.status.is_some()),
        ("expect.body_contains", !expect.body_contains.is_empty()),
        (
            "expect.body_not_contains",
            !expect.body_not_contains.is_empty(),
        ),
        ("expect.json", expect.json.is_some()),
        ("expect.headers", !expect.headers.is_empty()),
    ];
    let run_fields = [
        ("expect.ok", expect.ok.is_some()),
        ("expect.error_contains", expect.error_contains.is_some()),
    ];
    let set = |fields: &[(&'static str, bool)]| -> Vec<&'static str> {
        fields.iter().filter(|(_, s)| *s).map(|(n, _)| *n).collect()
    };
    let wrong = if step.schedule.is_some() {
        set(&request_fields)
    } else {
        set(&run_fields)
    };
    if !wrong.is_empty() {
        let kind = if step.schedule.is_some() {
            "a schedule's run"
        } else {
            "a request"
        };
        return Err(HarnessError::Invalid(format!(
            "{} cannot be checked on {kind}",
            wrong.join(", ")
        )));
    }
    if expect.ok == Some(true) && expect.error_contains.is_some() {
        return Err(HarnessError::Invalid(
            "expect.ok = true and expect.error_contains contradict each other".into(),
        ));
    }
    Ok(())
}

async fn run_step(harness: &Harness, step: &Step) -> Result<Vec<String>, HarnessError> {
    check_shape(step)?;
    let events_before = harness.events().len();
    let outbound_before = harness.outbound().len();
    let mut failures = Vec::new();
    let expect = &step.expect;
    if let Some(schedule) = &step.schedule {
        let outcome = harness
            .run_schedule(schedule, step.council.as_deref())
            .await?;
        match (&outcome, expect.ok) {
            (Err(e), Some(true) | None) if expect.error_contains.is_none() => {
                failures.push(format!("the run failed: {e}"));
            }
            (Ok(()), Some(false)) => failures.push("the run succeeded; expected a failure".into()),
            _ => {}
        }
        if let Some(text) = &expect.error_contains {
            match &outcome {
                Err(e) if e.contains(text.as_str()) => {}
                Err(e) => failures.push(format!("the run's error {e:?} does not contain {text:?}")),
                Ok(()) => failures.push(format!(
                    "the run succeeded; expected an error with {text:?}"
                )),
            }
        }
    } else {
        let method = step.method.as_deref().unwrap_or("GET");
        let method = http::Method::from_bytes(method.as_bytes())
            .map_err(|_| HarnessError::Invalid(format!("method {method:?}")))?;
        let mut request = TestRequest::new(method, step.path.as_deref().unwrap_or("/"))
            .caller(caller(&step.caller)?);
        if let Some(council) = &step.council {
            request = request.council(council);
        }
        for (name, value) in &step.headers {
            request = request.header(name, value);
        }
        match (&step.json, &step.body, &step.form) {
            (Some(json), None, None) => request = request.json(json),
            (None, Some(body), None) => request = request.body(body.clone()),
            (None, None, Some(form)) => request = request.form(form.clone()),
            (None, None, None) => {}
            _ => {
                return Err(HarnessError::Invalid(
                    "a step has one of json, body and form, not several".into(),
                ));
            }
        }
        let response = harness.send(request).await?;
        check_response(&response, expect, &mut failures);
    }
    for (key, want) in &expect.kv {
        match harness.kv_get(key) {
            Some(got) if got == want.as_bytes() => {}
            Some(got) => failures.push(format!(
                "kv {key:?} holds {:?}, expected {want:?}",
                String::from_utf8_lossy(&got)
            )),
            None => failures.push(format!("kv {key:?} is absent, expected {want:?}")),
        }
    }
    for key in &expect.kv_absent {
        if harness.kv_get(key).is_some() {
            failures.push(format!("kv {key:?} exists, expected it absent"));
        }
    }
    if let Some(want) = &expect.events {
        let got: Vec<Value> = harness.events()[events_before..]
            .iter()
            .map(|e| serde_json::json!({"name": e.name, "payload": e.payload, "council": e.council, "actor": e.actor}))
            .collect();
        compare_list("events", &got, want, &mut failures);
    }
    if let Some(want) = &expect.outbound {
        let got: Vec<Value> = harness.outbound()[outbound_before..]
            .iter()
            .map(|r| {
                serde_json::json!({
                    "method": r.request.method.as_str(),
                    "url": r.request.url,
                    "body": String::from_utf8_lossy(&r.request.body),
                })
            })
            .collect();
        compare_list("outbound requests", &got, want, &mut failures);
    }
    Ok(failures)
}

fn check_response(response: &crate::TestResponse, expect: &Expect, failures: &mut Vec<String>) {
    let text = response.text();
    let shown = || {
        let mut shown: String = text.chars().take(400).collect();
        if shown.len() < text.len() {
            shown.push('…');
        }
        shown
    };
    if expect.status.is_none()
        && let Some(failure) = &response.failure
    {
        // Without an expected status a failed call still fails the step.
        failures.push(format!("the call failed ({}): {failure}", response.status));
    }
    if let Some(status) = expect.status
        && status != response.status
    {
        let why = response
            .failure
            .as_ref()
            .map(|f| format!(" ({f})"))
            .unwrap_or_default();
        failures.push(format!(
            "status {}{why}, expected {status}; body: {}",
            response.status,
            shown()
        ));
    }
    for needle in &expect.body_contains {
        if !text.contains(needle.as_str()) {
            failures.push(format!(
                "the body does not contain {needle:?}; body: {}",
                shown()
            ));
        }
    }
    for needle in &expect.body_not_contains {
        if text.contains(needle.as_str()) {
            failures.push(format!("the body contains {needle:?}"));
        }
    }
    for (name, want) in &expect.headers {
        match response.header(name) {
            Some(got) if got == want => {}
            Some(got) => failures.push(format!("header {name} is {got:?}, expected {want:?}")),
            None => failures.push(format!("header {name} is missing, expected {want:?}")),
        }
    }
    if let Some(want) = &expect.json {
        match response.json() {
            Ok(got) => {
                if let Some(why) = mismatch("body", &got, want) {
                    failures.push(why);
                }
            }
            Err(e) => failures.push(format!("the body is not JSON ({e}): {}", shown())),
        }
    }
}

fn compare_list(what: &str, got: &[Value], want: &[Value], failures: &mut Vec<String>) {
    if got.len() != want.len() {
        failures.push(format!(
            "{} {what}, expected {}: {}",
            got.len(),
            want.len(),
            Value::from(got.to_vec())
        ));
        return;
    }
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if let Some(why) = mismatch(&format!("{what}[{i}]"), g, w) {
            failures.push(why);
        }
    }
}

/// Why `got` does not hold `want`: objects hold the wanted keys (recursively), arrays
/// match element by element, everything else is equal.
fn mismatch(at: &str, got: &Value, want: &Value) -> Option<String> {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => w.iter().find_map(|(k, wv)| match g.get(k) {
            Some(gv) => mismatch(&format!("{at}.{k}"), gv, wv),
            None => Some(format!("{at}.{k} is missing, expected {wv}")),
        }),
        (Value::Array(g), Value::Array(w)) => {
            if g.len() != w.len() {
                return Some(format!(
                    "{at} has {} items, expected {}: {got}",
                    g.len(),
                    w.len()
                ));
            }
            g.iter()
                .zip(w)
                .enumerate()
                .find_map(|(i, (gv, wv))| mismatch(&format!("{at}[{i}]"), gv, wv))
        }
        (Value::Number(g), Value::Number(w)) if g.as_f64() == w.as_f64() => None,
        _ if got == want => None,
        _ => Some(format!("{at} is {got}, expected {want}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_subsets_match_recursively_and_arrays_by_element() {
        let got = json!({"id": 1, "tags": [{"a": 1, "b": 2}], "x": "y"});
        assert_eq!(mismatch("body", &got, &json!({"id": 1})), None);
        assert_eq!(mismatch("body", &got, &json!({"tags": [{"a": 1}]})), None);
        assert!(mismatch("body", &got, &json!({"tags": []})).is_some());
        assert_eq!(
            mismatch("body", &got, &json!({"id": 2})).as_deref(),
            Some("body.id is 1, expected 2")
        );
        assert_eq!(
            mismatch("body", &got, &json!({"missing": true})).as_deref(),
            Some("body.missing is missing, expected true")
        );
    }

    #[test]
    fn scenarios_refuse_unknown_keys() {
        let text = "[[step]]\npath = \"/\"\nstatuss = 200\n";
        let err = toml::from_str::<Scenario>(text).unwrap_err().to_string();
        assert!(err.contains("statuss"), "{err}");
    }
}
