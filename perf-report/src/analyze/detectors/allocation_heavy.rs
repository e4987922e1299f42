//! Allocation-heavy: many bytes or allocations per call, over enough calls,
//! with a fair share of all allocation, or a dominant share on its own, of
//! the bytes or of the allocations (many small ones cost by their number).
//!
//! Allocating less gives back time only out of the span's own time (its
//! allocations are made while it is innermost): a span whose self time on
//! the CPU is a sliver of the process's CPU (a health route whose framework
//! allocates 700 bytes a call: half the run's allocations, 0.1% of its CPU)
//! is not a step, whatever its share of the bytes. That bound needs no
//! model of what an allocation costs.
//!
//! Nor is a span whose allocations cost the process little, however large
//! their share of a run that allocates little: the time its allocator
//! calls take is estimated, generously, as `allocation_ns` an allocation
//! (with its free, wherever it is made) and `byte_ns` a byte (writing fresh
//! memory), and must be
//! `min_alloc_time_share` of the process's CPU time. A task that builds a
//! 1.5 KiB future list per call, 60% of a run's bytes at 10 MB a second,
//! spends about 0.1% of the CPU on it.
//!
//! The estimate is at most the span's self time on the CPU, where its
//! allocations are made: a fresh recursive program's `serialize`, 82,180
//! small `format!`s in 2.66 ms of self time, was estimated at 4.2 ms and
//! scored high, beside a hot loop.
//!
//! The same estimate sets how much the finding weighs: it scores in full
//! by its share of the bytes from `full_score_alloc_time_share` of the
//! process's CPU, and in proportion below, so a span that allocates every
//! byte of a run at 0.6% of its CPU is low, not high beside a hot spot.

use serde::{Deserialize, Serialize};

use super::{Class, Detector, Info};
use crate::analyze::advice::{Advice, Effort, lines, speedup_phrase};
use crate::analyze::context::Context;
use crate::analyze::finding::{Draft, Evidence, Finding, Resource};
use crate::analyze::rows::AllocRow;
use crate::stats;
use crate::units::{self, Unit};

