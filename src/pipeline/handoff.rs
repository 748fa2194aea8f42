//! The reader → writer hand-off: a bounded FIFO of batches whose receiver
//! sleeps on a futex as soon as it finds nothing to do.
//!
//! The bound counts messages and bytes (`--queue-len`, `--queue-bytes`):
//! batches vary in size, so the deque itself is unbounded and [`Bound`]
//! decides what fits. A batch is counted in when sent and out when
//! received.
//!
//! crossbeam's channel spins and calls `sched_yield` before it parks. With
//! one batch per poll interval that spinning never pays off: in a storm
//! profile it was ~15% of the writer's CPU (yields that switched to the storm
//! and back). A mutex-guarded deque with a condition variable sleeps at once
//! and wakes the writer once per batch.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::Batch;

struct State {
    batches: VecDeque<Batch>,
    /// Emptied batches the writer gave back, for the reader to fill again:
    /// without them every batch is a fresh allocation that grows by
    /// reallocation on one thread and is freed on the other (~30% of the
    /// reader's time went to realloc and glibc's consolidation).
    spare: Vec<Batch>,
    /// The sender still exists (the reader is running).
    sender_alive: bool,
    /// The receiver still exists (the writer has not given up).
    receiver_alive: bool,
    /// The receiver is asleep in `recv_timeout`: only then is a wake-up
    /// needed.
    receiver_waiting: bool,
}

struct Shared {
    state: Mutex<State>,
    ready: Condvar,
    /// Checked without the lock: the reader admits a batch before queueing.
    bound: Bound,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Neither side panics while holding the lock; if one did, the data
        // (a deque of batches and flags) is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The reader's end.
pub struct Sender(Arc<Shared>);

/// The writer's end.
pub struct Receiver(Arc<Shared>);

/// Why `recv_timeout` returned no batch.
#[derive(Debug, PartialEq, Eq)]
pub enum RecvError {
    Timeout,
    /// The sender is gone and every batch has been received.
    Disconnected,
}

/// Why [`Sender::try_send`] did not queue a batch.
#[derive(Debug)]
pub enum SendError {
    /// The batch does not fit in the bound; it is handed back.
    Full(Batch),
    /// The receiver is gone: nobody will read it.
    Gone,
}

/// A new hand-off holding at most `cap` messages and `max_bytes` bytes
/// (see [`Batch::weight`]).
pub fn handoff(cap: usize, max_bytes: usize) -> (Sender, Receiver) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            batches: VecDeque::new(),
            spare: Vec::new(),
            sender_alive: true,
            receiver_alive: true,
            receiver_waiting: false,
        }),
        ready: Condvar::new(),
        bound: Bound::new(cap, max_bytes),
    });
    (Sender(Arc::clone(&shared)), Receiver(shared))
}

/// Spare batches kept at most (each holds up to `capacity` messages).
const SPARE_MAX: usize = 8;
/// A spare batch keeps at most this much raw-record memory: one batch of
/// 16 KiB-argv records grows to megabytes, and eight such spares would hold
/// memory outside the queue's byte bound.
const SPARE_BYTES_MAX: usize = 256 << 10;

impl Sender {
    /// An empty batch to fill: one the writer gave back, or a new one with
    /// room for `capacity` messages.
    pub fn empty_batch(&self, capacity: usize) -> Batch {
        self.0
            .lock()
            .spare
            .pop()
            .unwrap_or_else(|| Batch::with_capacity(capacity))
    }

    /// Queues a batch if it fits in the bound; never waits.
    pub fn try_send(&self, batch: Batch) -> Result<(), SendError> {
        if !self.0.bound.admit(&batch) {
            return Err(SendError::Full(batch));
        }
        self.push(batch).map_err(|_| SendError::Gone)
    }

    /// Queues a batch past the bound (the last one, whose loss nothing
    /// could report); it is counted in, so that its receipt balances.
    pub fn send_past_bound(&self, batch: Batch) -> Result<(), SendError> {
        self.0.bound.force(&batch);
        self.push(batch).map_err(|_| SendError::Gone)
    }

