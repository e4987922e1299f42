//! # perf-layer
//!
//! A [`tracing_subscriber::Layer`] that profiles every span: wall, busy,
//! idle and self time into per-callsite HDR histograms, allocation per span
//! through an optional counting allocator, process RSS and CPU from a
//! background sampler, and a lossless, versioned JSON dump that
//! `perf-report` turns into an ordered optimization plan.
//!
//! ## Quick start
//!
//! ```no_run
//! use tracing_subscriber::prelude::*;
//!
//! // Optional: exact allocation bytes per span.
//! #[global_allocator]
//! static ALLOC: perf_layer::CountingAllocator = perf_layer::CountingAllocator::system();
//!
//! #[tracing::instrument]
//! fn handle_request(id: u64) -> u64 {
//!     id * 2
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     let built = perf_layer::PerfLayer::builder()
//!         .from_env()
//!         .dump_on_signal() // SIGTERM or Ctrl-C: the dump is written first
//!         .build();
//!     let (layer, handle) = match built {
//!         Ok(built) => built,
//!         Err(e) => {
//!             eprintln!("perf-layer: {e}"); // says what is wrong and what to do
//!             return std::process::ExitCode::FAILURE;
//!         }
//!     };
//!     tracing_subscriber::registry().with(layer).init();
//!     let _dump = handle.dump_on_drop(); // writes dump.json at the end of main
//!
//!     for id in 0..1000 {
//!         handle_request(id);
//!     }
//!     std::process::ExitCode::SUCCESS
//! }
//! ```
//!
//! Then `perf-report dump.json`. How the program ends decides what writes
//! the dump: the guard when `main` returns,
//! [`dump_on_signal`](PerfLayerBuilder::dump_on_signal) for SIGTERM and
//! Ctrl-C, [`dump_on_exit`](PerfLayerBuilder::dump_on_exit) for
//! `std::process::exit`, [`periodic_dump`](PerfLayerBuilder::periodic_dump)
//! to bound what a crash loses.
//!
//! ## What is measured, per span callsite
//!
//! | figure | meaning |
//! |---|---|
//! | wall | creation to close |
//! | busy | the sum of the intervals the span was entered, on any thread |
//! | idle | wall minus busy |
//! | self | busy time while the span was the innermost entered span on its thread (busy minus its children's busy) |
//! | allocation | bytes and counts allocated and freed while entered, inclusive and self, with the counting allocator |
//! | RSS delta | process RSS at close minus at open, as the sampler last saw it: as coarse as the sampler interval |
//!
//! Callsites are keyed by their static metadata, never by field values, so
//! the number of entries is bounded by the code and no field value reaches
//! the dump. The dump format is documented in `docs/dump-format.md`.
//!
//! ## Cost
//!
//! The span path takes no global lock, makes no syscall and no allocation of
//! its own after a callsite's first use on a thread, and never calls
//! `sysinfo`. Each thread records into its own shard; snapshots merge them.
//!
//! ## The data path, and where it lives
//!
//! Span callbacks ([`PerfLayer`], `layer.rs`) record into `record/` (the
//! thread's stack of entered spans, the open spans' state, per-thread shards
//! of per-callsite histograms, the counting allocator); `background/` runs
//! off the span path (the process sampler, the overhead calibration,
//! periodic dumps); `snapshot.rs` is the one place that turns recorder
//! state into the wire types of [`dump`] (the schema, the histogram codec,
//! atomic writes), which [`PerfHandle`] hands out. Each stage knows only the
//! one before it.
//!
//! ## Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `recorder` | on | the layer, its builder and handle, the counting allocator, the sampler |
//! | `tokio` | on | which tokio task entered each span (`tokio::task::try_id`, at each exit): a span that a task spawned with `.in_current_span()` held ends where its own task left it |
//! | `prometheus` | off | an endpoint serving the callsites' figures (`PerfLayerBuilder::prometheus`) |
//!
//! Without `recorder` the crate is the [`dump`] schema and codec alone, with
//! none of the recorder's dependencies: what a reader such as `perf-report`
//! needs (`perf-layer = { version = "…", default-features = false }`).
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub, rust_2018_idioms)]

pub mod dump;
#[cfg(test)]
mod test_rng;

#[cfg(feature = "recorder")]
mod background;
#[cfg(feature = "recorder")]
mod builder;
#[cfg(feature = "recorder")]
mod config;
#[cfg(feature = "recorder")]
mod handle;
#[cfg(feature = "recorder")]
mod layer;
#[cfg(feature = "recorder")]
mod profiler;
#[cfg(feature = "prometheus")]
mod prometheus;
#[cfg(feature = "recorder")]
mod record;
#[cfg(feature = "recorder")]
mod snapshot;

#[cfg(feature = "recorder")]
pub use background::pressure::MemoryPressureEvent;
#[cfg(feature = "prometheus")]
pub use builder::ENV_PROMETHEUS;
#[cfg(feature = "recorder")]
pub use builder::{ENV_DUMP_EVERY_MS, ENV_GROUP_BY, ENV_OUTPUT, ENV_SAMPLE_MS, PerfLayerBuilder};
#[cfg(feature = "recorder")]
pub use config::BuildError;
pub use dump::PressureLevel;
#[cfg(feature = "recorder")]
pub use handle::{DumpGuard, PerfHandle};
#[cfg(feature = "recorder")]
pub use layer::PerfLayer;
/// The clock crate, for [`PerfLayerBuilder::clock`] (`quanta::Clock::mock()` in tests).
#[cfg(feature = "recorder")]
pub use quanta;
#[cfg(feature = "recorder")]
pub use record::alloc::{
    AllocCounters, CountingAllocator, heap_live_bytes, is_installed as allocator_installed,
    thread_counters,
};

/// The README's code blocks, compiled and run as doctests so they never rot
/// (with the `prometheus` feature, which one block uses; `cargo test
/// --workspace` turns it on through the examples' package).
#[cfg(all(doctest, feature = "prometheus"))]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
