//! Who is calling: the `Authorization` header turned into a [`Principal`]
//! (a key, or a verified public access token and what it may do) or the
//! API's own 401, by the rules of the route ([`RouteAuth`]).

use crate::environments::Environments;
use crate::errors::{ApiError, KeyRefusal};
use crate::jwt;
use crate::scope::{Ability, Action, Resource};
use crate::time::Millis;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;

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

/// How a route authenticates, as the server builds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteAuth {
    /// Route-builder routes with `allowJWT` (retrieve, list, trigger, batch,
    /// cancel, realtime): secret keys and public access tokens.
    KeysAndTokens,
    /// Route-builder routes without `allowJWT` (replay, public-token minting):
    /// a token is looked up as if it were a key, so it is `Invalid API key`.
    Keys,
    /// Routes that check the key by hand (claims, reschedule, tags, metadata):
    /// every refusal is the route's own 401. `exempt_from_limiter` marks the
    /// paths the rate-limit middleware skips, where even a missing header
    /// gets the route's own 401 (claims).
    OwnCheck { refusal: KeyRefusal, exempt_from_limiter: bool },
}

/// A public access token as the journal shows it: its environment and
/// scopes, never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenSummary {
    /// The `sub` claim (an environment id), when it is a string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The `scopes` claim's strings (at most 32, each at most 200 bytes).
    pub scopes: Vec<String>,
    /// False when the token was refused.
    pub valid: bool,
}

impl TokenSummary {
    const MAX_SCOPES: usize = 32;
    const MAX_LEN: usize = 200;

    fn clip(text: &str) -> String {
        let mut end = text.len().min(Self::MAX_LEN);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text[..end].to_owned()
    }

    /// The summary of a (peeked or verified) payload.
    pub fn of(payload: &serde_json::Map<String, Value>, valid: bool) -> TokenSummary {
        let scopes = match payload.get("scopes") {
            Some(Value::Array(items)) => {
                items.iter().filter_map(Value::as_str).take(Self::MAX_SCOPES).map(Self::clip).collect()
            }
            _ => Vec::new(),
        };
        let environment = payload.get("sub").and_then(Value::as_str).map(Self::clip);
        TokenSummary { environment, scopes, valid }
    }

    /// The summary of a bearer that looks like a public access token, for a
    /// refused request.
    pub fn of_refused(header: Option<&[u8]>) -> Option<TokenSummary> {
        let payload = jwt::peek_payload(bearer_token(header))?;
        jwt::is_public(&payload).then(|| TokenSummary::of(&payload, false))
    }
}

/// A verified public access token.
#[derive(Debug, Clone)]
pub struct Token {
    /// Its `sub`: the environment it belongs to.
    pub environment_id: Arc<str>,
    /// The secret key of that environment: it verified the token, it signs
    /// the tokens minted for this caller, and its scenario state is the
    /// token's.
    pub key: Arc<str>,
    /// The environment's kind (development runs cost nothing).
    pub environment: Environment,
    /// What the scopes allow.
    pub ability: Ability,
    /// The `realtime` claim, passed on to tokens minted for this caller.
    pub realtime: Option<Value>,
    /// The `otu` claim (one-time use).
    pub one_time_use: bool,
    /// What the journal shows.
    pub summary: TokenSummary,
    /// A hash of the whole token: its own rate-limit window, as the server
    /// keys its limiter by the authorization header.
    pub fingerprint: u64,
}

/// Who a request authenticated as.
#[derive(Debug, Clone)]
pub enum Principal<'r> {
    /// A secret key (full access) or a legacy public key.
    Key { kind: KeyKind, key: &'r str },
    /// A verified public access token.
    Token(Box<Token>),
}

