//! The pages of the proxy's own answers (400, 403, 408, 502, 503 …): a
//! short HTML body per status, as HAProxy sends, one set for the whole
//! proxy (`upstream::error_response` wraps them in a response).

use hyper::StatusCode;

/// One sentence per status saying what happened.
fn explanation(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "The request is not valid HTTP, or is ambiguous.",
        403 => "Access to this resource is denied.",
        408 => "The request did not arrive in full in time.",
        429 => "Too many requests.",
        500 => "The proxy failed while handling the request.",
        501 => "The proxy does not support what the request asks for.",
        502 => "The server sent an invalid response, or none.",
        503 => "No server is available to handle the request.",
        504 => "The server did not answer in time.",
        _ => "The request could not be served.",
    }
}

/// The body of the page for `status`.
pub fn body(status: StatusCode) -> String {
    format!(
        "<html><body><h1>{} {}</h1>\n{}\n</body></html>\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        explanation(status)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_names_its_status() {
        let p = body(StatusCode::SERVICE_UNAVAILABLE);
        assert!(p.starts_with("<html><body><h1>503 Service Unavailable</h1>\n"));
        assert!(p.contains("No server is available"));
        assert!(body(StatusCode::IM_A_TEAPOT).contains("418 I'm a teapot"));
    }
}
