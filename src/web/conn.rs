//! The HTTP/1.1 front: our own accept loop around hyper, because `axum::serve` offers no way to
//! bound slow clients. Each connection holds one of `max_connections` slots (so open sockets,
//! and file descriptors, stay bounded: beyond the cap new connections wait in the listen
//! queue), and every way a client can hold a slot without progress has a deadline:
//!
//! - headers: hyper's header read timeout, from the connection's start or the end of the
//!   previous answer to the last header line;
//! - body: a deadline from the request's head to the last byte of its body, answered 408;
//! - idle keep-alive: no request in progress and nothing received for a while closes it;
//! - writes: an answer the client stops taking (a full socket buffer that does not drain)
//!   ends the connection after the write timeout, during a shutdown too.
//!
//! One peer address holds at most `max_connections_per_ip` of the slots: further connections
//! from it are closed at once, so a single client cannot take them all.
//!
//! A connection answered before its request body was read (413, 408, a handler that ignores
//! the body) is closed the way RFC 9112 §9.6 asks: our side is half-closed after the answer,
//! and what the client still sends is read and discarded for a bounded time and amount, so
//! the close does not turn into a reset that destroys the answer before the client reads it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use crate::config::HttpSettings;

/// Serves `router` on `listener` until `stop` completes, then lets open connections finish
/// (idle ones are closed at once) and returns when the last one has closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: HttpSettings,
    stop: impl Future<Output = ()>,
) {
    let settings = Arc::new(settings);
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    let peers = Arc::new(PerPeer::new(settings.max_connections_per_ip));
    let (closing_tx, closing_rx) = watch::channel(false);
    let mut stop = std::pin::pin!(stop);
    loop {
        // The slot first: at the cap, nothing more is accepted until a connection closes.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(s) => s,
                Err(_) => break,
            },
            _ = &mut stop => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let Some(held) = peers.enter(peer.ip()) else {
            // This address holds its share already: closed at once, the slot freed.
            tracing::debug!(peer = %peer, "too many connections from one address");
            drop(stream);
            continue;
        };
        let conn = Connection {
            router: router.clone(),
            settings: settings.clone(),
            closing: closing_rx.clone(),
        };
        tokio::spawn(async move {
            conn.run(stream, peer).await;
            drop(held);
            drop(slot);
        });
    }
    drop(listener);
    let _ = closing_tx.send(true);
    // Every connection holds a slot until it has closed.
    let _ = slots.acquire_many(settings.max_connections as u32).await;
}

/// Connections open per peer address, each at most `cap`.
struct PerPeer {
    cap: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl PerPeer {
    fn new(cap: usize) -> PerPeer {
        PerPeer {
            cap,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one of `ip`'s connections; None when it has `cap` open. The map holds only
    /// addresses with open connections (at most `max_connections` of them).
    fn enter(self: &Arc<Self>, ip: IpAddr) -> Option<PeerHeld> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(PeerHeld {
            peers: self.clone(),
            ip,
        })
    }
}

/// One open connection of a peer address; dropped when it closes.
struct PeerHeld {
    peers: Arc<PerPeer>,
    ip: IpAddr,
}

impl Drop for PeerHeld {
    fn drop(&mut self) {
        let mut open = self.peers.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

struct Connection {
    router: Router,
    settings: Arc<HttpSettings>,
    closing: watch::Receiver<bool>,
}

impl Connection {
    async fn run(mut self, stream: TcpStream, peer: SocketAddr) {
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Watched {
            inner: stream,
            activity: activity.clone(),
        });
        let service = PerRequest {
            router: self.router.clone(),
            peer,
            activity: activity.clone(),
            body_read_timeout: self.settings.body_read_timeout,
        };
        let mut conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(self.settings.header_read_timeout)
            .keep_alive(true)
            .serve_connection(io, service);
        let idle_limit = self.settings.keep_alive_timeout;
        let write_limit = self.settings.write_timeout;
        let mut closing = false;
        let ended = loop {
            let now = Instant::now();
            let check_at = activity.idle_deadline(idle_limit, now);
            let stall_at = activity.stall_deadline(write_limit, now);
            tokio::select! {
                // Without shutdown: the socket comes back to us for the closing below.
                ended = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)) => break ended,
                // Checked while closing too: a graceful shutdown waits for the answer's bytes.
                _ = tokio::time::sleep_until(stall_at) => {
                    if activity.write_stalled(write_limit, Instant::now()) {
                        // Dropping the connection closes the socket, whatever it still holds.
                        tracing::debug!(peer = %peer, "the client stopped reading its answer");
                        return;
                    }
                }
                _ = tokio::time::sleep_until(check_at), if !closing => {
                    if activity.idle_for(idle_limit, Instant::now()) {
                        Pin::new(&mut conn).graceful_shutdown();
                        closing = true;
                    }
                }
                _ = self.closing.changed(), if !closing => {
                    Pin::new(&mut conn).graceful_shutdown();
                    closing = true;
                }
            }
        };
        if let Err(e) = ended {
            tracing::debug!(error = %e, peer = %peer, "connection ended with an error");
        }
        let stream = conn.into_parts().io.into_inner().inner;
        let linger = activity.unread_body.load(Ordering::Acquire);
        close(stream, linger, &self.settings).await;
    }
}

/// Half-closes our side after the last answer; when the client may still be sending a body we
/// did not read, reads and discards it (bounded) first, so the close is not a reset.
async fn close(mut stream: TcpStream, linger: bool, settings: &HttpSettings) {
    let _ = stream.shutdown().await;
    if !linger {
        return;
    }
    let deadline = Instant::now() + settings.linger_time;
    let mut left = settings.linger_max_bytes;
    let mut buf = vec![0u8; 16 * 1024];
    while left > 0 {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => left = left.saturating_sub(n),
            _ => break,
        }
    }
}

