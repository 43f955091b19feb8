//! Text helpers for [`super::Layer::describe`]: coordinate names (`x₁`, 1-based as in the
//! layer-by-layer view), numbers with a true minus sign, and reading parameter-only graph
//! nodes (so a label shows exactly what the layer's graph computes, not a copy of its maths).

use crate::engine::{CpuProgram, Graph, ParamStore, Var};

/// `x₁` for column 0, `x₁₂` for column 11.
pub(crate) fn coordinate(column: usize) -> String {
    const DIGITS: [char; 10] = ['₀', '₁', '₂', '₃', '₄', '₅', '₆', '₇', '₈', '₉'];
    let index = (column + 1).to_string();
    let sub: String = index
        .bytes()
        .map(|b| DIGITS[usize::from(b - b'0')])
        .collect();
    format!("x{sub}")
}

/// `x₁, x₃` for columns `[0, 2]`; past six columns, just how many.
pub(crate) fn coordinates(columns: &[usize]) -> String {
    if columns.len() > 6 {
        return format!("{} coordinates", columns.len());
    }
    let names: Vec<String> = columns.iter().map(|&c| coordinate(c)).collect();
    names.join(", ")
}

/// `v` with `decimals` decimals and `−` (U+2212) for negatives; never `−0.00`.
pub(crate) fn number(v: f64, decimals: usize) -> String {
    let text = format!("{v:.decimals$}");
    match text.strip_prefix('-') {
        Some(rest) if rest.bytes().any(|b| (b'1'..=b'9').contains(&b)) => format!("−{rest}"),
        Some(rest) => rest.to_string(),
        None => text,
    }
}

/// `v` with up to three decimals, trailing zeros dropped (`0.2`, `0.016`, `1`).
pub(crate) fn short(v: f64) -> String {
    let text = number(v, 3);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// `value` and `bound` with two decimals, or as many more (up to eight) as it takes for the two
/// to read differently, so that a label such as `0.99995 > −1` never reads `−1.00 > −1`.
pub(crate) fn apart(value: f64, bound: f64) -> (String, String) {
    let mut decimals = 2;
    while decimals < 8 && number(value, decimals) == number(bound, decimals) {
        decimals += 1;
    }
    (number(value, decimals), number(bound, decimals))
}

/// `(1.10, −0.95)`.
pub(crate) fn vector(values: impl IntoIterator<Item = f64>) -> String {
    let parts: Vec<String> = values.into_iter().map(|v| number(v, 2)).collect();
    format!("({})", parts.join(", "))
}

/// The values of parameter-only nodes of `g` (no inputs), in f32 as the flow computes them.
/// `None` if the graph does not compile against `store` (a label then shows the kind alone).
pub(crate) fn evaluate(g: &Graph, store: &ParamStore, nodes: &[Var]) -> Option<Vec<Vec<f32>>> {
    let mut program = CpuProgram::<f32>::compile(g, store, nodes).ok()?;
    program.run(store.values());
    nodes
        .iter()
        .map(|&v| program.value(v).ok().map(<[f32]>::to_vec))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinates_are_one_based_subscripts() {
        assert_eq!(coordinate(0), "x₁");
        assert_eq!(coordinate(11), "x₁₂");
        assert_eq!(coordinates(&[0, 2]), "x₁, x₃");
        assert_eq!(coordinates(&[0, 1, 2, 3, 4, 5, 6]), "7 coordinates");
    }

    #[test]
    fn numbers_use_a_true_minus_and_show_the_gap_to_a_bound() {
        assert_eq!(number(-0.5, 2), "−0.50");
        assert_eq!(number(-0.001, 2), "0.00");
        assert_eq!(short(0.2), "0.2");
        assert_eq!(short(1.0), "1");
        assert_eq!(short(-0.0161), "−0.016");
        assert_eq!(apart(0.41, -1.0), ("0.41".into(), "−1.00".into()));
        assert_eq!(
            apart(-0.99995, -1.0),
            ("−0.99995".into(), "−1.00000".into())
        );
        assert_eq!(vector([1.1, -0.95]), "(1.10, −0.95)");
    }
}
