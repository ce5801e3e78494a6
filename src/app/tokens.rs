//! The token routes: `POST /api/v1/auth/jwt/claims` (the claims a secret
//! key signs its own public tokens with) and `POST /api/v1/auth/public-tokens`
//! (the server signs a token for the key), with the server's answers.

use super::{error_response, json_response};
use crate::auth::{KeyKind, Principal};
use crate::body::Body;
use crate::errors::ApiError;
use crate::jwt;
use crate::time::Millis;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::{Response, StatusCode};
use serde_json::{Map, Value, json};

/// The methods the token routes answer.
pub const ALLOW: &str = "POST";

/// The largest body `POST /api/v1/auth/public-tokens` reads, in bytes.
pub const MAX_BODY: usize = 64 * 1024;

/// `POST /api/v1/auth/jwt/claims`: `{"sub": <environment id>, "pub": true}`.
/// The environment becomes known, so tokens the SDK signs with the key verify.
pub fn claims(app: &super::App, principal: &Principal<'_>) -> Bytes {
    let id = app.state().environments.register(principal.scenario_key());
    Bytes::from(json!({ "sub": &*id, "pub": true }).to_string())
}

/// The zod name of a JSON value's type.
fn received(value: Option<&Value>) -> &'static str {
    match value {
        None => "undefined",
        Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "boolean",
        Some(Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Array(_)) => "array",
        Some(Value::Object(_)) => "object",
    }
}

fn invalid_type(expected: &str, got: Option<&Value>, path: Value) -> Value {
    let got = received(got);
    let message =
        if got == "undefined" { "Required".to_owned() } else { format!("Expected {expected}, received {got}") };
    json!({ "code": "invalid_type", "expected": expected, "received": got, "path": path, "message": message })
}

/// The request body, checked field by field as the server's schema does.
struct Request {
    scopes: Vec<String>,
    expiration: Option<Value>,
    one_time_use: bool,
    realtime: Option<Value>,
}

fn parse(body: &Value) -> Result<Request, Vec<Value>> {
    let Some(object) = body.as_object() else {
        return Err(vec![invalid_type("object", Some(body), json!([]))]);
    };
    let mut issues = Vec::new();
    let mut scopes = Vec::new();
    match object.get("scopes") {
        Some(Value::Array(items)) => {
            if items.is_empty() {
                issues.push(json!({
                    "code": "too_small", "minimum": 1, "type": "array", "inclusive": true, "exact": false,
                    "message": "Array must contain at least 1 element(s)", "path": ["scopes"],
                }));
            }
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(scope) => scopes.push(scope.clone()),
                    other => issues.push(invalid_type("string", Some(other), json!(["scopes", i]))),
                }
            }
        }
        other => issues.push(invalid_type("array", other, json!(["scopes"]))),
    }
    let expiration = match object.get("expirationTime") {
        None => None,
        Some(v @ (Value::String(_) | Value::Number(_))) => Some(v.clone()),
        Some(_) => {
            issues.push(json!({ "code": "invalid_union", "path": ["expirationTime"], "message": "Invalid input" }));
            None
        }
    };
    let one_time_use = match object.get("oneTimeUse") {
        None => false,
        Some(Value::Bool(b)) => *b,
        other => {
            issues.push(invalid_type("boolean", other, json!(["oneTimeUse"])));
            false
        }
    };
    let realtime = match object.get("realtime") {
        None => None,
        Some(Value::Object(fields)) => {
            // Unknown keys are dropped, as the schema strips them.
            let mut kept = Map::new();
            match fields.get("skipColumns") {
                None => {}
                Some(Value::Array(columns)) => {
                    for (i, column) in columns.iter().enumerate() {
                        if !column.is_string() {
                            issues.push(invalid_type("string", Some(column), json!(["realtime", "skipColumns", i])));
                        }
                    }
                    kept.insert("skipColumns".into(), Value::Array(columns.clone()));
                }
                other => issues.push(invalid_type("array", other, json!(["realtime", "skipColumns"]))),
            }
            Some(Value::Object(kept))
        }
        other => {
            issues.push(invalid_type("object", other, json!(["realtime"])));
            None
        }
    };
    if issues.is_empty() { Ok(Request { scopes, expiration, one_time_use, realtime }) } else { Err(issues) }
}