/// What a connection is doing, shared by its socket, its requests and its watchdog.
struct Activity {
    start: Instant,
    /// Milliseconds from `start` to the last byte received or the last answer produced.
    last: AtomicU64,
    in_flight: AtomicUsize,
    /// An answer went out before its request body was read to the end.
    unread_body: AtomicBool,
    /// 1 + milliseconds from `start` to when a write found the socket full and has not
    /// completed since; 0 while writes go through.
    write_blocked: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            unread_body: AtomicBool::new(false),
            write_blocked: AtomicU64::new(0),
        }
    }

    fn millis(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.start).as_millis() as u64
    }

    /// A write was refused for want of room: the stall starts now unless it already had.
    fn write_waits(&self, now: Instant) {
        let at = self.millis(now) + 1;
        let _ = self
            .write_blocked
            .compare_exchange(0, at, Ordering::AcqRel, Ordering::Acquire);
    }

    fn write_went_through(&self) {
        self.write_blocked.store(0, Ordering::Release);
    }

    /// Since when a write has waited for room, if one does.
    fn blocked_since(&self) -> Option<Instant> {
        match self.write_blocked.load(Ordering::Acquire) {
            0 => None,
            at => Some(self.start + Duration::from_millis(at - 1)),
        }
    }

    /// Has a write waited for room for `limit` or longer?
    fn write_stalled(&self, limit: Duration, now: Instant) -> bool {
        self.blocked_since()
            .is_some_and(|since| now.saturating_duration_since(since) >= limit)
    }

    /// When a stall could next be found: `limit` after the waiting write began, or (none
    /// waiting) `limit` from now.
    fn stall_deadline(&self, limit: Duration, now: Instant) -> Instant {
        self.blocked_since().unwrap_or(now) + limit
    }

    fn touch(&self, now: Instant) {
        self.last.fetch_max(self.millis(now), Ordering::AcqRel);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last.load(Ordering::Acquire))
    }

    fn idle_for(&self, limit: Duration, now: Instant) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
            && now.saturating_duration_since(self.last()) >= limit
    }

    /// When the connection could next be found idle for `limit`.
    fn idle_deadline(&self, limit: Duration, now: Instant) -> Instant {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            now + limit
        } else {
            self.last() + limit
        }
    }
}

/// A request in progress; dropped when its answer is ready (or the connection went away).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn begin(activity: Arc<Activity>) -> InFlight {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch(Instant::now());
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The socket, noting when bytes arrive (a client that is sending is not idle).
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch(Instant::now());
        }
        polled
    }
}

