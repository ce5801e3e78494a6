//! Public access tokens: the JWTs the SDK signs with a secret key (after
//! asking `POST /api/v1/auth/jwt/claims` for its environment) and the ones the
//! server mints itself (trigger and batch responses, `POST
//! /api/v1/auth/public-tokens`).
//!
//! This module owns the wire format: base64url, HS256 (and HS384/HS512, which
//! the server's verifier also accepts for a secret key), the claims the server
//! writes and the checks its verifier makes (`iss`, `aud`, `exp`, `nbf`, `iat`)
//! on the mock clock. Which environment a token names and what its scopes
//! allow live in [`crate::environments`] and [`crate::scope`].

use crate::time::Millis;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::{Sha256, Sha384, Sha512};
use std::fmt::Write as _;

/// The `iss` every token carries and the verifier requires.
pub const ISSUER: &str = "https://id.trigger.dev";
/// The `aud` every token carries and the verifier requires.
pub const AUDIENCE: &str = "https://api.trigger.dev";
/// The response header that carries a minted token.
pub const JWT_HEADER: &str = "x-trigger-jwt";
/// The response header that carries the minted token's claims as JSON.
pub const CLAIMS_HEADER: &str = "x-trigger-jwt-claims";
/// Lifetime of the tokens minted on trigger and batch responses.
pub const RESPONSE_TOKEN_TTL_SECS: i64 = 3600;
/// Lifetime of a token from `POST /api/v1/auth/public-tokens` without `expirationTime`.
pub const DEFAULT_TTL_SECS: i64 = 15 * 60;
/// The longest lifetime `POST /api/v1/auth/public-tokens` grants.
pub const MAX_TTL_SECS: i64 = 30 * 24 * 60 * 60;

/// base64url as JWTs use it: no padding.
pub mod base64url {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    /// Encodes without padding.
    pub fn encode(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(encoded_len(bytes.len()));
        encode_into(bytes, &mut out);
        out
    }

    /// The length of the encoding of `n` bytes, without padding.
    pub fn encoded_len(n: usize) -> usize {
        n / 3 * 4 + [0, 2, 3][n % 3]
    }

    /// Appends the encoding of `bytes` to `out`, without padding.
    pub fn encode_into(bytes: &[u8], out: &mut String) {
        let at = |n: u32, shift: u32| ALPHABET[((n >> shift) & 63) as usize];
        out.reserve(encoded_len(bytes.len()));
        // Written a block of characters at a time (each is ASCII).
        let mut block = [0u8; 256];
        let mut chunks = bytes.chunks_exact(3);
        loop {
            let mut len = 0;
            for c in chunks.by_ref().take(block.len() / 4) {
                let n = (u32::from(c[0]) << 16) | (u32::from(c[1]) << 8) | u32::from(c[2]);
                block[len..len + 4].copy_from_slice(&[at(n, 18), at(n, 12), at(n, 6), at(n, 0)]);
                len += 4;
            }
            if len == 0 {
                break;
            }
            out.push_str(std::str::from_utf8(&block[..len]).unwrap_or_default());
        }
        let (tail, tail_len) = match *chunks.remainder() {
            [a] => {
                let n = u32::from(a) << 16;
                ([at(n, 18), at(n, 12), 0], 2)
            }
            [a, b] => {
                let n = (u32::from(a) << 16) | (u32::from(b) << 8);
                ([at(n, 18), at(n, 12), at(n, 6)], 3)
            }
            _ => ([0; 3], 0),
        };
        out.push_str(std::str::from_utf8(&tail[..tail_len]).unwrap_or_default());
    }

