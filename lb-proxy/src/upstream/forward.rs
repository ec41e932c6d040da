//! One HTTP request through a pool: a server and a slot ([`Selector`]),
//! attempts with retries and redispatch, then the response with the
//! cookie rules applied and its body streamed.
//!
//! The request head stays here across attempts (an attempt only borrows
//! it), so sending a request again costs no copy.

use hyper::header::{CONNECTION, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Request, Response, StatusCode, Version};
use tokio::time::Instant;

use super::body::{RequestBody, ResponseBody, ToServer};
use super::choose::{Answered, Persisted};
use super::counters::Counters;
use super::exchange::{Exchanged, Failed, Finish, Slot, attempt, close_later};
use super::from_server::FromServer;
use super::response::Framing;
use super::select::{Failure, Selector};
use super::{Ctx, Upstream, error_response};
use crate::headers::strip_hop_by_hop;
use crate::log::{Cause, CookieTrace, Phase, ServerTrace, Termination};

/// One request's way through the pool.
struct Run<'a> {
    select: Selector<'a>,
    /// What the access log is told.
    trace: &'a mut ServerTrace,
    persisted: Persisted,
    /// Close the server connection after the exchange.
    close: bool,
    /// The request may be sent again after its connection was lost: an
    /// idempotent method without a body (RFC 9110 §9.2.2: its effect does
    /// not depend on how many times it arrives).
    replayable: bool,
}

impl Upstream {
    /// Forwards a routed request to a server of this pool and returns the
    /// response for the client: the server's (its body streaming), or the
    /// proxy's own 502/503/504 when no server gave one (408 or 400, with
    /// `Connection: close`, when the client's own body failed). Never
    /// outlives the pool's timeouts.
    pub async fn forward(&self, req: Request<RequestBody>, ctx: &Ctx) -> Response<ResponseBody> {
        self.forward_logged(req, ctx, &mut ServerTrace::default())
            .await
    }

    /// [`Upstream::forward`], telling `trace` the server, the timers and
    /// how the server side ended, for the access log.
    pub async fn forward_logged(
        &self,
        req: Request<RequestBody>,
        ctx: &Ctx,
        trace: &mut ServerTrace,
    ) -> Response<ResponseBody> {
        let inner = &self.inner;
        let (mut head, body) = req.into_parts();
        // Servers are spoken to in HTTP/1.1 whatever the client speaks
        // (HAProxy does the same), so their connections can be kept.
        head.version = Version::HTTP_11;
        let persisted = inner.chooser.persisted(&mut head.headers);
        trace.cookie = inner
            .chooser
            .logs_cookie()
            .then(|| CookieTrace::new(persisted));
        let close = ctx.server_close || inner.settings.server_close;
        if close {
            head.headers
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        Counters::inc(&inner.counters.sessions);
        let arrived = Instant::now();
        let run = Run {
            select: Selector::new(inner, ctx.client, persisted),
            trace,
            persisted,
            close,
            replayable: head.method.is_idempotent() && body.is_empty(),
        };
        let res = run.go(&head, ToServer::new(body, ctx.client_timeout)).await;
        inner.counters.response(res.status().as_u16());
        inner.counters.response_time.observe(arrived.elapsed());
        res
    }
}

impl Run<'_> {
    async fn go(mut self, head: &Parts, mut body: ToServer) -> Response<ResponseBody> {
        loop {
            let waited = Instant::now();
            let assigned = self.select.assign(Some(head)).await;
            self.trace.queue = Some(self.trace.queue.unwrap_or_default() + waited.elapsed());
            self.select.trace(self.trace);
            let slot = match assigned {
                Ok(slot) => slot,
                Err(status) => {
                    self.trace.term = Some(self.select.unassigned());
                    return error_response(status, false);
                }
            };
            self.trace.server = Some(slot.server());
            body.count_for(slot.link_arc());
            let started = Instant::now();
            let mut connected = None;
            let client = self.select.client();
            let attempted = attempt(&slot, head, &mut body, client, &mut connected).await;
            self.trace.connect = connected.map(|at| at - started);
            self.select.trace(self.trace);
            match attempted {
                Ok(exchanged) => {
                    let link = &slot.link().counters;
                    link.response_time.observe(started.elapsed());
                    self.trace.response = connected.map(|at| at.elapsed());
                    self.trace.term = None;
                    return self.respond(exchanged, slot, head);
                }
                Err(failed) => {
                    self.trace.term = Some(termination(&failed));
                    if let Err(res) = self.recover(failed, slot).await {
                        return res;
                    }
                }
            }
        }
    }

