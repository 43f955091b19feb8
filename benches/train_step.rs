//! `cargo bench`: training-step timings (filled in with the flows).
fn main() {}
