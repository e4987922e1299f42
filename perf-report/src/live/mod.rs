//! `perf-report live ADDR`: what a running process is doing now, read from
//! perf-layer's endpoint (`PerfLayerBuilder::prometheus`, which serves
//! `/snapshot.json` beside `/metrics`).
//!
//! Every interval (1 s) the view takes a snapshot and shows the window
//! since the previous one ([`window()`]): the spans by self time with their
//! calls per second, busy p50 and p99, on-CPU share, bytes allocated per
//! second and live heap; the process line (RSS, CPU, memory pressure); and
//! the findings of that window, from the same analysis as a whole run's.
//!
//! ```
//! use perf_layer::dump::Dump;
//! use perf_report::live::{WindowView, window};
//!
//! let mut old = Dump::empty("svc");
//! old.run.duration_ns = 1_000_000_000;
//! let mut new = old.clone();
//! new.run.duration_ns = 2_000_000_000;
//! let view = WindowView::of(&window(&old, &new).unwrap());
//! assert!(view.rows.is_empty());
//! assert_eq!(view.seconds, 1.0);
//! ```

mod client;
mod view;
pub mod window;

pub use client::{LiveError, fetch};
pub use view::{LiveOptions, Sort, WindowRow, WindowView, run};
pub use window::{WindowError, window};
