//! Helpers shared by the numerics tests.

pub mod counting_alloc;
pub mod flow_dims;

/// The larger of two errors, NaN if either is NaN.
///
/// Why not `f32::max`/`f64::max` in a fold: they return the other operand when one is NaN, so
/// a flow that outputs NaN would fold to a small "worst error" and pass `worst < tolerance`.
pub fn worst<T: PartialOrd + Copy>(a: T, b: T) -> T {
    let is_nan = |x: T| x.partial_cmp(&x).is_none();
    if is_nan(a) || (!is_nan(b) && a >= b) {
        a
    } else {
        b
    }
}

#[test]
fn worst_propagates_nan() {
    assert_eq!(worst(1.0f32, 2.0), 2.0);
    assert!(worst(1.0f32, f32::NAN).is_nan());
    assert!([0.5, f64::NAN, 0.1].into_iter().fold(0.0, worst).is_nan());
}
