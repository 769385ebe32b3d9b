//! Turning samples into summaries (min / median / max over repetitions),
//! ratios (to the machine's limits and to the best peer), the issue's
//! targets, and the three outputs: Markdown, JSON and SVG.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::bench::{Kind, Lib, Plan, Sample, LAT_SIZES, SPARSE_PAUSES_MS, SPARSE_SIZE, THR_SIZES};

/// Minimum, median and maximum of some values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// Smallest.
    pub min: f64,
    /// Median (mean of the middle two for an even count).
    pub median: f64,
    /// Largest.
    pub max: f64,
}

impl Spread {
    /// `None` for no values.
    pub fn of(values: &[f64]) -> Option<Self> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Self {
            min: v[0],
            median,
            max: v[n - 1],
        })
    }

    fn to_json(self) -> Value {
        json!({"min": self.min, "median": self.median, "max": self.max})
    }
}

fn spread_json(s: Option<Spread>) -> Value {
    s.map_or(Value::Null, Spread::to_json)
}

/// One throughput scenario summarised.
#[derive(Debug, Clone)]
pub struct ThrRow {
    /// Library.
    pub lib: Lib,
    /// Payload size.
    pub size: usize,
    /// Messages per second.
    pub msgs: Option<Spread>,
    /// Payload bytes per second.
    pub bytes: Option<Spread>,
    /// Runs that failed, with the first reason.
    pub failed: usize,
    /// The first failure.
    pub error: Option<String>,
    /// Runs.
    pub runs: usize,
}

/// One latency scenario summarised (one-way, nanoseconds).
#[derive(Debug, Clone)]
pub struct LatRow {
    /// Library.
    pub lib: Lib,
    /// Payload size.
    pub size: usize,
    /// Median one-way latency of each run.
    pub p50: Option<Spread>,
    /// 99th percentile.
    pub p99: Option<Spread>,
    /// 99.9th percentile.
    pub p999: Option<Spread>,
    /// Largest.
    pub max: Option<Spread>,
    /// Runs that failed.
    pub failed: usize,
    /// The first failure.
    pub error: Option<String>,
    /// Runs.
    pub runs: usize,
}

/// Everything the outputs show.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Copy bandwidth (bytes/s) per size.
    pub copy: BTreeMap<usize, Spread>,
    /// Cache-line one-way latency p50 (ns).
    pub cacheline: Option<Spread>,
    /// Limits runs that failed, with a reason.
    pub limits_error: Option<String>,
    /// Throughput rows.
    pub thr: Vec<ThrRow>,
    /// Latency rows.
    pub lat: Vec<LatRow>,
    /// Sparse latency rows, per pause (ms), 64 B.
    pub sparse: Vec<(u64, LatRow)>,
    /// Idle lwmq pair: % of one core.
    pub idle: Option<Spread>,
    /// Idle runs that failed.
    pub idle_error: Option<String>,
}

