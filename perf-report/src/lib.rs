//! perf-report: turns perf-layer dumps into findings and an optimization plan.
#![deny(missing_docs)]
