//! Subject access and erasure: calls to a plugin's `guildhall:platform/data-subject` export.
//!
//! The types mirror the WIT records one for one; the platform fans a council's request out
//! to every install whose manifest declares `[data_protection] subject_requests = true`.

use wasmtime::component::{ComponentExportIndex, ComponentType, Lift, Lower};

use crate::call::{self, CallReport};
use crate::{CallContext, CallError, Prepared, Runtime};

/// The functions of a component's `data-subject` export.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Exports {
    pub(crate) access: ComponentExportIndex,
    pub(crate) erase: ComponentExportIndex,
}

/// What a resident gave to find their data (`data-subject.identifiers`).
#[derive(Debug, Clone, Default, PartialEq, Eq, ComponentType, Lower)]
#[component(record)]
pub struct Identifiers {
    pub email: Option<String>,
    pub phone: Option<String>,
    pub name: Option<String>,
    pub address: Option<String>,
    pub uprn: Option<String>,
    pub reference: Option<String>,
}

/// How a plugin's events refer to a record (`data-subject.event-key`).
#[derive(Debug, Clone, PartialEq, Eq, ComponentType, Lift)]
#[component(record)]
pub struct EventKey {
    pub field: String,
    pub value: String,
}

/// One record a plugin holds about a subject (`data-subject.subject-record`).
#[derive(Debug, Clone, PartialEq, Eq, ComponentType, Lift)]
#[component(record)]
pub struct SubjectRecord {
    pub schema: String,
    /// JSON text, as the plugin gave it.
    pub data: String,
    #[component(name = "event-keys")]
    pub event_keys: Vec<EventKey>,
}

/// One record a plugin erased (`data-subject.erased-record`).
#[derive(Debug, Clone, PartialEq, Eq, ComponentType, Lift)]
#[component(record)]
pub struct ErasedRecord {
    pub schema: String,
    #[component(name = "event-keys")]
    pub event_keys: Vec<EventKey>,
}

/// A plugin's answer: its records, or the error text its function returned.
pub type Answer<T> = Result<Vec<T>, String>;

impl Prepared {
    /// Whether the plugin answers subject requests (its manifest declares them and its
    /// component exports `data-subject`, which preparing checked).
    pub fn answers_subject_requests(&self) -> bool {
        self.data_subject.is_some()
    }
}

impl Runtime {
    /// Asks `plugin` for every record it holds about `subject` for the council in `call`.
    pub async fn subject_access(
        &self,
        plugin: &Prepared,
        call: CallContext,
        subject: Identifiers,
    ) -> (Result<Answer<SubjectRecord>, CallError>, CallReport) {
        self.subject_call(plugin, call, subject, |e| e.access).await
    }

    /// Asks `plugin` to erase every record it holds about `subject` for the council in
    /// `call`, and to say what it erased.
    pub async fn subject_erase(
        &self,
        plugin: &Prepared,
        call: CallContext,
        subject: Identifiers,
    ) -> (Result<Answer<ErasedRecord>, CallError>, CallReport) {
        self.subject_call(plugin, call, subject, |e| e.erase).await
    }

    async fn subject_call<T>(
        &self,
        plugin: &Prepared,
        call: CallContext,
        subject: Identifiers,
        function: impl Fn(&Exports) -> ComponentExportIndex,
    ) -> (Result<Answer<T>, CallError>, CallReport)
    where
        T: ComponentType + Lift + Send + Sync + 'static,
    {
        let function = match (&self.inner.ticker, &plugin.data_subject) {
            (Some(_), Some(exports)) => Some(function(exports)),
            _ => None,
        };
        let (result, mut report) = call::export::<(Identifiers,), (Answer<T>,)>(
            &self.inner,
            plugin,
            call,
            function,
            (subject,),
        )
        .await;
        let result = result.map(|(answer,)| answer);
        if let Ok(Err(_)) = &result {
            report.outcome = "failed";
        }
        (result, report)
    }
}
