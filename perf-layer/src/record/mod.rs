//! The span path: everything a span callback touches, and nothing else.
//!
//! Data flows through it in this order:
//!
//! 1. [`stack`]: the thread's stack of entered spans. Entering pushes a
//!    frame (one clock read, the thread's allocation counters); exiting
//!    pops it and charges its interval to the frame below as child time,
//!    which is what makes self time cheap.
//! 2. [`open_spans`]: the state of each open span (busy, self, allocation,
//!    events), in the opening thread's shard, where a popped frame's
//!    figures are added.
//! 3. [`totals`]: at close, the span's figures are added into its
//!    callsite's accumulator: four [`flat_hist`] histograms and counters.
//! 4. [`shards`]: one accumulator map per thread behind an uncontended
//!    lock, the callsite and edge caps, and the merge a snapshot reads.
//!
//! [`self_time`] times one callback in about 64 as it runs, for the dump's
//! overhead estimate; [`event_time`] one event in about 16 inside spans,
//! for the subscriber's time on them.
//!
//! [`long_spans`] keeps, at a close, a callsite's latest spans of 1 ms or
//! more (when each opened and closed), for perf-report to tell which
//! span's close ends another's waits.
//!
//! [`watch`] publishes each thread's innermost callsite (one store an
//! enter or exit) for the background thread, which tells what a span
//! waiting off the CPU waited beside.
//!
//! [`task`] tells which async task ran an interval, so that a span a
//! spawned task held (`.in_current_span()`) ends where its own task left
//! it.
//!
//! [`thread_end`] has a thread that recorded spans say, as it exits, how
//! long it waited for a core over its life, for the sampler, which reads
//! only the threads alive at its samples.
//!
//! [`alloc`] is the optional counting global allocator whose thread-local
//! counters the stack reads. Nothing here is a wire type: `snapshot`
//! converts to the dump's schema.

pub(crate) mod alloc;
pub(crate) mod callsite;
pub(crate) mod countdown;
pub(crate) mod cpu;
pub(crate) mod event_time;
pub(crate) mod flat_hist;
pub(crate) mod groups;
pub(crate) mod heap;
pub(crate) mod long_spans;
pub(crate) mod open_spans;
pub(crate) mod runtime_worker;
pub(crate) mod self_time;
pub(crate) mod shards;
pub(crate) mod stack;
pub(crate) mod task;
pub(crate) mod task_clock;
pub(crate) mod thread_end;
pub(crate) mod totals;
pub(crate) mod watch;
