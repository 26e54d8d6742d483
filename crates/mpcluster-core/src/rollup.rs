//! rollup (in progress)
