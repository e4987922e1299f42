//! One writer for the server: every upload is queued to a single thread
//! that records runs one after another, so a burst of uploads never races
//! for SQLite's write lock inside one process. The queue is bounded; when
//! it is full an upload is refused at once (503 with `Retry-After`) and
//! nothing is stored, so nothing is lost silently.

use std::path::PathBuf;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};

use perf_layer::dump::Dump;
use tokio::sync::oneshot;

use crate::history::{HistoryError, Label, RecordOutcome, Store};

/// What a queued upload is answered with.
pub(super) type Outcome = Result<RecordOutcome, HistoryError>;

struct Job {
    dump: Dump,
    labels: Vec<Label>,
    reply: oneshot::Sender<Outcome>,
}

/// Why an upload was not queued.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refused {
    /// The queue holds `capacity` uploads already.
    Full {
        /// The queue's size.
        capacity: usize,
    },
    /// The writer thread is gone (it cannot be, short of a bug).
    Stopped,
}

/// The handle the request handlers queue uploads through.
#[derive(Debug)]
pub(super) struct Writer {
    queue: SyncSender<Job>,
    capacity: usize,
}

impl Writer {
    /// Starts the writer thread for `db`, with a queue of `capacity`
    /// uploads (at least one). The thread ends when the last handle is
    /// dropped, after the uploads already queued.
    pub(super) fn start(db: PathBuf, capacity: usize) -> std::io::Result<Self> {
        let capacity = capacity.max(1);
        let (queue, jobs) = sync_channel::<Job>(capacity);
        std::thread::Builder::new()
            .name("perf-report-writer".into())
            .spawn(move || {
                for job in jobs {
                    // Opened for each run: a file replaced or deleted while
                    // the server runs is written where the path now leads,
                    // never into an unlinked file.
                    let outcome =
                        Store::open(&db).and_then(|mut s| s.record(&job.dump, &job.labels));
                    let _ = job.reply.send(outcome);
                }
            })?;
        Ok(Self { queue, capacity })
    }

    /// Queues `dump` with `labels`; the receiver gets the outcome.
    pub(super) fn submit(
        &self,
        dump: Dump,
        labels: Vec<Label>,
    ) -> Result<oneshot::Receiver<Outcome>, Refused> {
        let (reply, outcome) = oneshot::channel();
        match self.queue.try_send(Job {
            dump,
            labels,
            reply,
        }) {
            Ok(()) => Ok(outcome),
            Err(TrySendError::Full(_)) => Err(Refused::Full {
                capacity: self.capacity,
            }),
            Err(TrySendError::Disconnected(_)) => Err(Refused::Stopped),
        }
    }
}
