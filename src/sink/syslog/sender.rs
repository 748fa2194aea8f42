//! The sender thread of one destination and the bounded queue that feeds
//! it.
//!
//! The writer only ever appends to the queue: when the queue holds its
//! bound in bytes, the message is dropped and counted, never waited for.
//! The thread sends in order, and keeps a message until it is sent: on an
//! error it drops the connection, waits (100 ms, doubling up to 5 s) and
//! connects again. A message is given up only at exit, when the queue
//! could not be emptied in time, and is counted then. A stream connection
//! whose receiver went away is noticed before writing (see
//! [`Conn::peer_closed`]); what a receiver took into its socket and then
//! lost on a crash is beyond any sender without acknowledgements.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use rustls::ClientConfig;

use super::target::Target;
use super::transport::Conn;

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Most bytes written to a stream in one go.
const STREAM_BATCH: usize = 64 << 10;

/// What the writer and the sender thread share.
struct State {
    queue: VecDeque<Vec<u8>>,
    /// Bytes of the messages in `queue` and `in_flight`.
    bytes: usize,
    /// Messages the thread took and has neither sent nor put back.
    in_flight: usize,
    /// Messages lost so far (overflow, or abandoned at exit).
    lost: u64,
    /// Give up what cannot be sent at once, and end the thread.
    closing: bool,
    /// The thread sleeps on `work` for want of messages: only then does a
    /// new message wake it (a wake-up is a system call; a busy thread
    /// finds the message without one).
    waiting: bool,
}

struct Shared {
    state: Mutex<State>,
    /// A message was queued, or `closing` set.
    work: Condvar,
    /// The queue became empty with nothing in flight.
    idle: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The writer's handle on one destination's queue and thread.
pub struct Sender {
    shared: Arc<Shared>,
    cap: usize,
    thread: Option<thread::JoinHandle<()>>,
}

impl Sender {
    /// Starts the thread for `target`; its queue holds at most `cap`
    /// bytes.
    pub fn start(
        target: Target,
        tls: Option<Arc<ClientConfig>>,
        cap: usize,
    ) -> std::io::Result<Sender> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                bytes: 0,
                in_flight: 0,
                lost: 0,
                closing: false,
                waiting: false,
            }),
            work: Condvar::new(),
            idle: Condvar::new(),
        });
        let thread = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("procwatch-syslog".into())
                .spawn(move || send_loop(&shared, &target, tls.as_ref()))?
        };
        Ok(Sender {
            shared,
            cap,
            thread: Some(thread),
        })
    }

    /// Queues a message, or drops and counts it when the queue is full.
    /// Never blocks on the destination.
    pub fn push(&self, msg: Vec<u8>) {
        let mut st = self.shared.lock();
        if st.bytes + msg.len() > self.cap || st.closing {
            st.lost += 1;
            return;
        }
        st.bytes += msg.len();
        st.queue.push_back(msg);
        let wake = st.waiting;
        drop(st);
        if wake {
            self.shared.work.notify_one();
        }
    }

    /// Messages lost so far.
    pub fn lost(&self) -> u64 {
        self.shared.lock().lost
    }

    /// Waits up to `wait` for every queued message to be sent; then gives
    /// up (and counts) what is still queued.
    pub fn drain(&self, wait: Duration) {
        let deadline = Instant::now() + wait;
        let mut st = self.shared.lock();
        while !st.queue.is_empty() || st.in_flight > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            st = self
                .shared
                .idle
                .wait_timeout(st, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        let n = st.queue.len();
        st.lost += n as u64;
        st.bytes -= st.queue.iter().map(Vec::len).sum::<usize>();
        st.queue.clear();
    }

    /// [`Sender::drain`], then ends the thread: one stuck in a write
    /// (bounded by the socket timeouts) is left to end with the process,
    /// its message counted as lost. Returns the messages lost in all.
    pub fn finish(&mut self, wait: Duration) -> u64 {
        self.drain(wait);
        self.shared.lock().closing = true;
        self.shared.work.notify_one();
        if let Some(t) = self.thread.take() {
            let deadline = Instant::now() + Duration::from_secs(1);
            while !t.is_finished() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(10));
            }
            if t.is_finished() {
                let _ = t.join();
            } else {
                let mut st = self.shared.lock();
                st.lost += st.in_flight as u64;
            }
        }
        self.lost()
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.finish(Duration::ZERO);
        }
    }
}

