//! `GET /api/v3/runs/{runId}`: the body of a run as the caller sees it (a
//! catalogue, scenario, generated or created run; static bodies served as
//! rendered at start-up), its presigned packet URLs and the host they name,
//! and the building of a scenario run's family before its first retrieve.

use super::*;
use crate::store::Generated;

impl App {
    /// The body of a retrieve, or the API error. Runs the caller's
    /// environment created, or changed, are read from the ledger. A token
    /// that may not read the run by its id is checked against the run's
    /// task, tags and batch once it is found (a loader route: 404 first).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn retrieve<B>(
        &self,
        world: &World,
        (req, conn): (&Request<B>, &Control),
        id: &str,
        principal: &Principal<'_>,
        scripted: Option<Run>,
        now: Millis,
        answered: bool,
    ) -> Result<Bytes, ApiError> {
        if !id.starts_with("run_") {
            return Err(ApiError::InvalidRunId);
        }
        let kind = principal.render_kind();
        let key = principal.scenario_key();
        // True when the caller may read the run whatever it turns out to be.
        let by_id = principal.token().is_none_or(|t| t.ability.can(ScopeAction::Read, &[Resource::run(id)]));
        let may_read = |run: &Run| by_id || principal.authorize(ScopeAction::Read, &Resource::of_run(run)).is_ok();
        let version = ApiVersion::from_header(req.headers().get(ApiVersion::header_name()).map(HeaderValue::as_bytes));
        // The host the packet URLs name, read only when the run has a URL to sign.
        let host = |run: &Run| {
            if run.payload_packet.is_some() || run.output_packet.is_some() {
                host_or(req, conn.reached().or_else(|| reached_of(req)))
            } else {
                String::new()
            }
        };
        let ledger = &self.state.ledger;
        let not_found = ApiError::RunNotFound { should_retry: self.state.not_found_retry };
        if ledger.is_run_id(id) {
            let env = ledger.env(key).ok_or(not_found)?;
            let index = Rendering::index(render_options(kind, version));
            // A settled run polled again: the body rendered last time, when
            // the caller may read it whatever it is (its retrieve moves
            // nothing, so there is nothing to count).
            if by_id && let Some(body) = env.with_retrieve(|st| st.rendered(id, index, world.generation)) {
                return Ok(body);
            }
            let (run, settled, edits) = env
                .with_retrieve(|st| {
                    let before = st.entry_mut(id).map(|e| e.progress.changes());
                    let run = st.view_counting(id, now, |run| answered && may_read(run))?;
                    let moved = st.entry_mut(id).map(|e| e.progress.changes()) != before;
                    if moved {
                        st.note_edit();
                        // The retrieve moved it on: its realtime subscribers see that now.
                        st.stamp(id, |tags, batch| self.state.hub.changed(key, id, tags, batch));
                    }
                    // `run` is what the retrieve saw, before it counted: kept
                    // only when counting did not move the run on.
                    Some((run, !moved && st.is_settled(id), st.edits()))
                })
                .ok_or(not_found)?;
            if !may_read(&run) {
                return Err(ApiError::Forbidden);
            }
            let host = host(&run);
            let body = self.render_run(world, &run, kind, version, &host, now);
            if settled {
                env.with_retrieve(|st| st.keep_rendered(id, index, world.generation, edits, &body));
            }
            return Ok(body);
        }
        if let Some(overlay) = ledger.env_with_overlays(key).and_then(|env| env.with(|st| st.overlays.get(id).cloned()))
        {
            let mut run = match scripted {
                Some(run) => run,
                None => world.store.get(id).ok_or(not_found)?.into_owned(),
            };
            overlay.apply(&mut run);
            if !may_read(&run) {
                return Err(ApiError::Forbidden);
            }
            let host = host(&run);
            return Ok(self.render_run(world, &run, kind, version, &host, now));
        }
        if !by_id {
            // A loader route: a missing run is a 404 before the scope check,
            // which then looks at the run's task, tags and batch too.
            let run = match &scripted {
                Some(run) => Cow::Borrowed(run),
                None => world.store.get(id).ok_or(not_found)?,
            };
            principal.authorize(ScopeAction::Read, &Resource::of_run(&run))?;
        }
        if scripted.is_none()
            && let Some(bodies) = world.static_bodies.get(id)
        {
            return Ok(bodies[Rendering::index(render_options(kind, version))].clone());
        }
        let generated;
        let run = match scripted {
            Some(run) => Cow::Owned(run),
            None if world.store.is_defined(id) => world.store.get(id).ok_or(not_found)?,
            None => {
                let options = render_options(kind, version);
                let render = |run: &Run| world.store.render(run, options, PacketUrls::default());
                match world.store.generated_retrieve(id, Rendering::index(options), render).ok_or(not_found)? {
                    Generated::Body(body) => return Ok(body),
                    Generated::Run(run) => generated = run,
                }
                Cow::Borrowed(&*generated)
            }
        };
        let host = host(&run);
        Ok(self.render_run(world, &run, kind, version, &host, now))
    }

    /// The body of `GET /api/v3/runs/{id}` for `run`, as a caller with a key
    /// of `kind` asking for `version` through `host` sees it at `now`.
    pub fn render_run(
        &self,
        world: &World,
        run: &Run,
        kind: KeyKind,
        version: ApiVersion,
        host: &str,
        now: Millis,
    ) -> Bytes {
        let opts = render_options(kind, version);
        let url = |which: packets::Which, packet: &Option<Arc<Packet>>| {
            packet
                .as_ref()
                .filter(|_| !opts.hide_packets)
                .map(|p| packets::url(&self.state.presigner, host, &run.id, which, p, now))
        };
        let payload = url(packets::Which::Payload, &run.payload_packet);
        let output = url(packets::Which::Output, &run.output_packet);
        let urls = PacketUrls { payload: payload.as_deref(), output: output.as_deref() };
        world.store.render(run, opts, urls)
    }
}