    /// Queues a batch already counted in the bound; gives it back when the
    /// receiver is gone.
    fn push(&self, batch: Batch) -> Result<(), Batch> {
        let mut s = self.0.lock();
        if !s.receiver_alive {
            return Err(batch);
        }
        s.batches.push_back(batch);
        let wake = s.receiver_waiting;
        drop(s);
        if wake {
            self.0.ready.notify_one();
        }
        Ok(())
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.0.lock().sender_alive = false;
        self.0.ready.notify_one();
    }
}

impl Receiver {
    /// The next batch, waiting up to `timeout` for one; the room it took
    /// in the bound is free again.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Batch, RecvError> {
        let deadline = Instant::now() + timeout;
        let mut s = self.0.lock();
        loop {
            if let Some(b) = s.batches.pop_front() {
                self.0.bound.release(&b);
                return Ok(b);
            }
            if !s.sender_alive {
                return Err(RecvError::Disconnected);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(RecvError::Timeout);
            }
            s.receiver_waiting = true;
            s = self
                .0
                .ready
                .wait_timeout(s, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            s.receiver_waiting = false;
        }
    }

    /// Gives an emptied batch back to the sender for reuse.
    pub fn recycle(&self, mut batch: Batch) {
        batch.clear();
        if batch.bytes.capacity() > SPARE_BYTES_MAX {
            batch.bytes = Vec::new();
        }
        let mut s = self.0.lock();
        if s.spare.len() < SPARE_MAX && s.sender_alive {
            s.spare.push(batch);
        }
    }

    /// No batch is waiting.
    pub fn is_empty(&self) -> bool {
        self.0.lock().batches.is_empty()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.receiver_alive = false;
        // Nobody will read them: free the memory now.
        s.batches.clear();
    }
}

/// The bound on the hand-off, in messages and in bytes.
struct Bound {
    len: AtomicUsize,
    cap: usize,
    bytes: AtomicUsize,
    max_bytes: usize,
}

impl Bound {
    fn new(cap: usize, max_bytes: usize) -> Self {
        Bound {
            len: AtomicUsize::new(0),
            cap: cap.max(1),
            bytes: AtomicUsize::new(0),
            max_bytes,
        }
    }