/// When a callsite is allocation-heavy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Settings {
    /// A span is allocation-heavy only with this many calls (default 20),
    /// or with `min_allocs_per_call` allocations a call (a loop inside it):
    /// a start-up cache filled once in a few large blocks has neither calls
    /// nor a loop to make cheaper (its memory is the memory findings').
    pub min_calls: u64,
    /// Over the run, at least this many self-allocated bytes (1 MiB)...
    pub min_bytes: u64,
    /// ...or this many allocations (10,000): a span that allocated less
    /// than both costs the run nothing worth a step, whatever its share of
    /// a run that barely allocates (a producer whose channel allocated 27
    /// KB in 2 s held 99% of it).
    pub min_allocs: u64,
    /// At least this many self-allocated bytes per call... (64 KiB)
    pub min_bytes_per_call: f64,
    /// ...or at least this many self allocations per call... (64)
    pub min_allocs_per_call: f64,
    /// ...together with at least this share of all self-allocated bytes (0.05).
    pub min_share: f64,
    /// Allocation-heavy regardless of per-call figures: this share of all
    /// self-allocated bytes, or of all allocations by count (0.25).
    pub dominant_share: f64,
    /// The share of the bytes that buffer reuse or pre-sizing removes (0.5).
    pub recoverable: f64,
    /// How sure the finding is (0.9: allocation counts are exact).
    pub confidence: f64,
    /// The span's self time on the CPU is at least this share of the
    /// process's CPU time (all self time in spans where the dump has no CPU
    /// time) (0.01): allocating less cannot give back more time than the
    /// span spends on its own.
    pub min_self_cpu_share: f64,
    /// What one allocation costs with its free, ns, in the estimate of
    /// the span's allocator time (50: a small block's pair is 10 to 20 ns
    /// in a tight loop, more with cache misses and contention).
    pub allocation_ns: f64,
    /// The part of `allocation_ns` that is the free (0.4): inside a span's
    /// own time, a block costs the span that allocates it the rest, and
    /// the span that frees it this part (what a hot spot's CPU went to). A
    /// fresh service parsing a 10 KiB JSON body into a `serde_json::Value`
    /// (1,610 blocks a call) that its caller dropped: under `perf`,
    /// malloc's side about 25 ns a block and free's 15 ns; charged the
    /// whole pair, the parser's allocator time read 100% of its CPU, where
    /// it was about 45%.
    pub free_share: f64,
    /// What one allocated byte costs, ns (0.1: writing fresh memory at
    /// about 10 GB/s).
    pub byte_ns: f64,
    /// What one byte costs in blocks of at least `huge_block_bytes` on
    /// average, ns (0.3): above glibc's largest `mmap` threshold (32 MiB),
    /// each such block is mapped fresh, its pages faulted in and zeroed as
    /// they are first written, and unmapped when freed. Four threads
    /// loading 48 MiB blobs spent 0.31 ns a byte so, 15.8 ms a call;
    /// 1 and 4 MiB blocks, reused from the heap, 0.02 to 0.04.
    pub huge_byte_ns: f64,
    /// See `huge_byte_ns` (32 MiB).
    pub huge_block_bytes: u64,
    /// The span's estimated allocator time is at least this share of the
    /// process's CPU time (all self time in spans where the dump has no
    /// CPU time) (0.005).
    pub min_alloc_time_share: f64,
    /// ...and at least this many cores over the run's wall time (0.001: a
    /// millisecond a second): a process that barely runs spends nothing
    /// worth a step on allocation, whatever its share. A quiet service's
    /// handler parsing a small JSON body (four allocations a request, 1,300
    /// requests a second, in a process using 0.04 cores) was 1% of its CPU
    /// and 0.35 ms a second.
    pub min_alloc_cores: f64,
    /// The estimated allocator time at which the finding scores in full
    /// by its share of the bytes (0.05 of the process's CPU time); under
    /// it, the score falls in proportion. Allocation costs the process
    /// through its time: a 16 KiB buffer a call that is all of a run's
    /// bytes and 0.6% of its CPU is a low finding, not a high one.
    pub full_score_alloc_time_share: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            min_calls: 20,
            min_bytes: 1024 * 1024,
            min_allocs: 10_000,
            min_bytes_per_call: 64.0 * 1024.0,
            min_allocs_per_call: 64.0,
            min_share: 0.05,
            dominant_share: 0.25,
            recoverable: 0.5,
            confidence: 0.9,
            min_self_cpu_share: 0.01,
            allocation_ns: 50.0,
            free_share: 0.4,
            byte_ns: 0.1,
            huge_byte_ns: 0.3,
            huge_block_bytes: 32 << 20,
            min_alloc_time_share: 0.005,
            min_alloc_cores: 0.001,
            full_score_alloc_time_share: 0.05,
        }
    }
}

pub(crate) struct AllocationHeavy;

static INFO: Info = Info {
    title: "allocation-heavy",
    innermost: false,
    supersedes: &[],
};