    fn value(c: u8, lenient: bool) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            b'+' if lenient => 62,
            b'/' if lenient => 63,
            _ => return None,
        } as u32)
    }

    fn decode_with(text: &str, lenient: bool) -> Option<Vec<u8>> {
        let bytes = text.as_bytes();
        if bytes.len() % 4 == 1 {
            return None;
        }
        let mut out = Vec::with_capacity(bytes.len() / 4 * 3 + 2);
        for chunk in bytes.chunks(4) {
            let mut n = 0u32;
            for (i, c) in chunk.iter().enumerate() {
                n |= value(*c, lenient)? << (18 - 6 * i);
            }
            let full = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
            let kept = chunk.len() - 1;
            // Bits past the last whole byte must be zero in the canonical form.
            if !lenient && chunk.len() < 4 && n & ((1 << (24 - 8 * kept)) - 1) != 0 {
                return None;
            }
            out.extend_from_slice(&full[..kept]);
        }
        Some(out)
    }

    /// Decodes the way the SDK's own JWT peek does (`atob` after swapping the
    /// URL alphabet): `+` and `/` are also accepted, up to two trailing `=`
    /// are ignored, and stray bits in the last character are dropped.
    pub fn decode_lenient(text: &str) -> Option<Vec<u8>> {
        let trimmed = text.strip_suffix("==").or_else(|| text.strip_suffix('=')).unwrap_or(text);
        if trimmed.contains('=') {
            return None;
        }
        decode_with(trimmed, true)
    }

    /// Decodes only the canonical form: the URL alphabet, no padding, and
    /// zero bits past the last byte. Signatures are read this way, so no two
    /// spellings of one signature exist.
    pub fn decode_canonical(text: &str) -> Option<Vec<u8>> {
        decode_with(text, false)
    }
}

/// The HMAC algorithms a token may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Hs256,
    Hs384,
    Hs512,
}

impl Algorithm {
    fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "HS256" => Some(Algorithm::Hs256),
            "HS384" => Some(Algorithm::Hs384),
            "HS512" => Some(Algorithm::Hs512),
            _ => None,
        }
    }

    fn mac(self, key: &[u8], message: &[u8]) -> Vec<u8> {
        /// The MAC of `message` under a keyed state (HMAC takes keys of any
        /// length: the state cannot fail to be made).
        fn finish<M: Mac, E>(keyed: Result<M, E>, message: &[u8]) -> Vec<u8> {
            match keyed {
                Ok(mut mac) => {
                    mac.update(message);
                    mac.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            }
        }
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
            finish(<M as hmac::digest::KeyInit>::new_from_slice(key), message)
        }
        /// HS256, with the last key's state (its padded key hashed, two of
        /// a token's nine blocks) kept per thread ([`crate::memo`]).
        fn hs256(key: &[u8], message: &[u8]) -> Vec<u8> {
            thread_local! {
                static LAST: crate::memo::Last<Hmac<Sha256>> = const { crate::memo::Last::new() };
            }
            let keyed =
                LAST.with(|last| last.get_or(key, || <Hmac<Sha256> as hmac::digest::KeyInit>::new_from_slice(key)));
            finish(keyed, message)
        }
        match self {
            Algorithm::Hs256 => hs256(key, message),
            Algorithm::Hs384 => run::<Hmac<Sha384>>(key, message),
            Algorithm::Hs512 => run::<Hmac<Sha512>>(key, message),
        }
    }
}

/// Why a token was refused. Every reason is the same 401 on the wire
/// (`Public Access Token is invalid`); the reason is kept for tests and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Not three base64url parts with a JSON object header and payload.
    Malformed,
    /// `alg` is missing, `none`, asymmetric or unknown; or `crit`/`b64` ask
    /// for something a JWT may not use.
    Algorithm,
    /// The signature does not match the environment's key.
    Signature,
    /// `iss` is missing or not the issuer.
    Issuer,
    /// `aud` is missing or does not name the audience.
    Audience,
    /// `exp`, `nbf` or `iat` is not a number.
    ClaimType,
    /// `exp` is at or before now.
    Expired,
    /// `nbf` is after now.
    NotYetValid,
}

