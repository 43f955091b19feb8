//! Every engine op's gradient against central finite differences, in f64 — first order, and
//! second order (the gradient of a loss built from a gradient, as CNF training needs).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Why: test helpers; a failure should panic with its message.

use flowlab::engine::{Axis, Binary, GradientProgram, Graph, Init, ParamStore, Shape, Unary, Var};
use flowlab::rng::Rng;

/// Where an input's random values are drawn from.
#[derive(Clone, Copy)]
pub(crate) enum Domain {
    /// Uniform in ±1.5, but at least 0.1 from zero (keeps kinks out of the stencil).
    Signed,
    /// Uniform in [0.5, 2].
    Positive,
    /// Sorted per row (bin edges), within ±2.
    SortedRows,
    /// Integer column indices in `0..k`.
    Index(usize),
}

pub(crate) struct Case {
    pub name: &'static str,
    pub inputs: Vec<(usize, usize, Domain)>,
    pub build: fn(&mut Graph, &[Var]) -> Var,
    /// Bound on |analytic − numeric| / max(1, |numeric|).
    tol: f64,
}

pub(crate) fn init_values(
    store: &mut ParamStore,
    inputs: &[(usize, usize, Domain)],
    rng: &mut Rng,
) {
    let specs: Vec<_> = store.specs().to_vec();
    for (spec, &(_, cols, domain)) in specs.iter().zip(inputs) {
        let vals = &mut store.values_mut()[spec.range()];
        for v in vals.iter_mut() {
            *v = match domain {
                Domain::Signed => {
                    let u = rng.uniform_range(0.1, 1.5) as f32;
                    if rng.uniform_f64() < 0.5 { -u } else { u }
                }
                Domain::Positive => rng.uniform_range(0.5, 2.0) as f32,
                Domain::SortedRows => rng.uniform_range(-2.0, 2.0) as f32,
                Domain::Index(k) => rng.below(k) as f32,
            };
        }
        if let Domain::SortedRows = domain {
            for row in vals.chunks_mut(cols) {
                row.sort_by(f32::total_cmp);
            }
        }
    }
}

/// Builds `loss = Σ R ⊙ f(inputs)` (R random) and, for `order = 2`,
/// `loss₂ = Σ R₂ ⊙ ∂loss/∂input₀`; returns the graph and the scalar.
pub(crate) fn build_loss(
    case: &Case,
    store: &ParamStore,
    order: usize,
    rng: &mut Rng,
) -> (Graph, Var) {
    let mut g = Graph::new();
    let vars: Vec<Var> = store
        .specs()
        .iter()
        .enumerate()
        .map(|(i, s)| g.param(flowlab::engine::ParamId(i as u32), s.shape()))
        .collect();
    let out = (case.build)(&mut g, &vars);
    let weighted = |g: &mut Graph, x: Var, rng: &mut Rng| {
        let s = g.shape(x);
        let r = g.input(s.rows, s.cols);
        let _ = rng;
        let prod = g.mul(x, r);
        (g.sum(Axis::All, prod), r)
    };
    let (loss, _) = weighted(&mut g, out, rng);
    if order == 1 {
        return (g, loss);
    }
    let first = g.grad(loss, &vars[..1])[0];
    let (loss2, _) = weighted(&mut g, first, rng);
    (g, loss2)
}

fn fill_inputs(g: &Graph, prog: &mut flowlab::engine::CpuProgram<f64>, seed: u64) {
    let mut rng = Rng::seed_from_u64(seed);
    for (i, node) in g.nodes().iter().enumerate() {
        if node.op == flowlab::engine::Op::Input {
            let v = Var::from_index(i);
            if let Ok(buf) = prog.input_mut(v) {
                for x in buf.iter_mut() {
                    *x = rng.uniform_range(-1.0, 1.0);
                }
            }
        }
    }
}