impl Detector for AllocationHeavy {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn detect(&self, cx: &Context<'_>, found: &mut Vec<Finding>) {
        let s = &cx.config.classes.allocation_heavy;
        for (_, cs, row) in cx.callsites() {
            let Some(a) = &row.alloc else { continue };
            let many_allocs = a.self_allocs_per_call >= s.min_allocs_per_call;
            if row.calls < s.min_calls && !many_allocs {
                continue;
            }
            if a.self_alloc_bytes < s.min_bytes && a.self_allocs < s.min_allocs {
                continue;
            }
            let per_call = a.self_bytes_per_call >= s.min_bytes_per_call || many_allocs;
            let fair = per_call && a.alloc_share >= s.min_share;
            let dominant = a.alloc_share.max(a.allocs_share) >= s.dominant_share;
            if !(fair || dominant) {
                continue;
            }
            let self_cpu_share = cx.time_share(row.self_cpu_ns);
            let alloc_time_ns = allocator_time_ns(s, a.self_allocs, a.self_alloc_bytes, row.self_cpu_ns);
            let alloc_time_share = cx.time_share(alloc_time_ns);
            let alloc_cores = alloc_time_ns / cx.run_wall_ns.max(1.0);
            if self_cpu_share < s.min_self_cpu_share
                || alloc_time_share < s.min_alloc_time_share
                || alloc_cores < s.min_alloc_cores
            {
                continue;
            }
            let draft = Draft {
                class: Class::AllocationHeavy,
                callsite: Some((cs.id, row.location.clone())),
                resource: Resource::Allocation,
                cost_share: a.alloc_share,
                recoverable: s.recoverable,
                confidence: s.confidence,
                summary: format!(
                    "{} and {} allocations per call; {} of all bytes allocated, {} of all allocations",
                    units::bytes(a.self_bytes_per_call),
                    units::count(a.self_allocs_per_call.round()),
                    units::pct(a.alloc_share),
                    units::pct(a.allocs_share)
                ),
                evidence: vec![
                    Evidence::new(
                        "bytes per call",
                        a.self_bytes_per_call,
                        Unit::Bytes,
                        Some(s.min_bytes_per_call),
                    ),
                    Evidence::new(
                        "allocations per call",
                        a.self_allocs_per_call,
                        Unit::Count,
                        Some(s.min_allocs_per_call),
                    ),
                    Evidence::new(
                        "calls",
                        row.calls as f64,
                        Unit::Count,
                        Some(s.min_calls as f64),
                    ),
                    Evidence::new(
                        "allocation share",
                        a.alloc_share,
                        Unit::Share,
                        Some(s.min_share),
                    ),
                    Evidence::new(
                        "allocation count share",
                        a.allocs_share,
                        Unit::Share,
                        Some(s.dominant_share),
                    ),
                    Evidence::new(
                        &format!(
                            "self time on the CPU, share of {}",
                            cx.share_of(Resource::Time)
                        ),
                        self_cpu_share,
                        Unit::Share,
                        Some(s.min_self_cpu_share),
                    ),
                    Evidence::new(
                        &format!(
                            "estimated allocator time, share of {}",
                            cx.share_of(Resource::Time)
                        ),
                        alloc_time_share,
                        Unit::Share,
                        Some(s.min_alloc_time_share),
                    ),
                    Evidence::new(
                        "estimated allocator time per second of the run",
                        alloc_cores * 1e9,
                        Unit::Ns,
                        Some(s.min_alloc_cores * 1e9),
                    ),
                ],
            };
            // `min_alloc_time_share` ≤ the estimate here, so the scale is never 0.
            let scale = alloc_time_share / s.full_score_alloc_time_share.max(f64::MIN_POSITIVE);
            let built = builds_and_drops(
                a.self_allocs_per_call,
                a.self_bytes_per_call,
                stats::ratio(a.self_frees as f64, row.calls as f64),
            );
            found.push(cx.score_scaled(draft, scale, |f| advice(f, built)));
        }
    }

}

/// Whether a span that makes `allocs_per_call` blocks a call
/// (`bytes_per_call` in all) and frees `frees_per_call` while innermost
/// builds a structure of many small blocks and drops it before it
/// returns, every call: at least [`BUILT_BLOCKS`] blocks of at most
/// [`BUILT_BLOCK_BYTES`] on average, about as many freed (what it returns
/// or keeps is not freed inside; what a child built and it drops is freed
/// more than twice). A growing buffer's resizes also free about what they
/// allocate, but in few large blocks (1 MiB by doubling: 17 blocks of 120
/// KiB on average). A fresh importer's `validate_email` compiled its
/// `Regex` on every call (276 blocks of 174 bytes, all freed inside):
/// compiled once, 12 times the records, where "reuse buffers" was its
/// first fix, and building it once was in none.
pub(crate) fn builds_and_drops(allocs_per_call: f64, bytes_per_call: f64, frees_per_call: f64) -> bool {
    allocs_per_call >= BUILT_BLOCKS
        && bytes_per_call <= BUILT_BLOCK_BYTES * allocs_per_call
        && (0.8 * allocs_per_call..=2.0 * allocs_per_call).contains(&frees_per_call)
}

/// The blocks a call that make a built structure, not a buffer or two.
const BUILT_BLOCKS: f64 = 16.0;

