//! A small method-and-path router.

use std::fmt;

use crate::http::{Method, Request, Response};
use crate::urlencoded::decode_path;

type BoxedHandler = Box<dyn Fn(Request) -> Response>;

/// Routes requests to functions by method and path pattern.
///
/// A pattern is a path whose segments are literal text or contain one parameter in braces,
/// optionally with literal text around it: `/services/{code}.json` matches
/// `/services/pothole.json` with `code` = `pothole`. A last segment `{*name}` matches the rest
/// of the path, slashes included (possibly empty). Parameters are percent-decoded and read
/// with [`Request::param`].
///
/// Routes are tried in the order they were added. When none matches the path the answer is a
/// `404` problem; when the path matches but not the method, a `405` problem with an `Allow`
/// header. `HEAD` is served by `GET` routes and `OPTIONS` is answered with `204` and `Allow`,
/// unless you add routes for them.
///
/// ```
/// use guildhall_plugin::{Method, Request, Response, Router};
///
/// let router = Router::new()
///     .get("/services.json", |_req| Response::json(200, &["pothole"]))
///     .get("/services/{code}.json", |req| {
///         Response::text(200, format!("service {}", req.param("code").unwrap_or_default()))
///     });
///
/// let resp = router.handle(Request::new(Method::Get, "/services/pot%20hole.json"));
/// assert_eq!(resp.body_text(), "service pot hole");
/// assert_eq!(router.handle(Request::new(Method::Get, "/nope")).status, 404);
/// assert_eq!(router.handle(Request::new(Method::Post, "/services.json")).status, 405);
/// ```
pub struct Router {
    routes: Vec<Route>,
}

struct Route {
    method: Method,
    pattern: Pattern,
    handler: BoxedHandler,
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.routes
                    .iter()
                    .map(|r| format!("{} {}", r.method, r.pattern.source)),
            )
            .finish()
    }
}

impl Default for Router {
    fn default() -> Self {
        Router::new()
    }
}

impl Router {
    /// A router with no routes.
    pub fn new() -> Self {
        Router { routes: Vec::new() }
    }

    /// Adds a route for `method` and `pattern`.
    ///
    /// # Panics
    ///
    /// If `pattern` does not start with `/`, has an unclosed or empty `{}`, more than one
    /// parameter in a segment, or a `{*rest}` that is not the last segment.
    pub fn route(
        mut self,
        method: Method,
        pattern: &str,
        handler: impl Fn(Request) -> Response + 'static,
    ) -> Self {
        let pattern = Pattern::parse(pattern).unwrap_or_else(|e| panic!("{e}"));
        self.routes.push(Route {
            method,
            pattern,
            handler: Box::new(handler),
        });
        self
    }

    /// Adds a `GET` route (which also serves `HEAD`).
    pub fn get(self, pattern: &str, handler: impl Fn(Request) -> Response + 'static) -> Self {
        self.route(Method::Get, pattern, handler)
    }

    /// Adds a `POST` route.
    pub fn post(self, pattern: &str, handler: impl Fn(Request) -> Response + 'static) -> Self {
        self.route(Method::Post, pattern, handler)
    }

    /// Adds a `PUT` route.
    pub fn put(self, pattern: &str, handler: impl Fn(Request) -> Response + 'static) -> Self {
        self.route(Method::Put, pattern, handler)
    }

    /// Adds a `PATCH` route.
    pub fn patch(self, pattern: &str, handler: impl Fn(Request) -> Response + 'static) -> Self {
        self.route(Method::Patch, pattern, handler)
    }

    /// Adds a `DELETE` route.
    pub fn delete(self, pattern: &str, handler: impl Fn(Request) -> Response + 'static) -> Self {
        self.route(Method::Delete, pattern, handler)
    }

    /// Answers `req` with the first matching route, or a `404`/`405` problem.
    pub fn handle(&self, mut req: Request) -> Response {
        let segments: Vec<&str> = req
            .path
            .strip_prefix('/')
            .unwrap_or(&req.path)
            .split('/')
            .collect();
        let mut allowed: Vec<&Method> = Vec::new();
        let mut get_match: Option<(&Route, Vec<(String, String)>)> = None;
        for route in &self.routes {
            let Some(params) = route.pattern.matches(&segments) else {
                continue;
            };
            if route.method == req.method {
                req.params = params;
                return (route.handler)(req);
            }
            if route.method == Method::Get && get_match.is_none() {
                get_match = Some((route, params));
            }
            if !allowed.contains(&&route.method) {
                allowed.push(&route.method);
            }
        }
        if allowed.is_empty() {
            return Response::error(404, &format!("there is nothing at {}", req.path));
        }
        if req.method == Method::Head
            && let Some((route, params)) = get_match
        {
            req.params = params;
            return (route.handler)(req);
        }
        let mut allow: Vec<&str> = allowed.iter().map(|m| m.as_str()).collect();
        if allowed.contains(&&Method::Get) && !allow.contains(&"HEAD") {
            allow.push("HEAD");
        }
        if !allow.contains(&"OPTIONS") {
            allow.push("OPTIONS");
        }
        let allow = allow.join(", ");
        if req.method == Method::Options {
            return Response::new(204).with_header("allow", &allow);
        }
        Response::error(
            405,
            &format!("{} is not allowed here; use {allow}", req.method),
        )
        .with_header("allow", &allow)
    }
}

#[derive(Debug)]
struct Pattern {
    source: String,
    segments: Vec<Segment>,
}

#[derive(Debug)]
enum Segment {
    Literal(String),
    Param {
        prefix: String,
        name: String,
        suffix: String,
    },
    Rest(String),
}

