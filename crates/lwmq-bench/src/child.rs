//! Child processes: every measurement runs in children of this binary
//! (`lwmq-bench peer ...`), each with a deadline. Children die with the
//! bench (`PR_SET_PDEATHSIG`), and on SIGINT/SIGTERM the bench kills the
//! ones still running and removes what the peers left behind before it
//! exits.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

/// Pids of the children still running.
static LIVE: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Set by SIGINT / SIGTERM.
static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// What to run when the bench is interrupted, before it exits (clean-up).
static ON_STOP: Mutex<Option<Box<dyn Fn() + Send>>> = Mutex::new(None);

/// Installs the SIGINT / SIGTERM flag and the clean-up to run on it.
pub fn install_stop(cleanup: impl Fn() + Send + 'static) -> std::io::Result<()> {
    let flag = STOP.get_or_init(|| Arc::new(AtomicBool::new(false)));
    signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(flag))?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(flag))?;
    *lock(&ON_STOP) = Some(Box::new(cleanup));
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// If a stop signal arrived: kills the children, cleans up and exits 130.
pub fn check_stop() {
    if STOP.get().is_some_and(|f| f.load(Ordering::Relaxed)) {
        eprintln!("\nlwmq-bench: interrupted; stopping the children and cleaning up");
        kill_all();
        if let Some(f) = lock(&ON_STOP).as_ref() {
            f();
        }
        std::process::exit(130);
    }
}

fn kill(pid: i32) {
    if let Some(p) = Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(p, Signal::KILL);
    }
}

/// Kills every child still running.
pub fn kill_all() {
    for pid in lock(&LIVE).iter() {
        kill(*pid);
    }
}

/// What a finished child left.
#[derive(Debug)]
pub struct Finished {
    /// Exited with status 0.
    pub success: bool,
    /// How it ended, for messages.
    pub status: String,
    /// All of its standard output.
    pub stdout: String,
    /// All of its standard error.
    pub stderr: String,
}

impl Finished {
    /// The last non-empty stdout line parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value, String> {
        let line = self
            .stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .ok_or("printed no result")?;
        serde_json::from_str(line).map_err(|e| format!("unreadable result {line:?}: {e}"))
    }

    /// One line saying why it failed.
    pub fn why(&self) -> String {
        let last = self
            .stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        if last.is_empty() {
            self.status.clone()
        } else {
            format!("{}: {last}", self.status)
        }
    }
}

/// A running child.
#[derive(Debug)]
pub struct Running {
    /// Its pid.
    pub pid: i32,
    /// What it is (for messages).
    pub label: String,
}

/// Children that report to one channel, so that whichever ends first is
/// seen first.
pub struct Group {
    tx: mpsc::Sender<(usize, Finished)>,
    rx: mpsc::Receiver<(usize, Finished)>,
    /// The children, by index.
    pub children: Vec<Running>,
}

impl Default for Group {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel();
        Self {
            tx,
            rx,
            children: Vec::new(),
        }
    }
}

fn read_all(mut r: impl Read) -> String {
    let mut v = Vec::new();
    let _ = r.read_to_end(&mut v);
    String::from_utf8_lossy(&v).into_owned()
}