    /// After a failed attempt: Ok to send the request again (the target set
    /// for it), or the answer to give the client.
    async fn recover(&mut self, failed: Failed, slot: Slot) -> Result<(), Response<ResponseBody>> {
        let (failure, spent) = self
            .judge(failed, &slot)
            .map_err(|(status, close)| error_response(status, close))?;
        if self.select.retry(slot, failure).await {
            Ok(())
        } else {
            Err(error_response(spent, false))
        }
    }

    /// Counts and logs a failed attempt. Ok: how it failed, for the retry
    /// rules, and the answer once retries are spent; Err: the answer now
    /// (its status, and whether the client connection closes), for a
    /// failure no retry may follow.
    fn judge(
        &self,
        failed: Failed,
        slot: &Slot,
    ) -> Result<(Failure, StatusCode), (StatusCode, bool)> {
        let server = slot.server();
        let name = slot.link().name();
        let pool = &*self.select.inner.name;
        let now = |status| Err((status, false));
        match failed {
            Failed::Connect(error) => {
                tracing::debug!(pool, server = name, %error, "connect failed");
                self.select.count(server, |c| &c.connect_errors);
                let immediate = error.is_immediate();
                let failure = Failure {
                    immediate,
                    reused: false,
                };
                Ok((failure, StatusCode::SERVICE_UNAVAILABLE))
            }
            Failed::Lost {
                reused,
                answered,
                error,
            } => {
                tracing::debug!(pool, server = name, %error, "connection lost before the response");
                self.select.count(server, |c| &c.response_errors);
                // Sent again only when the server answered nothing (it may
                // not have seen the request) and sending twice is harmless.
                if !self.replayable || answered {
                    return now(StatusCode::BAD_GATEWAY);
                }
                let failure = Failure {
                    immediate: true,
                    reused,
                };
                Ok((failure, StatusCode::BAD_GATEWAY))
            }
            Failed::Timeout => {
                self.select.count(server, |c| &c.response_errors);
                now(StatusCode::GATEWAY_TIMEOUT)
            }
            Failed::Invalid(error) => {
                tracing::debug!(pool, server = name, error, "invalid response");
                self.select.count(server, |c| &c.response_errors);
                now(StatusCode::BAD_GATEWAY)
            }
            Failed::Client { timed_out, error } => {
                tracing::debug!(pool, server = name, %error, "the client's request body failed");
                Err((client_failed(timed_out), true))
            }
        }
    }

    /// The server's response on its way to the client: counted, cookie
    /// rules applied, hop-by-hop headers removed, body streamed.
    fn respond(
        &mut self,
        exchanged: Exchanged,
        slot: Slot,
        request: &Parts,
    ) -> Response<ResponseBody> {
        let Exchanged { head, conn } = exchanged;
        let server = slot.server();
        let mut parts = head.parts;
        slot.link().counters.response(parts.status.as_u16());
        strip_hop_by_hop(&mut parts.headers);
        let answered = Answered {
            server,
            persisted: self.persisted,
            method: &request.method,
            status: parts.status,
        };
        let set = self
            .select
            .inner
            .chooser
            .on_response(answered, &mut parts.headers);
        if let Some(c) = &mut self.trace.cookie {
            c.set = set;
        }
        let keep = head.reusable && !self.close;
        let finish = Finish::new(slot);
        if head.framing == Framing::Empty {
            if keep {
                finish.done(0, Some(conn));
            } else {
                finish.done(0, None);
                close_later(conn);
            }
            return Response::from_parts(parts, ResponseBody::empty());
        }
        let timeout = self.select.inner.settings.server;
        let body = FromServer::new(conn, head.framing, keep, timeout, finish);
        Response::from_parts(parts, ResponseBody::from_server(body))
    }
}

/// How a failed attempt ends the request, if no retry follows.
fn termination(failed: &Failed) -> Termination {
    let (cause, phase) = match failed {
        Failed::Connect(e) if e.is_immediate() => (Cause::ServerAbort, Phase::Connect),
        Failed::Connect(_) => (Cause::ServerTimeout, Phase::Connect),
        Failed::Lost { .. } => (Cause::ServerAbort, Phase::Headers),
        Failed::Timeout => (Cause::ServerTimeout, Phase::Headers),
        Failed::Invalid(_) => (Cause::Proxy, Phase::Headers),
        Failed::Client {
            timed_out: true, ..
        } => (Cause::ClientTimeout, Phase::Headers),
        Failed::Client { .. } => (Cause::ClientAbort, Phase::Headers),
    };
    Termination::new(cause, phase)
}

/// The client's own body failed: 408 when it went silent, else 400 (the
/// connection then closes, its framing being lost).
fn client_failed(timed_out: bool) -> StatusCode {
    if timed_out {
        StatusCode::REQUEST_TIMEOUT
    } else {
        StatusCode::BAD_REQUEST
    }
}
