//! Who acts on the catalogue through the API. Publishing itself, and the owner and
//! signature rules, are `guildhall_operations::catalogue`, shared with the command line.

use guildhall_authz::Principal;
use guildhall_store::Actor;

use crate::AppState;

/// Who is acting on the catalogue through the API: the principal's subject, and whether
/// it may manage every plugin (the platform permission `catalogue:owners`, which operators
/// hold).
pub(crate) fn actor_of<'a>(state: &AppState, principal: &'a Principal) -> Actor<'a> {
    guildhall_operations::owners::actor(&state.authz, principal)
}

/// What publishing needs from the server's state.
pub(crate) fn catalogue(state: &AppState) -> guildhall_operations::catalogue::Catalogue<'_> {
    guildhall_operations::catalogue::Catalogue {
        store: &state.store,
        runtime: &state.runtime,
        keys: &state.trusted_keys,
    }
}