impl Watched {
    /// Notes whether a write went through or waits for room in the socket.
    fn noted<T>(&self, polled: Poll<T>) -> Poll<T> {
        match polled {
            Poll::Pending => self.activity.write_waits(Instant::now()),
            Poll::Ready(_) => self.activity.write_went_through(),
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.noted(polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.noted(polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Hands each request to the router with the peer address (as `ConnectInfo`, which
/// `RequestMeta` reads) and its body under the body read deadline.
#[derive(Clone)]
struct PerRequest {
    router: Router,
    peer: SocketAddr,
    activity: Arc<Activity>,
    body_read_timeout: Duration,
}

impl hyper::service::Service<hyper::Request<Incoming>> for PerRequest {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, req: hyper::Request<Incoming>) -> Self::Future {
        let in_flight = InFlight::begin(self.activity.clone());
        let (mut parts, body) = req.into_parts();
        let state = Arc::new(BodyState {
            timed_out: AtomicBool::new(false),
            ended: AtomicBool::new(body.is_end_stream()),
        });
        parts.extensions.insert(ConnectInfo(self.peer));
        parts.extensions.insert(BodyDeadline(state.clone()));
        let body = DeadlineBody {
            inner: body,
            deadline: Instant::now() + self.body_read_timeout,
            sleep: None,
            state: state.clone(),
        };
        let req = Request::from_parts(parts, axum::body::Body::new(body));
        let router = self.router.clone();
        Box::pin(async move {
            let res = router.oneshot(req).await;
            if !state.ended.load(Ordering::Acquire) {
                in_flight.0.unread_body.store(true, Ordering::Release);
            }
            drop(in_flight);
            res
        })
    }
}

/// How a request's body went, for the 408 below and the lingering close above.
struct BodyState {
    timed_out: AtomicBool,
    ended: AtomicBool,
}

#[derive(Clone)]
struct BodyDeadline(Arc<BodyState>);

#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error("the request body was not received in time")]
    TimedOut,
    #[error(transparent)]
    Read(#[from] hyper::Error),
}

/// The request body, failing once its deadline has passed.
struct DeadlineBody {
    inner: Incoming,
    deadline: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
    state: Arc<BodyState>,
}

impl DeadlineBody {
    fn timed_out(&mut self) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        self.state.timed_out.store(true, Ordering::Release);
        Poll::Ready(Some(Err(BodyError::TimedOut)))
    }
}

impl Body for DeadlineBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        if this.state.timed_out.load(Ordering::Acquire) || Instant::now() >= this.deadline {
            return this.timed_out();
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                this.state.ended.store(true, Ordering::Release);
                Poll::Ready(None)
            }
            Poll::Ready(Some(frame)) => {
                if this.inner.is_end_stream() {
                    this.state.ended.store(true, Ordering::Release);
                }
                Poll::Ready(Some(frame.map_err(BodyError::from)))
            }
            Poll::Pending => {
                let deadline = this.deadline;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => this.timed_out(),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Router middleware: a request whose body missed its deadline is answered 408, whatever the
/// handler made of the failed read, and the connection is closed.
pub async fn body_timeout(req: Request, next: Next) -> Response {
    let deadline = req.extensions().get::<BodyDeadline>().cloned();
    let res = next.run(req).await;
    match deadline {
        Some(d) if d.0.timed_out.load(Ordering::Acquire) => {
            let mut res = (
                StatusCode::REQUEST_TIMEOUT,
                axum::Json(serde_json::json!({"error": "request_timeout"})),
            )
                .into_response();
            res.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            res
        }
        _ => res,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_idle_only_without_requests_and_bytes() {
        let a = Arc::new(Activity::new());
        let t0 = a.start;
        let at = |s: u64| t0 + Duration::from_secs(s);
        let limit = Duration::from_secs(5);
        assert!(!a.idle_for(limit, at(4)));
        assert!(a.idle_for(limit, at(6)), "nothing since the start");
        a.in_flight.fetch_add(1, Ordering::AcqRel);
        assert!(!a.idle_for(limit, at(12)), "a request in progress");
        assert_eq!(a.idle_deadline(limit, at(12)), at(17));
        a.in_flight.fetch_sub(1, Ordering::AcqRel);
        a.touch(at(12));
        assert!(!a.idle_for(limit, at(13)), "an answer just went out");
        assert_eq!(a.idle_deadline(limit, at(13)), at(17));
        a.touch(at(15));
        a.touch(at(14));
        assert!(!a.idle_for(limit, at(19)), "bytes arrived 4 s ago");
        assert!(a.idle_for(limit, at(20)));
    }

    #[test]
    fn a_write_stalls_only_while_it_waits_for_room() {
        let a = Activity::new();
        let t0 = a.start;
        let at = |s: u64| t0 + Duration::from_secs(s);
        let limit = Duration::from_secs(10);
        assert!(!a.write_stalled(limit, at(100)), "nothing waits");
        assert_eq!(a.stall_deadline(limit, at(100)), at(110));
        a.write_waits(at(3));
        a.write_waits(at(8));
        assert_eq!(
            a.stall_deadline(limit, at(9)),
            at(13),
            "from the first wait"
        );
        assert!(!a.write_stalled(limit, at(12)));
        assert!(a.write_stalled(limit, at(13)));
        a.write_went_through();
        assert!(!a.write_stalled(limit, at(30)), "the client read again");
    }

    #[test]
    fn one_address_holds_at_most_its_share() {
        let peers = Arc::new(PerPeer::new(2));
        let (one, two): (IpAddr, IpAddr) = ([192, 0, 2, 1].into(), [192, 0, 2, 2].into());
        let a = peers.enter(one).expect("first");
        let b = peers.enter(one).expect("second");
        assert!(peers.enter(one).is_none(), "a third from the same address");
        let c = peers.enter(two).expect("another address has its own share");
        drop(a);
        let d = peers
            .enter(one)
            .expect("a closed connection frees its place");
        drop((b, c, d));
        assert!(
            peers.open.lock().expect("lock").is_empty(),
            "addresses without connections are forgotten"
        );
    }
}
