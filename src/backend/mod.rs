//! Where the layers run.

pub mod cpu;