/// The mean size of a built structure's blocks, at most: nodes, strings
/// and small tables, not a buffer's resizes.
const BUILT_BLOCK_BYTES: f64 = 1024.0;

/// What to do about many small blocks built and dropped every call: they
/// are temporaries or a structure that could be built once, which the
/// counts do not tell apart.
pub(crate) const BUILT_AND_DROPPED: &str = "Allocate less: each call builds and drops many small blocks, temporaries (a `String` or `Vec` an item: reuse one across calls and `clear()` it, pre-size it, borrow `&str`) or a structure made afresh though it is the same every call (a compiled `Regex`, a parser, a client, a lookup table: build it once and keep it, in a `std::sync::LazyLock`, a field or a parameter)";

/// Whether `allocs` allocations of `bytes` in all are blocks of at least
/// `huge_block_bytes` on average, each mapped fresh (`huge_byte_ns`).
pub(crate) fn huge_blocks(s: &Settings, allocs: u64, bytes: u64) -> bool {
    allocs > 0 && bytes / allocs >= s.huge_block_bytes
}

/// A span's allocator time as estimated, ns, for `allocs` allocations of
/// `bytes` in all, made while it was innermost, with their frees wherever
/// they are made (what allocating less saves): within its self time on the
/// CPU (`self_cpu_ns`), however generous the estimate.
pub(crate) fn allocator_time_ns(s: &Settings, allocs: u64, bytes: u64, self_cpu_ns: f64) -> f64 {
    (allocs as f64 * s.allocation_ns + bytes as f64 * byte_ns(s, allocs, bytes)).min(self_cpu_ns)
}

/// The allocator's time inside a span's own, as estimated, ns: its
/// allocations' part of each pair and its frees' part
/// ([`Settings::free_share`]), over what it allocated and freed while it
/// was innermost (`a`), within its self time on the CPU. What a hot spot's
/// CPU went to: a handler that drops what its parser built spends its own
/// time freeing.
pub(crate) fn allocator_time_inside_ns(s: &Settings, a: &AllocRow, self_cpu_ns: f64) -> f64 {
    let (allocs, bytes) = (a.self_allocs, a.self_alloc_bytes);
    let free = s.free_share.clamp(0.0, 1.0);
    let pairs = allocs as f64 * (1.0 - free) + a.self_frees as f64 * free;
    (pairs * s.allocation_ns + bytes as f64 * byte_ns(s, allocs, bytes)).min(self_cpu_ns)
}

/// What one allocated byte costs, ns: `huge_byte_ns` in blocks mapped
/// fresh ([`huge_blocks`]), `byte_ns` otherwise.
fn byte_ns(s: &Settings, allocs: u64, bytes: u64) -> f64 {
    if huge_blocks(s, allocs, bytes) {
        s.huge_byte_ns
    } else {
        s.byte_ns
    }
}

/// The plan step's advice for one of its findings.
/// The plan step's advice; `built`, when each call builds and drops a
/// structure of many blocks ([`builds_and_drops`]).
fn advice(f: &Finding, built: bool) -> Advice {
    let name = f.subject().in_prose();
    let mut fixes = lines(&[
        "Reuse buffers: keep a `Vec`/`String` outside the loop or in the struct and `clear()` it, instead of allocating a new one per call",
        "Pre-size collections: `Vec::with_capacity`, `String::with_capacity`, `HashMap::with_capacity` when the size is known or bounded",
        "Borrow instead of cloning: take `&[T]`/`&str`, return `Cow<'_, str>`, avoid `to_vec()`, `to_string()` and `format!` in the hot path",
        "Keep small short-lived collections on the stack (`smallvec`, `arrayvec`)",
    ]);
    if built {
        fixes.insert(0, BUILT_AND_DROPPED.to_owned());
    }
    Advice {
        statement: format!(
            "{} the bytes {name} allocates ({} of all bytes allocated) removes {} of the run's allocation",
            speedup_phrase(f.recoverable),
            units::pct(f.cost_share),
            units::pct(f.expected_gain())
        ),
        fixes,
        prerequisites: lines(&[
            "Keep perf-layer's counting allocator installed in the benchmark and the re-run, so allocation per call can be compared",
        ]),
        check: format!("{name}'s bytes and allocations per call must fall"),
        complexity: Effort::Low,
        risk: Effort::Low,
    }
}

