//! Group commit for ingest. Every accepted event must be durable before its 202, and on
//! SQLite each commit costs an fsync. Concurrent requests therefore queue their events here,
//! and one task commits whatever has queued while the previous commit ran, in a single
//! transaction. Each request is answered only after the commit that holds its event.

use tokio::sync::{mpsc, oneshot};

use super::{InsertOutcome, NewEvent, Result, Store, StoreError};

struct Job {
    event: NewEvent,
    reply: oneshot::Sender<Result<InsertOutcome>>,
}

/// Handle to the ingest writer task; cheap to clone. The task ends when the last handle is
/// dropped, after answering everything queued.
#[derive(Clone)]
pub struct EventWriter {
    queue: mpsc::Sender<Job>,
}

impl EventWriter {
    /// Starts the writer. `max_batch` bounds one transaction (and so one request's wait).
    pub fn spawn(store: Store, max_batch: usize) -> Self {
        let (queue, mut jobs) = mpsc::channel::<Job>(max_batch * 4);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(max_batch);
            // Waits for one job, then takes every job already queued (up to max_batch).
            while jobs.recv_many(&mut batch, max_batch).await > 0 {
                let (events, replies): (Vec<_>, Vec<_>) = batch.drain(..).map(|j| (j.event, j.reply)).unzip();
                match store.insert_events(&events).await {
                    Ok(outcomes) => {
                        for (reply, outcome) in replies.into_iter().zip(outcomes) {
                            let _ = reply.send(Ok(outcome));
                        }
                    }
                    Err(e) => {
                        // Nothing of the batch was committed: every request gets the error.
                        let message = e.to_string();
                        for reply in replies {
                            let _ = reply.send(Err(StoreError::Batch(message.clone())));
                        }
                    }
                }
            }
        });
        Self { queue }
    }

    /// Stores one event durably (with whatever else is waiting) and returns its outcome.
    pub async fn insert(&self, event: NewEvent) -> Result<InsertOutcome> {
        let (reply, answer) = oneshot::channel();
        self.queue.send(Job { event, reply }).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}
