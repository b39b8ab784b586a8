//! A persistent thread pool.
