//! The control API's paths, built here for the client and parsed here for the
//! server, so the two cannot disagree. Every segment and query value is
//! percent-encoded: a service named by its key, `10.0.0.1:80/tcp`, is one
//! segment (`10.0.0.1%3A80%2Ftcp`); the server splits a path before it
//! decodes the segments.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::types::ApiError;

/// Prometheus metrics (not under `/v1/`: scrapers expect it here).
pub const METRICS: &str = "/metrics";

/// Everything under it is the control API.
pub const API_PREFIX: &str = "/v1/";

/// A resource of the control API, its segments decoded. Services are named by
/// name or `address:port/protocol`; pools by name; backends by name (or
/// address) within their pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Status,
    Stats,
    Config,
    Reload,
    Teardown,
    /// Takes an [`ExplainQuery`].
    Explain,
    /// Takes an [`EventsQuery`].
    Events,
    Services,
    Service(String),
    Pools,
    Pool(String),
    /// A pool's backends: `(pool)`.
    Backends(String),
    /// `(pool, backend)`, and so on below.
    Backend(String, String),
    BackendState(String, String),
    BackendWeight(String, String),
    Flows(String, String),
    /// VRRP instances (`lb_api::vrrp::VrrpStatus`).
    Vrrp,
    /// L7 frontends (`lb_api::proxy::Frontends`).
    Frontends,
}

impl Route {
    /// The path, segments encoded.
    pub fn path(&self) -> String {
        let segments: Vec<String> = self.segments().iter().map(|s| encode(s)).collect();
        format!("{API_PREFIX}{}", segments.join("/"))
    }

    fn segments(&self) -> Vec<&str> {
        match self {
            Route::Status => vec!["status"],
            Route::Stats => vec!["stats"],
            Route::Config => vec!["config"],
            Route::Reload => vec!["reload"],
            Route::Teardown => vec!["teardown"],
            Route::Explain => vec!["explain"],
            Route::Events => vec!["events"],
            Route::Services => vec!["services"],
            Route::Service(s) => vec!["services", s],
            Route::Pools => vec!["pools"],
            Route::Pool(p) => vec!["pools", p],
            Route::Backends(p) => vec!["pools", p, "backends"],
            Route::Backend(p, b) => vec!["pools", p, "backends", b],
            Route::BackendState(p, b) => vec!["pools", p, "backends", b, "state"],
            Route::BackendWeight(p, b) => vec!["pools", p, "backends", b, "weight"],
            Route::Flows(p, b) => vec!["pools", p, "backends", b, "flows"],
            Route::Vrrp => vec!["vrrp"],
            Route::Frontends => vec!["frontends"],
        }
    }

    /// The route of a path (without its query). `Ok(None)`: no such
    /// resource (404); an error: a segment is not UTF-8 once decoded (400).
    pub fn parse(path: &str) -> Result<Option<Route>, ApiError> {
        let Some(rest) = path.strip_prefix(API_PREFIX) else {
            return Ok(None);
        };
        let segs = rest
            .split('/')
            .map(|s| decode(s).map_err(|()| ApiError::bad_request(format!("{path}: {NOT_UTF8}"))))
            .collect::<Result<Vec<_>, _>>()?;
        if segs.iter().any(String::is_empty) {
            return Ok(None);
        }
        let s: Vec<&str> = segs.iter().map(String::as_str).collect();
        Ok(Self::from_segments(&s))
    }

