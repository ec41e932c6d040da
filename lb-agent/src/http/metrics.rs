//! `GET /metrics`: one scrape reads `Status` and `Stats` from the reconciler
//! and the event counts, and renders them (`crate::metrics`).

use std::time::Duration;

use bytes::Bytes;
use hyper::{Method, StatusCode};

use lb_api::types::{ApiError, Stats, Status};

use super::{
    Shared,
    body::{HttpResponse, error_response, full, method_not_allowed},
};
use crate::{
    api::{Request, RequestSender, ask},
    metrics::{CONTENT_TYPE_OPENMETRICS, render},
};

/// How long a scrape waits for the reconciler. Prometheus' default scrape
/// timeout is 10 s; answering 503 earlier says which side was slow.
const RECONCILER_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) async fn respond(shared: &Shared, method: &Method, path: &str) -> HttpResponse {
    if method != Method::GET {
        return method_not_allowed(&[Method::GET], method, path);
    }
    match scrape(&shared.ctx.requests).await {
        Ok((status, stats)) => {
            let text = render(
                &status,
                &stats,
                &shared.counts.snapshot(),
                &shared.ctx.build,
            );
            full(StatusCode::OK, CONTENT_TYPE_OPENMETRICS, Bytes::from(text))
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics: scrape failed");
            error_response(&e)
        }
    }
}

/// `Status` and `Stats`, both asked before either is awaited so they are
/// answered back to back. The reasons name our side's state only: the
/// metrics endpoint is open to anyone who can reach it.
async fn scrape(tx: &RequestSender) -> Result<(Status, Stats), ApiError> {
    let both = async { tokio::try_join!(ask(tx, Request::Status), ask(tx, Request::Stats)) };
    match tokio::time::timeout(RECONCILER_TIMEOUT, both).await {
        Err(_) => Err(ApiError {
            code: 503,
            reason: format!(
                "the reconciler did not answer within {}s",
                RECONCILER_TIMEOUT.as_secs()
            ),
        }),
        Ok(Err(e)) if e.code == 503 => Err(e),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "metrics: reading the agent's state");
            Err(ApiError::internal(
                "could not read the agent's state (see the agent's log)",
            ))
        }
        Ok(Ok(both)) => Ok(both),
    }
}