impl Principal<'_> {
    /// The key whose scenario state (lifecycles, faults, bucket) the request
    /// uses: the key itself, or the secret key of the token's environment.
    pub fn scenario_key(&self) -> &str {
        match self {
            Principal::Key { key, .. } => key,
            Principal::Token(token) => &token.key,
        }
    }

    /// The key kind the run body is rendered for: a token sees what a secret
    /// key of its environment sees.
    pub fn render_kind(&self) -> KeyKind {
        match self {
            Principal::Key { kind, .. } => *kind,
            Principal::Token(token) => KeyKind::Secret(token.environment),
        }
    }

    /// The token, if the caller used one.
    pub fn token(&self) -> Option<&Token> {
        match self {
            Principal::Key { .. } => None,
            Principal::Token(token) => Some(token),
        }
    }

    /// The route's scope check: `Ok` for keys, and for a token whose scopes
    /// allow `action` on any one of `resources`; else the 403.
    ///
    /// Ordering, as the server's route builder does it: read (loader) routes
    /// look the resource up first and answer 404 before calling this; action
    /// routes (cancel) call this with the resource's resources when it was
    /// found and with the id alone when it was not, and answer 404 only
    /// after it passed — so an under-scoped token gets 403 for a run that
    /// does not exist.
    pub fn authorize(&self, action: Action, resources: &[Resource<'_>]) -> Result<(), ApiError> {
        match self {
            Principal::Token(token) if !token.ability.can(action, resources) => Err(ApiError::Forbidden),
            _ => Ok(()),
        }
    }
}

impl Principal<'_> {
    /// The environment that signs the tokens minted for this caller: the
    /// secret key's own (now known to `environments`), or the token's.
    pub fn signer(&self, environments: &Environments) -> (Arc<str>, &str) {
        match self {
            Principal::Key { key, .. } => (environments.register(key), key),
            Principal::Token(token) => (token.environment_id.clone(), &token.key),
        }
    }

    /// The `x-trigger-jwt` headers of a trigger response for `run_id`, as the
    /// server mints them for this caller (a token's `realtime` claim is
    /// passed on). The trigger route adds them with `Reply::with_minted`.
    pub fn mint_for_trigger(&self, environments: &Environments, run_id: &str, now: Millis) -> jwt::Minted {
        let (environment_id, key) = self.signer(environments);
        let realtime = self.token().and_then(|t| t.realtime.as_ref());
        jwt::mint_for_trigger(jwt::Signer { environment_id: &environment_id, key }, run_id, realtime, now)
    }

    /// The `x-trigger-jwt` headers of a batch-create response. `browser` is
    /// true when the request said `x-trigger-client: browser`; the token
    /// then also writes the batch if this caller may batch-trigger.
    pub fn mint_for_batch(
        &self,
        environments: &Environments,
        batch_id: &str,
        browser: bool,
        now: Millis,
    ) -> jwt::Minted {
        let (environment_id, key) = self.signer(environments);
        let write = browser
            && self.authorize(Action::BatchTrigger, &[Resource::collection(crate::scope::ResourceType::Tasks)]).is_ok();
        jwt::mint_for_batch(jwt::Signer { environment_id: &environment_id, key }, batch_id, write, now)
    }

    /// An action route's checks in the server's order (cancel): the scope
    /// check against `resources` (the run's when `found`, else its id
    /// alone), then the 404 `Resource not found`. An under-scoped token thus
    /// gets 403 even for a run that does not exist.
    pub fn authorize_then_find<T>(
        &self,
        action: Action,
        resources: &[Resource<'_>],
        found: Option<T>,
    ) -> Result<T, ApiError> {
        self.authorize(action, resources)?;
        found.ok_or(ApiError::ResourceNotFound)
    }
}

