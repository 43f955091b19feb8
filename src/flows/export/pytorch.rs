//! The PyTorch export: one `.py` file that imports `torch` (and Python's standard library:
//! `base64`, `math`, `struct`), holds the weights as base64 of little-endian `f32`, and rebuilds
//! the flow as an `nn.Module` with `log_prob(x)` and `sample(n)`.
//!
//! The script is assembled from the Python files in `python/`, one per family file of
//! `src/flows/` (each mirrors its Rust twin's parameterisation and equations), after a generated
//! header (docstring, `CONFIG`, the weight table). Only the parts a family needs are included.
//! Why Python written once beside the Rust rather than generated per layer: the Python then
//! reads like the Rust it mirrors, and the export only chooses parts and embeds numbers.

use std::fmt::Write as _;

use base64::Engine as _;

use super::ExportError;
use crate::engine::ParamStore;
use crate::flows::cnf::Solver;
use crate::flows::{Family, Flow, FlowConfig, SavedModel};

const PRELUDE: &str = include_str!("python/prelude.py");
const COUPLING: &str = include_str!("python/coupling.py");
const GLOW: &str = include_str!("python/glow.py");
const AUTOREGRESSIVE: &str = include_str!("python/autoregressive.py");
const PLANAR: &str = include_str!("python/planar.py");
const RADIAL: &str = include_str!("python/radial.py");
const SPLINE: &str = include_str!("python/spline.py");
const CNF: &str = include_str!("python/cnf.py");
const DOPRI: &str = include_str!("python/dopri.py");
const FLOW: &str = include_str!("python/flow.py");

/// Base64 characters per line of the embedded weights.
const WEIGHT_LINE: usize = 76;

/// The self-contained PyTorch script of `model` (see the module docs). Refuses a model whose
/// settings flowlab cannot build or whose parameters do not fit them, as `flowlab eval` would.
pub fn pytorch_script(model: &SavedModel) -> Result<String, ExportError> {
    // Why rebuild: it validates the settings and checks every parameter's name, shape and
    // finiteness against the architecture, so the script's lookups by name cannot miss.
    let flow = model.clone().into_flow()?;
    let (parts, builder) = parts_of(&flow.config);
    let mut script = header(&flow);
    script.push_str(
        "\nimport base64\nimport math\nimport struct\n\nimport torch\nfrom torch import nn\n\n",
    );
    script.push_str(&config_literal(&flow.config, flow.dim));
    script.push_str(&weights_literal(&flow.store));
    for part in std::iter::once(PRELUDE).chain(parts.iter().copied()) {
        script.push_str("\n\n");
        script.push_str(part);
    }
    let _ = write!(script, "\n\nBUILD = {builder}\n\n\n{FLOW}");
    Ok(script)
}

/// The Python parts a family needs (after the prelude) and the name of its builder.
fn parts_of(config: &FlowConfig) -> (Vec<&'static str>, &'static str) {
    match config.family {
        Family::Planar => (vec![PLANAR], "build_planar"),
        Family::Radial => (vec![RADIAL], "build_radial"),
        Family::Nice => (vec![COUPLING], "build_nice"),
        Family::RealNvp => (vec![COUPLING], "build_realnvp"),
        Family::Glow => (vec![COUPLING, GLOW], "build_glow"),
        Family::Maf => (vec![AUTOREGRESSIVE], "build_maf"),
        Family::Iaf => (vec![AUTOREGRESSIVE], "build_iaf"),
        Family::Nsf => (vec![COUPLING, SPLINE], "build_nsf"),
        Family::Cnf => match config.cnf.solver {
            Solver::Rk4 => (vec![CNF], "build_cnf"),
            Solver::DormandPrince => (vec![CNF, DOPRI], "build_cnf_adaptive"),
        },
    }
}