#[cfg(test)]
mod tests {
    use crate::analyze::Class;
    use crate::analyze::test_dump::{
        MS, Span, US, about, assert_near, detect, detect_with, dump, evidence,
    };
    use crate::config::Config;

    const KIB: u64 = 1024;

    /// `validate` builds a structure of 276 small blocks (a `Regex`) and
    /// drops it every call: what such blocks may be (temporaries, or a
    /// structure to build once) leads its fixes. Kept (not freed inside:
    /// what it returns), or in large blocks (a buffer's resizes), reusing
    /// buffers does.
    #[test]
    fn small_blocks_built_and_dropped_every_call_lead_the_fixes() {
        let with = |bytes: u64, frees: u64| {
            let mut d = dump(
                1_000 * MS,
                &[Span::new("validate", &[(40 * US, 10_000)]).alloc(10_000 * bytes, 2_760_000, 0, 0)],
            );
            d.callsites[0].alloc.as_mut().unwrap().frees = frees;
            detect(Class::AllocationHeavy, d)
        };
        let first_fix = |found: Vec<crate::analyze::Finding>| about(&found, "validate").unwrap().advice.fixes[0].clone();
        assert!(first_fix(with(48_000, 2_760_000)).starts_with("Allocate less: each call builds and drops"));
        assert!(first_fix(with(48_000, 0)).starts_with("Reuse buffers"));
        assert!(first_fix(with(1_000_000, 2_760_000)).starts_with("Reuse buffers"));
    }

    /// `big` allocates 128 KiB a call; `near` 63 KiB in 63 allocations, just
    /// under both per-call levels with a fair share (16%); the four others
    /// are cheap per call and under the dominant share.
    #[test]
    fn finds_the_large_allocations_per_call_and_not_ones_just_under() {
        let mut spans = vec![
            Span::new("big", &[(100 * US, 100)]).alloc(100 * 128 * KIB, 100, 0, 0),
            Span::new("near", &[(100 * US, 100)]).alloc(100 * 63 * KIB, 100 * 63, 0, 0),
        ];
        // 100 µs a call, and the others' own time (1 µs a call) leave `big`
        // and `near` a sixth of the CPU each, and their allocator time over
        // 1%: the time floors are not what decides here.
        for name in ["c", "d", "e", "f"] {
            spans.push(Span::new(name, &[(US, 10_000)]).alloc(5_000 * KIB, 10_000, 0, 0));
        }
        // Over 200 ms: `big`'s allocator time is 6.4 ms a second, over the
        // floor of one.
        let found = detect(Class::AllocationHeavy, dump(200 * MS, &spans));
        assert_eq!(found.len(), 1, "{found:?}");
        let f = about(&found, "big").unwrap();
        assert_eq!(evidence(f, "bytes per call"), (128 * KIB) as f64);
        assert_near(f.cost_share, 12_800.0 / 39_100.0, 1e-9);
        assert_eq!((f.recoverable, f.confidence), (0.5, 0.9));
    }

    /// A span that fills a cache once at start-up (8 MiB in 10 allocations)
    /// has no calls to make cheaper, whether its bytes are a fifth of the
    /// run's or half; the same bytes over 20 calls are 410 KiB a call, and
    /// a loader that makes 100,000 allocations in its one call has a loop.
    #[test]
    fn a_one_off_allocation_is_not_heavy_but_twenty_calls_or_a_loop_are() {
        let with = |calls: u64, allocs: u64, others: u64| {
            let mut spans =
                vec![Span::new("warm", &[(MS, calls)]).alloc(8 * 1024 * KIB, allocs, 0, 0)];
            for name in ["c", "d", "e", "f"] {
                spans.push(Span::new(name, &[(US, 10_000)]).alloc(others * KIB, 10_000, 0, 0));
            }
            detect(Class::AllocationHeavy, dump(200 * MS, &spans))
        };
        assert!(with(1, 10, 8 * 1024).is_empty(), "{:?}", with(1, 10, 8 * 1024));
        // Half of all bytes: a dominant share, still one call.
        assert!(with(1, 10, 2 * 1024).is_empty(), "{:?}", with(1, 10, 2 * 1024));
        let found = with(20, 10, 8 * 1024);
        let f = about(&found, "warm").unwrap();
        assert_eq!(evidence(f, "calls"), 20.0);
        assert_near(f.cost_share, 0.2, 1e-9);
        assert!(about(&with(1, 100_000, 8 * 1024), "warm").is_some());
    }