impl AuthPolicy {
    /// Resolves the `Authorization` header for a route that authenticates by
    /// `route`, verifying tokens against `environments` at `now`.
    pub fn resolve<'r>(
        &self,
        header: Option<&'r [u8]>,
        route: RouteAuth,
        environments: &Environments,
        now: Millis,
    ) -> Result<Principal<'r>, ApiError> {
        if let RouteAuth::OwnCheck { refusal, exempt_from_limiter } = route {
            return match (header, self.authenticate(header)) {
                (None, _) if !exempt_from_limiter => Err(ApiError::NoAuthorizationHeader),
                (_, Ok(Caller { kind: kind @ KeyKind::Secret(_) })) => {
                    Ok(Principal::Key { kind, key: bearer_token(header) })
                }
                _ => Err(ApiError::KeyRequired(refusal)),
            };
        }
        let Some(raw) = header else { return Err(ApiError::NoAuthorizationHeader) };
        let bearer = bearer_token(Some(raw));
        // A JWT has dots; a key (the common case, on every request) has none.
        if route == RouteAuth::KeysAndTokens
            && bearer.as_bytes().contains(&b'.')
            && let Some(payload) = jwt::peek_payload(bearer).filter(jwt::is_public)
        {
            return self.verify_token(bearer, &payload, environments, now).map(|t| Principal::Token(Box::new(t)));
        }
        self.authenticate(header).map(|caller| Principal::Key { kind: caller.kind, key: bearer })
    }

    fn verify_token(
        &self,
        bearer: &str,
        peeked: &serde_json::Map<String, Value>,
        environments: &Environments,
        now: Millis,
    ) -> Result<Token, ApiError> {
        let environment_id = jwt::subject(peeked).ok_or(ApiError::InvalidPublicAccessToken)?;
        let key = environments.key_of(environment_id).ok_or(ApiError::InvalidPublicAccessToken)?;
        let claims = jwt::verify(bearer, key.as_bytes(), now).map_err(|_| ApiError::PublicAccessTokenInvalid)?;
        let environment = KeyKind::of(&key).map_or(Environment::Development, KeyKind::environment);
        Ok(Token {
            environment_id: environment_id.into(),
            environment,
            ability: Ability::from_claim(claims.get("scopes")),
            realtime: claims.get("realtime").cloned(),
            one_time_use: claims.get("otu") == Some(&Value::Bool(true)),
            summary: TokenSummary::of(&claims, true),
            fingerprint: crate::generate::stable_hash(bearer.as_bytes()),
            key,
        })
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

    const NOW: Millis = Millis(1_767_225_600_000);

    fn token_for(key: &str, extra: &[(&str, Value)]) -> String {
        let mut claims = serde_json::Map::new();
        claims.insert("sub".into(), Value::from(crate::environments::environment_id(key)));
        claims.insert("pub".into(), Value::Bool(true));
        for (k, v) in extra {
            claims.insert((*k).into(), v.clone());
        }
        jwt::mint(&claims, key, jwt::epoch_seconds(NOW) + 60, NOW)
    }

    fn resolve<'h>(envs: &Environments, header: &'h str, route: RouteAuth) -> Result<Principal<'h>, ApiError> {
        AuthPolicy::default().resolve(Some(header.as_bytes()), route, envs, NOW)
    }

    #[test]
    fn tokens_resolve_only_on_routes_that_take_them() {
        let envs = Environments::default();
        let token = token_for("tr_prod_k", &[("scopes", serde_json::json!(["read:runs"]))]);
        let header = format!("Bearer {token}");
        assert_eq!(resolve(&envs, &header, RouteAuth::KeysAndTokens).err(), Some(ApiError::InvalidPublicAccessToken));
        envs.register("tr_prod_k");
        let principal = resolve(&envs, &header, RouteAuth::KeysAndTokens).expect("verified");
        assert_eq!(principal.scenario_key(), "tr_prod_k");
        assert_eq!(principal.render_kind(), KeyKind::Secret(Environment::Production));
        assert_eq!(resolve(&envs, &header, RouteAuth::Keys).err(), Some(ApiError::InvalidApiKey));
        let own = RouteAuth::OwnCheck { refusal: KeyRefusal::Reschedule, exempt_from_limiter: false };
        assert_eq!(resolve(&envs, &header, own).err(), Some(ApiError::KeyRequired(KeyRefusal::Reschedule)));
        assert_eq!(AuthPolicy::default().resolve(None, own, &envs, NOW).err(), Some(ApiError::NoAuthorizationHeader));
        let exempt = RouteAuth::OwnCheck { refusal: KeyRefusal::Claims, exempt_from_limiter: true };
        assert_eq!(
            AuthPolicy::default().resolve(None, exempt, &envs, NOW).err(),
            Some(ApiError::KeyRequired(KeyRefusal::Claims))
        );
        assert!(matches!(resolve(&envs, "Bearer tr_dev_x", own), Ok(Principal::Key { .. })));
    }

    #[test]
    fn cancel_checks_scopes_before_existence() {
        let envs = Environments::default();
        envs.register("tr_dev_k");
        let narrow =
            format!("Bearer {}", token_for("tr_dev_k", &[("scopes", serde_json::json!(["write:runs:run_a"]))]));
        let narrow = resolve(&envs, &narrow, RouteAuth::KeysAndTokens).expect("verified");
        let missing: Option<()> = None;
        let id = "run_missing";
        assert_eq!(
            narrow.authorize_then_find(Action::Write, &Resource::for_cancel(id, None), missing),
            Err(ApiError::Forbidden),
            "an under-scoped token gets 403 for a run that does not exist"
        );
        assert_eq!(
            narrow.authorize_then_find(Action::Write, &Resource::for_cancel("run_a", None), missing),
            Err(ApiError::ResourceNotFound)
        );
        assert_eq!(narrow.authorize_then_find(Action::Write, &Resource::for_cancel("run_a", None), Some(7)), Ok(7));
        let key = resolve(&envs, "Bearer tr_dev_k", RouteAuth::KeysAndTokens).expect("key");
        assert_eq!(
            key.authorize_then_find(Action::Write, &Resource::for_cancel(id, None), missing),
            Err(ApiError::ResourceNotFound),
            "a secret key sees the 404"
        );
    }

    #[test]
    fn trigger_and_batch_tokens_are_minted_for_the_callers_environment() {
        let envs = Environments::default();
        let key = resolve(&envs, "Bearer tr_dev_k", RouteAuth::KeysAndTokens).expect("key");
        let minted = key.mint_for_trigger(&envs, "run_new", NOW);
        let env = crate::environments::environment_id("tr_dev_k");
        assert_eq!(envs.key_of(&env).as_deref(), Some("tr_dev_k"), "minting makes the environment known");
        // The minted token reads its run, and only it, on this server.
        let header = format!("Bearer {}", minted.jwt);
        let reader = resolve(&envs, &header, RouteAuth::KeysAndTokens).expect("the minted token verifies");
        assert!(reader.authorize(Action::Read, &[Resource::run("run_new")]).is_ok());
        assert_eq!(reader.authorize(Action::Read, &[Resource::run("run_old")]), Err(ApiError::Forbidden));
        // A token caller's realtime claim is passed on.
        let realtime = serde_json::json!({"skipColumns": ["payload"]});
        let trigger =
            token_for("tr_dev_k", &[("scopes", serde_json::json!(["trigger:tasks:t"])), ("realtime", realtime)]);
        let header = format!("Bearer {trigger}");
        let caller = resolve(&envs, &header, RouteAuth::KeysAndTokens).expect("verified");
        let minted = caller.mint_for_trigger(&envs, "run_x", NOW);
        assert_eq!(
            minted.claims,
            format!(
                r#"{{"sub":"{env}","pub":true,"scopes":["read:runs:run_x","write:inputStreams:run_x"],"realtime":{{"skipColumns":["payload"]}}}}"#
            )
        );
        let batch = key.mint_for_batch(&envs, "batch_1", true, NOW);
        let scopes = jwt::verify(&batch.jwt, b"tr_dev_k", NOW).map(|c| c["scopes"].clone());
        assert_eq!(scopes, Ok(serde_json::json!(["read:batch:batch_1", "write:batch:batch_1"])));
        let batch = caller.mint_for_batch(&envs, "batch_1", true, NOW);
        let scopes = jwt::verify(&batch.jwt, b"tr_dev_k", NOW).map(|c| c["scopes"].clone());
        assert_eq!(scopes, Ok(serde_json::json!(["read:batch:batch_1"])), "a trigger token may not batch-trigger");
    }

    #[test]
    fn public_keys_are_documented_or_rejected() {
        let open = AuthPolicy::default();
        assert!(open.authenticate(Some(b"Bearer pk_dev_a")).is_ok());
        let strict = AuthPolicy { reject_public_keys: true, ..AuthPolicy::default() };
        assert_eq!(strict.authenticate(Some(b"Bearer pk_dev_a")), Err(ApiError::InvalidApiKey));
    }
}