fn check(case: &Case, order: usize) {
    let mut rng = Rng::seed_from_u64(42);
    let mut store = ParamStore::new();
    for (i, &(r, c, _)) in case.inputs.iter().enumerate() {
        store.add(format!("x{i}"), r, c, Init::Constant(0.0), &mut rng);
    }
    init_values(&mut store, &case.inputs, &mut rng);
    let (g, loss) = build_loss(case, &store, order, &mut rng);
    let mut program = GradientProgram::<f64>::new(g.clone(), loss, &store, &[]).expect("compiles");
    fill_inputs(&g, program.program_mut(), 7);
    let base: Vec<f64> = store.values().iter().map(|&v| v as f64).collect();
    program.run(&base);
    let analytic = program.grads().to_vec();

    let mut plain =
        flowlab::engine::CpuProgram::<f64>::compile(&g, &store, &[loss]).expect("compiles");
    fill_inputs(&g, &mut plain, 7);
    let mut eval = |p: &[f64]| {
        plain.run(p);
        plain.scalar(loss).expect("loss")
    };
    let h = 1e-5;
    let mut worst = 0.0f64;
    for (spec, &(_, _, domain)) in store.specs().iter().zip(&case.inputs) {
        if let Domain::Index(_) = domain {
            continue; // discrete: no derivative
        }
        for k in spec.range() {
            let mut p = base.clone();
            p[k] = base[k] + h;
            let up = eval(&p);
            p[k] = base[k] - h;
            let down = eval(&p);
            let numeric = (up - down) / (2.0 * h);
            let err = (analytic[k] - numeric).abs() / numeric.abs().max(1.0);
            worst = worst.max(err);
        }
    }
    assert!(
        worst < case.tol,
        "{} (order {order}): worst relative gradient error {worst:e} > {:e}",
        case.name,
        case.tol
    );
}

fn unary_case(name: &'static str, build: fn(&mut Graph, &[Var]) -> Var, domain: Domain) -> Case {
    Case {
        name,
        inputs: vec![(5, 3, domain)],
        build,
        tol: 1e-6,
    }
}

