//! `GET /v1/events[?follow=true]` (`lb_api::paths::EventsQuery`): the events
//! the bus kept, one JSON object per line; when following, every later one
//! as it is published, streamed (chunked) until the client goes away or the
//! agent stops. A follower that falls behind by more than the bus holds gets
//! `{"type":"lagged","missed":N}` in place of what it lost.

use std::{convert::Infallible, pin::Pin};

use bytes::Bytes;
use futures_util::stream;
use http_body_util::{BodyExt as _, StreamBody};
use hyper::{Response, StatusCode, body::Frame, header};
use serde::Serialize;
use tokio::sync::broadcast;

use lb_api::{event_stream::Lagged, events::Event, paths::EventsQuery};

use super::body::{HttpResponse, error_response, full};
use crate::events::EventBus;

/// JSON lines.
const CONTENT_TYPE: &str = "application/x-ndjson";

pub(super) fn respond(
    bus: &EventBus,
    stop: impl Future<Output = ()> + Send + 'static,
    query: Option<&str>,
) -> HttpResponse {
    match EventsQuery::parse(query) {
        Err(e) => error_response(&e),
        Ok(EventsQuery { follow: false }) => {
            let text: Vec<u8> = bus.history().iter().flat_map(line).collect();
            full(StatusCode::OK, CONTENT_TYPE, Bytes::from(text))
        }
        Ok(EventsQuery { follow: true }) => {
            let (history, rx) = bus.follow();
            follow(Follower {
                history: history.into_iter(),
                rx,
                stop: Box::pin(stop),
            })
        }
    }
}

/// What a follower has yet to send.
struct Follower {
    history: std::vec::IntoIter<Event>,
    rx: broadcast::Receiver<Event>,
    /// Resolves when the agent stops.
    stop: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl Follower {
    /// The next line; `None` ends the answer.
    async fn next(&mut self) -> Option<Bytes> {
        if let Some(e) = self.history.next() {
            return Some(line(&e));
        }
        // Events already published go out before the agent's stop ends the
        // stream (its last, `agent_stopping`, included).
        tokio::select! {
            biased;
            got = self.rx.recv() => match got {
                Ok(e) => Some(line(&e)),
                Err(broadcast::error::RecvError::Lagged(missed)) => Some(line(&Lagged { missed })),
                Err(broadcast::error::RecvError::Closed) => None,
            },
            () = &mut self.stop => None,
        }
    }
}

/// A streamed answer; hyper drops it (and with it the subscription) when the
/// client goes away.
fn follow(follower: Follower) -> HttpResponse {
    let lines = stream::unfold(follower, |mut f| async move {
        let line = f.next().await?;
        Some((Ok::<_, Infallible>(Frame::data(line)), f))
    });
    let mut resp = Response::new(StreamBody::new(lines).boxed_unsync());
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(CONTENT_TYPE),
    );
    resp
}

/// One JSON line. Events and markers always encode; should one not, the
/// line is empty rather than the stream broken.
fn line(value: &impl Serialize) -> Bytes {
    let mut text = serde_json::to_vec(value).unwrap_or_default();
    text.push(b'\n');
    Bytes::from(text)
}
