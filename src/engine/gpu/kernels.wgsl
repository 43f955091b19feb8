// flowlab's GPU kernels: every engine op in one entry point over one storage buffer.
//
// `data` holds everything a program touches (parameters, Adam's moments, gradients in the
// parameter layout, snapshots, scratch and every planned buffer). `table` holds every
// dispatch's arguments, written once when the program is compiled. A launch (the uniform
// slot `launch`, chosen by a dynamic offset) runs several lanes side by side, each on its own
// range of workgroups, and runs its kind of work: a chain of table entries one after another
// in the same workgroups, each taking the same rows of every entry (fuse.rs decides which
// may), a column sum, or Adam. Op codes
// are the `code` constants of lower.rs; a switch on a value the whole workgroup shares costs
// no divergence. f32 throughout. No subgroups, no float atomics: every reduction sums in a
// fixed order, so the same inputs give the same bits on every run.

struct Args {
    code: u32, n: u32, out: u32, out_cols: u32,
    a: u32, a_rows: u32, a_cols: u32, b: u32,
    b_rows: u32, b_cols: u32, c: u32, c_rows: u32,
    c_cols: u32, k: u32, start: u32, width: u32,
    a_rs: u32, a_cs: u32, b_rs: u32, b_cs: u32,
    bias: u32, has_bias: u32, pad0: u32, pad1: u32,
    f0: f32, f1: f32, f2: f32, f3: f32,
    f4: f32, f5: f32, f6: f32, f7: f32,
}

// This launch's lanes: records `first_lane ..< first_lane + lanes` of `schedule`.
struct Launch { first_lane: u32, lanes: u32, pad0: u32, pad1: u32 }

// One lane: where its chain's table indices start in `schedule`, how many, its first
// workgroup in the launch, its workgroups, the rows its chain runs over and the rows each
// workgroup takes (an element-wise chain: every element a row, 256 to a workgroup).
struct Lane {
    entries: u32, count: u32, first_group: u32, groups: u32,
    rows: u32, block: u32, kind: u32,
}

// A lane's kind (`Kernel::kind` in lower.rs; 0 is a chain).
const REDUCE: u32 = 1u;
const ADAM: u32 = 2u;

// Words of a lane record (LANE_WORDS in fuse.rs).
const LANE_WORDS: u32 = 8u;

@group(0) @binding(0) var<storage, read_write> data: array<f32>;
@group(0) @binding(1) var<uniform> launch: Launch;
@group(0) @binding(2) var<storage, read> table: array<Args>;
// Lane records (4 words each), then the chains' table indices.
@group(0) @binding(3) var<storage, read> schedule: array<u32>;

// The arguments of the entry this thread runs now.
var<private> args: Args;

const WG: u32 = 256u;

// This workgroup's lane, and its workgroup within the lane (a grid is split over y past
// 65,535 workgroups). Depends on the workgroup only, so control flow stays uniform.
fn find_lane(wid: vec3<u32>, nwg: vec3<u32>) -> Lane {
    let w = wid.y * nwg.x + wid.x;
    var lo = 0u;
    var hi = launch.lanes;
    while (hi - lo > 1u) {
        let mid = (lo + hi) / 2u;
        if (schedule[LANE_WORDS * (launch.first_lane + mid) + 2u] <= w) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let at = LANE_WORDS * (launch.first_lane + lo);
    let first = schedule[at + 2u];
    return Lane(
        schedule[at], schedule[at + 1u], w - first, schedule[at + 3u],
        schedule[at + 4u], schedule[at + 5u], schedule[at + 6u],
    );
}

// Set on a chain's entry that must wait for the workgroup first (BARRIER_FIRST in fuse.rs).
const BARRIER: u32 = 0x80000000u;

// Loads entry `e` of `lane`'s chain into `args`.
fn load(lane: Lane, e: u32) {
    args = table[schedule[lane.entries + e] & ~BARRIER];
}

// Why by bits: WGSL lets a compiler assume no NaN or infinity, so `x != x` may fold away.
fn finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

// Element (r, c) of an operand whose rows or columns of size 1 broadcast.
fn at(base: u32, rows: u32, cols: u32, r: u32, c: u32) -> f32 {
    let rr = select(r, 0u, rows == 1u);
    let cc = select(c, 0u, cols == 1u);
    return data[base + rr * cols + cc];
}

// A column index stored as a float, clamped into 0..cols as the CPU kernels clamp it.
fn column(i: f32, cols: u32) -> u32 {
    if (i >= 0.0) {
        return min(u32(i), cols - 1u);
    }
    return 0u;
}

// −∞, made at run time: a WGSL constant must be finite (Tint, the browser's compiler,
// rejects `bitcast<f32>(0xff800000u)`; naga accepts it).
fn neg_inf() -> f32 {
    return bitcast<f32>(0xff800000u | (args.code & 0u));
}

fn is_nan(x: f32) -> bool {
    let bits = bitcast<u32>(x);
    return (bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu) != 0u;
}

// Why not the built-in alone: WGSL's tanh inherits sinh/cosh's accuracy and overflows to NaN
// past |x| ≈ 88 on some drivers (gpuweb #4458); tanh(±15) is ±1 in f32 already. And a NaN
// passes through as on the CPU: `clamp` may turn it into a bound, which would hide a
// divergence from the guard.
fn tanh_f(x: f32) -> f32 {
    return select(tanh(clamp(x, -15.0, 15.0)), x, is_nan(x));
}

fn sigmoid_f(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-x));
}