fn object(bytes: &[u8]) -> Option<Map<String, Value>> {
    // TextDecoder turns invalid UTF-8 into U+FFFD rather than failing.
    match serde_json::from_str::<Value>(&String::from_utf8_lossy(bytes)) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// The payload of `token`, read without checking anything, as the server's
/// first look does: exactly three dot-separated parts and a JSON object in the
/// second. `None` for anything else.
pub fn peek_payload(token: &str) -> Option<Map<String, Value>> {
    let mut parts = token.split('.');
    let (_, payload, _, rest) = (parts.next()?, parts.next()?, parts.next()?, parts.next());
    if rest.is_some() || payload.is_empty() {
        return None;
    }
    object(&base64url::decode_lenient(payload)?)
}

/// True when a peeked payload marks a public access token (`"pub": true`).
pub fn is_public(payload: &Map<String, Value>) -> bool {
    payload.get("pub") == Some(&Value::Bool(true))
}

/// The `sub` claim when it is a non-empty string.
pub fn subject(payload: &Map<String, Value>) -> Option<&str> {
    payload.get("sub").and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// Seconds since the epoch, as the verifier counts them.
pub fn epoch_seconds(now: Millis) -> i64 {
    now.0.div_euclid(1000)
}

/// Verifies `token` against `key` at `now` (on the mock clock): header,
/// signature, then the claims, as the server's verifier does. Returns the
/// payload.
pub fn verify(token: &str, key: &[u8], now: Millis) -> Result<Map<String, Value>, Invalid> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Invalid::Malformed);
    };
    let header_json = base64url::decode_lenient(header).and_then(|b| object(&b)).ok_or(Invalid::Malformed)?;
    let algorithm =
        header_json.get("alg").and_then(Value::as_str).and_then(Algorithm::from_name).ok_or(Invalid::Algorithm)?;
    if header_json.contains_key("crit") || header_json.get("b64").is_some_and(|b| b != &Value::Bool(true)) {
        return Err(Invalid::Algorithm);
    }
    let given = base64url::decode_canonical(signature).ok_or(Invalid::Signature)?;
    let signed_len = header.len() + 1 + payload.len();
    let expected = algorithm.mac(key, &token.as_bytes()[..signed_len]);
    if !constant_time_eq(&given, &expected) {
        return Err(Invalid::Signature);
    }
    let claims = base64url::decode_lenient(payload).and_then(|b| object(&b)).ok_or(Invalid::Malformed)?;
    check_claims(&claims, epoch_seconds(now))?;
    Ok(claims)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn check_claims(claims: &Map<String, Value>, now: i64) -> Result<(), Invalid> {
    if claims.get("iss").and_then(Value::as_str) != Some(ISSUER) {
        return Err(Invalid::Issuer);
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == AUDIENCE,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(AUDIENCE)),
        _ => false,
    };
    if !audience_ok {
        return Err(Invalid::Audience);
    }
    let number = |name: &str| -> Result<Option<f64>, Invalid> {
        match claims.get(name) {
            None => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or(Invalid::ClaimType),
        }
    };
    number("iat")?;
    let now = now as f64;
    if number("nbf")?.is_some_and(|nbf| nbf > now) {
        return Err(Invalid::NotYetValid);
    }
    if number("exp")?.is_some_and(|exp| exp <= now) {
        return Err(Invalid::Expired);
    }
    Ok(())
}

/// Signs `payload` as a compact JWS with header `{"alg":"<alg>"}`.
pub fn sign(algorithm: Algorithm, payload: &Map<String, Value>, key: &[u8]) -> String {
    sign_raw(algorithm, &serde_json::to_vec(payload).unwrap_or_default(), key)
}

