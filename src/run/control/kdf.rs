//! The channel-key worker: every Argon2id derivation of `ctl join` runs on ONE dedicated thread, in ONE reused
//! buffer of working memory, fed by a small bounded queue.
//!
//! Why: a channel key takes Argon2id over 19 MiB. Run on tokio's blocking pool, each derivation landed on whichever
//! pool thread was free, and glibc's malloc gave each thread its own arena (the store's 64 MiB unlock at start had
//! raised the mmap threshold, so 19 MiB buffers come from arenas, not from mmap): every thread that ever derived a
//! key kept 19 MiB or more, and 16 concurrent joins held some 300 MB for good. Here the extra memory is one buffer,
//! however many joins run: it is allocated at the first join, kept for the next ones, and wiped after each
//! derivation (it held password-derived state).
//!
//! The queue holds [`QUEUE`] joins waiting for the worker (as many as a node can join channels); a join beyond
//! that is refused at once with [`KdfError::Busy`] ("busy, retry") instead of waiting: a waiting join keeps its
//! client waiting for every derivation ahead of it, and `ctl` gives up after 60 s, so an unbounded wait could end
//! with a client told "failed" while the node joins later. [`QUEUE`] derivations take well under that even on a
//! Raspberry Pi.
//!
//! Invariant: at most one derivation runs at a time, in the worker's single buffer; passwords wait in the queue
//! wiped on drop; a join whose client went away before its turn is skipped, not derived.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};

use mesh::channel::{alloc_memory, Block, ChannelError, ChannelKey, ChannelParams};
use tokio::sync::oneshot;
use zeroize::Zeroizing;

/// Joins waiting for the worker at most (besides the one it derives).
pub const QUEUE: usize = 16;

/// Why a join got no key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KdfError {
    /// The queue is full.
    #[error("busy: {QUEUE} channel joins are already waiting for their key derivation; retry in a few seconds")]
    Busy,
    /// The worker thread is gone (it could not start, or stopped).
    #[error("the channel key worker is not running ({0}); restart the node")]
    Stopped(String),
    /// Argon2id refused (bad input, no memory).
    #[error("cannot derive the channel key: {0}")]
    Derive(ChannelError),
}

/// What the worker did so far.
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// Derivations run (successful or not).
    pub derivations: AtomicU64,
    /// Working-memory buffers allocated: 1 once the first join ran.
    pub buffer_allocations: AtomicU64,
    /// Joins skipped because their client was gone.
    pub skipped: AtomicU64,
    /// Joins refused with [`KdfError::Busy`].
    pub refused: AtomicU64,
}

enum Job {
    Derive {
        channel: String,
        password: Zeroizing<String>,
        reply: oneshot::Sender<Result<ChannelKey, ChannelError>>,
    },
    /// Tests: tells the first sender it holds the worker, then blocks it until the second one sends or drops.
    #[cfg(test)]
    Hold(std::sync::mpsc::Sender<()>, Receiver<()>),
}

/// A handle on the worker thread; the thread ends when every handle is gone and the queue is empty.
pub struct KdfWorker {
    jobs: SyncSender<Job>,
    stats: Arc<WorkerStats>,
}

impl KdfWorker {
    /// Starts a worker deriving with `params`, with `queue` joins waiting at most.
    pub fn spawn(params: ChannelParams, queue: usize) -> std::io::Result<KdfWorker> {
        let (jobs, rx) = sync_channel(queue);
        let stats = Arc::new(WorkerStats::default());
        let thread_stats = Arc::clone(&stats);
        std::thread::Builder::new()
            .name("channel-kdf".into())
            .spawn(move || work(&rx, params, &thread_stats))?;
        Ok(KdfWorker { jobs, stats })
    }

    /// Queues the derivation of `channel`'s key from `password`; the key (or Argon2id's refusal) arrives on the
    /// receiver. Refused at once with [`KdfError::Busy`] when the queue is full.
    pub fn submit(
        &self,
        channel: String,
        password: Zeroizing<String>,
    ) -> Result<oneshot::Receiver<Result<ChannelKey, ChannelError>>, KdfError> {
        let (reply, rx) = oneshot::channel();
        match self.jobs.try_send(Job::Derive {
            channel,
            password,
            reply,
        }) {
            Ok(()) => Ok(rx),
            Err(TrySendError::Full(_)) => {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                Err(KdfError::Busy)
            }
            Err(TrySendError::Disconnected(_)) => Err(KdfError::Stopped("its thread ended".into())),
        }
    }

    /// [`Self::submit`], then waits for the key.
    pub async fn derive(
        &self,
        channel: String,
        password: Zeroizing<String>,
    ) -> Result<ChannelKey, KdfError> {
        self.submit(channel, password)?
            .await
            .map_err(|_| KdfError::Stopped("it dropped the join".into()))?
            .map_err(KdfError::Derive)
    }

