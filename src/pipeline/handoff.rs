//! The reader → writer hand-off: a FIFO of batches whose receiver sleeps
//! on a futex as soon as it finds nothing to do.
//!
//! crossbeam's channel spins and calls `sched_yield` before it parks. With
//! one batch per poll interval that spinning never pays off: in a storm
//! profile it was ~15% of the writer's CPU (yields that switched to the storm
//! and back). A mutex-guarded deque with a condition variable sleeps at once
//! and wakes the writer once per batch.

use std::collections::VecDeque;
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

/// A new, unbounded hand-off (the bound is `Queue`, in messages and bytes).
pub fn handoff() -> (Sender, Receiver) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            batches: VecDeque::new(),
            spare: Vec::new(),
            sender_alive: true,
            receiver_alive: true,
            receiver_waiting: false,
        }),
        ready: Condvar::new(),
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

    /// Queues a batch; gives it back when the receiver is gone.
    pub fn send(&self, batch: Batch) -> Result<(), Batch> {
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
    /// The next batch, waiting up to `timeout` for one.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Batch, RecvError> {
        let deadline = Instant::now() + timeout;
        let mut s = self.0.lock();
        loop {
            if let Some(b) = s.batches.pop_front() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    #[test]
    fn batches_arrive_in_order_then_disconnect() {
        let (tx, rx) = handoff();
        let t = thread::spawn(move || {
            for i in 0..100 {
                tx.send(Batch::with_capacity(i)).unwrap();
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
        let (_tx, rx) = handoff();
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
        let (tx, rx) = handoff();
        let t = thread::spawn(move || rx.recv_timeout(Duration::from_secs(30)).map(|b| b.len()));
        thread::sleep(Duration::from_millis(50));
        tx.send(Batch::default()).unwrap();
        assert_eq!(t.join().unwrap(), Ok(0));
    }

    #[test]
    fn emptied_batches_are_reused() {
        let (tx, rx) = handoff();
        let b = tx.empty_batch(64);
        assert!(b.msgs.capacity() >= 64);
        let ptr = b.msgs.as_ptr();
        tx.send(b).unwrap();
        let got = rx.recv_timeout(Duration::from_secs(1)).unwrap();
        rx.recycle(got);
        let again = tx.empty_batch(64);
        assert_eq!(again.msgs.as_ptr(), ptr, "the same allocation comes back");
        assert!(again.is_empty());
    }

    #[test]
    fn send_fails_once_the_receiver_is_gone() {
        let (tx, rx) = handoff();
        drop(rx);
        assert!(tx.send(Batch::default()).is_err());
    }
}