fn num(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

impl Summary {
    /// Summarises the samples.
    pub fn new(plan: &Plan, samples: &[Sample]) -> Self {
        let of = |kind: Kind, lib: Option<Lib>, size: usize| -> Vec<&Sample> {
            samples
                .iter()
                .filter(|s| s.kind == kind && s.lib == lib && s.size == size)
                .collect()
        };
        let first_error = |v: &[&Sample]| v.iter().find_map(|s| s.result.as_ref().err().cloned());
        let oks = |v: &[&Sample], f: &dyn Fn(&Value) -> Option<f64>| -> Vec<f64> {
            v.iter()
                .filter_map(|s| s.result.as_ref().ok().and_then(f))
                .collect()
        };

        let limits = of(Kind::Limits, None, 0);
        let mut copy = BTreeMap::new();
        for size in THR_SIZES {
            let v = oks(&limits, &|r: &Value| {
                r.get("copy")?
                    .as_array()?
                    .iter()
                    .find(|c| c.get("size").and_then(Value::as_u64) == Some(size as u64))
                    .and_then(|c| num(c, "gbytes_per_sec"))
                    .map(|g| g * 1e9)
            });
            if let Some(s) = Spread::of(&v) {
                copy.insert(size, s);
            }
        }
        let cacheline = Spread::of(&oks(&limits, &|r: &Value| {
            r.get("cacheline").and_then(|c| num(c, "p50_ns"))
        }));

        let mut thr = Vec::new();
        for size in THR_SIZES {
            for lib in plan.libs.iter().copied().filter(|l| *l != Lib::LwmqFutex) {
                let v = of(Kind::Thr, Some(lib), size);
                if v.is_empty() {
                    continue;
                }
                let msgs = oks(&v, &|r: &Value| num(r, "msgs_per_sec"));
                let bytes: Vec<f64> = msgs.iter().map(|m| m * size as f64).collect();
                thr.push(ThrRow {
                    lib,
                    size,
                    msgs: Spread::of(&msgs),
                    bytes: Spread::of(&bytes),
                    failed: v.len() - msgs.len(),
                    error: first_error(&v),
                    runs: v.len(),
                });
            }
        }
        let lat_row = |kind: Kind, lib: Lib, size: usize| -> Option<LatRow> {
            let v = of(kind, Some(lib), size);
            if v.is_empty() {
                return None;
            }
            let p50 = oks(&v, &|r: &Value| num(r, "p50_ns"));
            Some(LatRow {
                lib,
                size,
                p50: Spread::of(&p50),
                p99: Spread::of(&oks(&v, &|r: &Value| num(r, "p99_ns"))),
                p999: Spread::of(&oks(&v, &|r: &Value| num(r, "p999_ns"))),
                max: Spread::of(&oks(&v, &|r: &Value| num(r, "max_ns"))),
                failed: v.len() - p50.len(),
                error: first_error(&v),
                runs: v.len(),
            })
        };
        let mut lat = Vec::new();
        for size in LAT_SIZES {
            for lib in plan.libs.iter().copied().filter(|l| *l != Lib::UdsBatch) {
                lat.extend(lat_row(Kind::Lat, lib, size));
            }
        }
        let mut sparse = Vec::new();
        for pause in SPARSE_PAUSES_MS {
            for lib in plan
                .libs
                .iter()
                .copied()
                .filter(|l| *l != Lib::UdsBatch && !l.is_network())
            {
                if let Some(r) = lat_row(Kind::Sparse(pause), lib, SPARSE_SIZE) {
                    sparse.push((pause, r));
                }
            }
        }
        let idle_s = of(Kind::Idle, Some(Lib::Lwmq), 0);
        Self {
            copy,
            cacheline,
            limits_error: first_error(&limits),
            thr,
            lat,
            sparse,
            idle: Spread::of(&oks(&idle_s, &|r: &Value| {
                num(r, "cpu_percent_of_one_core")
            })),
            idle_error: first_error(&idle_s),
        }
    }

    /// Median messages/s of a library at a size.
    pub fn thr_median(&self, lib: Lib, size: usize) -> Option<f64> {
        self.thr
            .iter()
            .find(|r| r.lib == lib && r.size == size)
            .and_then(|r| r.msgs.map(|s| s.median))
    }

    /// Median p50 one-way latency of a library at a size.
    pub fn lat_median(&self, lib: Lib, size: usize) -> Option<f64> {
        self.lat
            .iter()
            .find(|r| r.lib == lib && r.size == size)
            .and_then(|r| r.p50.map(|s| s.median))
    }

    /// The best peer (not lwmq) by median throughput at a size, among
    /// those over loopback TCP (`network`) or those on one machine.
    pub fn best_thr_peer(&self, size: usize, network: bool) -> Option<(Lib, f64)> {
        self.thr
            .iter()
            .filter(|r| r.size == size && !r.lib.is_lwmq() && r.lib.is_network() == network)
            .filter_map(|r| r.msgs.map(|s| (r.lib, s.median)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// The best peer (not lwmq) by median p50 latency at a size, of the
    /// same kind (see [`Self::best_thr_peer`]).
    pub fn best_lat_peer(&self, size: usize, network: bool) -> Option<(Lib, f64)> {
        self.lat
            .iter()
            .filter(|r| r.size == size && !r.lib.is_lwmq() && r.lib.is_network() == network)
            .filter_map(|r| r.p50.map(|s| (r.lib, s.median)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// The targets of issue 14 (`tcp://`), each with what was measured;
    /// empty if no lwmq `tcp://` run was made.
    pub fn targets_tcp(&self) -> Vec<Target> {
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        let m64 = self.thr_median(Lib::LwmqTcp, 64);
        let big = self.thr_median(Lib::LwmqTcp, 640_000);
        let l64 = self.lat_median(Lib::LwmqTcp, 64);
        if m64.is_none() && big.is_none() && l64.is_none() {
            return Vec::new();
        }
        let lend64 = self.thr_median(Lib::LwmqTcpLend, 64);
        let lend_big = self.thr_median(Lib::LwmqTcpLend, 640_000);
        let mut lend = Vec::new();
        if lend64.is_some() || lend_big.is_some() {
            lend.push(Target::at_least(
                "tcp:// 64 B messaging, received in place, >= 2x ZeroMQ tcp://",
                ratio(lend64, self.thr_median(Lib::ZmqTcp, 64)),
                2.0,
                "x",
            ));
            lend.push(Target::at_least(
                "tcp:// 640,000 B messaging, received in place, >= 0.9x a plain TCP socket in 64 KiB batches",
                ratio(lend_big, self.thr_median(Lib::TcpBatch, 640_000)),
                0.9,
                "x",
            ));
        }
        let mut t = vec![
            Target::at_least(
                "tcp:// 64 B messaging throughput >= 2x ZeroMQ tcp://",
                ratio(m64, self.thr_median(Lib::ZmqTcp, 64)),
                2.0,
                "x",
            ),
            Target::at_least(
                "tcp:// 640,000 B messaging throughput >= 0.9x a plain TCP socket in 64 KiB batches",
                ratio(big, self.thr_median(Lib::TcpBatch, 640_000)),
                0.9,
                "x",
            ),
            Target::at_most(
                "tcp:// 64 B messaging one-way p50 <= ZeroMQ tcp://",
                ratio(l64, self.lat_median(Lib::ZmqTcp, 64)),
                1.0,
                "x",
            ),
            Target::at_most(
                "tcp:// 64 B messaging one-way p50 <= 1.2x a plain TCP socket ping-pong",
                ratio(l64, self.lat_median(Lib::Tcp, 64)),
                1.2,
                "x",
            ),
        ];
        t.extend(lend);
        t
    }

    /// The best peer (not lwmq) of the sparse scenario with `pause` (ms)
    /// by the median of `key` (`p50`/`p99`): lowest wins.
    pub fn best_sparse_peer(&self, pause: u64, p99: bool) -> Option<(Lib, f64)> {
        self.sparse
            .iter()
            .filter(|(p, r)| *p == pause && !r.lib.is_lwmq())
            .filter_map(|(_, r)| (if p99 { r.p99 } else { r.p50 }).map(|s| (r.lib, s.median)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// The median p50 (or p99) of `lib` in the sparse scenario.
    pub fn sparse_median(&self, lib: Lib, pause: u64, p99: bool) -> Option<f64> {
        self.sparse
            .iter()
            .find(|(p, r)| *p == pause && r.lib == lib)
            .and_then(|(_, r)| (if p99 { r.p99 } else { r.p50 }).map(|s| s.median))
    }

    /// The latency row of `lib` at 64 B: back to back (`pause` `None`) or
    /// in the sparse scenario with `pause` ms.
    pub fn lat_row_64(&self, lib: Lib, pause: Option<u64>) -> Option<&LatRow> {
        match pause {
            None => self.lat.iter().find(|r| r.lib == lib && r.size == 64),
            Some(ms) => self
                .sparse
                .iter()
                .find(|(p, r)| *p == ms && r.lib == lib)
                .map(|(_, r)| r),
        }
    }

    /// The async comparison of issue 16, one entry per 64 B scenario
    /// (back to back, then each sparse pause) that has an async row
    /// (`lwmq-async` or `uds-tokio`); empty if none ran.
    pub fn async_rows(&self) -> Vec<AsyncRow> {
        std::iter::once(None)
            .chain(SPARSE_PAUSES_MS.iter().map(|p| Some(*p)))
            .filter_map(|pause| {
                let get = |lib: Lib| {
                    let r = self.lat_row_64(lib, pause);
                    (
                        r.and_then(|r| r.p50.map(|s| s.median)),
                        r.and_then(|r| r.p99.map(|s| s.median)),
                    )
                };
                let row = AsyncRow {
                    pause_ms: pause,
                    lwmq_async: get(Lib::LwmqAsync),
                    lwmq: get(Lib::Lwmq),
                    uds_tokio: get(Lib::UdsTokio),
                    uds: get(Lib::Uds),
                };
                let ran = self.lat_row_64(Lib::LwmqAsync, pause).is_some()
                    || self.lat_row_64(Lib::UdsTokio, pause).is_some();
                ran.then_some(row)
            })
            .collect()
    }

    /// The targets of issue 13, each with what was measured (medians of
    /// the lwmq messaging rows: `lwmq thr`/`lwmq lat`, the default spin).
    pub fn targets(&self) -> Vec<Target> {
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        let big = 640_000;
        let m64 = self.thr_median(Lib::Lwmq, 64);
        let b64 = self.thr_median(Lib::LwmqBatch, 64);
        let m_big = self.thr_median(Lib::Lwmq, big);
        let l64 = self.lat_median(Lib::Lwmq, 64);
        let uds_batch = self.thr_median(Lib::UdsBatch, 64);
        let mut t = vec![
            Target::at_least(
                "64 B messaging throughput >= 20 M msg/s",
                m64.map(|v| v / 1e6),
                20.0,
                "M msg/s",
            ),
            Target::at_least(
                "64 B messaging throughput >= 1.0x uds-batch",
                ratio(m64, uds_batch),
                1.0,
                "x",
            ),
            // The same two for the batched row, which batches as
            // `uds-batch` does (post_copies / receive_batch_with).
            Target::at_least(
                "64 B messaging in batches (lwmq-batch) >= 20 M msg/s",
                b64.map(|v| v / 1e6),
                20.0,
                "M msg/s",
            ),
            Target::at_least(
                "64 B messaging in batches (lwmq-batch) >= 1.0x uds-batch",
                ratio(b64, uds_batch),
                1.0,
                "x",
            ),
            Target::at_least(
                "640,000 B messaging throughput >= 1.0x iceoryx2",
                ratio(m_big, self.thr_median(Lib::Iceoryx2, big)),
                1.0,
                "x",
            ),
            Target::at_least(
                "640,000 B messaging throughput >= 50% of copy bandwidth",
                ratio(
                    m_big.map(|m| m * big as f64),
                    self.copy.get(&big).map(|s| s.median),
                )
                .map(|r| r * 100.0),
                50.0,
                "%",
            ),
            Target::at_most(
                "6,400 B messaging one-way p50 <= 1.0x iceoryx2",
                ratio(
                    self.lat_median(Lib::Lwmq, 6_400),
                    self.lat_median(Lib::Iceoryx2, 6_400),
                ),
                1.0,
                "x",
            ),
            Target::at_most(
                "64 B messaging one-way p50 <= 0.5x iceoryx2",
                ratio(l64, self.lat_median(Lib::Iceoryx2, 64)),
                0.5,
                "x",
            ),
            Target::at_most(
                "64 B messaging one-way p50 <= 2x cache-line one-way",
                ratio(l64, self.cacheline.map(|s| s.median)),
                2.0,
                "x",
            ),
        ];
        for (pause, p50_what, p99_what) in [
            (
                1,
                "sparse 1 ms: lwmq p50 <= every peer's (ratio to the best)",
                "sparse 1 ms: lwmq p99 <= every peer's (ratio to the best)",
            ),
            (
                10,
                "sparse 10 ms: lwmq p50 <= every peer's (ratio to the best)",
                "sparse 10 ms: lwmq p99 <= every peer's (ratio to the best)",
            ),
        ] {
            for (p99, what) in [(false, p50_what), (true, p99_what)] {
                t.push(Target::at_most(
                    what,
                    ratio(
                        self.sparse_median(Lib::Lwmq, pause, p99),
                        self.best_sparse_peer(pause, p99).map(|b| b.1),
                    ),
                    1.0,
                    "x",
                ));
            }
        }
        t.push(Target::at_most(
            "idle messaging pair < 2% of one core",
            self.idle.map(|s| s.median),
            2.0,
            "%",
        ));
        t
    }
}

/// The async rows of one 64 B latency scenario next to their sync
/// counterparts (issue 16): `(p50, p99)` medians in ns of each library.
#[derive(Debug, Clone, PartialEq)]
pub struct AsyncRow {
    /// `None`: back to back; `Some(ms)`: the sparse scenario.
    pub pause_ms: Option<u64>,
    /// `lwmq-async`: the messaging channel, `receive_async` on tokio.
    pub lwmq_async: (Option<f64>, Option<f64>),
    /// `lwmq`: the same channel, the blocking `receive`.
    pub lwmq: (Option<f64>, Option<f64>),
    /// `uds-tokio`: a Unix socket through tokio.
    pub uds_tokio: (Option<f64>, Option<f64>),
    /// `uds`: the same socket, blocking reads.
    pub uds: (Option<f64>, Option<f64>),
}

/// `a / b` when both are there (and `b` is not 0).
fn ratio_of(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

impl AsyncRow {
    /// Its scenario, in words.
    pub fn scenario(&self) -> String {
        self.pause_ms.map_or_else(
            || "back to back".to_string(),
            |ms| format!("sparse, {ms} ms pause"),
        )
    }

    /// `lwmq-async` p50 / `lwmq` p50 (above 1: the async receive is slower).
    pub fn async_vs_sync_p50(&self) -> Option<f64> {
        ratio_of(self.lwmq_async.0, self.lwmq.0)
    }

    /// `lwmq-async` p99 / `lwmq` p99.
    pub fn async_vs_sync_p99(&self) -> Option<f64> {
        ratio_of(self.lwmq_async.1, self.lwmq.1)
    }

    /// `lwmq-async` p50 / `uds-tokio` p50 (below 1: lwmq is faster on
    /// the same runtime).
    pub fn async_vs_uds_tokio_p50(&self) -> Option<f64> {
        ratio_of(self.lwmq_async.0, self.uds_tokio.0)
    }

    /// `lwmq-async` p99 / `uds-tokio` p99.
    pub fn async_vs_uds_tokio_p99(&self) -> Option<f64> {
        ratio_of(self.lwmq_async.1, self.uds_tokio.1)
    }

    /// `uds-tokio` p50 / `uds` p50: what tokio adds to a socket.
    pub fn uds_tokio_vs_uds_p50(&self) -> Option<f64> {
        ratio_of(self.uds_tokio.0, self.uds.0)
    }

    fn to_json(&self) -> Value {
        json!({
            "scenario": if self.pause_ms.is_some() { "sparse" } else { "lat" },
            "size": SPARSE_SIZE,
            "pause_ms": self.pause_ms,
            "p50_ns": {
                "lwmq-async": self.lwmq_async.0, "lwmq": self.lwmq.0,
                "uds-tokio": self.uds_tokio.0, "uds": self.uds.0,
            },
            "p99_ns": {
                "lwmq-async": self.lwmq_async.1, "lwmq": self.lwmq.1,
                "uds-tokio": self.uds_tokio.1, "uds": self.uds.1,
            },
            "lwmq_async_vs_lwmq_p50": self.async_vs_sync_p50(),
            "lwmq_async_vs_lwmq_p99": self.async_vs_sync_p99(),
            "lwmq_async_vs_uds_tokio_p50": self.async_vs_uds_tokio_p50(),
            "lwmq_async_vs_uds_tokio_p99": self.async_vs_uds_tokio_p99(),
            "uds_tokio_vs_uds_p50": self.uds_tokio_vs_uds_p50(),
        })
    }
}

/// One target of issue 13.
#[derive(Debug, Clone)]
pub struct Target {
    /// What it asks.
    pub what: &'static str,
    /// What was measured (medians).
    pub measured: Option<f64>,
    /// The bound.
    pub bound: f64,
    /// Unit of both.
    pub unit: &'static str,
    /// Whether `measured` must be at least (else at most) the bound.
    pub at_least: bool,
}

impl Target {
    fn at_least(what: &'static str, measured: Option<f64>, bound: f64, unit: &'static str) -> Self {
        Self {
            what,
            measured,
            bound,
            unit,
            at_least: true,
        }
    }
    fn at_most(what: &'static str, measured: Option<f64>, bound: f64, unit: &'static str) -> Self {
        Self {
            what,
            measured,
            bound,
            unit,
            at_least: false,
        }
    }

    /// `Some(true)` met, `Some(false)` missed, `None` not measured.
    pub fn met(&self) -> Option<bool> {
        self.measured.map(|m| {
            if self.at_least {
                m >= self.bound
            } else {
                m <= self.bound
            }
        })
    }

    fn verdict(&self) -> &'static str {
        match self.met() {
            Some(true) => "met",
            Some(false) => "missed",
            None => "not measured",
        }
    }
}

/// `1,234,567` (the CLI's formatting).
fn grouped(n: usize) -> String {
    lwmq_cli::measure::grouped(n as u64)
}

/// Messages per second, short.
pub fn fmt_rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1} k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// Bytes per second as GB/s.
pub fn fmt_gbs(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.2} GB/s", v / 1e9)
    } else {
        format!("{:.0} MB/s", v / 1e6)
    }
}

/// Nanoseconds, short.
pub fn fmt_ns(v: f64) -> String {
    if v < 1e3 {
        format!("{v:.0} ns")
    } else if v < 1e6 {
        format!("{:.1} µs", v / 1e3)
    } else {
        format!("{:.1} ms", v / 1e6)
    }
}

fn spread_cell(s: Option<Spread>, f: fn(f64) -> String) -> String {
    match s {
        Some(s) if f(s.min) == f(s.max) => f(s.median),
        Some(s) => format!("{} ({}–{})", f(s.median), f(s.min), f(s.max)),
        None => "—".into(),
    }
}

fn fail_note(failed: usize, runs: usize, error: &Option<String>) -> String {
    match (failed, error) {
        (0, _) => String::new(),
        (f, Some(e)) if f == runs => format!(" **error:** {}", e.replace('|', "/")),
        (f, Some(e)) => format!(" ({f} of {runs} runs failed: {})", e.replace('|', "/")),
        (f, None) => format!(" ({f} of {runs} runs failed)"),
    }
}

/// The Markdown report.
pub fn markdown(plan: &Plan, sum: &Summary, date: &str, wall: f64) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# lwmq-bench: {} run, {} repetition{}, {date}, {:.0} s\n",
        plan.size.name(),
        plan.reps,
        if plan.reps == 1 { "" } else { "s" },
        wall
    );
    let _ = writeln!(
        o,
        "Machine: {} CPUs, {}. Figures are median (min–max) over the repetitions; each repetition ran every library in turn in fresh processes.\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        kernel()
    );

    let _ = writeln!(o, "## Machine limits (`lwmq limits`, same run)\n");
    let _ = writeln!(
        o,
        "| copy 64 B | copy 6,400 B | copy 640,000 B | cache-line one-way p50 |"
    );
    let _ = writeln!(o, "|---|---|---|---|");
    let c = |size: usize| spread_cell(sum.copy.get(&size).copied(), fmt_gbs);
    let _ = writeln!(
        o,
        "| {} | {} | {} | {} |",
        c(64),
        c(6_400),
        c(640_000),
        spread_cell(sum.cacheline, fmt_ns)
    );
    if let Some(e) = &sum.limits_error {
        let _ = writeln!(o, "\nlimits: **error:** {e}");
    }

    if !sum.thr.is_empty() {
        let _ = writeln!(
            o,
            "\n## Throughput (two processes, receiver's count, payloads verified)\n"
        );
        let _ = writeln!(
            o,
            "| size | library | msg/s | bytes/s | lwmq vs copy bandwidth | lwmq vs best peer |"
        );
        let _ = writeln!(o, "|---:|---|---:|---:|---:|---:|");
        for r in &sum.thr {
            let (vs_copy, vs_peer) = if r.lib.is_lwmq() {
                let b = r.bytes.map(|s| s.median);
                let copy = sum.copy.get(&r.size).map(|s| s.median);
                let vc = match (b, copy) {
                    (Some(b), Some(c)) if c > 0.0 => format!("{:.0}%", b / c * 100.0),
                    _ => "—".into(),
                };
                let vp = match (
                    r.msgs.map(|s| s.median),
                    sum.best_thr_peer(r.size, r.lib.is_network()),
                ) {
                    (Some(m), Some((lib, p))) if p > 0.0 => format!("{:.2}x {}", m / p, lib.name()),
                    _ => "—".into(),
                };
                (vc, vp)
            } else {
                (String::new(), String::new())
            };
            let _ = writeln!(
                o,
                "| {} | {}{} | {} | {} | {vs_copy} | {vs_peer} |",
                grouped(r.size),
                r.lib.name(),
                fail_note(r.failed, r.runs, &r.error),
                spread_cell(r.msgs, fmt_rate),
                spread_cell(r.bytes, fmt_gbs),
            );
        }
    }

    if !sum.lat.is_empty() {
        let _ = writeln!(o, "\n## One-way latency (round trip / 2)\n");
        let _ = writeln!(o, "| size | library | p50 | p99 | p99.9 | max | lwmq p50 vs cache line | lwmq p50 vs best peer |");
        let _ = writeln!(o, "|---:|---|---:|---:|---:|---:|---:|---:|");
        for r in &sum.lat {
            let (vs_line, vs_peer) = if r.lib.is_lwmq() {
                let p = r.p50.map(|s| s.median);
                let vl = match (p, sum.cacheline.map(|s| s.median)) {
                    (Some(p), Some(l)) if l > 0.0 => format!("{:.1}x", p / l),
                    _ => "—".into(),
                };
                let vp = match (p, sum.best_lat_peer(r.size, r.lib.is_network())) {
                    (Some(p), Some((lib, b))) if b > 0.0 => format!("{:.2}x {}", p / b, lib.name()),
                    _ => "—".into(),
                };
                (vl, vp)
            } else {
                (String::new(), String::new())
            };
            let _ = writeln!(
                o,
                "| {} | {}{} | {} | {} | {} | {} | {vs_line} | {vs_peer} |",
                grouped(r.size),
                r.lib.name(),
                fail_note(r.failed, r.runs, &r.error),
                spread_cell(r.p50, fmt_ns),
                spread_cell(r.p99, fmt_ns),
                spread_cell(r.p999, fmt_ns),
                spread_cell(r.max, fmt_ns),
            );
        }
    }

    if !sum.sparse.is_empty() {
        let _ = writeln!(
            o,
            "\n## Sparse latency ({SPARSE_SIZE} B, a pause before each round trip; round trip / 2)\n"
        );
        let _ = writeln!(o, "| pause | library | p50 | p99 | p99.9 | max | lwmq p50 vs best peer | lwmq p99 vs best peer |");
        let _ = writeln!(o, "|---:|---|---:|---:|---:|---:|---:|---:|");
        for (pause, r) in &sum.sparse {
            let vs = |mine: Option<Spread>, p99: bool| match (
                r.lib.is_lwmq(),
                mine.map(|s| s.median),
                sum.best_sparse_peer(*pause, p99),
            ) {
                (false, _, _) => String::new(),
                (true, Some(m), Some((lib, b))) if b > 0.0 => {
                    format!("{:.2}x {}", m / b, lib.name())
                }
                _ => "—".into(),
            };
            let _ = writeln!(
                o,
                "| {pause} ms | {}{} | {} | {} | {} | {} | {} | {} |",
                r.lib.name(),
                fail_note(r.failed, r.runs, &r.error),
                spread_cell(r.p50, fmt_ns),
                spread_cell(r.p99, fmt_ns),
                spread_cell(r.p999, fmt_ns),
                spread_cell(r.max, fmt_ns),
                vs(r.p50, false),
                vs(r.p99, true),
            );
        }
    }

    let rows = sum.async_rows();
    if !rows.is_empty() {
        let _ = writeln!(
            o,
            "\n## Async receive on tokio (64 B, issue 16; ratios of this run's medians)\n"
        );
        let _ = writeln!(
            o,
            "`lwmq-async`: the `lwmq` ping-pong with both sides awaiting `Channel::receive_async` on a tokio current-thread runtime; `uds-tokio`: the `uds` ping-pong through `tokio::net::UnixStream`. Above 1x the first is slower.\n"
        );
        let _ = writeln!(o, "| scenario | lwmq-async p50 | vs lwmq p50 | vs uds-tokio p50 | lwmq-async p99 | vs lwmq p99 | vs uds-tokio p99 | uds-tokio p50 | uds-tokio vs uds p50 |");
        let _ = writeln!(o, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        let x = |v: Option<f64>| v.map_or("—".into(), |v| format!("{v:.2}x"));
        let ns = |v: Option<f64>| v.map_or("—".into(), fmt_ns);
        for r in &rows {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.scenario(),
                ns(r.lwmq_async.0),
                x(r.async_vs_sync_p50()),
                x(r.async_vs_uds_tokio_p50()),
                ns(r.lwmq_async.1),
                x(r.async_vs_sync_p99()),
                x(r.async_vs_uds_tokio_p99()),
                ns(r.uds_tokio.0),
                x(r.uds_tokio_vs_uds_p50()),
            );
        }
    }

    if sum.idle.is_some() || sum.idle_error.is_some() {
        let _ = writeln!(o, "\n## Idle lwmq messaging pair\n");
        let _ =
            writeln!(
            o,
            "CPU of both processes together, connected and waiting in `receive`: {} of one core{}",
            spread_cell(sum.idle, |v| format!("{v:.2}%")),
            sum.idle_error.as_ref().map_or(String::new(), |e| format!(" (error: {e})"))
        );
    }

    let _ = writeln!(o, "\n## Targets of issue 13 (medians of this run)\n");
    let _ = writeln!(o, "| target | measured | verdict |");
    let _ = writeln!(o, "|---|---:|---|");
    for t in sum.targets() {
        let m = t
            .measured
            .map_or("—".into(), |m| format!("{m:.2} {}", t.unit));
        let _ = writeln!(o, "| {} | {m} | {} |", t.what, t.verdict());
    }
    let tcp = sum.targets_tcp();
    if !tcp.is_empty() {
        let _ = writeln!(
            o,
            "\n## Targets of issue 14, tcp:// on loopback (medians of this run)\n"
        );
        let _ = writeln!(o, "| target | measured | verdict |");
        let _ = writeln!(o, "|---|---:|---|");
        for t in tcp {
            let m = t
                .measured
                .map_or("—".into(), |m| format!("{m:.2} {}", t.unit));
            let _ = writeln!(o, "| {} | {m} | {} |", t.what, t.verdict());
        }
    }
    o
}

/// `Linux RELEASE` from `/proc/sys/kernel/osrelease`.
pub fn kernel() -> String {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("Linux {}", release.trim())
}

/// On the JSON object of a 64 B latency row of an async library, its p50
/// ratios (medians of this run) to its sync counterpart and to the other
/// async row: `lwmq-async` to `lwmq` and `uds-tokio`, `uds-tokio` to `uds`.
fn add_async_ratios(o: &mut Value, sum: &Summary, r: &LatRow, pause: Option<u64>) {
    if r.size != 64 {
        return;
    }
    let p50 = |lib: Lib| {
        sum.lat_row_64(lib, pause)
            .and_then(|r| r.p50.map(|s| s.median))
    };
    let mine = r.p50.map(|s| s.median);
    let to: &[(&str, Lib)] = match r.lib {
        Lib::LwmqAsync => &[
            ("ratio_to_lwmq", Lib::Lwmq),
            ("ratio_to_uds_tokio", Lib::UdsTokio),
        ],
        Lib::UdsTokio => &[("ratio_to_uds", Lib::Uds)],
        _ => &[],
    };
    for (key, other) in to {
        if let Some(v) = ratio_of(mine, p50(*other)) {
            o[*key] = v.into();
        }
    }
}

/// The JSON document: every raw sample and the summaries.
pub fn json_doc(plan: &Plan, sum: &Summary, samples: &[Sample], date: &str, wall: f64) -> Value {
    let thr: Vec<Value> = sum
        .thr
        .iter()
        .map(|r| {
            let mut o = json!({
                "lib": r.lib.name(), "size": r.size, "runs": r.runs, "failed": r.failed,
                "msgs_per_sec": spread_json(r.msgs), "bytes_per_sec": spread_json(r.bytes),
                "error": r.error,
            });
            if r.lib.is_lwmq() {
                if let (Some(b), Some(c)) = (r.bytes, sum.copy.get(&r.size)) {
                    o["ratio_to_copy_bandwidth"] = (b.median / c.median).into();
                }
                if let (Some(m), Some((lib, p))) =
                    (r.msgs, sum.best_thr_peer(r.size, r.lib.is_network()))
                {
                    o["ratio_to_best_peer"] = (m.median / p).into();
                    o["best_peer"] = lib.name().into();
                }
            }
            o
        })
        .collect();
    let lat: Vec<Value> = sum
        .lat
        .iter()
        .map(|r| {
            let mut o = json!({
                "lib": r.lib.name(), "size": r.size, "runs": r.runs, "failed": r.failed,
                "p50_ns": spread_json(r.p50), "p99_ns": spread_json(r.p99),
                "p999_ns": spread_json(r.p999), "max_ns": spread_json(r.max),
                "error": r.error,
            });
            add_async_ratios(&mut o, sum, r, None);
            if r.lib.is_lwmq() {
                if let (Some(p), Some(l)) = (r.p50, sum.cacheline) {
                    o["ratio_to_cacheline"] = (p.median / l.median).into();
                }
                if let (Some(p), Some((lib, b))) =
                    (r.p50, sum.best_lat_peer(r.size, r.lib.is_network()))
                {
                    o["ratio_to_best_peer"] = (p.median / b).into();
                    o["best_peer"] = lib.name().into();
                }
            }
            o
        })
        .collect();
    let sparse: Vec<Value> = sum
        .sparse
        .iter()
        .map(|(pause, r)| {
            let mut o = json!({
                "lib": r.lib.name(), "size": r.size, "pause_ms": pause, "runs": r.runs,
                "failed": r.failed, "p50_ns": spread_json(r.p50), "p99_ns": spread_json(r.p99),
                "p999_ns": spread_json(r.p999), "max_ns": spread_json(r.max), "error": r.error,
            });
            add_async_ratios(&mut o, sum, r, Some(*pause));
            o
        })
        .collect();
    let targets: Vec<Value> = sum
        .targets()
        .iter()
        .chain(sum.targets_tcp().iter())
        .map(|t| {
            json!({"target": t.what, "measured": t.measured, "bound": t.bound, "unit": t.unit,
                   "at_least": t.at_least, "met": t.met()})
        })
        .collect();
    let copy: BTreeMap<String, Value> = sum
        .copy
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_json()))
        .collect();
    json!({
        "tool": "lwmq-bench",
        "version": env!("CARGO_PKG_VERSION"),
        "date": date,
        "wall_seconds": wall,
        "mode": plan.size.name(),
        "reps": plan.reps,
        "libs": plan.libs.iter().map(|l| l.name()).collect::<Vec<_>>(),
        "machine": {
            "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
            "kernel": kernel(),
        },
        "summary": {
            "limits": {"copy_bytes_per_sec": copy, "cacheline_p50_ns": spread_json(sum.cacheline), "error": sum.limits_error},
            "thr": thr,
            "lat": lat,
            "sparse": sparse,
            "async": sum.async_rows().iter().map(AsyncRow::to_json).collect::<Vec<_>>(),
            "idle_cpu_percent": spread_json(sum.idle),
            "targets": targets,
        },
        "samples": samples.iter().map(Sample::to_json).collect::<Vec<_>>(),
    })
}

fn color(lib: Lib) -> &'static str {
    match lib {
        Lib::Lwmq => "#1f77b4",
        Lib::LwmqAsync => "#17becf",
        Lib::LwmqFutex => "#6baed6",
        Lib::LwmqLend => "#3182bd",
        Lib::LwmqBatch => "#08519c",
        Lib::LwmqRaw => "#08306b",
        Lib::Uds => "#ff7f0e",
        Lib::UdsTokio => "#e377c2",
        Lib::UdsBatch => "#fdae6b",
        Lib::Zmq => "#2ca02c",
        Lib::Iceoryx2 => "#d62728",
        Lib::LwmqTcp => "#9467bd",
        Lib::LwmqTcpLend => "#bcbddc",
        Lib::LwmqTcpRaw => "#54278f",
        Lib::Tcp => "#8c564b",
        Lib::TcpBatch => "#c49c94",
        Lib::ZmqTcp => "#98df8a",
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A bar group: label and one value per library (`None` = failed).
type Groups = Vec<(String, Vec<(Lib, Option<f64>)>)>;

/// One panel of log-scale bars; returns its SVG and height.
fn panel(
    o: &mut String,
    y0: f64,
    width: f64,
    title: &str,
    groups: &Groups,
    fmt: fn(f64) -> String,
) -> f64 {
    const PLOT_H: f64 = 220.0;
    const LEFT: f64 = 70.0;
    let values: Vec<f64> = groups
        .iter()
        .flat_map(|g| g.1.iter().filter_map(|(_, v)| *v))
        .filter(|v| *v > 0.0)
        .collect();
    let _ = writeln!(
        o,
        r#"<text x="{LEFT}" y="{:.0}" font-size="15" font-weight="bold">{}</text>"#,
        y0 + 18.0,
        esc(title)
    );
    let top = y0 + 40.0;
    let base = top + PLOT_H;
    if values.is_empty() {
        let _ = writeln!(
            o,
            r#"<text x="{LEFT}" y="{:.0}">no data</text>"#,
            top + 20.0
        );
        return PLOT_H + 90.0;
    }
    let lo = values
        .iter()
        .copied()
        .fold(f64::MAX, f64::min)
        .log10()
        .floor();
    let hi = values
        .iter()
        .copied()
        .fold(0.0, f64::max)
        .log10()
        .ceil()
        .max(lo + 1.0);
    let y_of = |v: f64| base - (v.log10() - lo) / (hi - lo) * PLOT_H;
    for d in (lo as i32)..=(hi as i32) {
        let y = y_of(10f64.powi(d));
        let _ = writeln!(
            o,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.0}" y2="{y:.1}" stroke="#ddd"/><text x="{:.0}" y="{:.1}" font-size="10" text-anchor="end">{}</text>"##,
            width - 10.0,
            LEFT - 4.0,
            y + 3.0,
            esc(&fmt(10f64.powi(d)))
        );
    }
    let n_bars: usize = groups.iter().map(|g| g.1.len()).sum();
    let gap = 24.0;
    let bar_w =
        ((width - LEFT - 10.0 - gap * groups.len() as f64) / n_bars.max(1) as f64).min(60.0);
    let mut x = LEFT + gap / 2.0;
    for (label, bars) in groups {
        let gx = x;
        for (lib, v) in bars {
            match v {
                Some(v) if *v > 0.0 => {
                    let y = y_of(*v);
                    let _ = writeln!(
                        o,
                        r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{} {}: {}</title></rect>"#,
                        bar_w - 2.0,
                        base - y,
                        color(*lib),
                        esc(lib.name()),
                        esc(label),
                        esc(&fmt(*v))
                    );
                    let _ = writeln!(
                        o,
                        r#"<text x="{:.1}" y="{:.1}" font-size="9" text-anchor="middle">{}</text>"#,
                        x + bar_w / 2.0 - 1.0,
                        y - 3.0,
                        esc(&fmt(*v))
                    );
                }
                _ => {
                    let _ = writeln!(
                        o,
                        r##"<text x="{:.1}" y="{:.1}" font-size="9" text-anchor="middle" fill="#c00">error</text>"##,
                        x + bar_w / 2.0 - 1.0,
                        base - 4.0
                    );
                }
            }
            x += bar_w;
        }
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">{}</text>"#,
            (gx + x) / 2.0,
            base + 16.0,
            esc(label)
        );
        x += gap;
    }
    let _ = writeln!(
        o,
        r##"<line x1="{LEFT}" y1="{base:.1}" x2="{:.0}" y2="{base:.1}" stroke="#000"/>"##,
        width - 10.0
    );
    PLOT_H + 70.0
}

/// The SVG chart: throughput (messages/s) and latency (p50 one-way) bars
/// per library, log scale.
pub fn svg(plan: &Plan, sum: &Summary, date: &str) -> String {
    let width = 960.0;
    let mut body = String::new();
    let _ = writeln!(
        body,
        r#"<text x="10" y="22" font-size="17" font-weight="bold">lwmq-bench {} run, {date}: median of {} repetition(s)</text>"#,
        plan.size.name(),
        plan.reps
    );
    let thr: Groups = THR_SIZES
        .iter()
        .map(|size| {
            let bars = sum
                .thr
                .iter()
                .filter(|r| r.size == *size)
                .map(|r| (r.lib, r.msgs.map(|s| s.median)))
                .collect();
            (format!("{} B", grouped(*size)), bars)
        })
        .filter(|g: &(String, Vec<_>)| !g.1.is_empty())
        .collect();
    let lat: Groups = LAT_SIZES
        .iter()
        .map(|size| {
            let bars = sum
                .lat
                .iter()
                .filter(|r| r.size == *size)
                .map(|r| (r.lib, r.p50.map(|s| s.median)))
                .collect();
            (format!("{} B", grouped(*size)), bars)
        })
        .filter(|g: &(String, Vec<_>)| !g.1.is_empty())
        .collect();
    let mut y = 34.0;
    y += panel(
        &mut body,
        y,
        width,
        "Throughput, messages/s (higher is better, log scale)",
        &thr,
        fmt_rate,
    );
    y += panel(
        &mut body,
        y,
        width,
        "One-way latency p50 (lower is better, log scale)",
        &lat,
        fmt_ns,
    );
    // Legend.
    let mut x = 70.0;
    for lib in Lib::ALL.iter().filter(|l| plan.libs.contains(l)) {
        let _ = writeln!(
            body,
            r#"<rect x="{x:.0}" y="{y:.0}" width="12" height="12" fill="{}"/><text x="{:.0}" y="{:.0}" font-size="12">{}</text>"#,
            color(*lib),
            x + 16.0,
            y + 10.0,
            lib.name()
        );
        x += 120.0;
    }
    let height = y + 30.0;
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" font-family=\"sans-serif\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n{body}</svg>\n"
    )
}

/// Today's date and time in UTC, `YYYY-MM-DD HH:MM UTC`.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil(days: i64) -> (i64, u32, u32) {
    // Shift the epoch to 0000-03-01 so that leap days end each 4-year
    // cycle; 146,097 days make a 400-year era.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_median() {
        let s = Spread::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.min, s.median, s.max), (1.0, 2.0, 3.0));
        let s = Spread::of(&[4.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!(s.median, 2.5);
        assert!(Spread::of(&[]).is_none());
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(11_016), (2000, 2, 29));
        assert_eq!(civil(20_454), (2026, 1, 1));
    }

    fn lat_sample(kind: Kind, lib: Lib, p50: f64) -> Sample {
        Sample {
            kind,
            lib: Some(lib),
            size: 64,
            rep: 0,
            result: Ok(json!({"size": 64, "p50_ns": p50, "p99_ns": p50 * 4.0,
                              "p999_ns": p50 * 8.0, "max_ns": p50 * 16.0, "round_trips": 10})),
            wall: 0.1,
        }
    }

    #[test]
    fn async_rows_compare_with_the_sync_ones_of_the_same_run() {
        let libs = vec![Lib::Lwmq, Lib::LwmqAsync, Lib::Uds, Lib::UdsTokio];
        let plan = Plan::new(crate::bench::Size::Smoke, None, libs);
        let mut samples = Vec::new();
        for (kind, f) in [(Kind::Lat, 1.0), (Kind::Sparse(1), 10.0)] {
            samples.push(lat_sample(kind, Lib::Lwmq, 300.0 * f));
            samples.push(lat_sample(kind, Lib::LwmqAsync, 600.0 * f));
            samples.push(lat_sample(kind, Lib::Uds, 4_000.0 * f));
            samples.push(lat_sample(kind, Lib::UdsTokio, 6_000.0 * f));
        }
        let sum = Summary::new(&plan, &samples);
        let rows = sum.async_rows();
        // Back to back and the 1 ms pause; no 10 ms samples, no row.
        assert_eq!(rows.len(), 2, "{rows:?}");
        for (r, pause) in rows.iter().zip([None, Some(1)]) {
            assert_eq!(r.pause_ms, pause);
            assert_eq!(r.async_vs_sync_p50(), Some(2.0));
            assert_eq!(r.async_vs_sync_p99(), Some(2.0));
            assert_eq!(r.async_vs_uds_tokio_p50(), Some(0.1));
            assert_eq!(r.uds_tokio_vs_uds_p50(), Some(1.5));
        }
        let md = markdown(&plan, &sum, "today", 1.0);
        assert!(md.contains("## Async receive on tokio"), "{md}");
        assert!(
            md.contains("| back to back | 600 ns | 2.00x | 0.10x |"),
            "{md}"
        );
        assert!(
            md.contains("| sparse, 1 ms pause | 6.0 µs | 2.00x | 0.10x |"),
            "{md}"
        );
        // Each async row sits right after its sync row.
        let at = |needle: &str| {
            md.find(needle)
                .unwrap_or_else(|| panic!("{needle} in {md}"))
        };
        assert!(at("| 64 | lwmq |") < at("| 64 | lwmq-async |"));
        assert!(at("| 64 | lwmq-async |") < at("| 64 | uds |"));
        assert!(at("| 64 | uds |") < at("| 64 | uds-tokio |"));
        let doc = json_doc(&plan, &sum, &samples, "today", 1.0);
        let lat = doc["summary"]["lat"].as_array().unwrap();
        let row = |lib: &str| lat.iter().find(|r| r["lib"] == lib).unwrap();
        assert_eq!(row("lwmq-async")["ratio_to_lwmq"], 2.0);
        assert_eq!(row("lwmq-async")["ratio_to_uds_tokio"], 0.1);
        assert_eq!(row("uds-tokio")["ratio_to_uds"], 1.5);
        let sparse = doc["summary"]["sparse"].as_array().unwrap();
        assert!(sparse
            .iter()
            .any(|r| r["lib"] == "lwmq-async" && r["ratio_to_lwmq"] == 2.0));
        assert_eq!(doc["summary"]["async"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn no_async_section_without_async_rows() {
        let plan = Plan::new(crate::bench::Size::Smoke, None, vec![Lib::Lwmq]);
        let samples = vec![lat_sample(Kind::Lat, Lib::Lwmq, 300.0)];
        let sum = Summary::new(&plan, &samples);
        assert!(sum.async_rows().is_empty());
        assert!(!markdown(&plan, &sum, "today", 1.0).contains("Async receive"));
    }

    #[test]
    fn grouping() {
        assert_eq!(grouped(64), "64");
        assert_eq!(grouped(6_400), "6,400");
        assert_eq!(grouped(640_000), "640,000");
    }
}
