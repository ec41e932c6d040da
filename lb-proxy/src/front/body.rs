//! A request body read straight from the client's socket as the server
//! side pulls it: the body owns the connection's read half and buffer while
//! the request is forwarded and hands them back when it ends or is dropped
//! (with whether it was read to its end), so no task or channel is needed
//! and nothing is copied.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::AsyncRead;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::oneshot;

use super::chunked::{self, Decoder};

/// The read side of a client connection: the socket and what was read
/// from it but not used yet.
#[derive(Debug)]
pub struct Reader {
    pub io: OwnedReadHalf,
    pub buf: BytesMut,
}

/// How much to ask the socket for at once.
pub const READ_CHUNK: usize = 16 * 1024;

impl Reader {
    /// Reads more into `buf`; Ready(Ok(0)) at end of stream.
    pub fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
            self.buf.reserve(READ_CHUNK);
        }
        let before = self.buf.len();
        let spare = self.buf.spare_capacity_mut();
        let mut rb = tokio::io::ReadBuf::uninit(spare);
        ready!(Pin::new(&mut self.io).poll_read(cx, &mut rb))?;
        let n = rb.filled().len();
        // SAFETY: `poll_read` initialized the first `n` bytes of the spare capacity.
        unsafe { self.buf.set_len(before + n) };
        Poll::Ready(Ok(n))
    }
}

/// Why a request body could not be read to its end.
#[derive(Debug, thiserror::Error)]
pub enum ClientBodyError {
    #[error("the client sent an invalid chunked body: {0}")]
    Framing(&'static str),
    #[error("the client closed its connection before the end of its request body")]
    Closed,
    #[error("reading the client's request body: {0}")]
    Io(#[from] std::io::Error),
}

/// What the body gives back to the connection: the reader, and whether
/// the body was read to its end (else the connection cannot go on).
pub type Returned = (Reader, bool);

/// A request body being read from the client.
#[derive(Debug)]
pub struct ClientBody {
    reader: Option<Reader>,
    framing: Kind,
    back: Option<oneshot::Sender<Returned>>,
}

#[derive(Debug)]
enum Kind {
    /// Bytes left of a Content-Length body.
    Length(u64),
    Chunked(Decoder),
    Done,
}

impl ClientBody {
    /// A Content-Length body of `len` bytes (> 0), read from `reader`.
    pub fn length(reader: Reader, len: u64) -> (ClientBody, oneshot::Receiver<Returned>) {
        Self::new(reader, Kind::Length(len))
    }

    /// A chunked body; `max_trailers` bounds its trailer bytes.
    pub fn chunked(
        reader: Reader,
        max_trailers: usize,
    ) -> (ClientBody, oneshot::Receiver<Returned>) {
        Self::new(reader, Kind::Chunked(Decoder::new(max_trailers)))
    }

    fn new(reader: Reader, framing: Kind) -> (ClientBody, oneshot::Receiver<Returned>) {
        let (tx, rx) = oneshot::channel();
        let body = ClientBody {
            reader: Some(reader),
            framing,
            back: Some(tx),
        };
        (body, rx)
    }

    /// Gives the reader back, saying whether the body was read whole.
    fn give_back(&mut self) {
        if let (Some(reader), Some(back)) = (self.reader.take(), self.back.take()) {
            let _ = back.send((reader, matches!(self.framing, Kind::Done)));
        }
    }

    /// The next piece of body already buffered, if any.
    fn buffered(&mut self) -> Result<Option<Bytes>, ClientBodyError> {
        let Some(reader) = self.reader.as_mut() else {
            return Ok(None);
        };
        match &mut self.framing {
            Kind::Done => Ok(None),
            Kind::Length(left) => {
                if reader.buf.is_empty() {
                    return Ok(None);
                }
                let take = (*left).min(reader.buf.len() as u64);
                *left -= take;
                let data = reader.buf.split_to(take as usize).freeze();
                if *left == 0 {
                    self.framing = Kind::Done;
                }
                Ok(Some(data))
            }
            Kind::Chunked(d) => match d.step(&mut reader.buf).map_err(ClientBodyError::Framing)? {
                chunked::Step::Data(b) => Ok(Some(b)),
                chunked::Step::More => Ok(None),
                chunked::Step::Done => {
                    self.framing = Kind::Done;
                    Ok(None)
                }
            },
        }
    }
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = ClientBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ClientBodyError>>> {
        let this = self.get_mut();
        loop {
            match this.buffered() {
                Err(e) => {
                    this.give_back();
                    return Poll::Ready(Some(Err(e)));
                }
                Ok(Some(data)) => {
                    if matches!(this.framing, Kind::Done) {
                        this.give_back();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(None) if matches!(this.framing, Kind::Done) => {
                    this.give_back();
                    return Poll::Ready(None);
                }
                Ok(None) => {}
            }
            let Some(reader) = this.reader.as_mut() else {
                return Poll::Ready(None);
            };
            match ready!(reader.poll_fill(cx)) {
                Ok(0) => {
                    this.give_back();
                    return Poll::Ready(Some(Err(ClientBodyError::Closed)));
                }
                Ok(_) => {}
                Err(e) => {
                    this.give_back();
                    return Poll::Ready(Some(Err(e.into())));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.framing, Kind::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.framing {
            Kind::Length(n) => SizeHint::with_exact(n),
            Kind::Done => SizeHint::with_exact(0),
            Kind::Chunked(_) => SizeHint::default(),
        }
    }
}

impl Drop for ClientBody {
    fn drop(&mut self) {
        self.give_back();
    }
}