impl Group {
    /// Starts `lwmq-bench ARGS...` as child number `children.len()`.
    pub fn spawn(&mut self, label: &str, args: &[String]) -> Result<usize, String> {
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let parent = rustix::process::getpid();
        let mut cmd = Command::new(&exe);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: the closure runs between fork and exec and only makes
        // async-signal-safe system calls (prctl, getppid, kill of itself);
        // it allocates nothing and takes no lock.
        unsafe {
            cmd.pre_exec(move || {
                rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
                // The parent may have died before the prctl.
                if rustix::process::getppid() != Some(parent) {
                    return Err(std::io::Error::other("parent gone"));
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("spawn {} {}: {e}", exe.display(), args.join(" ")))?;
        let pid = child.id() as i32;
        lock(&LIVE).push(pid);
        let index = self.children.len();
        self.children.push(Running {
            pid,
            label: label.to_string(),
        });
        let tx = self.tx.clone();
        let out = child.stdout.take();
        let err = child.stderr.take();
        std::thread::spawn(move || {
            let err_reader = err.map(|e| std::thread::spawn(move || read_all(e)));
            let stdout = out.map(read_all).unwrap_or_default();
            let stderr = err_reader.and_then(|h| h.join().ok()).unwrap_or_default();
            let (success, status) = match child.wait() {
                Ok(s) => (s.success(), s.to_string()),
                Err(e) => (false, format!("wait failed: {e}")),
            };
            lock(&LIVE).retain(|p| *p != pid);
            let _ = tx.send((
                index,
                Finished {
                    success,
                    status,
                    stdout,
                    stderr,
                },
            ));
        });
        Ok(index)
    }

    /// Waits for every child until `limit` has passed; a child that fails
    /// makes the others be killed (they would wait for it in vain). Once
    /// the `primary` child (the one that measures) has succeeded, the others
    /// get a short grace and are then ended without that counting as a
    /// failure (a pinger may stop early; its pong would wait on). Returns
    /// each child's outcome, or an error naming the first failure.
    pub fn wait_all(
        self,
        limit: Duration,
        primary: Option<usize>,
    ) -> Result<Vec<Finished>, String> {
        let mut deadline = Instant::now() + limit;
        let mut ended_by_us = false;
        let n = self.children.len();
        let mut done: Vec<Option<Finished>> = (0..n).map(|_| None).collect();
        let mut first_error: Option<String> = None;
        let mut left = n;
        let mut killed = false;
        while left > 0 {
            check_stop();
            let now = Instant::now();
            let slice = deadline
                .saturating_duration_since(now)
                .min(Duration::from_millis(100));
            match self.rx.recv_timeout(slice.max(Duration::from_millis(1))) {
                Ok((i, f)) => {
                    left -= 1;
                    if Some(i) == primary && f.success {
                        deadline = deadline.min(Instant::now() + Duration::from_secs(3));
                        ended_by_us = true;
                    }
                    if !f.success && first_error.is_none() && !ended_by_us {
                        first_error =
                            Some(format!("{} failed ({})", self.children[i].label, f.why()));
                        if !killed {
                            killed = true;
                            for (j, c) in self.children.iter().enumerate() {
                                if done[j].is_none() && j != i {
                                    kill(c.pid);
                                }
                            }
                        }
                    }
                    done[i] = Some(f);
                }
                Err(RecvTimeoutError::Timeout) => {
                    if Instant::now() >= deadline && !killed && ended_by_us {
                        killed = true;
                        for (j, c) in self.children.iter().enumerate() {
                            if done[j].is_none() {
                                kill(c.pid);
                            }
                        }
                    } else if Instant::now() >= deadline && !killed {
                        killed = true;
                        let late: Vec<&str> = self
                            .children
                            .iter()
                            .enumerate()
                            .filter(|(j, _)| done[*j].is_none())
                            .map(|(_, c)| c.label.as_str())
                            .collect();
                        first_error.get_or_insert_with(|| {
                            format!(
                                "timed out after {:.0} s ({} still running)",
                                limit.as_secs_f64(),
                                late.join(", ")
                            )
                        });
                        for (j, c) in self.children.iter().enumerate() {
                            if done[j].is_none() {
                                kill(c.pid);
                            }
                        }
                    } else if Instant::now() >= deadline + Duration::from_secs(10) {
                        return Err(first_error.unwrap_or_else(|| "children did not end".into()));
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        Ok(done.into_iter().flatten().collect())
    }
}

/// CPU time (user + system, all threads) a process has used, in seconds,
/// from `/proc/PID/task/*/schedstat` (nanoseconds on the CPU).
pub fn cpu_seconds(pid: i32) -> Result<f64, String> {
    let dir = format!("/proc/{pid}/task");
    let mut ns: u64 = 0;
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("{dir}: {e}"))?;
    for e in entries.flatten() {
        let path = e.path().join("schedstat");
        if let Ok(s) = std::fs::read_to_string(&path) {
            ns += s
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Ok(ns as f64 / 1e9)
}
