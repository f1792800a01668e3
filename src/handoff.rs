//! Handing a stream of items from one thread to another in batches: one channel hand-over (a
//! futex wake when the other side sleeps) per batch instead of per item, and a bounded number
//! of batches in flight so that memory stays flat however far one side gets ahead. Both the
//! store's read-ahead scan and the c1z writer's record stream pass their items this way.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// The receiving side has hung up: it stopped (usually on an error) and wants no more items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

/// The sending half: collects items and sends each full batch.
pub struct BatchSender<T> {
    channel: SyncSender<Vec<T>>,
    batch: Vec<T>,
    batch_size: usize,
}

/// A channel carrying batches of `batch_size` items, at most `batches_in_flight` of them
/// waiting. Dropping the sender without [`BatchSender::finish`] discards its partial batch and
/// ends the stream; the receiver sees the batches sent before.
pub fn channel<T>(
    batch_size: usize,
    batches_in_flight: usize,
) -> (BatchSender<T>, Receiver<Vec<T>>) {
    let (channel, receiver) = sync_channel(batches_in_flight);
    let sender = BatchSender {
        channel,
        batch: Vec::with_capacity(batch_size),
        batch_size,
    };
    (sender, receiver)
}

impl<T> BatchSender<T> {
    /// Adds `item`, sending the batch once it is full (waiting while the channel is full).
    pub fn push(&mut self, item: T) -> Result<(), Closed> {
        self.batch.push(item);
        if self.batch.len() < self.batch_size {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.batch, Vec::with_capacity(self.batch_size));
        self.channel.send(full).map_err(|_| Closed)
    }

    /// Sends the last, partial batch and ends the stream.
    pub fn finish(self) -> Result<(), Closed> {
        if self.batch.is_empty() {
            return Ok(());
        }
        self.channel.send(self.batch).map_err(|_| Closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_arrive_in_order_in_full_batches_then_the_rest() {
        let (mut sender, receiver) = channel(3, 10);
        for n in 0..8 {
            sender.push(n).unwrap();
        }
        sender.finish().unwrap();
        let batches: Vec<Vec<i32>> = receiver.into_iter().collect();
        assert_eq!(batches, vec![vec![0, 1, 2], vec![3, 4, 5], vec![6, 7]]);
    }

    #[test]
    fn a_dropped_sender_ends_the_stream_without_its_partial_batch() {
        let (mut sender, receiver) = channel(2, 10);
        for n in 0..3 {
            sender.push(n).unwrap();
        }
        drop(sender);
        let batches: Vec<Vec<i32>> = receiver.into_iter().collect();
        assert_eq!(batches, vec![vec![0, 1]]);
    }

    #[test]
    fn a_hung_up_receiver_is_reported_when_a_batch_is_sent() {
        let (mut sender, receiver) = channel(2, 10);
        drop(receiver);
        assert_eq!(sender.push(1), Ok(()), "the batch is not full yet");
        assert_eq!(sender.push(2), Err(Closed));
        assert_eq!(sender.finish(), Ok(()), "nothing left to send");
    }
}
