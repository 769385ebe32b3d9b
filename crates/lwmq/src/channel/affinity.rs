//! The CPU affinity of a channel's helper threads (LwMQ's channel control
//! codes, on Linux `sched_setaffinity`).

use std::sync::{Arc, Mutex};

use rustix::thread::{CpuSet, Pid};

/// Why the helper threads' CPU set could not be changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AffinityError {
    /// The set is empty or names a CPU the kernel interface cannot hold.
    #[error("CPU set {cpus:?} is empty or out of range (rule: 1 or more CPUs below {max})")]
    OutOfRange {
        /// The set given.
        cpus: Vec<usize>,
        /// The first CPU number not allowed.
        max: usize,
    },
    /// `sched_setaffinity` failed (nothing changed).
    #[error("sched_setaffinity({cpus:?}) failed: {errno}")]
    Sys {
        /// The set given.
        cpus: Vec<usize>,
        /// The error.
        errno: String,
    },
}

/// The set requested, and the helper threads it applies to.
#[derive(Debug, Default)]
pub(crate) struct Affinity {
    cpus: Option<Vec<usize>>,
    pub(crate) tids: Vec<Pid>,
}

fn lock(a: &Mutex<Affinity>) -> std::sync::MutexGuard<'_, Affinity> {
    a.lock().unwrap_or_else(|e| e.into_inner())
}

impl Affinity {
    /// The set in force: the one set, or else the inherited one.
    fn current(&self) -> Vec<usize> {
        if let Some(cpus) = &self.cpus {
            return cpus.clone();
        }
        let set = rustix::thread::sched_getaffinity(self.tids.first().copied());
        set.map_or_else(
            |_| Vec::new(),
            |set| (0..CpuSet::MAX_CPU).filter(|&c| set.is_set(c)).collect(),
        )
    }

    fn apply(cpus: &[usize], tid: Pid) -> rustix::io::Result<()> {
        let mut set = CpuSet::new();
        for &c in cpus {
            set.set(c);
        }
        rustix::thread::sched_setaffinity(Some(tid), &set)
    }

    /// Sets the CPUs of every helper thread started so far and of those
    /// started later; returns the previous set. On failure nothing changes.
    pub(crate) fn set(
        this: &Arc<Mutex<Affinity>>,
        cpus: &[usize],
    ) -> Result<Vec<usize>, AffinityError> {
        if cpus.is_empty() || cpus.iter().any(|&c| c >= CpuSet::MAX_CPU) {
            return Err(AffinityError::OutOfRange {
                cpus: cpus.to_vec(),
                max: CpuSet::MAX_CPU,
            });
        }
        let mut a = lock(this);
        let previous = a.current();
        for (i, &tid) in a.tids.iter().enumerate() {
            match Self::apply(cpus, tid) {
                // A helper thread that has ended has no affinity to set.
                Ok(()) | Err(rustix::io::Errno::SRCH) => {}
                Err(e) => {
                    if !previous.is_empty() {
                        for &done in &a.tids[..i] {
                            let _ = Self::apply(&previous, done);
                        }
                    }
                    return Err(AffinityError::Sys {
                        cpus: cpus.to_vec(),
                        errno: e.to_string(),
                    });
                }
            }
        }
        a.cpus = Some(cpus.to_vec());
        Ok(previous)
    }

    /// The set in force (see [`Self::current`]).
    pub(crate) fn get(this: &Arc<Mutex<Affinity>>) -> Vec<usize> {
        lock(this).current()
    }

    /// Called by each helper thread as it starts: records it and applies
    /// the set requested, if any.
    pub(crate) fn register(this: &Arc<Mutex<Affinity>>) {
        let tid = rustix::thread::gettid();
        let mut a = lock(this);
        if let Some(cpus) = &a.cpus {
            if let Err(e) = Self::apply(cpus, tid) {
                log::warn!("lwmq: sched_setaffinity failed: {e}");
            }
        }
        a.tids.push(tid);
    }
}