/// Signs the JSON text `payload` as a compact JWS with header `{"alg":"<alg>"}`.
fn sign_raw(algorithm: Algorithm, payload: &[u8], key: &[u8]) -> String {
    // The header, base64url-encoded (`{"alg":"HS256"}` and so on), and the
    // length of the signature.
    let (header, mac_len) = match algorithm {
        Algorithm::Hs256 => ("eyJhbGciOiJIUzI1NiJ9", 32),
        Algorithm::Hs384 => ("eyJhbGciOiJIUzM4NCJ9", 48),
        Algorithm::Hs512 => ("eyJhbGciOiJIUzUxMiJ9", 64),
    };
    // Exactly the token's length, so it becomes a header value without a copy.
    let mut token = String::with_capacity(
        header.len() + 2 + base64url::encoded_len(payload.len()) + base64url::encoded_len(mac_len),
    );
    token.push_str(header);
    token.push('.');
    base64url::encode_into(payload, &mut token);
    let mac = algorithm.mac(key, token.as_bytes());
    token.push('.');
    base64url::encode_into(&mac, &mut token);
    debug_assert_eq!(token.len(), token.capacity());
    token
}

/// Signs `claims` as the server does: HS256 with the environment's secret
/// key, and `iss`, `aud`, `exp` (`expires_at`, in epoch seconds) and `iat`
/// appended after the caller's claims.
pub fn mint(claims: &Map<String, Value>, key: &str, expires_at: impl Into<Value>, now: Millis) -> String {
    let mut payload = claims.clone();
    payload.insert("iss".into(), Value::from(ISSUER));
    payload.insert("aud".into(), Value::from(AUDIENCE));
    payload.insert("exp".into(), expires_at.into());
    payload.insert("iat".into(), Value::from(epoch_seconds(now)));
    sign(Algorithm::Hs256, &payload, key.as_bytes())
}

/// A token minted for a response, with the claims the server sends beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Minted {
    /// The value of `x-trigger-jwt`.
    pub jwt: String,
    /// The value of `x-trigger-jwt-claims`: the claims without `iss`, `aud`,
    /// `exp` and `iat`.
    pub claims: String,
}

impl Minted {
    /// `x-trigger-jwt` and `x-trigger-jwt-claims`, exposed to browsers as the
    /// server's CORS wrapper does (none if a value were not a valid header
    /// value, which JSON's escaping rules out).
    pub fn into_headers(self) -> Option<[(hyper::header::HeaderName, hyper::header::HeaderValue); 3]> {
        use hyper::header::{ACCESS_CONTROL_EXPOSE_HEADERS, HeaderName, HeaderValue};
        // The strings become the values without a copy.
        let value = |s: String| HeaderValue::from_maybe_shared(bytes::Bytes::from(s)).ok();
        Some([
            (HeaderName::from_static(JWT_HEADER), value(self.jwt)?),
            (HeaderName::from_static(CLAIMS_HEADER), value(self.claims)?),
            (ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("x-trigger-jwt, x-trigger-jwt-claims")),
        ])
    }
}

/// The environment that signs a token: its id (the `sub`) and secret key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signer<'a> {
    pub environment_id: &'a str,
    pub key: &'a str,
}

fn base_claims(signer: Signer<'_>) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert("sub".into(), Value::from(signer.environment_id));
    claims.insert("pub".into(), Value::Bool(true));
    claims
}

