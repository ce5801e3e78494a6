//! Who is calling: the `Authorization` header turned into a [`Caller`] or the
//! API's own 401.

use crate::errors::ApiError;

/// The environment a key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Environment {
    Development,
    Staging,
    Preview,
    Production,
}

/// The kind of key a request authenticated with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// A secret key, `tr_<env>_…`.
    Secret(Environment),
    /// A public key, `pk_<env>_…`.
    Public(Environment),
}

impl KeyKind {
    /// The environment of the key.
    pub fn environment(self) -> Environment {
        match self {
            KeyKind::Secret(e) | KeyKind::Public(e) => e,
        }
    }

    /// Classifies a key by its prefix; `None` for anything else.
    pub fn of(key: &str) -> Option<KeyKind> {
        const ENVS: [(&str, Environment); 4] = [
            ("dev_", Environment::Development),
            ("stg_", Environment::Staging),
            ("preview_", Environment::Preview),
            ("prod_", Environment::Production),
        ];
        let (rest, public) = match (key.strip_prefix("tr_"), key.strip_prefix("pk_")) {
            (Some(rest), _) => (rest, false),
            (_, Some(rest)) => (rest, true),
            _ => return None,
        };
        ENVS.iter().find_map(|(prefix, env)| {
            let tail = rest.strip_prefix(prefix)?;
            (!tail.is_empty()).then_some(if public { KeyKind::Public(*env) } else { KeyKind::Secret(*env) })
        })
    }
}

/// How keys are checked; built once from the flags.
#[derive(Debug, Clone, Default)]
pub struct AuthPolicy {
    /// When not empty, only these exact secret keys are accepted.
    pub secret_keys: Vec<String>,
    /// Refuse `pk_…` keys with 401, as today's server does, instead of the
    /// documented behaviour (200 without payload and output).
    pub reject_public_keys: bool,
}

/// An authenticated caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub kind: KeyKind,
}

/// The token of an `Authorization: Bearer TOKEN` header, or `""`.
pub fn bearer_token(header: Option<&[u8]>) -> &str {
    header
        .and_then(|h| std::str::from_utf8(h).ok())
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .map_or("", str::trim)
}

impl AuthPolicy {
    /// Checks the raw `Authorization` header value.
    pub fn authenticate(&self, header: Option<&[u8]>) -> Result<Caller, ApiError> {
        let Some(header) = header else {
            return Err(ApiError::NoAuthorizationHeader);
        };
        let key = bearer_token(Some(header));
        if key.is_empty() {
            return Err(ApiError::MissingApiKey);
        }
        match KeyKind::of(key) {
            Some(kind @ KeyKind::Secret(_))
                if self.secret_keys.is_empty() || self.secret_keys.iter().any(|k| k == key) =>
            {
                Ok(Caller { kind })
            }
            Some(kind @ KeyKind::Public(_)) if !self.reject_public_keys => Ok(Caller { kind }),
            _ => Err(ApiError::InvalidApiKey),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_keys_by_prefix() {
        assert_eq!(KeyKind::of("tr_dev_abc"), Some(KeyKind::Secret(Environment::Development)));
        assert_eq!(KeyKind::of("tr_prod_abc"), Some(KeyKind::Secret(Environment::Production)));
        assert_eq!(KeyKind::of("tr_stg_abc"), Some(KeyKind::Secret(Environment::Staging)));
        assert_eq!(KeyKind::of("tr_preview_abc"), Some(KeyKind::Secret(Environment::Preview)));
        assert_eq!(KeyKind::of("pk_dev_abc"), Some(KeyKind::Public(Environment::Development)));
        for bad in ["tr_dev_", "tr_abc", "sk_dev_abc", "", "TR_DEV_abc"] {
            assert_eq!(KeyKind::of(bad), None, "{bad}");
        }
    }

    #[test]
    fn header_problems_map_to_the_real_errors() {
        let open = AuthPolicy::default();
        assert_eq!(open.authenticate(None), Err(ApiError::NoAuthorizationHeader));
        assert_eq!(open.authenticate(Some(b"Bearer ")), Err(ApiError::MissingApiKey));
        assert_eq!(open.authenticate(Some(b"Basic abc")), Err(ApiError::MissingApiKey));
        assert_eq!(open.authenticate(Some(b"Bearer nope")), Err(ApiError::InvalidApiKey));
        assert!(open.authenticate(Some(b"Bearer tr_prod_x")).is_ok());
    }

    #[test]
    fn secret_key_list_restricts_to_exact_keys() {
        let policy = AuthPolicy { secret_keys: vec!["tr_dev_a".into()], ..AuthPolicy::default() };
        assert!(policy.authenticate(Some(b"Bearer tr_dev_a")).is_ok());
        assert_eq!(policy.authenticate(Some(b"Bearer tr_dev_b")), Err(ApiError::InvalidApiKey));
    }

    #[test]
    fn public_keys_are_documented_or_rejected() {
        let open = AuthPolicy::default();
        assert!(open.authenticate(Some(b"Bearer pk_dev_a")).is_ok());
        let strict = AuthPolicy { reject_public_keys: true, ..AuthPolicy::default() };
        assert_eq!(strict.authenticate(Some(b"Bearer pk_dev_a")), Err(ApiError::InvalidApiKey));
    }
}