/// Defined runs built on a request thread when first asked for; a run whose
/// retrieve shows more unbuilt relatives than this (a parent of thousands of
/// children) has them built on a blocking thread instead.
pub(super) const BUILT_INLINE: usize = 64;

/// Builds a defined run and its relatives before its first retrieve, off the
/// request threads when there are many (see [`BUILT_INLINE`]).
pub(super) async fn build_family(world: &Arc<World>, id: &str) {
    if world.store.unbuilt_family(id, BUILT_INLINE + 1) > BUILT_INLINE {
        let (world, id) = (world.clone(), id.to_owned());
        // A failure to join leaves the runs to be built on first use, as usual.
        let _ = tokio::task::spawn_blocking(move || world.store.build_family(&id)).await;
    }
}

/// What a key of `kind` asking for `version` decides about a body.
pub(super) fn render_options(kind: KeyKind, version: ApiVersion) -> RenderOptions {
    RenderOptions {
        version,
        zero_costs: kind.environment() == Environment::Development,
        hide_packets: matches!(kind, KeyKind::Public(_)),
    }
}

/// The local address a request's connection reached, for a request built
/// without a connection (the server keeps it in [`Control`]): where URLs
/// point when the client names no host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reached(pub SocketAddr);

/// The address the client used, so that URLs work behind port mappings: the
/// request's authority (HTTP/2's `:authority`, or an absolute-form HTTP/1.1
/// target), else `Host`. Whichever is missing or not a plain `host[:port]`
/// (a name, an IPv4 or a bracketed IPv6 address; a port from 1 to 65535) is
/// skipped; with neither, the address the connection reached ([`Reached`]).
pub fn host_of<B>(req: &Request<B>) -> String {
    host_or(req, reached_of(req))
}

/// The [`Reached`] address in a request's extensions.
pub(super) fn reached_of<B>(req: &Request<B>) -> Option<SocketAddr> {
    req.extensions().get::<Reached>().map(|r| r.0)
}

/// [`host_of`], falling back to `reached`, the address the connection reached.
pub fn host_or<B>(req: &Request<B>, reached: Option<SocketAddr>) -> String {
    let authority = req.uri().authority().map(|a| a.as_str());
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok());
    match [authority, host].into_iter().flatten().find(|h| is_plain_host(h)) {
        Some(h) => h.to_owned(),
        None => reached.map_or_else(|| "localhost".to_owned(), |addr| addr.to_string()),
    }
}

/// True for `name[:port]`, `ipv4[:port]` or `[ipv6][:port]` with a port
/// from 1 to 65535: what may stand between `http://` and a path.
pub(super) fn is_plain_host(text: &str) -> bool {
    let port_ok = |port: Option<&str>| {
        port.is_none_or(|p| {
            p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok_and(|n| n > 0)
        })
    };
    if text.is_empty() || text.len() > 255 {
        return false;
    }
    if let Some(rest) = text.strip_prefix('[') {
        let Some((ip, after)) = rest.split_once(']') else { return false };
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(p) => Some(p),
                None => return false,
            },
        };
        return ip.parse::<std::net::Ipv6Addr>().is_ok() && port_ok(port);
    }
    let (name, port) = match text.split_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (text, None),
    };
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        && port_ok(port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_hosts() {
        for ok in ["x", "x:1", "localhost:65535", "127.0.0.1:3033", "[::1]", "[::1]:8080", "my_host.example-1.com"] {
            assert!(is_plain_host(ok), "{ok}");
        }
        for bad in [
            "",
            ":80",
            "x:",
            "x:0",
            "x:65536",
            "x:99999999",
            "x:+80",
            "x:1:2",
            "[::1",
            "[nope]:80",
            "[::1]x",
            "::1",
            "a/b",
            "a b",
            "a@b",
        ] {
            assert!(!is_plain_host(bad), "{bad}");
        }
        assert!(!is_plain_host(&"a".repeat(256)));
    }
}