/// The headers of a trigger response for run `run_id`: a one-hour token that
/// reads the run and writes its input streams, and carries the caller's
/// `realtime` claim when the caller was a public token that had one.
pub fn mint_for_trigger(signer: Signer<'_>, run_id: &str, realtime: Option<&Value>, now: Millis) -> Minted {
    // Written directly rather than through a `Map`: one token per trigger,
    // the same JSON `mint` would write (the claims in this order, then `iss`,
    // `aud`, `exp` and `iat`), as the tests check.
    // Sized exactly (unless there are realtime claims): a header value takes
    // the string as it is only when it has no spare room.
    let json_len = crate::model::json_string_len;
    let id_len = json_len(run_id) - 2;
    let exact = "{\"sub\":,\"pub\":true,\"scopes\":[,]}".len()
        + json_len(signer.environment_id)
        + "\"read:runs:\"".len()
        + "\"write:inputStreams:\"".len()
        + 2 * id_len;
    let mut claims = String::with_capacity(exact);
    claims.push_str("{\"sub\":");
    crate::model::push_json_str(&mut claims, "", signer.environment_id);
    claims.push_str(",\"pub\":true,\"scopes\":[");
    crate::model::push_json_str(&mut claims, "read:runs:", run_id);
    claims.push(',');
    crate::model::push_json_str(&mut claims, "write:inputStreams:", run_id);
    claims.push(']');
    if let Some(realtime) = realtime {
        claims.push_str(",\"realtime\":");
        claims.push_str(&realtime.to_string());
    }
    let iat = epoch_seconds(now);
    let exp = iat.saturating_add(RESPONSE_TOKEN_TTL_SECS);
    let mut payload = String::with_capacity(claims.len() + 96);
    payload.push_str(&claims);
    let _ = write!(payload, ",\"iss\":\"{ISSUER}\",\"aud\":\"{AUDIENCE}\",\"exp\":{exp},\"iat\":{iat}}}");
    claims.push('}');
    debug_assert!(realtime.is_some() || claims.len() == claims.capacity(), "claims sized exactly");
    let jwt = sign_raw(Algorithm::Hs256, payload.as_bytes(), signer.key.as_bytes());
    Minted { jwt, claims }
}

