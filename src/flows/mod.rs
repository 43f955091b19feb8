//! Normalizing flows built on the engine (being written).
