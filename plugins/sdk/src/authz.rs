//! Access-control decisions from the platform's policy for this tenant.
//!
//! Needs the `authz` capability.

use crate::bindings::guildhall::platform::authz as wit;

/// Whether the calling principal may perform `action` on `object` in this tenant, e.g.
/// `allowed("write", "bin-collections/schedules")`.
pub fn allowed(action: &str, object: &str) -> bool {
    wit::allowed(action, object)
}