/// The headers of a batch-create response for batch `batch_id`: a one-hour
/// token that reads the batch (and writes it, for a browser client allowed to
/// batch-trigger); the claims header carries only `sub` and `pub`.
pub fn mint_for_batch(signer: Signer<'_>, batch_id: &str, browser_write: bool, now: Millis) -> Minted {
    let header_claims = base_claims(signer);
    let mut claims = header_claims.clone();
    let mut scopes = vec![Value::from(format!("read:batch:{batch_id}"))];
    if browser_write {
        scopes.push(Value::from(format!("write:batch:{batch_id}")));
    }
    claims.insert("scopes".into(), Value::Array(scopes));
    let jwt = mint(&claims, signer.key, epoch_seconds(now).saturating_add(RESPONSE_TOKEN_TTL_SECS), now);
    Minted { jwt, claims: Value::Object(header_claims).to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = Millis(1_767_225_600_000);
    const SIGNER: Signer<'static> = Signer { environment_id: "env_test", key: "tr_dev_key" };

    #[test]
    fn base64url_round_trips_and_matches_the_rfc_vectors() {
        for (plain, encoded) in
            [("", ""), ("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"), ("foob", "Zm9vYg"), ("fooba", "Zm9vYmE")]
        {
            assert_eq!(base64url::encode(plain.as_bytes()), encoded);
            assert_eq!(base64url::decode_canonical(encoded).as_deref(), Some(plain.as_bytes()));
            assert_eq!(base64url::decode_lenient(encoded).as_deref(), Some(plain.as_bytes()));
        }
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(base64url::decode_canonical(&base64url::encode(&all)), Some(all.clone()));
        assert_eq!(base64url::encode(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn canonical_decoding_refuses_every_other_spelling() {
        assert_eq!(base64url::decode_canonical("Zh"), None, "non-zero trailing bits");
        assert_eq!(base64url::decode_canonical("Zg=="), None, "padding");
        assert_eq!(base64url::decode_canonical("+_8"), None, "standard alphabet");
        assert_eq!(base64url::decode_canonical("Z"), None, "one character");
        assert_eq!(base64url::decode_canonical("Z m8"), None);
        assert_eq!(base64url::decode_lenient("Zh").as_deref(), Some(&b"f"[..]));
        assert_eq!(base64url::decode_lenient("Zg==").as_deref(), Some(&b"f"[..]));
        assert_eq!(base64url::decode_lenient("+/8").as_deref(), Some(&[0xfb, 0xff][..]));
        assert_eq!(base64url::decode_lenient("Z=g"), None);
        assert_eq!(base64url::decode_lenient("Zg==="), None);
    }

    #[test]
    fn hs256_matches_rfc_4231() {
        // RFC 4231 test case 2: key "Jefe".
        let mac = Algorithm::Hs256.mac(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn a_token_signed_like_the_sdk_verifies_and_its_claims_are_checked() {
        // Signed by jose (SDK 4.8.3, auth.createPublicToken) with key tr_dev_x: iat 1767225600, exp +900.
        let sdk = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJlbnZfcHJvYmUiLCJwdWIiOnRydWUsInNjb3BlcyI6WyJyZWFkOnJ1bnM6cnVuXzEiXSwiaXNzIjoiaHR0cHM6Ly9pZC50cmlnZ2VyLmRldiIsImF1ZCI6Imh0dHBzOi8vYXBpLnRyaWdnZXIuZGV2IiwiZXhwIjoxNzY3MjI2NTAwLCJpYXQiOjE3NjcyMjU2MDB9.icvfyq-V5PShtafq8US6gePFrsJ0UHLJKZ5XvSi273U";
        let mut claims = Map::new();
        claims.insert("sub".into(), Value::from("env_probe"));
        claims.insert("pub".into(), Value::Bool(true));
        claims.insert("scopes".into(), serde_json::json!(["read:runs:run_1"]));
        let token = mint(&claims, "tr_dev_x", 1_767_226_500, NOW);
        assert_eq!(token, sdk, "byte for byte what jose signs");
        let payload = verify(&token, b"tr_dev_x", NOW).expect("verifies");
        assert_eq!(payload["sub"], "env_probe");
        assert_eq!(verify(&token, b"tr_dev_y", NOW), Err(Invalid::Signature));
        assert!(verify(&token, b"tr_dev_x", Millis(1_767_226_499_999)).is_ok());
        assert_eq!(verify(&token, b"tr_dev_x", Millis(1_767_226_500_000)), Err(Invalid::Expired));
    }

    fn signed(payload: Value, alg: Algorithm) -> String {
        let Value::Object(map) = payload else { panic!("object") };
        sign(alg, &map, b"k")
    }

    #[test]
    fn each_claim_problem_has_its_reason() {
        let good = serde_json::json!({"iss": ISSUER, "aud": AUDIENCE, "exp": 1_767_225_601});
        let now = NOW;
        assert!(verify(&signed(good.clone(), Algorithm::Hs256), b"k", now).is_ok());
        assert!(verify(&signed(good.clone(), Algorithm::Hs384), b"k", now).is_ok());
        assert!(verify(&signed(good.clone(), Algorithm::Hs512), b"k", now).is_ok());
        let with = |key: &str, v: Value| {
            let mut p = good.clone();
            p[key] = v;
            verify(&signed(p, Algorithm::Hs256), b"k", now)
        };
        assert_eq!(with("iss", Value::from("https://evil")), Err(Invalid::Issuer));
        assert_eq!(with("aud", Value::from("x")), Err(Invalid::Audience));
        assert!(with("aud", serde_json::json!(["x", AUDIENCE])).is_ok());
        assert_eq!(with("exp", Value::from("soon")), Err(Invalid::ClaimType));
        assert_eq!(with("iat", Value::Null), Err(Invalid::ClaimType));
        assert_eq!(with("nbf", Value::from(1_767_225_601)), Err(Invalid::NotYetValid));
        assert_eq!(with("exp", Value::from(1_767_225_600)), Err(Invalid::Expired));
        assert!(with("exp", Value::from(1_767_225_600.5)).is_ok());
        let mut no_exp = good.clone();
        no_exp.as_object_mut().map(|m| m.remove("exp"));
        assert!(verify(&signed(no_exp, Algorithm::Hs256), b"k", now).is_ok(), "exp is optional, as in jose");
        let mut no_iss = good;
        no_iss.as_object_mut().map(|m| m.remove("iss"));
        assert_eq!(verify(&signed(no_iss, Algorithm::Hs256), b"k", now), Err(Invalid::Issuer));
    }

    #[test]
    fn headers_that_are_not_hmac_are_refused() {
        let payload = base64url::encode(br#"{"iss":"https://id.trigger.dev","aud":"https://api.trigger.dev"}"#);
        for header in [
            r#"{"alg":"none"}"#,
            r#"{"alg":"RS256"}"#,
            r#"{"alg":"hs256"}"#,
            r#"{}"#,
            r#"{"alg":"HS256","crit":["exp"]}"#,
            r#"{"alg":"HS256","b64":false}"#,
        ] {
            let head = base64url::encode(header.as_bytes());
            let input = format!("{head}.{payload}");
            let mac = base64url::encode(&Algorithm::Hs256.mac(b"k", input.as_bytes()));
            assert_eq!(verify(&format!("{input}.{mac}"), b"k", NOW), Err(Invalid::Algorithm), "{header}");
            assert_eq!(verify(&format!("{input}."), b"k", NOW), Err(Invalid::Algorithm), "{header}");
        }
        assert_eq!(verify("a.b", b"k", NOW), Err(Invalid::Malformed));
        assert_eq!(verify("a.b.c.d", b"k", NOW), Err(Invalid::Malformed));
        assert_eq!(verify("", b"k", NOW), Err(Invalid::Malformed));
    }

    #[test]
    fn an_altered_signature_or_payload_never_verifies() {
        let token = mint_for_trigger(SIGNER, "run_1", None, NOW).jwt;
        let key = SIGNER.key.as_bytes();
        assert!(verify(&token, key, NOW).is_ok());
        for i in 0..token.len() {
            for replacement in [b'A', b'B', b'-', b'_', b'.', b'='] {
                let mut bytes = token.clone().into_bytes();
                if bytes[i] == replacement {
                    continue;
                }
                bytes[i] = replacement;
                let altered = String::from_utf8(bytes).expect("ascii");
                assert!(verify(&altered, key, NOW).is_err(), "{altered}");
            }
        }
        assert!(verify(&token[..token.len() - 1], key, NOW).is_err(), "truncated");
    }

    #[test]
    fn peek_reads_the_payload_like_the_sdk() {
        let token = mint_for_trigger(SIGNER, "run_1", None, NOW).jwt;
        let payload = peek_payload(&token).expect("payload");
        assert!(is_public(&payload));
        assert_eq!(subject(&payload), Some("env_test"));
        assert_eq!(peek_payload("a..c"), None);
        assert_eq!(peek_payload("tr_dev_abc"), None);
        let not_public = format!("x.{}.y", base64url::encode(br#"{"pub":"true","sub":""}"#));
        let payload = peek_payload(&not_public).expect("object");
        assert!(!is_public(&payload));
        assert_eq!(subject(&payload), None);
        assert_eq!(peek_payload(&format!("x.{}.y", base64url::encode(b"[1]"))), None);
    }

    #[test]
    fn trigger_tokens_carry_the_servers_claims() {
        let minted = mint_for_trigger(SIGNER, "run_abc", None, NOW);
        assert_eq!(
            minted.claims,
            r#"{"sub":"env_test","pub":true,"scopes":["read:runs:run_abc","write:inputStreams:run_abc"]}"#
        );
        let payload = verify(&minted.jwt, SIGNER.key.as_bytes(), NOW).expect("verifies");
        assert_eq!(
            Value::Object(payload).to_string(),
            r#"{"sub":"env_test","pub":true,"scopes":["read:runs:run_abc","write:inputStreams:run_abc"],"iss":"https://id.trigger.dev","aud":"https://api.trigger.dev","exp":1767229200,"iat":1767225600}"#
        );
        assert!(minted.jwt.starts_with("eyJhbGciOiJIUzI1NiJ9."), "header {{\"alg\":\"HS256\"}}");
        let realtime = serde_json::json!({"skipColumns": ["payload"]});
        let minted = mint_for_trigger(SIGNER, "run_abc", Some(&realtime), NOW);
        assert!(minted.claims.ends_with(r#","realtime":{"skipColumns":["payload"]}}"#), "{}", minted.claims);
        assert_eq!(
            verify(&minted.jwt, SIGNER.key.as_bytes(), Millis(1_767_229_200_000)),
            Err(Invalid::Expired),
            "one hour"
        );
    }

    #[test]
    fn trigger_tokens_are_byte_for_byte_what_mint_signs() {
        let odd = Signer { environment_id: "env_\"quoted\"\u{e9}", key: "tr_dev_\u{e9}" };
        let realtime = serde_json::json!({"skipColumns": ["payload", "\u{e9}\n"]});
        for (signer, realtime) in [(SIGNER, None), (SIGNER, Some(&realtime)), (odd, Some(&realtime))] {
            let mut claims = base_claims(signer);
            let scopes = vec![Value::from("read:runs:run_\u{e9}"), Value::from("write:inputStreams:run_\u{e9}")];
            claims.insert("scopes".into(), Value::Array(scopes));
            if let Some(realtime) = realtime {
                claims.insert("realtime".into(), realtime.clone());
            }
            let jwt = mint(&claims, signer.key, epoch_seconds(NOW) + RESPONSE_TOKEN_TTL_SECS, NOW);
            let minted = mint_for_trigger(signer, "run_\u{e9}", realtime, NOW);
            assert_eq!(minted.jwt, jwt);
            assert_eq!(minted.claims, Value::Object(claims).to_string());
        }
        // Short tails, and either side of the encoder's 192-byte blocks.
        for len in (0..8).chain(188..198).chain(380..390) {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 77 + 5) as u8).collect();
            assert_eq!(base64url::encode(&bytes).len(), base64url::encoded_len(len));
            assert_eq!(base64url::decode_canonical(&base64url::encode(&bytes)), Some(bytes));
        }
    }

    #[test]
    fn minted_headers_go_on_a_response() {
        let realtime = serde_json::json!({"skipColumns": ["pâyload"]});
        let minted = mint_for_trigger(SIGNER, "run_1", Some(&realtime), NOW);
        let headers: hyper::HeaderMap = minted.clone().into_headers().into_iter().flatten().collect();
        assert_eq!(headers[JWT_HEADER].as_bytes(), minted.jwt.as_bytes());
        assert_eq!(headers[CLAIMS_HEADER].as_bytes(), minted.claims.as_bytes());
        assert_eq!(headers["access-control-expose-headers"], "x-trigger-jwt, x-trigger-jwt-claims");
    }

    #[test]
    fn a_kept_key_state_signs_as_a_fresh_one() {
        for key in [&b"a"[..], b"b", b"a", &[7u8; 100], b"", b"a"] {
            let mut fresh = <Hmac<Sha256> as hmac::digest::KeyInit>::new_from_slice(key).unwrap();
            fresh.update(b"message");
            assert_eq!(Algorithm::Hs256.mac(key, b"message"), fresh.finalize().into_bytes().to_vec());
        }
    }

    #[test]
    fn batch_tokens_read_the_batch_and_the_claims_header_names_only_the_environment() {
        let minted = mint_for_batch(SIGNER, "batch_1", false, NOW);
        assert_eq!(minted.claims, r#"{"sub":"env_test","pub":true}"#);
        let payload = verify(&minted.jwt, SIGNER.key.as_bytes(), NOW).expect("verifies");
        assert_eq!(payload["scopes"], serde_json::json!(["read:batch:batch_1"]));
        let minted = mint_for_batch(SIGNER, "batch_1", true, NOW);
        let payload = verify(&minted.jwt, SIGNER.key.as_bytes(), NOW).expect("verifies");
        assert_eq!(payload["scopes"], serde_json::json!(["read:batch:batch_1", "write:batch:batch_1"]));
    }
}
