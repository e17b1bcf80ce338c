//! Turns a request from a real socket into the request `lambda_http` builds
//! from an API Gateway HTTP API (payload 2.0) event: the local stack serializes
//! the same event API Gateway would send and lets `lambda_http` parse it, so a
//! handler cannot tell where it runs.

use std::net::SocketAddr;

use anyhow::Context;
use base64::Engine;
use bytes::Bytes;
use serde_json::{Map, Value, json};
use shared::platform::clock::{Clock, UtcDateTime};

/// The parts of a received request the event needs.
pub struct Incoming<'a> {
    pub method: &'a str,
    pub raw_path: &'a str,
    pub raw_query: &'a str,
    pub headers: &'a http::HeaderMap,
    pub body: &'a Bytes,
    pub peer: SocketAddr,
    /// The matched route as the catalog declares it (`GET /api/v1/devices/{id}/`).
    pub route_key: String,
    pub path_params: &'a [(String, String)],
}

/// The request as `lambda_http` hands it to a handler under Lambda.
pub fn to_lambda_request(req: &Incoming<'_>, clock: &Clock) -> anyhow::Result<lambda_http::Request> {
    let event = event(req, clock);
    lambda_http::request::from_str(&event.to_string()).context("API Gateway event does not parse")
}

/// The API Gateway HTTP API payload 2.0 event for `req`.
pub fn event(req: &Incoming<'_>, clock: &Clock) -> Value {
    let mut headers = Map::new();
    let mut cookies = Vec::new();
    for (name, value) in req.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == http::header::COOKIE {
            cookies.extend(value.split(';').map(|c| Value::String(c.trim().to_string())));
            continue;
        }
        // API Gateway joins repeated headers with commas.
        match headers.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                headers.insert(name.as_str().to_string(), Value::String(value));
            }
        }
    }

    let mut query = Map::new();
    for (k, v) in form_urlencoded::parse(req.raw_query.as_bytes()) {
        match query.get_mut(k.as_ref()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&v);
            }
            _ => {
                query.insert(k.into_owned(), Value::String(v.into_owned()));
            }
        }
    }

    let content_type = req.headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let (body, base64_encoded) = if req.body.is_empty() {
        (Value::Null, false)
    } else {
        match std::str::from_utf8(req.body) {
            Ok(text) if is_text(content_type) => (Value::String(text.to_string()), false),
            _ => (Value::String(base64::engine::general_purpose::STANDARD.encode(req.body)), true),
        }
    };

    let now = clock.now_millis();
    let mut event = json!({
        "version": "2.0",
        "routeKey": req.route_key,
        "rawPath": req.raw_path,
        "rawQueryString": req.raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": req.headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost"),
            "domainPrefix": "local",
            "http": {
                "method": req.method,
                "path": req.raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": req.peer.ip().to_string(),
                "userAgent": req.headers.get(http::header::USER_AGENT).and_then(|h| h.to_str().ok()).unwrap_or(""),
            },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": req.route_key,
            "stage": "$default",
            "time": clf_time(now),
            "timeEpoch": now,
        },
        "isBase64Encoded": base64_encoded,
    });
    if !cookies.is_empty() {
        event["cookies"] = Value::Array(cookies);
    }
    if !query.is_empty() {
        event["queryStringParameters"] = Value::Object(query);
    }
    if !req.path_params.is_empty() {
        let params: Map<String, Value> =
            req.path_params.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
        event["pathParameters"] = Value::Object(params);
    }
    if !body.is_null() {
        event["body"] = body;
    }
    event
}

/// Content types API Gateway passes as text; everything else arrives base64-encoded.
fn is_text(content_type: &str) -> bool {
    let ct = content_type.to_ascii_lowercase();
    ct.is_empty()
        || ct.starts_with("text/")
        || ct.contains("json")
        || ct.contains("xml")
        || ct.contains("javascript")
        || ct.starts_with("application/x-www-form-urlencoded")
}

/// `22/Nov/2026:03:41:00 +0000`, the request context's time format.
fn clf_time(epoch_millis: i64) -> String {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let t = UtcDateTime::from_epoch_secs(epoch_millis.div_euclid(1000));
    let month = MONTHS[(t.month as usize).saturating_sub(1) % 12];
    format!("{:02}/{month}/{}:{:02}:{:02}:{:02} +0000", t.day, t.year, t.hour, t.minute, t.second)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::RequestExt;
    use lambda_http::request::RequestContext;

    fn incoming<'a>(headers: &'a http::HeaderMap, body: &'a Bytes, params: &'a [(String, String)]) -> Incoming<'a> {
        Incoming {
            method: "POST",
            raw_path: "/api/v1/devices/a%20b/",
            raw_query: "page=2&tag=x&tag=y",
            headers,
            body,
            peer: "127.0.0.1:5555".parse().unwrap(),
            route_key: "POST /api/v1/devices/{id}/".into(),
            path_params: params,
        }
    }

    #[test]
    fn the_request_carries_what_api_gateway_would_deliver() {
        let mut headers = http::HeaderMap::new();
        headers.insert("content-type", "application/json".parse().unwrap());
        headers.insert("cookie", "a=1; b=2".parse().unwrap());
        let body = Bytes::from_static(br#"{"x":1}"#);
        let params = [("id".to_string(), "a b".to_string())];
        let req = to_lambda_request(&incoming(&headers, &body, &params), &Clock::manual(1_700_000_000_000)).unwrap();
        assert_eq!(req.method(), "POST");
        assert_eq!(req.uri().path(), "/api/v1/devices/a%20b/");
        assert_eq!(req.path_parameters_ref().and_then(|p| p.first("id")), Some("a b"));
        let q = req.query_string_parameters();
        assert_eq!(q.first("page"), Some("2"));
        assert_eq!(q.all("tag"), Some(vec!["x", "y"]));
        assert_eq!(req.body().as_ref(), br#"{"x":1}"#);
        match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(ctx)) => {
                assert!(ctx.request_id.as_deref().is_some_and(|id| !id.is_empty()));
                assert_eq!(ctx.http.source_ip.as_deref(), Some("127.0.0.1"));
            }
            other => panic!("expected an API Gateway v2 context, got {other:?}"),
        }
        assert!(req.headers().get("cookie").is_some_and(|c| c.to_str().unwrap().contains("a=1")));
    }

    #[test]
    fn binary_bodies_travel_base64_encoded_and_arrive_intact() {
        let mut headers = http::HeaderMap::new();
        headers.insert("content-type", "application/octet-stream".parse().unwrap());
        let body = Bytes::from_static(&[0, 159, 146, 150, 255]);
        let inc = incoming(&headers, &body, &[]);
        assert_eq!(event(&inc, &Clock::System)["isBase64Encoded"], true);
        let req = to_lambda_request(&inc, &Clock::System).unwrap();
        assert_eq!(req.body().as_ref(), &[0, 159, 146, 150, 255]);
    }

    #[test]
    fn request_time_uses_the_access_log_format() {
        assert_eq!(clf_time(0), "01/Jan/1970:00:00:00 +0000");
        assert_eq!(clf_time(1_795_318_860_000), "22/Nov/2026:03:41:00 +0000");
    }
}