    /// `render` makes 45 small allocations a call (1 KiB), 92% of the run's
    /// allocations but 12% of its bytes, under every per-call level; the two
    /// spans that copy 2 KiB a call in two allocations hold the bytes.
    /// Found by its number of allocations; its cost is still stated in
    /// bytes, the whole of every allocation finding.
    #[test]
    fn many_small_allocations_are_heavy_by_their_number() {
        let spans = [
            Span::new("render", &[(20 * US, 1_000)]).alloc(1_000 * KIB, 45_000, 0, 0),
            Span::new("copy_a", &[(20 * US, 1_000)]).alloc(1_000 * 4 * KIB, 2_000, 0, 0),
            Span::new("copy_b", &[(20 * US, 1_000)]).alloc(1_000 * 4 * KIB, 2_000, 0, 0),
        ];
        let found = detect(Class::AllocationHeavy, dump(2_000 * MS, &spans));
        let f = about(&found, "render").unwrap();
        assert_near(evidence(f, "allocation count share"), 45.0 / 49.0, 1e-9);
        assert_near(f.cost_share, 1.0 / 9.0, 1e-9);
    }

    /// A run that barely allocates: `send` made 99% of its 27 KB (16 bytes
    /// and 0.03 allocations a call, a channel's occasional block), under
    /// both of the run's floors; the same share of 2 MiB in 100 ms is a
    /// finding, and in 2 s is not (0.1 ms of allocator time a second).
    #[test]
    fn a_dominant_share_of_almost_nothing_is_not_a_finding() {
        let with = |bytes: u64, run_ms: u64| {
            let spans = [
                Span::new("send", &[(10 * US, 1_700)]).alloc(bytes, 56, 0, 0),
                Span::new("work", &[(10 * US, 1_700)]).alloc(bytes / 100, 5, 0, 0),
            ];
            detect(Class::AllocationHeavy, dump(run_ms * MS, &spans))
        };
        assert!(with(27_000, 100).is_empty(), "{:?}", with(27_000, 100));
        assert!(about(&with(2 * 1024 * KIB, 100), "send").is_some());
        assert!(with(2 * 1024 * KIB, 2_000).is_empty(), "{:?}", with(2 * 1024 * KIB, 2_000));
    }

    /// A health route behind a web framework: 700 bytes in 5 allocations a
    /// call over 10,000 calls, half of the run's allocations, but its own
    /// time (1 µs a call, 10 ms) is 0.2% of the process's CPU beside the
    /// 5 s of `render` (which allocates nothing). Allocating less cannot
    /// give back more than that: not a step. With 100 µs a call (1 s, 17%
    /// of the CPU), the same allocations are one.
    #[test]
    fn allocations_in_a_sliver_of_the_cpu_are_not_a_step() {
        let with = |health_ns: u64| {
            let spans = [
                Span::new("health", &[(health_ns, 10_000)]).alloc(10_000 * 700, 50_000, 0, 0),
                Span::new("render", &[(5 * MS, 1_000)]).alloc(0, 0, 0, 0),
                Span::new("search", &[(MS, 1_000)]).alloc(1_000 * 7_000, 50_000, 0, 0),
            ];
            // The allocator-time floors off: this is the own-time one.
            let mut config = Config::default();
            config.classes.allocation_heavy.min_alloc_time_share = 0.0;
            config.classes.allocation_heavy.min_alloc_cores = 0.0;
            detect_with(Class::AllocationHeavy, dump(4_000 * MS, &spans), &config)
        };
        let quiet = with(1_000);
        assert!(about(&quiet, "health").is_none(), "{quiet:?}");
        // `search`'s own time (1 s of about 6 s) does qualify.
        assert!(about(&quiet, "search").is_some(), "{quiet:?}");
        let busy = with(100_000);
        let f = about(&busy, "health").expect("a step with 17% of the CPU");
        assert_near(
            evidence(f, "self time on the CPU, share of all self time in spans"),
            1.0 / 7.0,
            0.01,
        );
    }