impl Pattern {
    fn parse(source: &str) -> Result<Pattern, String> {
        let bad = |why: &str| format!("invalid route pattern {source:?}: {why}");
        let rest = source
            .strip_prefix('/')
            .ok_or_else(|| bad("it must start with /"))?;
        let raw: Vec<&str> = rest.split('/').collect();
        let mut segments = Vec::with_capacity(raw.len());
        for (i, seg) in raw.iter().enumerate() {
            let Some(open) = seg.find('{') else {
                if seg.contains('}') {
                    return Err(bad("unmatched }"));
                }
                segments.push(Segment::Literal((*seg).to_owned()));
                continue;
            };
            let close = seg.find('}').ok_or_else(|| bad("unclosed {"))?;
            if close < open {
                return Err(bad("unmatched }"));
            }
            let prefix = &seg[..open];
            let name = &seg[open + 1..close];
            let suffix = &seg[close + 1..];
            if suffix.contains('{') || suffix.contains('}') || prefix.contains('}') {
                return Err(bad("at most one parameter per segment"));
            }
            if let Some(rest_name) = name.strip_prefix('*') {
                if i + 1 != raw.len() || !prefix.is_empty() || !suffix.is_empty() {
                    return Err(bad("{*name} must be a whole, last segment"));
                }
                if rest_name.is_empty() {
                    return Err(bad("empty parameter name"));
                }
                segments.push(Segment::Rest(rest_name.to_owned()));
                continue;
            }
            if name.is_empty() {
                return Err(bad("empty parameter name"));
            }
            segments.push(Segment::Param {
                prefix: prefix.to_owned(),
                name: name.to_owned(),
                suffix: suffix.to_owned(),
            });
        }
        Ok(Pattern {
            source: source.to_owned(),
            segments,
        })
    }

    /// The captured parameters when `path` (split on `/`, without the leading one) matches.
    fn matches(&self, path: &[&str]) -> Option<Vec<(String, String)>> {
        let mut params = Vec::new();
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Rest(name) => {
                    params.push((name.clone(), decode_path(&path.get(i..)?.join("/"))));
                    return Some(params);
                }
                Segment::Literal(literal) => {
                    if decode_path(path.get(i)?) != *literal {
                        return None;
                    }
                }
                Segment::Param {
                    prefix,
                    name,
                    suffix,
                } => {
                    let decoded = decode_path(path.get(i)?);
                    let value = decoded
                        .strip_prefix(prefix.as_str())?
                        .strip_suffix(suffix.as_str())?;
                    if value.is_empty() {
                        return None;
                    }
                    params.push((name.clone(), value.to_owned()));
                }
            }
        }
        (path.len() == self.segments.len()).then_some(params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo(req: Request) -> Response {
        let params: Vec<String> = req.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        Response::text(200, params.join(";"))
    }

    fn router() -> Router {
        Router::new()
            .get("/", echo)
            .get("/services.json", |_| Response::text(200, "list"))
            .get("/services/{code}.json", echo)
            .post("/requests.json", |_| Response::new(201))
            .get("/uprn/{uprn}", echo)
            .put("/uprn/{uprn}", |_| Response::new(204))
            .get("/files/{*path}", echo)
    }

    fn call(method: Method, path: &str) -> Response {
        router().handle(Request::new(method, path))
    }

    #[test]
    fn matches_literals_and_params() {
        assert_eq!(call(Method::Get, "/").status, 200);
        assert_eq!(call(Method::Get, "/services.json").body_text(), "list");
        assert_eq!(
            call(Method::Get, "/services/pothole.json").body_text(),
            "code=pothole"
        );
        assert_eq!(
            call(Method::Get, "/uprn/100061%20").body_text(),
            "uprn=100061 "
        );
        assert_eq!(
            call(Method::Get, "/files/a/b%2Fc").body_text(),
            "path=a/b/c"
        );
        assert_eq!(call(Method::Get, "/files/").body_text(), "path=");
    }

    #[test]
    fn rejects_partial_and_empty_matches() {
        assert_eq!(call(Method::Get, "/services/.json").status, 404);
        assert_eq!(call(Method::Get, "/services/x.xml").status, 404);
        assert_eq!(call(Method::Get, "/uprn/1/2").status, 404);
        assert_eq!(call(Method::Get, "/uprn/").status, 404);
        assert_eq!(call(Method::Get, "/services.json/").status, 404);
        let resp = call(Method::Get, "/nope");
        assert_eq!(
            resp.header("content-type"),
            Some("application/problem+json")
        );
    }

    #[test]
    fn wrong_method_is_405_with_allow() {
        let resp = call(Method::Delete, "/uprn/1");
        assert_eq!(resp.status, 405);
        assert_eq!(resp.header("allow"), Some("GET, PUT, HEAD, OPTIONS"));
        let resp = call(Method::Get, "/requests.json");
        assert_eq!(resp.status, 405);
        assert_eq!(resp.header("allow"), Some("POST, OPTIONS"));
    }

    #[test]
    fn head_uses_get_and_options_lists_methods() {
        assert_eq!(call(Method::Head, "/uprn/7").body_text(), "uprn=7");
        let resp = call(Method::Options, "/uprn/7");
        assert_eq!(resp.status, 204);
        assert_eq!(resp.header("allow"), Some("GET, PUT, HEAD, OPTIONS"));
    }

    #[test]
    fn bad_patterns_are_rejected() {
        for bad in [
            "services",
            "/a/{",
            "/a/}",
            "/a/{}",
            "/a/{x}{y}",
            "/{*rest}/more",
            "/x{*rest}",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad} should be rejected");
        }
    }
}
