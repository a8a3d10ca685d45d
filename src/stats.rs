//! Per-shard counters.