    fn from_segments(s: &[&str]) -> Option<Route> {
        let own = |s: &str| s.to_owned();
        Some(match *s {
            ["status"] => Route::Status,
            ["stats"] => Route::Stats,
            ["config"] => Route::Config,
            ["reload"] => Route::Reload,
            ["teardown"] => Route::Teardown,
            ["explain"] => Route::Explain,
            ["events"] => Route::Events,
            ["services"] => Route::Services,
            ["services", s] => Route::Service(own(s)),
            ["pools"] => Route::Pools,
            ["pools", p] => Route::Pool(own(p)),
            ["pools", p, "backends"] => Route::Backends(own(p)),
            ["pools", p, "backends", b] => Route::Backend(own(p), own(b)),
            ["pools", p, "backends", b, "state"] => Route::BackendState(own(p), own(b)),
            ["pools", p, "backends", b, "weight"] => Route::BackendWeight(own(p), own(b)),
            ["pools", p, "backends", b, "flows"] => Route::Flows(own(p), own(b)),
            ["vrrp"] => Route::Vrrp,
            ["frontends"] => Route::Frontends,
            _ => return None,
        })
    }
}

/// `GET /v1/explain?service=NAME|ADDR:PORT/PROTO&client=IP[:PORT]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExplainQuery {
    pub service: String,
    pub client: String,
}

impl ExplainQuery {
    const USAGE: &str = "explain takes ?service=NAME|ADDR:PORT/PROTO&client=IP[:PORT]";

    /// The path with its query.
    pub fn path(&self) -> String {
        format!(
            "{}?service={}&client={}",
            Route::Explain.path(),
            encode(&self.service),
            encode(&self.client)
        )
    }

    /// Both parameters are required, and nothing else is accepted.
    pub fn parse(query: Option<&str>) -> Result<ExplainQuery, ApiError> {
        let (mut service, mut client) = (None, None);
        for (key, value) in params(query, Self::USAGE)? {
            match key {
                "service" => service = Some(value),
                "client" => client = Some(value),
                _ => return Err(unknown(key, Self::USAGE)),
            }
        }
        match (service, client) {
            (Some(service), Some(client)) if !service.is_empty() && !client.is_empty() => {
                Ok(ExplainQuery { service, client })
            }
            _ => Err(ApiError::bad_request(Self::USAGE)),
        }
    }
}

/// `GET /v1/events[?follow=true]`: the events kept, one JSON object per line
/// (`application/x-ndjson`), then the end of the answer; with `follow=true`,
/// every later event as it happens, until the client goes away or the agent
/// stops. A follower that falls too far behind loses the oldest events it
/// had not read and gets, in their place, one line
/// `{"type":"lagged","missed":N}` ([`crate::event_stream::Lagged`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventsQuery {
    pub follow: bool,
}

impl EventsQuery {
    const USAGE: &str = "events takes ?follow=true|false";

    /// The path with its query.
    pub fn path(&self) -> String {
        let path = Route::Events.path();
        if self.follow {
            format!("{path}?follow=true")
        } else {
            path
        }
    }

    pub fn parse(query: Option<&str>) -> Result<EventsQuery, ApiError> {
        let mut follow = false;
        for (key, value) in params(query, Self::USAGE)? {
            match (key, value.as_str()) {
                ("follow", "true") => follow = true,
                ("follow", "false") => follow = false,
                ("follow", _) => return Err(ApiError::bad_request(Self::USAGE)),
                _ => return Err(unknown(key, Self::USAGE)),
            }
        }
        Ok(EventsQuery { follow })
    }
}

const NOT_UTF8: &str = "not UTF-8 once decoded";

/// The `key=value` pairs of a query, values decoded.
fn params<'q>(query: Option<&'q str>, usage: &str) -> Result<Vec<(&'q str, String)>, ApiError> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            decode(value)
                .map(|v| (key, v))
                .map_err(|()| ApiError::bad_request(format!("{key}: {NOT_UTF8}; {usage}")))
        })
        .collect()
}

fn unknown(key: &str, usage: &str) -> ApiError {
    ApiError::bad_request(format!("unknown parameter `{key}`; {usage}"))
}

/// Everything but RFC 3986 unreserved characters is encoded in a path
/// segment or query value: service keys contain `:` and `/`.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one path segment or query value.
pub fn encode(segment: &str) -> String {
    utf8_percent_encode(segment, SEGMENT).to_string()
}

