//! Objectives and the trainer loop (being written).
