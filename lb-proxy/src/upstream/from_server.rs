//! A server's response body on its way to the client, read from the
//! server connection by the client side's own polling (no task between):
//! delimited by its length, its chunks or the connection's end, cut when
//! the server goes silent for `timeout server`. When the body ends, the
//! connection goes back to the server's idle set (if it can carry another
//! request) and the server slot is given back ([`Finish`]); dropped before
//! its end (the client went away, an error), the connection is closed.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

use super::body::{BodyError, Inactivity};
use super::conn::ServerConn;
use super::exchange::{Finish, close_later};
use super::response::Framing;
use crate::front::chunked::{Decoder, Step};

/// Trailer bytes accepted after a chunked body (read and dropped).
const MAX_TRAILERS: usize = 16 * 1024;

/// Where the body is.
#[derive(Debug)]
enum Decode {
    Length(u64),
    Chunked(Decoder),
    UntilClose,
}

/// A server's response body being read.
#[derive(Debug)]
pub(crate) struct FromServer {
    conn: Option<ServerConn>,
    decode: Decode,
    /// The connection may carry another request once the body is read.
    keep: bool,
    idle: Inactivity,
    bytes: u64,
    /// Present until the body ended or failed.
    finish: Option<Finish>,
}

impl FromServer {
    /// A body framed by `framing` (not [`Framing::Empty`]); `keep`: the
    /// connection goes back to the idle set at the end.
    pub(crate) fn new(
        conn: ServerConn,
        framing: Framing,
        keep: bool,
        server_timeout: Duration,
        finish: Finish,
    ) -> Self {
        let decode = match framing {
            Framing::Length(n) => Decode::Length(n),
            Framing::Chunked => Decode::Chunked(Decoder::new(MAX_TRAILERS)),
            Framing::Empty => Decode::Length(0),
            Framing::UntilClose => Decode::UntilClose,
        };
        FromServer {
            conn: Some(conn),
            decode,
            keep,
            idle: Inactivity::new(server_timeout),
            bytes: 0,
            finish: Some(finish),
        }
    }

    pub(crate) fn is_end_stream(&self) -> bool {
        self.finish.is_none() || matches!(self.decode, Decode::Length(0))
    }

    pub(crate) fn size_hint(&self) -> SizeHint {
        match self.decode {
            Decode::Length(n) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }

    /// The body ended (`complete`) or failed: the connection back to the
    /// idle set or closed, the slot given back.
    fn end(&mut self, complete: bool) {
        let conn = self.conn.take();
        let reusable = complete && self.keep && conn.as_ref().is_some_and(|c| c.buf.is_empty());
        let (kept, closed) = if reusable { (conn, None) } else { (None, conn) };
        if let Some(finish) = self.finish.take() {
            finish.done(self.bytes, kept);
        }
        // A body that failed or was dropped closes now; one read whole
        // closes after its last bytes reached the client.
        if let Some(conn) = closed.filter(|_| complete) {
            close_later(conn);
        }
    }

    /// The next piece of body in the buffer: Some(data), Ok(None) when the
    /// buffer needs more, Err when the body is over (Ok) or invalid.
    fn decode(&mut self) -> Result<Option<Bytes>, Result<(), BodyError>> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(Ok(()));
        };
        let buf = &mut conn.buf;
        match &mut self.decode {
            Decode::Length(0) => Err(Ok(())),
            Decode::Length(left) => {
                if buf.is_empty() {
                    return Ok(None);
                }
                let take = (*left).min(buf.len() as u64);
                *left -= take;
                Ok(Some(buf.split_to(take as usize).freeze()))
            }
            Decode::Chunked(decoder) => match decoder.step(buf) {
                Ok(Step::Data(data)) => Ok(Some(data)),
                Ok(Step::More) => Ok(None),
                Ok(Step::Done) => Err(Ok(())),
                Err(what) => Err(Err(BodyError::ServerInvalid(what))),
            },
            Decode::UntilClose if buf.is_empty() => Ok(None),
            Decode::UntilClose => Ok(Some(buf.split().freeze())),
        }
    }

    /// The server closed: the end of an until-close body, else an error.
    fn closed(&mut self) -> Option<Result<Frame<Bytes>, BodyError>> {
        if matches!(self.decode, Decode::UntilClose) {
            self.end(true);
            return None;
        }
        self.end(false);
        Some(Err(BodyError::ServerClosed))
    }
}

impl Body for FromServer {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        loop {
            match this.decode() {
                Ok(Some(data)) => {
                    this.bytes += data.len() as u64;
                    if matches!(this.decode, Decode::Length(0)) {
                        this.end(true);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Err(Ok(())) => {
                    this.end(true);
                    return Poll::Ready(None);
                }
                Err(Err(e)) => {
                    this.end(false);
                    return Poll::Ready(Some(Err(e)));
                }
                Ok(None) => {}
            }
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match conn.poll_fill(cx) {
                Poll::Ready(Ok(0)) => return Poll::Ready(this.closed()),
                Poll::Ready(Ok(_)) => this.idle.touch(),
                Poll::Ready(Err(e)) => {
                    this.end(false);
                    return Poll::Ready(Some(Err(BodyError::Server(e))));
                }
                Poll::Pending => {
                    if this.idle.poll_expired(cx).is_pending() {
                        return Poll::Pending;
                    }
                    this.end(false);
                    return Poll::Ready(Some(Err(BodyError::ServerTimeout(this.idle.limit))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        FromServer::is_end_stream(self)
    }

    fn size_hint(&self) -> SizeHint {
        FromServer::size_hint(self)
    }
}

impl Drop for FromServer {
    fn drop(&mut self) {
        self.end(false);
    }
}
