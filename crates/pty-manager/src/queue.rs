//! A bounded, never-blocking queue from the reactor to one reader.
//!
//! `std::sync::mpsc::sync_channel` allocates its whole bound up front (16 384 events would be
//! megabytes per reader) and cannot tell the sender that the reader is gone until it sends. This
//! queue is an unbounded channel (allocated as it fills) plus a shared length counter: the sender
//! refuses beyond the bound, and sees a dropped reader at once through the counter's reference
//! count, so dead subscribers are pruned without waiting for output.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvError, RecvTimeoutError, TryRecvError, TrySendError};
use std::time::Duration;

/// The reactor's end.
#[derive(Debug)]
pub(crate) struct QueueSender<T> {
    tx: mpsc::Sender<(T, usize)>,
    len: Arc<AtomicUsize>,
    bytes: Arc<AtomicUsize>,
    cap: usize,
    cap_bytes: usize,
}

/// The reading end of a bounded queue filled by the reactor: output chunks of
/// [`crate::PtyManager::attach`] or events of [`crate::PtyManager::events`]. The sender never
/// waits: when `cap` items are queued, new ones are dropped (output readers are told with
/// [`crate::OutputChunk::Lagged`]). Dropping the receiver unsubscribes.
#[derive(Debug)]
pub struct QueueReceiver<T> {
    rx: mpsc::Receiver<(T, usize)>,
    len: Arc<AtomicUsize>,
    bytes: Arc<AtomicUsize>,
}

/// A queue holding at most `cap` items and `cap_bytes` bytes of weighted items.
pub(crate) fn queue<T>(cap: usize, cap_bytes: usize) -> (QueueSender<T>, QueueReceiver<T>) {
    let (tx, rx) = mpsc::channel();
    let len = Arc::new(AtomicUsize::new(0));
    let bytes = Arc::new(AtomicUsize::new(0));
    (
        QueueSender {
            tx,
            len: len.clone(),
            bytes: bytes.clone(),
            cap,
            cap_bytes,
        },
        QueueReceiver { rx, len, bytes },
    )
}

impl<T> QueueSender<T> {
    /// Queues `item` (weighing `weight` bytes) unless the queue is full or the reader is gone.
    pub(crate) fn try_send(&self, item: T, weight: usize) -> Result<(), TrySendError<T>> {
        if self.is_disconnected() {
            return Err(TrySendError::Disconnected(item));
        }
        let full = self.len.load(Ordering::Acquire) >= self.cap
            || (weight > 0 && self.bytes.load(Ordering::Acquire) + weight > self.cap_bytes);
        if full {
            return Err(TrySendError::Full(item));
        }
        self.force_send(item, weight)
    }

    /// Queues `item` even beyond the bounds (for a final notice before the stream ends).
    pub(crate) fn force_send(&self, item: T, weight: usize) -> Result<(), TrySendError<T>> {
        self.len.fetch_add(1, Ordering::AcqRel);
        self.bytes.fetch_add(weight, Ordering::AcqRel);
        self.tx.send((item, weight)).map_err(|e| {
            self.len.fetch_sub(1, Ordering::AcqRel);
            self.bytes.fetch_sub(weight, Ordering::AcqRel);
            TrySendError::Disconnected(e.0.0)
        })
    }

    /// Whether the receiver was dropped.
    pub(crate) fn is_disconnected(&self) -> bool {
        Arc::strong_count(&self.len) < 2
    }
}

impl<T> QueueReceiver<T> {
    fn took(&self, (item, weight): (T, usize)) -> T {
        self.len.fetch_sub(1, Ordering::AcqRel);
        self.bytes.fetch_sub(weight, Ordering::AcqRel);
        item
    }

    /// Blocks for the next item; `Err` once the sender is gone and the queue is empty.
    pub fn recv(&self) -> Result<T, RecvError> {
        Ok(self.took(self.rx.recv()?))
    }

    /// Waits up to `timeout` for the next item.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        Ok(self.took(self.rx.recv_timeout(timeout)?))
    }

    /// The next item if one is queued.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        Ok(self.took(self.rx.try_recv()?))
    }

    /// Items queued now.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// Whether nothing is queued now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Blocking iterator until the sender is gone.
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        std::iter::from_fn(|| self.recv().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_notices_a_dropped_reader() {
        let (tx, rx) = queue(2, 100);
        tx.try_send(1, 0).unwrap();
        tx.try_send(2, 0).unwrap();
        assert!(matches!(tx.try_send(3, 0), Err(TrySendError::Full(3))));
        assert_eq!(rx.try_recv(), Ok(1));
        tx.try_send(4, 0).unwrap();
        assert_eq!(rx.len(), 2);
        tx.force_send(9, 0).unwrap();
        assert_eq!(rx.len(), 3);
        assert!(!tx.is_disconnected());
        drop(rx);
        assert!(tx.is_disconnected());
        assert!(matches!(
            tx.try_send(5, 0),
            Err(TrySendError::Disconnected(5))
        ));
    }

    #[test]
    fn bounded_by_weight() {
        let (tx, rx) = queue(10, 100);
        tx.try_send(1, 60).unwrap();
        assert!(matches!(tx.try_send(2, 60), Err(TrySendError::Full(2))));
        tx.try_send(3, 40).unwrap();
        assert_eq!(rx.recv(), Ok(1));
        tx.try_send(4, 60).unwrap();
    }

    #[test]
    fn reader_sees_the_end() {
        let (tx, rx) = queue::<u8>(4, 4);
        tx.try_send(7, 1).unwrap();
        drop(tx);
        assert_eq!(rx.recv(), Ok(7));
        assert!(rx.recv().is_err());
    }
}
