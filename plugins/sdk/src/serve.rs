//! The bridge between `wasi:http/incoming-handler` and [`Handler`].

use wasip2::http::types::{
    Fields, IncomingBody, IncomingRequest, Method as WasiMethod, OutgoingBody, OutgoingResponse,
    ResponseOutparam,
};
use wasip2::io::streams::StreamError;

use crate::Handler;
use crate::http::{Method, Request, Response};

/// The largest request body the SDK reads, 4 MiB (the platform's default cap); larger
/// bodies are answered with `413` before your handler runs.
pub const MAX_REQUEST_BODY: usize = 4 * 1024 * 1024;

/// The most bytes handed to one `blocking-write-and-flush` call, as WASI allows.
const WRITE_CHUNK: usize = 4096;

/// How many bytes to ask for per read of the request body.
const READ_CHUNK: u64 = 64 * 1024;

/// Reads the request, calls `H`, writes the response. Called by [`crate::export_plugin!`].
pub fn serve<H: Handler>(request: IncomingRequest, response_out: ResponseOutparam) {
    let (head_only, response) = match read_request(request) {
        Ok(req) => (req.method == Method::Head, H::handle(req)),
        Err(response) => (false, response),
    };
    write_response(response_out, response, head_only);
}

fn read_request(request: IncomingRequest) -> Result<Request, Response> {
    let method = match request.method() {
        WasiMethod::Get => Method::Get,
        WasiMethod::Head => Method::Head,
        WasiMethod::Post => Method::Post,
        WasiMethod::Put => Method::Put,
        WasiMethod::Delete => Method::Delete,
        WasiMethod::Patch => Method::Patch,
        WasiMethod::Options => Method::Options,
        WasiMethod::Connect => Method::Connect,
        WasiMethod::Trace => Method::Trace,
        WasiMethod::Other(name) => Method::from(name.as_str()),
    };
    let path_with_query = request.path_with_query().unwrap_or_else(|| "/".to_owned());
    let mut req = Request::new(method, &path_with_query);
    req.headers = request
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| {
            (
                name.to_ascii_lowercase(),
                String::from_utf8_lossy(&value).into_owned(),
            )
        })
        .collect();

    if let Some(length) = req.header("content-length") {
        match length.trim().parse::<u64>() {
            Ok(n) if n > MAX_REQUEST_BODY as u64 => return Err(too_large()),
            Ok(_) => {}
            Err(_) => {
                return Err(Response::error(
                    400,
                    "the content-length header is not a number",
                ));
            }
        }
    }
    req.body = read_body(&request)?;
    Ok(req)
}

fn read_body(request: &IncomingRequest) -> Result<Vec<u8>, Response> {
    let unreadable = || Response::error(400, "the request body could not be read");
    let body = request.consume().map_err(|()| unreadable())?;
    let mut bytes = Vec::new();
    {
        let stream = body.stream().map_err(|()| unreadable())?;
        loop {
            match stream.blocking_read(READ_CHUNK) {
                Ok(chunk) => {
                    if bytes.len() + chunk.len() > MAX_REQUEST_BODY {
                        return Err(too_large());
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(_)) => return Err(unreadable()),
            }
        }
        // The stream is a child of the body and must go before it.
    }
    drop(IncomingBody::finish(body));
    Ok(bytes)
}

fn too_large() -> Response {
    Response::error(
        413,
        &format!("the request body is larger than {MAX_REQUEST_BODY} bytes"),
    )
}

fn write_response(response_out: ResponseOutparam, mut response: Response, head_only: bool) {
    let headers = match response_headers(&response, head_only) {
        Ok(headers) => headers,
        Err(detail) => {
            response = Response::error(500, &detail);
            response_headers(&response, head_only).unwrap_or_else(|_| Fields::new())
        }
    };
    let outgoing = OutgoingResponse::new(headers);
    if outgoing.set_status_code(response.status).is_err() {
        // Not a valid status: say so rather than trapping.
        let detail = format!(
            "the plugin answered with invalid status {}",
            response.status
        );
        return write_response(response_out, Response::error(500, &detail), head_only);
    }
    let Ok(body) = outgoing.body() else {
        return;
    };
    ResponseOutparam::set(response_out, Ok(outgoing));
    if !head_only && let Ok(stream) = body.write() {
        for chunk in response.body.chunks(WRITE_CHUNK) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                // The client went away or the platform stopped reading; nothing more to do.
                break;
            }
        }
    }
    // Any error here means the body was cut short; the platform already knows.
    drop(OutgoingBody::finish(body, None));
}

/// The response's headers as WASI fields, with `content-length` set by the SDK.
fn response_headers(response: &Response, head_only: bool) -> Result<Fields, String> {
    let fields = Fields::new();
    for (name, value) in &response.headers {
        if name.eq_ignore_ascii_case("content-length") {
            continue;
        }
        fields.append(name, value.as_bytes()).map_err(|e| {
            format!("the plugin set a response header the platform refuses: {name:?} ({e:?})")
        })?;
    }
    if !head_only {
        fields
            .append("content-length", response.body.len().to_string().as_bytes())
            .map_err(|e| format!("could not set content-length ({e:?})"))?;
    }
    Ok(fields)
}