    /// What the worker did so far.
    pub fn stats(&self) -> &WorkerStats {
        &self.stats
    }

    /// Tests: blocks the worker (its queue empty) until the sender returned sends or drops.
    #[cfg(test)]
    fn hold(&self) -> std::sync::mpsc::Sender<()> {
        let (held, is_held) = std::sync::mpsc::channel();
        let (release, until) = std::sync::mpsc::channel();
        self.jobs.send(Job::Hold(held, until)).unwrap();
        is_held.recv().unwrap();
        release
    }
}

/// The worker of this process, with the interoperable parameters, started at the first join.
pub fn shared() -> Result<&'static KdfWorker, KdfError> {
    static WORKER: OnceLock<Result<KdfWorker, String>> = OnceLock::new();
    WORKER
        .get_or_init(|| {
            KdfWorker::spawn(ChannelParams::DEFAULT, QUEUE)
                .map_err(|e| format!("cannot start its thread: {e}"))
        })
        .as_ref()
        .map_err(|e| KdfError::Stopped(e.clone()))
}

fn work(jobs: &Receiver<Job>, params: ChannelParams, stats: &WorkerStats) {
    let mut memory: Option<Zeroizing<Vec<Block>>> = None;
    while let Ok(job) = jobs.recv() {
        let (channel, password, reply) = match job {
            Job::Derive {
                channel,
                password,
                reply,
            } => (channel, password, reply),
            #[cfg(test)]
            Job::Hold(held, until) => {
                let _ = held.send(());
                let _ = until.recv();
                continue;
            }
        };
        if reply.is_closed() {
            stats.skipped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let result = match memory.as_mut() {
            Some(m) => Ok(m),
            None => alloc_memory(params).map(|m| {
                stats.buffer_allocations.fetch_add(1, Ordering::Relaxed);
                memory.insert(m)
            }),
        }
        .and_then(|m| ChannelKey::derive_with_memory(&channel, password.as_bytes(), params, m));
        drop(password);
        stats.derivations.fetch_add(1, Ordering::Relaxed);
        let _ = reply.send(result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: ChannelParams = ChannelParams::new(64, 1, 1);

    fn pw(s: &str) -> Zeroizing<String> {
        Zeroizing::new(s.to_string())
    }

    #[tokio::test(flavor = "current_thread")]
    async fn joins_run_one_at_a_time_in_one_reused_buffer_and_a_full_queue_is_busy() {
        let worker = KdfWorker::spawn(CHEAP, 4).unwrap();
        // Held: the queue fills with 4 joins, the 5th is refused at once.
        let release = worker.hold();
        let pending: Vec<_> = (0..4)
            .map(|i| {
                worker
                    .submit(format!("ch{i}"), pw(&format!("pw{i}")))
                    .unwrap()
            })
            .collect();
        assert_eq!(
            worker.submit("ch4".into(), pw("x")).err(),
            Some(KdfError::Busy)
        );
        assert!(KdfError::Busy.to_string().contains("retry"));
        assert_eq!(worker.stats().derivations.load(Ordering::Relaxed), 0);
        drop(release);
        for (i, rx) in pending.into_iter().enumerate() {
            let key = rx.await.unwrap().unwrap();
            let expected =
                ChannelKey::derive_with(&format!("ch{i}"), format!("pw{i}").as_bytes(), CHEAP)
                    .unwrap();
            assert_eq!(key.name(), format!("ch{i}"));
            assert_eq!(key.as_bytes(), expected.as_bytes());
        }
        // More joins, one after the other: still the one buffer.
        for i in 0..3 {
            let key = worker.derive(format!("more{i}"), pw("p")).await.unwrap();
            assert_eq!(key.name(), format!("more{i}"));
        }
        let stats = worker.stats();
        assert_eq!(stats.derivations.load(Ordering::Relaxed), 7);
        assert_eq!(stats.buffer_allocations.load(Ordering::Relaxed), 1);
        assert_eq!(stats.refused.load(Ordering::Relaxed), 1);
        // Argon2id's refusals come back as such.
        assert_eq!(
            worker.derive("x".into(), pw("")).await.err(),
            Some(KdfError::Derive(ChannelError::EmptyPassword))
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_join_whose_client_left_is_skipped() {
        let worker = KdfWorker::spawn(CHEAP, 2).unwrap();
        let release = worker.hold();
        drop(worker.submit("gone".into(), pw("p")).unwrap());
        drop(release);
        let key = worker.derive("here".into(), pw("p")).await.unwrap();
        assert_eq!(key.name(), "here");
        assert_eq!(worker.stats().skipped.load(Ordering::Relaxed), 1);
        assert_eq!(worker.stats().derivations.load(Ordering::Relaxed), 1);
    }
}
