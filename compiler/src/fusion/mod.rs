//! Fusion: partitions a graph into kernels.
