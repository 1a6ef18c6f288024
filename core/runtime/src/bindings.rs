//! The host side of the `guildhall:platform` WIT package (`core/runtime/wit`): the one
//! bindgen site in the host. Only the interfaces are re-exported.

mod generated {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "guildhall:platform/platform",
        imports: { default: async | trappable },
        require_store_data_send: true,
    });
}

pub(crate) use generated::guildhall::platform::{authz, context, events, kv, secrets, session};
