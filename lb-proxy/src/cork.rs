//! Writes gathered over one turn of a core's event loop and sent together
//! before it waits for events again: every read the turn's events call for
//! comes first, then every write, as HAProxy's loop orders them.
//!
//! On a machine where the proxy shares the cores with its clients and
//! servers, the order decides how often they are woken: a write sent as
//! soon as its request is read wakes the server for that one request, and
//! the server runs (often preempting the proxy) while the proxy reads the
//! next; writes sent together wake it once for all of them.
//!
//! A write is queued with its socket's descriptor and buffer, and its task
//! waits. The first write queued wakes the core's [`flusher`] task, which
//! goes to the back of the run queue: it runs once the tasks already
//! waiting have run — the rest of the turn — and [`flush`] makes every
//! queued write and wakes the writers with what the kernel said. Being a
//! task in the queue, it runs however busy the core is (a core that never
//! runs out of ready tasks never parks, so a flush only before parking
//! could wait for ever); the runtime also flushes before it parks
//! (tokio's `on_thread_park`), for writes queued without a flusher. A
//! writer whose future is dropped
//! takes its write out of the queue first, so no write ever reaches a
//! descriptor closed and reused in the meantime. Off the core threads (the
//! agent's own runtime, tests) writes go out at once.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::os::fd::{AsFd, AsRawFd as _, RawFd};
use std::pin::Pin;
use std::sync::atomic::{
    AtomicBool,
    Ordering::{Acquire, Release},
};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

thread_local! {
    /// The writes waiting for the end of the turn; only on core threads.
    static QUEUE: RefCell<Vec<Queued>> = const { RefCell::new(Vec::new()) };
    static ON: Cell<bool> = const { Cell::new(false) };
    static NEXT_ID: Cell<u64> = const { Cell::new(0) };
    /// The waker of this core's [`flusher`].
    static FLUSHER: RefCell<Option<std::task::Waker>> = const { RefCell::new(None) };
}

/// Makes this thread gather its writes (a core thread, before it serves).
pub(crate) fn enable() {
    ON.set(true);
}

/// A core's runtime: single-threaded, flushing before it parks.
pub(crate) fn runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_park(flush)
        .build()
}

/// Runs `f` on `rt` (from [`runtime`]) as a core does: this thread gathers
/// its writes and the [`flusher`] sends them.
pub(crate) fn serve<F: Future>(rt: &tokio::runtime::Runtime, f: F) -> F::Output {
    enable();
    rt.block_on(async {
        tokio::spawn(flusher());
        f.await
    })
}

struct Queued {
    id: u64,
    fd: RawFd,
    done: Arc<Done>,
}

/// What a queued write comes back with: the buffer, and what [`send`] said.
struct Done {
    slot: Mutex<Option<(Vec<u8>, io::Result<usize>)>>,
    waker: AtomicWaker,
    sent: AtomicBool,
}

/// The task that sends each turn's writes on this core (see the module's
/// documentation); it never ends.
pub(crate) async fn flusher() {
    std::future::poll_fn(|cx| {
        flush();
        FLUSHER.with_borrow_mut(|w| {
            if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *w = Some(cx.waker().clone());
            }
        });
        Poll::<()>::Pending
    })
    .await
}

/// Sends the buffers queued by this thread's writers, and wakes them.
pub(crate) fn flush() {
    let queued = QUEUE.with_borrow_mut(std::mem::take);
    for q in queued {
        let mut slot = q.done.slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((buf, result)) = slot.as_mut() {
            *result = send(q.fd, buf);
        }
        drop(slot);
        q.done.sent.store(true, Release);
        q.done.waker.wake();
    }
}

/// Sends what the socket takes now: 0 when it takes nothing.
fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `fd` is the socket of a writer still waiting for this write
    // (one dropped unqueues it first), so it is open; the buffer is valid
    // for its length.
    let n = unsafe {
        libc::send(
            fd,
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        taken(Err(io::Error::last_os_error()))
    } else {
        Ok(n as usize)
    }
}

/// A non-blocking write's outcome as a count: a socket that takes nothing
/// now (WouldBlock) took 0 bytes.
pub(crate) fn taken(r: io::Result<usize>) -> io::Result<usize> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
        r => r,
    }
}

/// Writes as much of `buf` as the socket takes now: at the end of the turn
/// on a core thread, at once elsewhere. Gives the buffer back with the
/// count sent (0 when none).
pub(crate) fn write<S: AsFd>(socket: &S, buf: Vec<u8>) -> Write {
    let fd = socket.as_fd().as_raw_fd();
    if !ON.get() {
        let result = send(fd, &buf);
        return Write {
            state: State::Ready(Some((buf, result))),
        };
    }
    let id = NEXT_ID.get();
    NEXT_ID.set(id.wrapping_add(1));
    let done = Arc::new(Done {
        slot: Mutex::new(Some((buf, Ok(0)))),
        waker: AtomicWaker::new(),
        sent: AtomicBool::new(false),
    });
    let first = QUEUE.with_borrow_mut(|q| {
        q.push(Queued {
            id,
            fd,
            done: done.clone(),
        });
        q.len() == 1
    });
    if first {
        FLUSHER.with_borrow(|w| w.as_ref().map(std::task::Waker::wake_by_ref));
    }
    Write {
        state: State::Queued { id, done },
    }
}