    /// A fresh tokio pipeline's `enrich`: a 1.5 KiB list of six futures in
    /// two allocations a call, 4,000 calls, 60% of the bytes of a run that
    /// allocated 10 MB and two thirds of its allocations, and 1.2% of the
    /// CPU of its own. Its allocator time, about 1 ms, is 0.1% of the
    /// process's 800 ms: no step. Two hundred allocations a call (5% of
    /// the CPU by the estimate, capped at its own self time, 1.25%) are
    /// one.
    #[test]
    fn allocations_that_cost_the_process_little_are_not_a_step() {
        let with = |allocs_per_call: u64| {
            let mut d = dump(
                1_000 * MS,
                &[
                    Span::new("enrich", &[(2_500, 4_000)])
                        .alloc(4_000 * 1_590, 4_000 * allocs_per_call, 0, 0),
                    Span::new("audit", &[(US, 4_000)]).alloc(4_000 * 1_024, 4_000, 0, 0),
                    Span::new("work", &[(MS, 780)]).alloc(0, 0, 0, 0),
                ],
            );
            d.run.cpu_ns = Some(800 * MS);
            detect(Class::AllocationHeavy, d)
        };
        let light = with(2);
        assert!(about(&light, "enrich").is_none(), "{light:?}");
        let heavy = with(200);
        let f = about(&heavy, "enrich").expect("200 allocations a call are a step");
        assert_near(
            evidence(f, "estimated allocator time, share of the process's CPU time"),
            (4_000.0 * 2_500.0) / (800.0 * MS as f64),
            1e-9,
        );
    }

    /// A fresh request service's `render`: one 16 KiB buffer a call, 2,600
    /// calls, every byte the run allocated, 150 µs of CPU a call. Its
    /// allocator time, about 4.4 ms, is 0.64% of the process's 685 ms: a
    /// finding (over the 0.5% floor) whose score is 0.64 / 5 of the full
    /// one by its bytes, low where the bytes alone made it high. Three
    /// hundred allocations a call (5.7% by the estimate) score in full, in
    /// a process that kept its core busy (685 ms of CPU in 700 ms); in one
    /// that idled (the same CPU in 3 s), times its CPU utilisation, as CPU
    /// time's findings are.
    #[test]
    fn the_score_follows_the_allocator_time() {
        use crate::analyze::Severity;
        let with = |allocs_per_call: u64, wall_ms: u64| {
            let mut d = dump(
                wall_ms * MS,
                &[
                    Span::new("render", &[(150 * US, 2_600)])
                        .alloc(2_600 * 16 * KIB, 2_600 * allocs_per_call, 0, 0),
                    Span::new("warm_up", &[(150 * MS, 1)]).alloc(0, 0, 0, 0),
                ],
            );
            d.run.cpu_ns = Some(685 * MS);
            detect(Class::AllocationHeavy, d)
        };
        let busy = 685.0 / 700.0;
        let light = with(1, 700);
        let f = about(&light, "render").expect("over the allocator-time floor");
        let estimate = (2_600.0 * 50.0 + 2_600.0 * 16_384.0 * 0.1) / (685.0 * MS as f64);
        assert_near(
            f.score,
            (100.0 * 0.25 * busy * estimate / 0.05 * 0.5 * 0.9 * 10.0).round() / 10.0,
            1e-9,
        );
        assert_eq!(f.severity, Severity::Low);
        assert_near(f.cost_share, 1.0, 1e-9);
        let heavy = with(300, 700);
        let f = about(&heavy, "render").unwrap();
        assert_eq!((f.score, f.severity), (11.0, Severity::High));
        let idle = with(300, 3_000);
        let f = about(&idle, "render").unwrap();
        assert_eq!((f.score, f.severity), (2.6, Severity::Low));
    }
}
