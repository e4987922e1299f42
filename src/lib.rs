//! Examples, integration tests and benchmarks for perf-layer and perf-report.