/// A write on its way ([`write`]).
pub(crate) struct Write {
    state: State,
}

enum State {
    Ready(Option<(Vec<u8>, io::Result<usize>)>),
    Queued { id: u64, done: Arc<Done> },
    Finished,
}

impl Future for Write {
    type Output = (Vec<u8>, io::Result<usize>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            State::Ready(out) => {
                let out = out.take().expect("polled after completion");
                self.state = State::Finished;
                Poll::Ready(out)
            }
            State::Queued { done, .. } => {
                done.waker.register(cx.waker());
                if !done.sent.load(Acquire) {
                    return Poll::Pending;
                }
                let out = done
                    .slot
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                self.state = State::Finished;
                Poll::Ready(out.expect("a flushed write has its result"))
            }
            State::Finished => panic!("polled after completion"),
        }
    }
}

impl Drop for Write {
    fn drop(&mut self) {
        if let State::Queued { id, .. } = &self.state {
            let id = *id;
            QUEUE.with_borrow_mut(|q| q.retain(|w| w.id != id));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    use futures_util::FutureExt as _;

    use super::*;

    /// A connected pair: the proxy's end (non-blocking, as tokio's are) and
    /// the peer's.
    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let ours = TcpStream::connect(listener.local_addr().expect("an address")).expect("connect");
        ours.set_nonblocking(true).expect("non-blocking");
        let (theirs, _) = listener.accept().expect("accept");
        theirs
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("a read timeout");
        (ours, theirs)
    }

    fn read_some(peer: &mut TcpStream) -> Vec<u8> {
        let mut got = vec![0; 64];
        let n = peer.read(&mut got).unwrap_or(0);
        got.truncate(n);
        got
    }

    #[test]
    fn off_a_core_a_write_goes_out_at_once() {
        let (ours, mut theirs) = pair();
        let (buf, sent) = write(&ours, b"now".to_vec())
            .now_or_never()
            .expect("no waiting off a core");
        assert_eq!((buf.as_slice(), sent.expect("sent")), (&b"now"[..], 3));
        assert_eq!(read_some(&mut theirs), b"now");
    }

    /// On a core thread: writes wait for the turn to end, then go out in
    /// the order they were made; a write whose future was dropped never
    /// goes out at all.
    #[test]
    fn on_a_core_writes_wait_for_the_end_of_the_turn() {
        std::thread::spawn(|| {
            enable();
            let (a, mut peer_a) = pair();
            let (b, mut peer_b) = pair();
            let mut first = Box::pin(write(&a, b"one".to_vec()));
            let dropped = write(&b, b"never".to_vec());
            let second = write(&a, b"two".to_vec());
            assert!((&mut first).now_or_never().is_none(), "held until flushed");
            assert_eq!(read_some(&mut peer_a), b"", "nothing sent yet");
            drop(dropped);
            flush();
            let (_, sent) = first.now_or_never().expect("flushed");
            assert_eq!(sent.expect("sent"), 3);
            let (_, sent) = second.now_or_never().expect("flushed");
            assert_eq!(sent.expect("sent"), 3);
            assert_eq!(read_some(&mut peer_a), b"onetwo");
            assert_eq!(read_some(&mut peer_b), b"", "the dropped write never left");
        })
        .join()
        .expect("the core's checks pass");
    }

    /// A core whose run queue never empties (here a task that yields
    /// for ever, so the runtime never parks) still sends its writes: the
    /// flusher is a task in that queue.
    #[test]
    fn a_busy_core_still_sends_its_writes() {
        std::thread::spawn(|| {
            let rt = runtime().expect("a runtime");
            serve(&rt, async {
                tokio::spawn(async {
                    loop {
                        tokio::task::yield_now().await;
                    }
                });
                tokio::task::yield_now().await;
                let (ours, mut theirs) = pair();
                let sent =
                    tokio::time::timeout(Duration::from_secs(5), write(&ours, b"busy".to_vec()))
                        .await
                        .expect("sent although the core never parks")
                        .1;
                assert_eq!(sent.expect("sent"), 4);
                assert_eq!(read_some(&mut theirs), b"busy");
            });
        })
        .join()
        .expect("the busy core's checks pass");
    }

    /// A core sends its writes by itself: a task that writes and then waits
    /// for the answer gets it.
    #[test]
    fn a_core_sends_its_writes_by_itself() {
        std::thread::spawn(|| {
            let rt = runtime().expect("a runtime");
            serve(&rt, async {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                let to = listener.local_addr().expect("an address");
                let echo = tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
                    let (mut s, _) = listener.accept().await.expect("accept");
                    let mut buf = [0u8; 4];
                    s.read_exact(&mut buf).await.expect("the request");
                    s.write_all(&buf).await.expect("the echo");
                });
                let client = tokio::net::TcpStream::connect(to).await.expect("connect");
                let (_, sent) = write(&client, b"ping".to_vec()).await;
                assert_eq!(sent.expect("sent"), 4);
                let mut buf = [0u8; 4];
                tokio::time::timeout(Duration::from_secs(5), async {
                    client.readable().await.expect("readable");
                    client.try_read(&mut buf).expect("the echo")
                })
                .await
                .expect("answered");
                assert_eq!(&buf, b"ping");
                echo.await.expect("the echo task");
            });
        })
        .join()
        .expect("the runtime's checks pass");
    }
}