fn softplus_f(x: f32) -> f32 {
    if (x > 30.0 || is_nan(x)) {
        return x;
    }
    // ln(1 + e^x) = max(x, 0) + ln(1 + e^{−|x|}): no overflow for large x.
    return max(x, 0.0) + log(1.0 + exp(-abs(x)));
}

fn unary(code: u32, x: f32) -> f32 {
    switch code {
        case 0u: { return -x; }
        case 1u: { return exp(x); }
        case 2u: { return log(x); }
        case 3u: { return softplus_f(x); }
        case 4u: { return tanh_f(x); }
        case 5u: { return sigmoid_f(x); }
        case 6u: { return select(max(x, 0.0), x, is_nan(x)); }
        case 7u: { return select(args.f0 * x, x, x > 0.0); }
        case 8u: { return select(exp(x) - 1.0, x, x > 0.0); }
        case 9u: { return x * sigmoid_f(x); }
        case 10u: { return x * x; }
        case 11u: { return abs(x); }
        case 12u: { return sqrt(x); }
        case 13u: { return select(min(max(x, args.f0), args.f1), x, is_nan(x)); }
        case 14u: { return args.f0 * x; }
        case 15u: { return x + args.f0; }
        case 16u: { return select(0.0, 1.0, x > 0.0); }
        case 17u: { return select(0.0, 1.0, x >= args.f0 && x <= args.f1); }
        case 18u: { return select(select(0.0, -1.0, x < 0.0), 1.0, x > 0.0); }
        default: { return x; } // 19: copy (StopGradient, gradient placement)
    }
}

fn binary(code: u32, x: f32, y: f32) -> f32 {
    switch code {
        case 32u: { return x + y; }
        case 33u: { return x - y; }
        case 34u: { return x * y; }
        case 35u: { return x / y; }
        case 36u: { return x * (1.0 - y * y); }
        default: { return x * y * (1.0 - y); } // 37: SigmoidGrad
    }
}

// One row of a row-wise op (softmax, log-sum-exp, cumulative sums, bin search, row sums).
fn row_op(code: u32, r: u32) {
    let cols = args.a_cols;
    let src = args.a + r * cols;
    switch code {
        case 64u, 65u: {
            var mx = neg_inf();
            for (var j = 0u; j < cols; j++) {
                mx = max(mx, data[src + j]);
            }
            if (code == 65u && !finite(mx)) {
                data[args.out + r] = mx;
                return;
            }
            var total = 0.0;
            for (var j = 0u; j < cols; j++) {
                let e = exp(data[src + j] - mx);
                total += e;
                if (code == 64u) {
                    data[args.out + r * cols + j] = e;
                }
            }
            if (code == 65u) {
                data[args.out + r] = mx + log(total);
            } else {
                let inv = 1.0 / total;
                for (var j = 0u; j < cols; j++) {
                    data[args.out + r * cols + j] *= inv;
                }
            }
        }
        case 66u: {
            var acc = 0.0;
            for (var j = 0u; j < cols; j++) {
                acc += data[src + j];
                data[args.out + r * cols + j] = acc;
            }
        }
        case 67u: {
            var acc = 0.0;
            for (var j = cols; j > 0u; j--) {
                acc += data[src + j - 1u];
                data[args.out + r * cols + j - 1u] = acc;
            }
        }
        case 68u: {
            // Count the interior edges at or below x: the bin index, already in 0..K.
            let q = data[args.b + r];
            var idx = 0u;
            for (var j = 1u; j + 1u < cols; j++) {
                idx += select(0u, 1u, data[src + j] <= q);
            }
            data[args.out + r] = f32(idx);
        }
        default: { // 69: Sum(Cols)
            var acc = 0.0;
            for (var j = 0u; j < cols; j++) {
                acc += data[src + j];
            }
            data[args.out + r] = acc;
        }
    }
}

