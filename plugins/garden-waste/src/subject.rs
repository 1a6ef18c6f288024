//! Subject access and erasure: a resident's subscriptions and the applications still
//! waiting for their payment, found by the email address, name, address or reference they
//! give.
//!
//! An erasure removes the subscription with its confirmation mark and reminder claims. A
//! council that must keep payment records for its accounts keeps them in its payment
//! system (GOV.UK Pay holds the payment under the same reference), not here.

use guildhall_plugin::context;
use guildhall_plugin::data_subject::{DataSubject, Erased, Identifiers, Record};
use guildhall_plugin::kv;
use serde::de::DeserializeOwned;

use crate::GardenWaste;
use crate::rules::{Pending, Subscription, keys};

/// What the resident's records have in common, for matching.
trait Held: DeserializeOwned + serde::Serialize {
    const SCHEMA: &'static str;
    fn reference(&self) -> &str;
    fn name(&self) -> &str;
    fn email(&self) -> &str;
    fn address(&self) -> &str;

    fn about(&self, subject: &Identifiers) -> bool {
        subject.email_is(Some(self.email()))
            || subject.name_is(Some(self.name()))
            || subject.address_is(Some(self.address()))
            || subject.reference_is(Some(self.reference()))
    }

    fn record(&self) -> Record {
        Record::new(Self::SCHEMA, self).event_key("reference", self.reference())
    }
}

impl Held for Subscription {
    const SCHEMA: &'static str = "subscription";
    fn reference(&self) -> &str {
        &self.reference
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn email(&self) -> &str {
        &self.email
    }
    fn address(&self) -> &str {
        &self.address
    }
}

impl Held for Pending {
    const SCHEMA: &'static str = "pending-application";
    fn reference(&self) -> &str {
        &self.reference
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn email(&self) -> &str {
        &self.email
    }
    fn address(&self) -> &str {
        &self.address
    }
}

fn storage(e: kv::KvError) -> String {
    format!("cannot read or erase the council's records: {e}")
}

/// The council's records under `prefix` about `subject`, with their keys.
fn about<T: Held>(prefix: &str, subject: &Identifiers) -> Result<Vec<(String, T)>, String> {
    if subject.is_empty() {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    for key in kv::list_all_keys(prefix).map_err(storage)? {
        if let Some(record) = kv::get_json::<T>(&key).map_err(storage)?
            && record.about(subject)
        {
            found.push((key, record));
        }
    }
    Ok(found)
}

impl DataSubject for GardenWaste {
    fn access(subject: &Identifiers) -> Result<Vec<Record>, String> {
        let council = context::council();
        let mut records: Vec<Record> =
            about::<Subscription>(&keys::subscriptions_prefix(&council), subject)?
                .iter()
                .map(|(_, s)| s.record())
                .collect();
        records.extend(
            about::<Pending>(&keys::pending_prefix(&council), subject)?
                .iter()
                .map(|(_, p)| p.record()),
        );
        Ok(records)
    }

    fn erase(subject: &Identifiers) -> Result<Vec<Erased>, String> {
        let council = context::council();
        let mut erased = Vec::new();
        for (key, subscription) in
            about::<Subscription>(&keys::subscriptions_prefix(&council), subject)?
        {
            let reference = &subscription.reference;
            // Its confirmation mark and reminder claims go with it; the subscription is
            // reported only by the call that removed it.
            kv::delete(&keys::unsent(&council, reference)).map_err(storage)?;
            let claims = keys::reminded(&council, reference, "");
            for claim in kv::list_all_keys(&claims).map_err(storage)? {
                kv::delete(&claim).map_err(storage)?;
            }
            if kv::delete(&key).map_err(storage)? {
                erased.push(subscription.record().erased());
            }
        }
        for (key, pending) in about::<Pending>(&keys::pending_prefix(&council), subject)? {
            if kv::delete(&key).map_err(storage)? {
                erased.push(pending.record().erased());
            }
        }
        Ok(erased)
    }
}