/// The module docstring: what the model is, how to use it, how it computes.
fn header(flow: &Flow) -> String {
    let config = &flow.config;
    let info = config.family.info();
    let base = if config.learnable_base {
        "a learned diagonal-Gaussian base"
    } else {
        "a standard-normal base"
    };
    let widths = format!(
        "{} hidden layer(s) of width {}, {}",
        config.depth,
        config.hidden,
        config.activation.name()
    );
    let mlp = format!("MLPs of {widths}");
    let shape = match config.family {
        Family::Planar | Family::Radial => format!("{} layers", config.layers),
        Family::Glow => format!(
            "{} steps (actnorm, invertible linear, coupling), {mlp}",
            config.layers
        ),
        Family::Nsf => format!(
            "{} layers of {} bins on [-{b}, {b}], {mlp}",
            config.layers,
            config.bins,
            b = config.tail_bound
        ),
        Family::Cnf => format!("{}, a vector-field MLP of {widths}", cnf_summary(flow)),
        _ => format!("{} layers, {mlp}", config.layers),
    };
    let dim = flow.dim;
    format!(
        r#""""A trained flowlab flow, rebuilt in PyTorch.

Model: {title} ({name}) on {dim}-D data: {shape}; {base}; {n} parameters, embedded below.
{description}.

Usage (this file saved as flow.py, next to your code):

    from flow import load
    flow = load()                 # float64, as flowlab's figures; load(torch.float32) is faster
    log_p = flow.log_prob(x)      # x: tensor [n, {dim}]  ->  log p(x), tensor [n]
    samples = flow.sample(1000)   # -> tensor [1000, {dim}]

It computes log p(x) the way flowlab does (the same layers, parameterisation and solver), so it
matches `flowlab eval --model model.json --points points.csv` to within 1e-4 (the parity test in
flowlab's tests/export checks every family). `python flow.py` runs a self-check.

Written by `flowlab export --format pytorch` (flowlab {version}). Needs only torch.
"""
"#,
        title = info.title,
        name = info.name,
        n = flow.n_params(),
        description = info.description,
        version = env!("CARGO_PKG_VERSION"),
    )
}

/// How a CNF is integrated, for the header.
fn cnf_summary(flow: &Flow) -> String {
    let o = &flow.config.cnf;
    let span = format!("dz/dt = f(z, t) over [0, {}]", o.end_time);
    let solver = match o.solver {
        Solver::Rk4 => format!(
            "RK4 with {} steps in {} time segment(s)",
            o.steps,
            flow.layers.len()
        ),
        Solver::DormandPrince => format!(
            "adaptive Dormand-Prince 5(4) with rtol {} and atol {} (points in chunks of 1024 share step sizes, as in flowlab eval; no gradients through the solver)",
            o.rtol, o.atol
        ),
    };
    let augmented = match o.augment {
        0 => String::new(),
        k => format!(
            ", augmented by {k} dimension(s) (log p is the augmented model's density at (x, 0), as in flowlab)"
        ),
    };
    format!("{span}, {solver}, exact trace{augmented}")
}

/// `CONFIG = {…}` and `DIM = …`: the settings the Python builders read. Floats are written as
/// the exact `f64` value of flowlab's `f32`, as flowlab converts them.
fn config_literal(config: &FlowConfig, dim: usize) -> String {
    let f = |v: f32| format!("{:?}", f64::from(v));
    let bool_py = |b: bool| if b { "True" } else { "False" };
    let o = &config.cnf;
    format!(
        "CONFIG = {{\n    \"family\": \"{family}\",\n    \"layers\": {layers},\n    \"hidden\": {hidden},\n    \
         \"depth\": {depth},\n    \"activation\": \"{activation}\",\n    \"learnable_base\": {base},\n    \
         \"bins\": {bins},\n    \"tail_bound\": {tail},\n    \"cnf\": {{\"steps\": {steps}, \"end_time\": {end}, \
         \"augment\": {augment}, \"solver\": \"{solver}\", \"rtol\": {rtol}, \"atol\": {atol}}},\n}}\nDIM = {dim}\n\n",
        family = config.family.name(),
        layers = config.layers,
        hidden = config.hidden,
        depth = config.depth,
        activation = config.activation.name(),
        base = bool_py(config.learnable_base),
        bins = config.bins,
        tail = f(config.tail_bound),
        steps = o.steps,
        end = f(o.end_time),
        augment = o.augment,
        solver = o.solver.name(),
        rtol = f(o.rtol),
        atol = f(o.atol),
    )
}

/// `_SPECS` (name, rows, cols per tensor, in store order) and `_WEIGHTS` (base64 of every value
/// as little-endian `f32`, in the same order).
fn weights_literal(store: &ParamStore) -> String {
    let mut out = String::from(
        "# (name, rows, cols) of each parameter, in the order of _WEIGHTS.\n_SPECS = [\n",
    );
    for spec in store.specs() {
        // Why JSON: a JSON string is a valid Python string literal, whatever the name holds.
        let name = serde_json::to_string(&spec.name).unwrap_or_default();
        let _ = writeln!(out, "    ({name}, {}, {}),", spec.rows, spec.cols);
    }
    out.push_str("]\n# Every parameter value: base64 of little-endian float32.\n_WEIGHTS = (\n");
    let bytes: Vec<u8> = store
        .values()
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    for line in encoded.as_bytes().chunks(WEIGHT_LINE) {
        let _ = writeln!(out, "    \"{}\"", String::from_utf8_lossy(line));
    }
    out.push_str(")\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::{FAMILIES, build_flow};

    fn script_of(config: &FlowConfig) -> String {
        let flow = build_flow(config, 2, 3).unwrap();
        pytorch_script(&SavedModel::of(&flow)).unwrap()
    }

    #[test]
    fn every_family_exports_a_script_naming_its_model_and_builder() {
        for info in FAMILIES {
            let config = FlowConfig::new(info.family);
            let script = script_of(&config);
            let (_, builder) = parts_of(&config);
            assert!(
                script.starts_with("\"\"\"A trained flowlab flow"),
                "{}",
                info.name
            );
            assert!(script.contains(&format!("def {builder}(")), "{}", info.name);
            assert!(
                script.contains(&format!("BUILD = {builder}\n")),
                "{}",
                info.name
            );
            assert!(script.contains(&format!("\"family\": \"{}\"", info.name)));
            assert!(
                script.contains("def log_prob(self, x)") && script.contains("def sample(self, n")
            );
            assert!(script.contains("if __name__ == \"__main__\":"));
        }
    }

    #[test]
    fn every_parameter_is_listed_and_the_weights_decode_to_its_values() {
        let mut config = FlowConfig::new(Family::Glow);
        config.learnable_base = true;
        let flow = build_flow(&config, 2, 3).unwrap();
        let script = pytorch_script(&SavedModel::of(&flow)).unwrap();
        for spec in flow.store.specs() {
            let row = format!("    (\"{}\", {}, {}),", spec.name, spec.rows, spec.cols);
            assert!(script.contains(&row), "{row}");
        }
        let start = script.find("_WEIGHTS = (\n").unwrap() + "_WEIGHTS = (\n".len();
        let end = start + script[start..].find(")\n").unwrap();
        let encoded: String = script[start..end]
            .lines()
            .map(|l| l.trim().trim_matches('"'))
            .collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        let values: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(values, flow.store.values());
    }

    #[test]
    fn only_the_parts_a_family_needs_are_included() {
        let planar = script_of(&FlowConfig::new(Family::Planar));
        assert!(planar.contains("class Planar(") && !planar.contains("class AffineCoupling("));
        let mut cnf = FlowConfig::new(Family::Cnf);
        assert!(!script_of(&cnf).contains("def dopri5("));
        cnf.cnf.solver = Solver::DormandPrince;
        let adaptive = script_of(&cnf);
        assert!(
            adaptive.contains("def dopri5(") && adaptive.contains("BUILD = build_cnf_adaptive")
        );
    }

    #[test]
    fn options_reach_the_config_as_flowlab_reads_them() {
        let mut config = FlowConfig::new(Family::Cnf);
        config.cnf.rtol = 1e-5;
        config.cnf.augment = 2;
        config.activation = crate::flows::mlp::Activation::Elu;
        let script = script_of(&config);
        assert!(
            script.contains(&format!("\"rtol\": {:?}", f64::from(1e-5f32))),
            "{script:.2000}"
        );
        assert!(script.contains("\"augment\": 2") && script.contains("\"activation\": \"elu\""));
        assert!(script.contains("augmented by 2 dimension(s)"));
    }

    #[test]
    fn parameters_that_do_not_fit_are_refused_with_the_reason() {
        let flow = build_flow(&FlowConfig::new(Family::Maf), 2, 3).unwrap();
        let mut saved = SavedModel::of(&flow);
        saved.config.layers += 1;
        let err = pytorch_script(&saved).unwrap_err();
        assert!(matches!(err, ExportError::Parameters(_)), "{err:?}");
        let text = err.to_string();
        assert!(
            text.starts_with("cannot export the model: ") && text.contains("tensors saved"),
            "{text}"
        );

        let mut saved = SavedModel::of(&flow);
        saved.params.values_mut()[0] = f32::NAN;
        let text = pytorch_script(&saved).unwrap_err().to_string();
        assert!(text.contains("non-finite"), "{text}");
    }

    #[test]
    fn settings_flowlab_cannot_build_are_refused_with_the_limit() {
        let flow = build_flow(&FlowConfig::new(Family::Nsf), 2, 3).unwrap();
        let mut saved = SavedModel::of(&flow);
        saved.config.bins = 1000;
        let err = pytorch_script(&saved).unwrap_err();
        assert!(matches!(err, ExportError::Settings(_)), "{err:?}");
        assert!(
            err.to_string()
                .contains("spline bins must be between 2 and 64"),
            "{err}"
        );
    }
}
