# ---- adaptive evaluation of a CNF: Dormand–Prince 5(4) (src/flows/cnf/{dopri,adaptive}.rs) ----
# flowlab's own scheme, step for step: the state of a chunk of n points is [z (n×D row-major),
# ℓ (n)]; a step is accepted when max |err / (atol + rtol·max(|y₀|, |y₁|))| ≤ 1 over the whole
# chunk (every point of a chunk shares the step sizes), the next step is
# h·clamp(0.9·ratio^(−1/5), 0.2, 10), the first step Hairer's (in the max norm). Densities
# integrate T → 0, samples 0 → T, in chunks of CHUNK points as `flowlab eval` does. No gradients
# flow through the adaptive solver (flowlab trains with RK4).

CHUNK = 1024
MAX_STEPS = 10000
_C = [0.0, 0.2, 0.3, 0.8, 8.0 / 9.0, 1.0, 1.0]
_A = [
    [],
    [0.2],
    [3.0 / 40.0, 9.0 / 40.0],
    [44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0],
    [19372.0 / 6561.0, -25360.0 / 2187.0, 64448.0 / 6561.0, -212.0 / 729.0],
    [9017.0 / 3168.0, -355.0 / 33.0, 46732.0 / 5247.0, 49.0 / 176.0, -5103.0 / 18656.0],
    [35.0 / 384.0, 0.0, 500.0 / 1113.0, 125.0 / 192.0, -2187.0 / 6784.0, 11.0 / 84.0],
]
_E = [71.0 / 57600.0, 0.0, -71.0 / 16695.0, 71.0 / 1920.0, -17253.0 / 339200.0, 22.0 / 525.0,
      -1.0 / 40.0]


def _max_abs(v):
    return v.abs().max().item() if v.numel() else 0.0


def _initial_step(rhs, y, f0, t0, direction, rtol, atol):
    scale = atol + rtol * y.abs()
    d0 = _max_abs(y / scale)
    d1 = _max_abs(f0 / scale)
    h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
    f1 = rhs(t0 + direction * h0, y + direction * h0 * f0)
    d2 = _max_abs((f1 - f0) / scale) / h0
    if max(d1, d2) <= 1e-15:
        h1 = max(h0 * 1e-3, 1e-6)
    else:
        h1 = (0.01 / max(d1, d2)) ** 0.2
    h = min(100.0 * h0, h1)
    return h if math.isfinite(h) and h > 0 else 1e-6


def dopri5(rhs, y, t0, t1, rtol, atol):
    """Integrates dy/dt = rhs(t, y) from t0 to t1 (either direction)."""
    span = t1 - t0
    if span == 0 or y.numel() == 0:
        return y
    direction = math.copysign(1.0, span)
    k = [None] * 7
    k[0] = rhs(t0, y)
    if not bool(torch.isfinite(k[0]).all()):
        raise RuntimeError("the vector field became non-finite at t = %g" % t0)
    h = direction * min(_initial_step(rhs, y, k[0], t0, direction, rtol, atol), abs(span))
    t, attempts = t0, 0
    while (t1 - t) * direction > 0:
        if attempts >= MAX_STEPS:
            raise RuntimeError("the adaptive solver needed more than %d steps" % MAX_STEPS)
        if (t + h - t1) * direction > 0:
            h = t1 - t
        if abs(h) <= 1e-12 * max(abs(t), 1.0):
            raise RuntimeError("the adaptive solver's step size underflowed at t = %g" % t)
        for s in range(1, 7):
            increment = sum(a * k[j] for j, a in enumerate(_A[s]))
            stage = y + h * increment
            k[s] = rhs(t + _C[s] * h, stage)
        y_new = stage
        err = h * sum(e * k[j] for j, e in enumerate(_E))
        r = (err / (atol + rtol * torch.maximum(y.abs(), y_new.abs()))).abs()
        ratio = float("nan") if bool(torch.isnan(r).any()) else r.max().item()
        attempts += 1
        if not math.isfinite(ratio):
            h *= 0.2
            continue
        factor = 10.0 if ratio == 0.0 else min(max(0.9 * ratio ** -0.2, 0.2), 10.0)
        if ratio <= 1.0:
            t += h
            y = y_new
            k[0] = k[6]
            h *= factor
        else:
            h *= min(factor, 1.0)
    if not bool(torch.isfinite(y).all()):
        raise RuntimeError("the vector field became non-finite at t = %g" % t)
    return y


class AdaptiveOde(nn.Module):
    """The whole CNF as one layer, solved by Dormand–Prince to (rtol, atol)."""

    def __init__(self, ode, field, rtol, atol):
        super().__init__()
        self.ode = ode
        self.field = field
        self.rtol = rtol
        self.atol = atol

    def solve(self, x, backwards):
        ode, state = self.ode, self.ode.data_dim + self.ode.augment
        points, log_dets = [], []
        with torch.no_grad():
            for chunk in x.split(CHUNK):
                n = chunk.shape[0]

                def rhs(t, y):
                    f, trace = self.field(y[:n * state].reshape(n, state), t)
                    return torch.cat([f.reshape(-1), trace])

                y = torch.cat([ode.pad(chunk).reshape(-1), chunk.new_zeros(n)])
                t0, t1 = (ode.end_time, 0.0) if backwards else (0.0, ode.end_time)
                y = dopri5(rhs, y, t0, t1, self.rtol, self.atol)
                z = y[:n * state].reshape(n, state)
                log_det = y[n * state:]
                if backwards and ode.augment > 0:
                    log_det = log_det + ode.augmented_log_prob(z)
                elif ode.augment > 0:
                    log_det = log_det + ode.augment * HALF_LOG_TAU
                points.append(z[:, :ode.data_dim])
                log_dets.append(log_det)
        if not points:
            return x, x.new_zeros(0)
        return torch.cat(points), torch.cat(log_dets)

    def forward(self, z):
        return self.solve(z, False)

    def inverse(self, x):
        return self.solve(x, True)


def build_cnf_adaptive(cfg, dim, weights):
    ode, field = cnf_field(cfg, dim, weights)
    return [AdaptiveOde(ode, field, cfg["cnf"]["rtol"], cfg["cnf"]["atol"])]