// One element (or row) of an element-wise op, broadcast, column view, row-wise op or matmul.
fn element(i: u32) {
    if (i >= args.n) {
        return;
    }
    let code = args.code;
    if (code < 32u) {
        data[args.out + i] = unary(code, data[args.a + i]);
        return;
    }
    if (code == 80u) {
        data[args.out + i] = matmul_element(i);
        return;
    }
    if (code == 82u) {
        // A copy unless a step diverged since the last restore (`data[args.k]`): the
        // rollback point must never take a diverged state.
        if (data[args.k] == 0.0) {
            data[args.out + i] = data[args.a + i];
        }
        return;
    }
    if (code >= 64u) {
        row_op(code, i);
        return;
    }
    let r = i / args.out_cols;
    let j = i % args.out_cols;
    var v = 0.0;
    switch code {
        case 38u: { // Where
            let m = at(args.a, args.a_rows, args.a_cols, r, j);
            v = select(
                at(args.c, args.c_rows, args.c_cols, r, j),
                at(args.b, args.b_rows, args.b_cols, r, j),
                m != 0.0,
            );
        }
        case 39u: { v = at(args.a, args.a_rows, args.a_cols, r, j); } // Broadcast
        case 48u: { v = data[args.a + r * args.a_cols + args.start + j]; } // Cols
        case 49u: { // PadCols
            let inside = j >= args.start && j < args.start + args.width;
            let src = args.a + r * args.width + select(0u, j - args.start, inside);
            v = select(0.0, data[src], inside);
        }
        case 50u: { // one part of a Concat: n covers the part, not the output
            let pr = i / args.width;
            let pj = i % args.width;
            data[args.out + pr * args.out_cols + args.start + pj] = data[args.a + i];
            return;
        }
        case 51u: { v = data[args.a + r * args.a_cols + u32(data[args.b + j])]; } // PermuteCols
        case 52u: { // Scatter
            let hit = j == column(data[args.b + r], args.out_cols);
            v = select(0.0, data[args.a + r], hit);
        }
        case 53u: { // Gather (n = rows, out_cols = 1)
            v = data[args.a + i * args.a_cols + column(data[args.b + i], args.a_cols)];
        }
        default: {
            v = binary(
                code,
                at(args.a, args.a_rows, args.a_cols, r, j),
                at(args.b, args.b_rows, args.b_cols, r, j),
            );
        }
    }
    data[args.out + i] = v;
}

// Element i of `A·B (+ bias)`, A and B read through row and column strides (transposes
// without copies): one thread per output element, so an element-wise chain can follow it in
// the same thread (the GEMM's epilogue).
fn matmul_element(i: u32) -> f32 {
    let r = i / args.out_cols;
    let c = i % args.out_cols;
    var acc = select(0.0, data[args.bias + c], args.has_bias != 0u);
    let a0 = args.a + r * args.a_rs;
    let b0 = args.b + c * args.b_cs;
    for (var kk = 0u; kk < args.k; kk++) {
        acc += data[a0 + kk * args.a_cs] * data[b0 + kk * args.b_rs];
    }
    return acc;
}

// The one entry point: a launch's lanes may be of every kind. The kind and everything a
// barrier depends on come from the lane, the same for the whole workgroup.
@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let lane = find_lane(wid, nwg);
    if (lane.first_group >= lane.groups) {
        return;
    }
    switch lane.kind {
        case REDUCE: { reduce(lane, lid); }
        case ADAM: { adam(lane, lid); }
        default: { chain(lane, lid); }
    }
}