/// The thread: send what is queued, connecting as needed.
fn send_loop(shared: &Shared, target: &Target, tls: Option<&Arc<ClientConfig>>) {
    let mut conn: Option<Conn> = None;
    let mut backoff = BACKOFF_MIN;
    // Said on stderr once per outage, not once per attempt.
    let mut down_said = false;
    let mut batch: Vec<Vec<u8>> = Vec::new();
    let mut framed = Vec::with_capacity(STREAM_BATCH);
    loop {
        {
            let mut st = shared.lock();
            while st.queue.is_empty() && !st.closing {
                st.waiting = true;
                st = shared.work.wait(st).unwrap_or_else(|p| p.into_inner());
                st.waiting = false;
            }
            if st.queue.is_empty() {
                return;
            }
            // Datagrams go one at a time; a stream takes up to a batch.
            let stream = conn.as_ref().is_some_and(|c| !c.is_datagram());
            let mut size = 0;
            while let Some(m) = st.queue.front() {
                if !batch.is_empty() && (!stream || size + m.len() > STREAM_BATCH) {
                    break;
                }
                size += m.len();
                batch.push(st.queue.pop_front().unwrap());
            }
            st.in_flight = batch.len();
        }
        let res = send(&mut conn, target, tls, &batch, &mut framed);
        let mut st = shared.lock();
        st.in_flight = 0;
        let failed = res.is_err();
        match res {
            Ok(refused) => {
                if refused > 0 {
                    st.lost += refused;
                    eprintln!(
                        "procwatch: syslog {target}: a message too large for a datagram was dropped; lower --syslog-max"
                    );
                }
                st.bytes -= batch.iter().map(Vec::len).sum::<usize>();
                batch.clear();
                backoff = BACKOFF_MIN;
                if down_said {
                    eprintln!("procwatch: syslog {target}: sending again");
                    down_said = false;
                }
            }
            Err(e) => {
                conn = None;
                for m in batch.drain(..).rev() {
                    st.queue.push_front(m);
                }
                if !down_said {
                    eprintln!("procwatch: syslog {target}: {e}; retrying (messages are kept)");
                    down_said = true;
                }
                if st.closing {
                    // No time left for retries: what is queued is lost.
                    st.lost += st.queue.len() as u64;
                    st.queue.clear();
                    st.bytes = 0;
                }
            }
        }
        if st.queue.is_empty() {
            shared.idle.notify_all();
        }
        if failed && !st.closing {
            // Wait before trying again; closing cuts the wait short.
            drop(
                shared
                    .work
                    .wait_timeout_while(st, backoff, |s| !s.closing)
                    .unwrap_or_else(|p| p.into_inner()),
            );
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }
}

/// Sends `batch` over `conn`, connecting first if needed.
fn send(
    conn: &mut Option<Conn>,
    target: &Target,
    tls: Option<&Arc<ClientConfig>>,
    batch: &[Vec<u8>],
    framed: &mut Vec<u8>,
) -> std::io::Result<u64> {
    if conn
        .as_mut()
        .is_some_and(|c| !c.is_datagram() && c.peer_closed())
    {
        *conn = None;
    }
    let c = match conn {
        Some(c) => c,
        None => conn.insert(Conn::connect(target, tls)?),
    };
    if c.is_datagram() {
        // One message per batch: a datagram too large for the socket is
        // refused every time, so it is given up rather than retried.
        for m in batch {
            match c.send_datagram(m) {
                Err(e) if is_too_large(&e) => return Ok(batch.len() as u64),
                r => r?,
            }
        }
        return Ok(0);
    }
    framed.clear();
    for m in batch {
        c.frame(framed, m);
    }
    c.send_stream(framed)?;
    Ok(0)
}

/// EMSGSIZE: larger than a datagram on this socket can be.
fn is_too_large(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    let code = libc::EMSGSIZE;
    #[cfg(windows)]
    let code = 10040; // WSAEMSGSIZE
    e.raw_os_error() == Some(code)
}
