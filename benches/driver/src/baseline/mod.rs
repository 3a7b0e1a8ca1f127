//! Baselines: what the pipeline's components do on their own, measured in the same run on the
//! same machine and disk, so that each figure can be read against the ceiling beneath it.

pub mod log;
pub mod notify;
pub mod postgres;
