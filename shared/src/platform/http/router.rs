//! Route matching over functions' routes, as API Gateway does it: paths match
//! exactly as declared (trailing slash included), `{name}` matches one
//! non-empty segment. Under Lambda API Gateway routes; the local stack and
//! the tests route with this.

use crate::platform::function::Function;

/// The outcome of matching a request line.
#[derive(Debug)]
pub enum RouteMatch<'c> {
    Found {
        function: &'c Function,
        params: Vec<(String, String)>,
    },
    /// The path is known, the method is not: the allowed methods.
    MethodNotAllowed(Vec<&'static str>),
    NotFound,
}

struct Route<'c> {
    method: &'static str,
    segments: Vec<Segment>,
    function: &'c Function,
}

enum Segment {
    Literal(&'static str),
    Param(&'static str),
}

/// The HTTP routes of a list of functions.
pub struct Router<'c> {
    routes: Vec<Route<'c>>,
}

impl<'c> Router<'c> {
    pub fn new(functions: &'c [Function]) -> Self {
        let routes = functions
            .iter()
            .filter_map(|function| {
                let route = function.route()?;
                Some(Route { method: route.method, segments: parse(route.path), function })
            })
            .collect();
        Router { routes }
    }

    /// Matches a method and a raw (still percent-encoded) path.
    pub fn find(&self, method: &str, path: &str) -> RouteMatch<'c> {
        let parts: Vec<&str> = path.split('/').collect();
        let mut allowed = Vec::new();
        for route in &self.routes {
            let Some(params) = match_segments(&route.segments, &parts) else { continue };
            if route.method.eq_ignore_ascii_case(method) {
                return RouteMatch::Found { function: route.function, params };
            }
            allowed.push(route.method);
        }
        if allowed.is_empty() { RouteMatch::NotFound } else { RouteMatch::MethodNotAllowed(allowed) }
    }
}

fn parse(path: &'static str) -> Vec<Segment> {
    path.split('/')
        .map(|s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => Segment::Param(name),
            None => Segment::Literal(s),
        })
        .collect()
}

fn match_segments(segments: &[Segment], parts: &[&str]) -> Option<Vec<(String, String)>> {
    if segments.len() != parts.len() {
        return None;
    }
    let mut params = Vec::new();
    for (segment, part) in segments.iter().zip(parts) {
        match segment {
            Segment::Literal(lit) if lit == part => {}
            Segment::Literal(_) => return None,
            Segment::Param(_) if part.is_empty() => return None,
            Segment::Param(name) => {
                let value = percent_encoding::percent_decode_str(part).decode_utf8().ok()?;
                params.push((name.to_string(), value.into_owned()));
            }
        }
    }
    Some(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::function::Function;
    use crate::platform::http::ok;

    fn route(name: &'static str, method: &'static str, path: &'static str) -> Function {
        Function::http(name, method, path, "test", |_, _| Box::pin(async { ok(&()) }))
    }

    fn found(m: RouteMatch<'_>) -> (&'static str, Vec<(String, String)>) {
        match m {
            RouteMatch::Found { function, params } => (function.name, params),
            other => panic!("expected a match, got {other:?}"),
        }
    }

    #[test]
    fn paths_match_exactly_including_the_trailing_slash() {
        let fs = [route("a", "GET", "/health/")];
        let r = Router::new(&fs);
        assert_eq!(found(r.find("GET", "/health/")).0, "a");
        assert!(matches!(r.find("GET", "/health"), RouteMatch::NotFound));
        assert!(matches!(r.find("GET", "/health/x"), RouteMatch::NotFound));
    }

    #[test]
    fn params_take_one_decoded_segment() {
        let fs = [route("get", "GET", "/api/v1/devices/{id}/"), route("lock", "POST", "/api/v1/devices/{id}/lock/")];
        let r = Router::new(&fs);
        assert_eq!(found(r.find("GET", "/api/v1/devices/a%20b/")), ("get", vec![("id".into(), "a b".into())]));
        assert_eq!(found(r.find("POST", "/api/v1/devices/7/lock/")).0, "lock");
        assert!(matches!(r.find("GET", "/api/v1/devices//"), RouteMatch::NotFound));
    }

    #[test]
    fn a_known_path_with_another_method_is_405() {
        let fs = [route("a", "GET", "/x/"), route("b", "PUT", "/x/")];
        let r = Router::new(&fs);
        match r.find("DELETE", "/x/") {
            RouteMatch::MethodNotAllowed(allowed) => assert_eq!(allowed, vec!["GET", "PUT"]),
            other => panic!("{other:?}"),
        }
    }
}
