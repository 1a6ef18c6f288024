//! Per-call bounds on what `wasi:http` keeps on the host for a guest.
//!
//! wasmtime-wasi-http bounds each `fields` resource (its size limit) and the resource
//! table bounds how many resources a call holds at once, but nothing bounds their product:
//! a guest creating thousands of fields with one large header each holds gigabytes of host
//! memory that its linear-memory cap never sees. The functions here replace the ones of
//! `wasi:http` that make the host keep guest-chosen bytes (fields built from guest data,
//! copies of fields, buffered outgoing bodies) and outbound requests: each counts what it
//! keeps against the call's memory cap ([`Host::charge`]), or the request against the
//! call's outbound limit, then does exactly what wasmtime-wasi-http does. Past a limit the
//! guest traps and the call fails with the limit named.
//!
//! Counting is cumulative over the call (dropping a resource does not give its bytes
//! back): a service builds a handful of header maps per request, so a call that creates
//! more than its memory cap's worth of them is hostile or broken either way.

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi_http::p2::bindings::http::outgoing_handler;
use wasmtime_wasi_http::p2::bindings::http::types::{
    self as wit, ErrorCode, HostFields, RequestOptions,
};
use wasmtime_wasi_http::p2::body::HostOutgoingBody;
use wasmtime_wasi_http::p2::types::{
    HostFutureIncomingResponse, HostOutgoingRequest, HostOutgoingResponse,
};
use wasmtime_wasi_http::{FieldMap, WasiHttpCtxView, WasiHttpView};

use super::prepared;
use crate::host::Host;

/// The `wasi:http` version wasmtime-wasi-http links; components importing any 0.2
/// version are matched to it by semver.
const TYPES: &str = "wasi:http/types@0.2.12";
const OUTGOING_HANDLER: &str = "wasi:http/outgoing-handler@0.2.12";

/// What the host keeps per header entry besides the name and value bytes (the header
/// map's index and entry records), an estimate on the high side.
const ENTRY_OVERHEAD: usize = 64;

/// The chunk size of outgoing body streams; each body buffers at most two chunks.
pub(crate) const BODY_CHUNK: usize = 64 << 10;

fn entry_size(name: usize, value: usize) -> usize {
    name.saturating_add(value).saturating_add(ENTRY_OVERHEAD)
}

fn fields_size(fields: &FieldMap) -> usize {
    let map: &http::HeaderMap = fields;
    map.iter()
        .map(|(name, value)| entry_size(name.as_str().len(), value.len()))
        .sum()
}

/// Turns wasmtime-wasi-http's trappable header error into the value the guest sees, or
/// the trap.
fn header_result<T>(
    view: &mut WasiHttpCtxView<'_>,
    result: Result<T, wasmtime_wasi_http::p2::HeaderError>,
) -> wasmtime::Result<Result<T, wit::HeaderError>> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(e) => Ok(Err(wit::Host::convert_header_error(view, e)?)),
    }
}

/// Replaces the `wasi:http/types` functions that keep guest bytes on the host.
pub(super) fn link_types(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut types = linker.instance(TYPES)?;
    types.func_wrap(
        "[static]fields.from-list",
        |mut store: StoreContextMut<'_, Host>, (entries,): (Vec<(String, Vec<u8>)>,)| {
            let bytes = entries
                .iter()
                .map(|(name, value)| entry_size(name.len(), value.len()))
                .sum();
            store.data_mut().charge(bytes, "header fields")?;
            let mut view = store.data_mut().http();
            let result = HostFields::from_list(&mut view, entries);
            Ok((header_result(&mut view, result)?,))
        },
    )?;
    types.func_wrap(
        "[method]fields.set",
        |mut store: StoreContextMut<'_, Host>,
         (fields, name, values): (Resource<FieldMap>, String, Vec<Vec<u8>>)| {
            let bytes = values
                .iter()
                .map(|value| entry_size(name.len(), value.len()))
                .sum();
            store.data_mut().charge(bytes, "header fields")?;
            let mut view = store.data_mut().http();
            let result = HostFields::set(&mut view, fields, name, values);
            Ok((header_result(&mut view, result)?,))
        },
    )?;
    types.func_wrap(
        "[method]fields.append",
        |mut store: StoreContextMut<'_, Host>,
         (fields, name, value): (Resource<FieldMap>, String, Vec<u8>)| {
            store
                .data_mut()
                .charge(entry_size(name.len(), value.len()), "header fields")?;
            let mut view = store.data_mut().http();
            let result = HostFields::append(&mut view, fields, name, value);
            Ok((header_result(&mut view, result)?,))
        },
    )?;
    types.func_wrap(
        "[method]fields.clone",
        |mut store: StoreContextMut<'_, Host>, (fields,): (Resource<FieldMap>,)| {
            // A clone shares its map until either is changed, then copies it whole; count
            // the copy now.
            let bytes = fields_size(store.data().table.get(&fields)?);
            store.data_mut().charge(bytes, "header fields")?;
            let mut view = store.data_mut().http();
            Ok((HostFields::clone(&mut view, fields)?,))
        },
    )?;
    types.func_wrap(
        "[method]outgoing-request.body",
        |mut store: StoreContextMut<'_, Host>, (request,): (Resource<HostOutgoingRequest>,)| {
            store
                .data_mut()
                .charge(2 * BODY_CHUNK, "an outgoing body's buffer")?;
            let mut view = store.data_mut().http();
            let body: Result<Resource<HostOutgoingBody>, ()> =
                wit::HostOutgoingRequest::body(&mut view, request)?;
            Ok((body,))
        },
    )?;
    types.func_wrap(
        "[method]outgoing-response.body",
        |mut store: StoreContextMut<'_, Host>, (response,): (Resource<HostOutgoingResponse>,)| {
            store
                .data_mut()
                .charge(2 * BODY_CHUNK, "an outgoing body's buffer")?;
            let mut view = store.data_mut().http();
            let body: Result<Resource<HostOutgoingBody>, ()> =
                wit::HostOutgoingResponse::body(&mut view, response)?;
            Ok((body,))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Replaces `wasi:http/outgoing-handler.handle` with one that counts the call's outbound
/// requests, refused ones included, so a guest looping on a refused host ends promptly
/// instead of filling logs and reports until its deadline.
pub(super) fn link_outgoing(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut handler = linker.instance(OUTGOING_HANDLER)?;
    handler.func_wrap(
        "handle",
        |mut store: StoreContextMut<'_, Host>,
         (request, options): (
            Resource<HostOutgoingRequest>,
            Option<Resource<RequestOptions>>,
        )| {
            prepared(&mut store.data_mut().capabilities.outbound_http).take()?;
            let mut view = store.data_mut().http();
            let result: Result<Resource<HostFutureIncomingResponse>, ErrorCode> =
                match outgoing_handler::Host::handle(&mut view, request, options) {
                    Ok(future) => Ok(future),
                    Err(e) => Err(wit::Host::convert_error_code(&mut view, e)?),
                };
            Ok((result,))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