fn decode(text: &str) -> Result<String, ()> {
    percent_decode_str(text)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_route() -> Vec<Route> {
        let p = || "web pool".to_owned();
        let s = "[2001:db8::1]:53/udp".to_owned();
        vec![
            Route::Status,
            Route::Stats,
            Route::Config,
            Route::Reload,
            Route::Teardown,
            Route::Explain,
            Route::Events,
            Route::Services,
            Route::Service(s),
            Route::Pools,
            Route::Pool(p()),
            Route::Backends(p()),
            Route::Backend(p(), "b:1".into()),
            Route::BackendState(p(), "b1".into()),
            Route::BackendWeight(p(), "b1".into()),
            Route::Flows(p(), "10.0.1.1".into()),
            Route::Vrrp,
            Route::Frontends,
        ]
    }

    #[test]
    fn every_route_parses_back() {
        for r in every_route() {
            assert_eq!(Route::parse(&r.path()).unwrap(), Some(r.clone()), "{r:?}");
        }
    }

    #[test]
    fn segments_are_split_before_decoding() {
        assert_eq!(
            Route::Backend("web".into(), "b 1".into()).path(),
            "/v1/pools/web/backends/b%201"
        );
        assert_eq!(
            Route::Service("10.0.0.1:80/tcp".into()).path(),
            "/v1/services/10.0.0.1%3A80%2Ftcp"
        );
        assert_eq!(
            Route::parse("/v1/services/10.0.0.1%3A80%2Ftcp").unwrap(),
            Some(Route::Service("10.0.0.1:80/tcp".into()))
        );
        for none in [
            "/v1/pools//backends",
            "/v2/status",
            "/v1/status/",
            "/v1/pools/web/backends/b1/colour",
            "/metrics",
        ] {
            assert_eq!(Route::parse(none).unwrap(), None, "{none}");
        }
        assert!(Route::parse("/v1/pools/%FF").is_err());
    }

    #[test]
    fn encodes_service_keys() {
        assert_eq!(encode("10.0.0.1:80/tcp"), "10.0.0.1%3A80%2Ftcp");
        assert_eq!(
            encode("[2001:db8::1]:53/udp"),
            "%5B2001%3Adb8%3A%3A1%5D%3A53%2Fudp"
        );
        assert_eq!(encode("web-1_a~b"), "web-1_a~b");
        assert_eq!(encode("a b"), "a%20b");
    }

    #[test]
    fn explain_query_round_trips_and_needs_both() {
        let q = ExplainQuery {
            service: "10.0.0.1:80/tcp".into(),
            client: "192.0.2.1:5555".into(),
        };
        let path = q.path();
        let (route, query) = path.split_once('?').unwrap();
        assert_eq!(Route::parse(route).unwrap(), Some(Route::Explain));
        assert_eq!(ExplainQuery::parse(Some(query)).unwrap(), q);
        for bad in [None, Some("service=web"), Some("service=web&client=")] {
            let e = ExplainQuery::parse(bad).unwrap_err();
            assert_eq!(e.code, 400);
            assert!(e.reason.starts_with("explain takes"), "{e}");
        }
        let e = ExplainQuery::parse(Some("service=web&client=1.2.3.4&x=1")).unwrap_err();
        assert!(e.reason.starts_with("unknown parameter `x`"), "{e}");
    }

    #[test]
    fn events_query() {
        for follow in [false, true] {
            let path = EventsQuery { follow }.path();
            let query = path.split_once('?').map(|(_, q)| q);
            assert_eq!(EventsQuery::parse(query).unwrap(), EventsQuery { follow });
        }
        assert_eq!(EventsQuery { follow: false }.path(), "/v1/events");
        assert!(EventsQuery::parse(Some("follow=yes")).is_err());
        assert!(EventsQuery::parse(Some("since=3")).is_err());
        assert!(EventsQuery::parse(Some("follow=%FF")).is_err());
    }
}