    /// Reserves room for `b`'s messages and bytes; false when they do not
    /// fit. A batch heavier than the whole byte bound still fits an empty
    /// queue, so a small `--queue-bytes` slows nothing to a halt.
    fn admit(&self, b: &Batch) -> bool {
        let (n, w) = (b.len(), b.weight);
        let fits = self
            .len
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |len| {
                (len + n <= self.cap).then_some(len + n)
            })
            .is_ok();
        if !fits {
            return false;
        }
        let fits = self
            .bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used == 0 || used + w <= self.max_bytes).then_some(used + w)
            })
            .is_ok();
        if !fits {
            self.len.fetch_sub(n, Ordering::AcqRel);
        }
        fits
    }

    /// Counts `b` in without checking the bound.
    fn force(&self, b: &Batch) {
        self.len.fetch_add(b.len(), Ordering::AcqRel);
        self.bytes.fetch_add(b.weight, Ordering::AcqRel);
    }

    /// Returns the room `b` took.
    fn release(&self, b: &Batch) {
        self.len.fetch_sub(b.len(), Ordering::AcqRel);
        self.bytes.fetch_sub(b.weight, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{LossInfo, LossPlace};
    use crate::pipeline::Msg;
    use std::thread;

    fn batch(msgs: usize, weight: usize) -> Batch {
        let mut b = Batch::default();
        for _ in 0..msgs {
            b.msgs.push(Msg::Loss(LossInfo {
                time: std::time::SystemTime::now(),
                place: LossPlace::Queue,
                dropped: 1,
                total: 1,
            }));
        }
        b.weight = weight;
        b
    }

    #[test]
    fn queue_admits_up_to_its_capacity_in_messages() {
        let q = Bound::new(10, usize::MAX);
        assert!(q.admit(&batch(6, 1)));
        assert!(
            !q.admit(&batch(5, 1)),
            "6 + 5 > 10: the whole batch is refused"
        );
        assert!(q.admit(&batch(4, 1)));
        assert!(!q.admit(&batch(1, 1)));
        q.release(&batch(6, 1));
        assert!(q.admit(&batch(6, 1)));
    }

    #[test]
    fn queue_admits_up_to_its_capacity_in_bytes() {
        let q = Bound::new(1000, 100);
        assert!(q.admit(&batch(1, 60)));
        assert!(!q.admit(&batch(1, 41)), "60 + 41 > 100");
        // A refused batch leaves no message count behind.
        assert!(q.admit(&batch(1, 40)));
        q.release(&batch(1, 60));
        q.release(&batch(1, 40));
        assert_eq!(q.len.load(std::sync::atomic::Ordering::SeqCst), 0);
        // Heavier than the bound: only into an empty queue.
        assert!(q.admit(&batch(1, 500)));
        assert!(!q.admit(&batch(1, 1)));
        q.release(&batch(1, 500));
        assert!(q.admit(&batch(1, 1)));
    }

    #[test]
    fn batches_arrive_in_order_then_disconnect() {
        let (tx, rx) = handoff(usize::MAX, usize::MAX);
        let t = thread::spawn(move || {
            for i in 0..100 {
                tx.try_send(Batch::with_capacity(i)).unwrap();
                if i % 10 == 0 {
                    thread::sleep(Duration::from_millis(1));
                }
            }
        });
        let mut got = Vec::new();
        loop {
            match rx.recv_timeout(Duration::from_secs(5)) {
                Ok(b) => got.push(b.msgs.capacity()),
                Err(e) => {
                    assert_eq!(e, RecvError::Disconnected, "after {} batches", got.len());
                    break;
                }
            }
        }
        t.join().unwrap();
        assert_eq!(got.len(), 100);
        assert!(got.windows(2).all(|w| w[0] < w[1]), "FIFO order: {got:?}");
    }

    #[test]
    fn timeout_when_nothing_comes() {
        let (_tx, rx) = handoff(usize::MAX, usize::MAX);
        let t0 = Instant::now();
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(30)).err(),
            Some(RecvError::Timeout)
        );
        assert!(t0.elapsed() >= Duration::from_millis(30));
        assert!(rx.is_empty());
    }

    #[test]
    fn a_sleeping_receiver_is_woken_by_send() {
        let (tx, rx) = handoff(usize::MAX, usize::MAX);
        let t = thread::spawn(move || rx.recv_timeout(Duration::from_secs(30)).map(|b| b.len()));
        thread::sleep(Duration::from_millis(50));
        tx.try_send(Batch::default()).unwrap();
        assert_eq!(t.join().unwrap(), Ok(0));
    }

    #[test]
    fn emptied_batches_are_reused() {
        let (tx, rx) = handoff(usize::MAX, usize::MAX);
        let b = tx.empty_batch(64);
        assert!(b.msgs.capacity() >= 64);
        let ptr = b.msgs.as_ptr();
        tx.try_send(b).unwrap();
        let got = rx.recv_timeout(Duration::from_secs(1)).unwrap();
        rx.recycle(got);
        let again = tx.empty_batch(64);
        assert_eq!(again.msgs.as_ptr(), ptr, "the same allocation comes back");
        assert!(again.is_empty());
    }

    #[test]
    fn receiving_frees_the_room_a_batch_took() {
        let (tx, rx) = handoff(3, usize::MAX);
        tx.try_send(batch(2, 1)).unwrap();
        match tx.try_send(batch(2, 1)) {
            Err(SendError::Full(b)) => assert_eq!(b.len(), 2, "handed back whole"),
            other => panic!("a batch past the bound was queued: {other:?}"),
        }
        assert_eq!(rx.recv_timeout(Duration::from_secs(1)).unwrap().len(), 2);
        tx.try_send(batch(3, 1)).unwrap();
        // The last batch goes past the bound, and its receipt balances.
        tx.send_past_bound(batch(2, 1)).unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(1)).unwrap().len(), 3);
        assert_eq!(rx.recv_timeout(Duration::from_secs(1)).unwrap().len(), 2);
        assert_eq!(rx.0.bound.len.load(Ordering::SeqCst), 0);
        assert_eq!(rx.0.bound.bytes.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn send_fails_once_the_receiver_is_gone() {
        let (tx, rx) = handoff(usize::MAX, usize::MAX);
        drop(rx);
        assert!(tx.try_send(Batch::default()).is_err());
    }
}
