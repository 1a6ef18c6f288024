//! sea-orm entities, one module per table. Private to the store: other crates see records.

pub(crate) mod councils;
pub(crate) mod tenants;
