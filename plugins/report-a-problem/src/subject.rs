//! Subject access and erasure: the service requests a resident reported, found by the email
//! address, phone number, name, address or request number they give.

use guildhall_plugin::context;
use guildhall_plugin::data_subject::{DataSubject, Erased, Identifiers, Record};
use guildhall_plugin::kv::CouncilKv;

use crate::open311::StoredRequest;
use crate::{ReportAProblem, council_requests, request_key};

/// What kind of record a service request is, in an access bundle.
const SCHEMA: &str = "service-request";

/// Whether `request` is about the resident `subject` names.
fn matches(subject: &Identifiers, request: &StoredRequest) -> bool {
    let name = match (&request.first_name, &request.last_name) {
        (Some(first), Some(last)) => Some(format!("{first} {last}")),
        (Some(one), None) | (None, Some(one)) => Some(one.clone()),
        (None, None) => None,
    };
    subject.email_is(request.email.as_deref())
        || subject.phone_is(request.phone.as_deref())
        || subject.name_is(name.as_deref())
        || subject.address_is(request.address.as_deref())
        || subject.reference_is(Some(&request.service_request_id))
}

/// The council's requests about `subject`.
fn requests_about(subject: &Identifiers) -> Result<Vec<StoredRequest>, String> {
    if subject.is_empty() {
        return Ok(Vec::new());
    }
    let requests = council_requests().map_err(|e| format!("cannot read requests: {e}"))?;
    Ok(requests
        .into_iter()
        .filter(|request| matches(subject, request))
        .collect())
}

fn record(request: &StoredRequest) -> Record {
    Record::new(SCHEMA, request).event_key("service_request_id", &request.service_request_id)
}

impl DataSubject for ReportAProblem {
    fn access(subject: &Identifiers) -> Result<Vec<Record>, String> {
        Ok(requests_about(subject)?.iter().map(record).collect())
    }

    fn erase(subject: &Identifiers) -> Result<Vec<Erased>, String> {
        let store = CouncilKv::for_council(&context::council());
        let mut erased = Vec::new();
        for request in requests_about(subject)? {
            // Reported as erased only by the call that removed it: two erasures at once
            // (on any replica) never both count one request.
            let removed = store
                .delete(&request_key(&request.service_request_id))
                .map_err(|e| format!("cannot erase a request: {e}"))?;
            if removed {
                erased.push(record(&request).erased());
            }
        }
        Ok(erased)
    }
}