fn chain(lane: Lane, lid: u32) {
    // A workgroup takes `lane.block` rows of the chain; entry e covers `args.n / lane.rows`
    // elements (or rows, for a row-wise op) per row, so its elements of those rows are one
    // contiguous range of its thread indices. An entry that reads or overwrites what an
    // earlier one touched in other threads of this workgroup waits for them (the flag is the
    // same for the whole workgroup, so the barrier stays in uniform control flow).
    for (var e = 0u; e < lane.count; e++) {
        if ((schedule[lane.entries + e] & BARRIER) != 0u) {
            storageBarrier();
        }
        load(lane, e);
        let span = lane.block * (args.n / max(lane.rows, 1u));
        let first = lane.first_group * span;
        for (var t = lid; t < span; t += WG) {
            element(first + t);
        }
    }
}

// A step's verdict, after the count of non-finite parameters (`reduce`, code 2): the report
// (the loss, read from `args.c`, the gradient's sum of squares and that count, from the
// scratch at `args.k`) into the scratch and into its slot of the report ring at `args.b`,
// and the sticky flag `scratch[3]` set when the step diverged. Why sticky: the CPU reads
// reports a few steps late, and the steps submitted meanwhile must neither update the
// parameters (Adam checks the flag) nor overwrite the rollback point.
fn verdict(bad: f32) {
    let loss = data[args.c];
    let squares = data[args.k];
    data[args.k + 1u] = bad;
    data[args.k + 2u] = loss;
    data[args.b] = loss;
    data[args.b + 1u] = squares;
    data[args.b + 2u] = bad;
    if (!finite(loss) || !finite(squares) || bad != 0.0) {
        data[args.k + 3u] = 1.0;
    }
}

var<workgroup> partial: array<f32, 256>;

// Column sums in a fixed order: one workgroup per output column, each thread a strided share
// of the rows, then a tree. Sum(Rows), Sum(All) (one column of every element), and the
// gradient's sum of squares (code 1) and count of non-finite parameters, then the step's
// verdict (code 2).
fn reduce(lane: Lane, lid: u32) {
    load(lane, 0u);
    let col = lane.first_group;
    var acc = 0.0;
    for (var r = lid; r < args.a_rows; r += WG) {
        let x = data[args.a + r * args.a_cols + col];
        switch args.code {
            case 0u: { acc += x; }
            case 1u: { acc += x * x; }
            default: { acc += select(1.0, 0.0, finite(x)); }
        }
    }
    partial[lid] = acc;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half /= 2u) {
        if (lid < half) {
            partial[lid] += partial[lid + half];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        if (args.code == 2u) {
            verdict(partial[0]);
        } else {
            data[args.out + col] = partial[0];
        }
    }
}

// One Adam (AdamW) update over the flat parameters, after the gradient's sum of squares is in
// `data[args.k]`: clipped to `f6` (when > 0), skipped when the loss or the gradient is not
// finite, or once any step diverged since the last restore (the trainer then rolls back).
// Scalars are computed on the CPU exactly as
// `engine::optim` does: f0 step size, f1 1/√(bias₂), f2 ε, f3 decay, f4 β₁, f5 β₂.
fn adam(lane: Lane, lid: u32) {
    load(lane, 0u);
    let i = lane.first_group * WG + lid;
    if (i >= args.n) {
        return;
    }
    let norm = sqrt(data[args.k]);
    if (!finite(norm) || !finite(data[args.start]) || data[args.k + 3u] != 0.0) {
        return;
    }
    var g = data[args.c + i];
    if (args.f6 > 0.0 && norm > args.f6) {
        g *= args.f6 / norm;
    }
    let m = args.f4 * data[args.a + i] + (1.0 - args.f4) * g;
    let v = args.f5 * data[args.b + i] + (1.0 - args.f5) * g * g;
    data[args.a + i] = m;
    data[args.b + i] = v;
    let denom = sqrt(v) * args.f1 + args.f2;
    data[args.out + i] = data[args.out + i] * args.f3 - args.f0 * m / denom;
}
