//! S3-style presigned URLs for offloaded packets: signing, verifying, and the
//! XML errors S3 answers with.
//!
//! The signature is an HMAC-SHA256 over the method, path, `X-Amz-Date` and
//! `X-Amz-Expires`, keyed by a per-process secret or `--presign-secret`, so
//! URLs are deterministic under a given secret, `--seed` and `--clock`.

use crate::time::Millis;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How long a presigned URL lives, as on the real server.
pub const EXPIRES_SECS: i64 = 300;

/// Signs and verifies URLs.
#[derive(Clone)]
pub struct Presigner {
    key: Vec<u8>,
}

impl std::fmt::Debug for Presigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Presigner(..)")
    }
}

/// Why a presigned request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Missing or altered parameters: 403 SignatureDoesNotMatch.
    SignatureDoesNotMatch,
    /// Past `X-Amz-Date` + `X-Amz-Expires`: 403 AccessDenied.
    Expired { signed_at: Millis, expires_secs: i64 },
}

/// `YYYYMMDDTHHMMSSZ`
fn amz_date(at: Millis) -> String {
    let iso = at.to_string();
    format!("{}{}{}T{}{}{}Z", &iso[0..4], &iso[5..7], &iso[8..10], &iso[11..13], &iso[14..16], &iso[17..19])
}

fn parse_amz_date(text: &str) -> Option<Millis> {
    if text.len() != 16 || !text.is_ascii() {
        return None;
    }
    let iso = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &text[0..4],
        &text[4..6],
        &text[6..8],
        &text[9..11],
        &text[11..13],
        &text[13..15]
    );
    Millis::parse_rfc3339(&iso).ok()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

fn param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|pair| pair.split_once('=').filter(|(k, _)| *k == name).map(|(_, v)| v))
}

impl Presigner {
    /// A signer with this secret.
    pub fn new(secret: &[u8]) -> Presigner {
        Presigner { key: secret.to_vec() }
    }

    fn mac(&self, path: &str, date: &str, expires: &str) -> Hmac<Sha256> {
        // Any key length is valid for HMAC.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        };
        mac.update(format!("GET\n{path}\n{date}\n{expires}").as_bytes());
        mac
    }

    /// The query string for `path`, signed at `at`.
    pub fn query(&self, path: &str, at: Millis) -> String {
        let date = amz_date(at);
        let expires = EXPIRES_SECS.to_string();
        let signature = hex(&self.mac(path, &date, &expires).finalize().into_bytes());
        format!(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=trigger-mock%2F{}%2Fauto%2Fs3%2Faws4_request&X-Amz-Date={date}&X-Amz-Expires={expires}&X-Amz-SignedHeaders=host&X-Amz-Signature={signature}",
            &date[..8]
        )
    }

    /// Checks a request's path and query at `now`.
    pub fn verify(&self, path: &str, query: &str, now: Millis) -> Result<(), Refusal> {
        let date = param(query, "X-Amz-Date").ok_or(Refusal::SignatureDoesNotMatch)?;
        let expires = param(query, "X-Amz-Expires").ok_or(Refusal::SignatureDoesNotMatch)?;
        let signature = param(query, "X-Amz-Signature").and_then(unhex).ok_or(Refusal::SignatureDoesNotMatch)?;
        self.mac(path, date, expires).verify_slice(&signature).map_err(|_| Refusal::SignatureDoesNotMatch)?;
        let signed_at = parse_amz_date(date).ok_or(Refusal::SignatureDoesNotMatch)?;
        let expires_secs: i64 = expires.parse().map_err(|_| Refusal::SignatureDoesNotMatch)?;
        if now > signed_at.plus(expires_secs * 1000) {
            return Err(Refusal::Expired { signed_at, expires_secs });
        }
        Ok(())
    }
}

/// An S3 error document.
pub fn s3_error(code: &str, message: &str, extra: &str, request_id: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message>{extra}<RequestId>{request_id}</RequestId><HostId>trigger-mock</HostId></Error>"
    )
}

/// The S3 time format of error documents: `2026-01-01T00:05:00Z`.
pub fn s3_time(at: Millis) -> String {
    let iso = at.to_string();
    format!("{}Z", &iso[..19])
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Millis = Millis(1_767_225_600_000);

    #[test]
    fn signed_urls_verify_until_they_expire() {
        let p = Presigner::new(b"secret");
        let q = p.query("/packets/run_a/payload.json", T0);
        assert!(q.contains("X-Amz-Date=20260101T000000Z&X-Amz-Expires=300"), "{q}");
        assert_eq!(p.verify("/packets/run_a/payload.json", &q, T0.plus(300_000)), Ok(()));
        assert_eq!(
            p.verify("/packets/run_a/payload.json", &q, T0.plus(300_001)),
            Err(Refusal::Expired { signed_at: T0, expires_secs: 300 })
        );
    }

    #[test]
    fn anything_altered_is_refused() {
        let p = Presigner::new(b"secret");
        let q = p.query("/packets/run_a/payload.json", T0);
        let bad = Err(Refusal::SignatureDoesNotMatch);
        assert_eq!(p.verify("/packets/run_b/payload.json", &q, T0), bad);
        assert_eq!(p.verify("/packets/run_a/payload.json", &q.replace("Expires=300", "Expires=3000"), T0), bad);
        assert_eq!(p.verify("/packets/run_a/payload.json", &q.replace("T000000Z", "T000001Z"), T0), bad);
        assert_eq!(Presigner::new(b"other").verify("/packets/run_a/payload.json", &q, T0), bad);
        assert_eq!(p.verify("/packets/run_a/payload.json", "", T0), bad);
        let mut flipped = q.clone();
        let last = flipped.pop().unwrap();
        flipped.push(if last == '0' { '1' } else { '0' });
        assert_eq!(p.verify("/packets/run_a/payload.json", &flipped, T0), bad);
    }

    #[test]
    fn same_secret_and_time_same_url() {
        assert_eq!(Presigner::new(b"s").query("/p", T0), Presigner::new(b"s").query("/p", T0));
        assert_ne!(Presigner::new(b"s").query("/p", T0), Presigner::new(b"t").query("/p", T0));
    }
}