pub(crate) fn cases() -> Vec<Case> {
    use Domain::*;
    let mut v = vec![
        unary_case("neg", |g, x| g.neg(x[0]), Signed),
        unary_case("exp", |g, x| g.exp(x[0]), Signed),
        unary_case("log", |g, x| g.log(x[0]), Positive),
        unary_case("softplus", |g, x| g.softplus(x[0]), Signed),
        unary_case("tanh", |g, x| g.tanh(x[0]), Signed),
        unary_case("sigmoid", |g, x| g.sigmoid(x[0]), Signed),
        unary_case("relu", |g, x| g.unary(Unary::Relu, x[0]), Signed),
        unary_case(
            "leaky_relu",
            |g, x| g.unary(Unary::LeakyRelu(0.1), x[0]),
            Signed,
        ),
        unary_case("elu", |g, x| g.unary(Unary::Elu, x[0]), Signed),
        unary_case("silu", |g, x| g.unary(Unary::Silu, x[0]), Signed),
        unary_case("square", |g, x| g.square(x[0]), Signed),
        unary_case("abs", |g, x| g.unary(Unary::Abs, x[0]), Signed),
        unary_case("sqrt", |g, x| g.unary(Unary::Sqrt, x[0]), Positive),
        unary_case(
            "clamp",
            |g, x| g.unary(Unary::Clamp(-0.8, 0.9), x[0]),
            Signed,
        ),
        unary_case("scale", |g, x| g.scale(x[0], -2.5), Signed),
        unary_case("add_scalar", |g, x| g.add_scalar(x[0], 0.7), Signed),
        unary_case("softmax", |g, x| g.softmax(x[0]), Signed),
        unary_case("logsumexp", |g, x| g.logsumexp(x[0]), Signed),
        unary_case("cumsum", |g, x| g.cumsum(x[0], false), Signed),
        unary_case("cumsum_reverse", |g, x| g.cumsum(x[0], true), Signed),
        unary_case("sum_rows", |g, x| g.sum(Axis::Rows, x[0]), Signed),
        unary_case("sum_cols", |g, x| g.sum(Axis::Cols, x[0]), Signed),
        unary_case("sum_all", |g, x| g.sum(Axis::All, x[0]), Signed),
        unary_case("mean_rows", |g, x| g.mean(Axis::Rows, x[0]), Signed),
        unary_case("cols", |g, x| g.cols(x[0], 1, 2), Signed),
        unary_case("pad_cols", |g, x| g.pad_cols(x[0], 2, 6), Signed),
        unary_case(
            "permute_cols",
            |g, x| g.permute_cols(x[0], &[2, 0, 1]),
            Signed,
        ),
        // Products with the input itself make the second derivative non-trivial.
        unary_case(
            "tanh_of_square",
            |g, x| {
                let s = g.square(x[0]);
                g.tanh(s)
            },
            Signed,
        ),
    ];
    let binary = |name, f: fn(&mut Graph, &[Var]) -> Var, b: (usize, usize), db| Case {
        name,
        inputs: vec![(4, 3, Domain::Signed), (b.0, b.1, db)],
        build: f,
        tol: 1e-6,
    };
    for shape in [(4, 3), (1, 3), (4, 1), (1, 1)] {
        v.push(binary("add", |g, x| g.add(x[0], x[1]), shape, Signed));
        v.push(binary("sub", |g, x| g.sub(x[0], x[1]), shape, Signed));
        v.push(binary("mul", |g, x| g.mul(x[0], x[1]), shape, Signed));
        v.push(binary("div", |g, x| g.div(x[0], x[1]), shape, Positive));
        v.push(binary(
            "tanh_grad",
            |g, x| g.binary(Binary::TanhGrad, x[0], x[1]),
            shape,
            Signed,
        ));
        v.push(binary(
            "sigmoid_grad",
            |g, x| g.binary(Binary::SigmoidGrad, x[0], x[1]),
            shape,
            Signed,
        ));
    }
    v.push(Case {
        name: "broadcast_row",
        inputs: vec![(1, 3, Signed)],
        build: |g, x| g.broadcast(x[0], Shape::new(4, 3)),
        tol: 1e-6,
    });
    v.push(Case {
        name: "broadcast_col",
        inputs: vec![(4, 1, Signed)],
        build: |g, x| g.broadcast(x[0], Shape::new(4, 3)),
        tol: 1e-6,
    });
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let build: fn(&mut Graph, &[Var]) -> Var = match (ta, tb) {
            (false, false) => |g, x| g.matmul_t(x[0], x[1], false, false),
            (true, false) => |g, x| g.matmul_t(x[0], x[1], true, false),
            (false, true) => |g, x| g.matmul_t(x[0], x[1], false, true),
            (true, true) => |g, x| g.matmul_t(x[0], x[1], true, true),
        };
        let a = if ta { (3, 4) } else { (4, 3) };
        let b = if tb { (2, 3) } else { (3, 2) };
        v.push(Case {
            name: "matmul",
            inputs: vec![(a.0, a.1, Signed), (b.0, b.1, Signed)],
            build,
            tol: 1e-6,
        });
    }
    v.push(Case {
        name: "linear",
        inputs: vec![(5, 3, Signed), (3, 4, Signed), (1, 4, Signed)],
        build: |g, x| g.linear(x[0], x[1], x[2]),
        tol: 1e-6,
    });
    v.push(Case {
        name: "mlp_tanh",
        inputs: vec![
            (5, 2, Signed),
            (2, 4, Signed),
            (1, 4, Signed),
            (4, 2, Signed),
            (1, 2, Signed),
        ],
        build: |g, x| {
            let h = g.linear(x[0], x[1], x[2]);
            let h = g.tanh(h);
            g.linear(h, x[3], x[4])
        },
        tol: 1e-6,
    });
    v.push(Case {
        name: "concat",
        inputs: vec![(4, 2, Signed), (4, 1, Signed), (4, 3, Signed)],
        build: |g, x| g.concat(&[x[0], x[1], x[2]]),
        tol: 1e-6,
    });
    v.push(Case {
        name: "gather",
        inputs: vec![(6, 4, Signed), (6, 1, Index(4))],
        build: |g, x| g.gather(x[0], x[1]),
        tol: 1e-6,
    });
    v.push(Case {
        name: "scatter",
        inputs: vec![(6, 1, Signed), (6, 1, Index(3))],
        build: |g, x| g.scatter(x[0], x[1], 3),
        tol: 1e-6,
    });
    v.push(Case {
        name: "bin_index_then_gather",
        inputs: vec![(6, 5, SortedRows), (6, 1, Signed)],
        build: |g, x| {
            let i = g.bin_index(x[0], x[1]);
            let lo = g.gather(x[0], i);
            let d = g.sub(x[1], lo);
            g.square(d)
        },
        tol: 1e-6,
    });
    v.push(Case {
        name: "where",
        inputs: vec![(4, 3, Signed), (4, 3, Signed), (4, 3, Signed)],
        build: |g, x| {
            let mask = g.unary(Unary::Step, x[0]);
            let a = g.square(x[1]);
            g.select(mask, a, x[2])
        },
        tol: 1e-6,
    });
    v
}

#[test]
fn first_order_gradients_match_finite_differences() {
    for case in cases() {
        check(&case, 1);
    }
}

#[test]
fn second_order_gradients_match_finite_differences() {
    for case in cases() {
        // Second derivatives through a first-difference stencil lose a few digits.
        let case = Case {
            tol: case.tol * 100.0,
            ..case
        };
        check(&case, 2);
    }
}