/// The server's relative times: `15m`, `2 hours`, `+1d`, `30 minutes from
/// now`, `-5m`, `5m ago`, in seconds (negative for the past). `None` when the
/// text is none of these.
fn relative_seconds(text: &str) -> Option<f64> {
    let lower = text.to_ascii_lowercase();
    let (rest, suffix_past) = if let Some(r) = lower.strip_suffix(" ago") {
        (r, Some(true))
    } else if let Some(r) = lower.strip_suffix(" from now") {
        (r, Some(false))
    } else {
        (lower.as_str(), None)
    };
    let (sign, rest) = match rest.as_bytes().first() {
        Some(b'+') => (Some(false), &rest[1..]),
        Some(b'-') => (Some(true), &rest[1..]),
        _ => (None, rest),
    };
    if sign.is_some() && suffix_past.is_some() {
        return None;
    }
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let digits_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
    let (number, unit) = rest.split_at(digits_end);
    let well_formed = match number.split_once('.') {
        None => !number.is_empty(),
        Some((whole, fraction)) => {
            !whole.is_empty() && !fraction.is_empty() && fraction.bytes().all(|b| b.is_ascii_digit())
        }
    };
    if !well_formed {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let unit = unit.strip_prefix(' ').unwrap_or(unit);
    let unit_seconds = match unit {
        "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600.0,
        "d" | "day" | "days" => 86_400.0,
        "w" | "week" | "weeks" => 604_800.0,
        "y" | "yr" | "yrs" | "year" | "years" => 365.25 * 86_400.0,
        _ => return None,
    };
    // JavaScript's Math.round: halves round up.
    let seconds = (value * unit_seconds + 0.5).floor();
    Some(if sign == Some(true) || suffix_past == Some(true) { -seconds } else { seconds })
}

/// The `exp` a request asks for, checked as the server checks it.
fn expiry(expiration: Option<&Value>, now: i64) -> Result<Value, ApiError> {
    let now_f = now as f64;
    let (exp, value) = match expiration {
        Some(Value::Number(n)) => (n.as_f64().ok_or(ApiError::InvalidExpirationTime)?, Value::Number(n.clone())),
        Some(Value::String(text)) => {
            let at = now_f + relative_seconds(text).ok_or(ApiError::InvalidExpirationTime)?;
            (at, json!(at as i64))
        }
        _ => {
            let at = now.saturating_add(jwt::DEFAULT_TTL_SECS);
            (at as f64, json!(at))
        }
    };
    if exp <= now_f {
        return Err(ApiError::ExpirationNotFuture);
    }
    if exp - now_f > jwt::MAX_TTL_SECS as f64 {
        return Err(ApiError::ExpirationTooLong);
    }
    Ok(value)
}

/// `POST /api/v1/auth/public-tokens`: the server signs a token for a secret
/// key. Every key has full access in the mock, so every scope is granted.
pub async fn public_token<B>(
    app: &super::App,
    principal: &Principal<'_>,
    body: B,
    now: Millis,
) -> Result<Bytes, Response<Body>>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let Principal::Key { kind: KeyKind::Secret(_), key } = principal else {
        return Err(error_response(ApiError::InvalidApiKey));
    };
    let bytes = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            let body = Bytes::from_static(br#"{"error":"Request body too large"}"#);
            return Err(json_response(StatusCode::PAYLOAD_TOO_LARGE, body));
        }
    };
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| error_response(ApiError::InvalidRequestBody))?;
    let request = parse(&value).map_err(|issues| {
        let body = json!({ "error": "Invalid request body", "issues": issues });
        json_response(StatusCode::BAD_REQUEST, Bytes::from(body.to_string()))
    })?;
    let exp = expiry(request.expiration.as_ref(), jwt::epoch_seconds(now)).map_err(error_response)?;
    let id = app.state().environments.register(key);
    let mut claims = Map::new();
    claims.insert("sub".into(), Value::from(&*id));
    claims.insert("pub".into(), Value::Bool(true));
    claims.insert("scopes".into(), json!(request.scopes));
    if request.one_time_use {
        claims.insert("otu".into(), Value::Bool(true));
    }
    if let Some(realtime) = request.realtime {
        claims.insert("realtime".into(), realtime);
    }
    let token = jwt::mint(&claims, key, exp, now);
    Ok(Bytes::from(json!({ "token": token }).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_follow_the_servers_pattern() {
        for (text, seconds) in [
            ("15m", 900.0),
            ("1h", 3600.0),
            ("2 hours", 7200.0),
            ("1.5h", 5400.0),
            ("+1d", 86_400.0),
            ("30 minutes from now", 1800.0),
            ("-5m", -300.0),
            ("5m ago", -300.0),
            ("1 Week", 604_800.0),
            ("1y", 31_557_600.0),
            ("10 secs", 10.0),
        ] {
            assert_eq!(relative_seconds(text), Some(seconds), "{text}");
        }
        for text in ["", "m", "15", "15 mo", "-5m ago", "1.h", ".5h", "15mm", "15  m", "forever", "1e3s"] {
            assert_eq!(relative_seconds(text), None, "{text}");
        }
    }

    #[test]
    fn expiry_is_bounded_like_the_server() {
        let now = 1_000_000;
        assert_eq!(expiry(None, now), Ok(json!(now + 900)));
        assert_eq!(expiry(Some(&json!("1h")), now), Ok(json!(now + 3600)));
        assert_eq!(expiry(Some(&json!(now + 60)), now), Ok(json!(now + 60)));
        assert_eq!(expiry(Some(&json!("5m ago")), now), Err(ApiError::ExpirationNotFuture));
        assert_eq!(expiry(Some(&json!(now)), now), Err(ApiError::ExpirationNotFuture));
        assert_eq!(expiry(Some(&json!("31d")), now), Err(ApiError::ExpirationTooLong));
        assert!(expiry(Some(&json!("30d")), now).is_ok());
        assert_eq!(expiry(Some(&json!("soon")), now), Err(ApiError::InvalidExpirationTime));
    }

    #[test]
    fn body_problems_are_listed_like_zod() {
        let issues = parse(&json!({"scopes": [], "oneTimeUse": "yes"})).err().unwrap_or_default();
        assert_eq!(
            Value::Array(issues).to_string(),
            r#"[{"code":"too_small","minimum":1,"type":"array","inclusive":true,"exact":false,"message":"Array must contain at least 1 element(s)","path":["scopes"]},{"code":"invalid_type","expected":"boolean","received":"string","path":["oneTimeUse"],"message":"Expected boolean, received string"}]"#
        );
        let issues = parse(&json!({})).err().unwrap_or_default();
        assert_eq!(issues[0]["message"], "Required");
        let issues = parse(&json!([1])).err().unwrap_or_default();
        assert_eq!(issues[0]["message"], "Expected object, received array");
        let ok = parse(&json!({"scopes": ["read:runs"], "realtime": {"skipColumns": ["payload"], "x": 1}}));
        assert_eq!(ok.ok().and_then(|r| r.realtime), Some(json!({"skipColumns": ["payload"]})));
    }
}
