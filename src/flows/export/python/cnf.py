# ---- continuous normalizing flows (src/flows/cnf/) --------------------------------------------
# dz/dt = f(z, t) from the base (t = 0) to the data (t = T); log p(x) = log p₀(z(0)) −
# ∫₀ᵀ Tr(∂f/∂z) dt. The field is an MLP on [z, t] (`cnf.field.w0` is (D+1)×H, its last row
# multiplies t), `cnf.field.w1…` hidden, `cnf.field.w_out` output. The trace is exact: one
# tangent pass per coordinate (v ↦ v·W through dense layers, v ↦ σ′(a) ⊙ v through activations).
# Augmented (ANODE): the ODE runs in D = dim + k dimensions from (x, 0), adding log N(a; 0, I_k)
# of the augmented coordinates reached — flowlab's log p_D(x, 0), not a marginal density.


def activation_slope(name, pre, post):
    """`σ′(a)` from the pre- and post-activation."""
    if name == "tanh":
        return 1.0 - post * post
    if name == "relu":
        return (pre > 0).to(pre.dtype)
    if name == "silu":
        s = torch.sigmoid(pre)
        return s * (1.0 + pre * (1.0 - s))
    if name == "elu":
        return torch.where(pre > 0, torch.ones_like(pre), post + 1.0)
    raise ValueError("unknown activation %r" % name)


class VectorField(nn.Module):
    """`f(z, t)` and its exact divergence `Tr ∂f/∂z`."""

    def __init__(self, weights, state_dim, depth, act):
        super().__init__()
        self.dim = state_dim
        self.w_in = weights.take("cnf.field.w0")
        self.b_in = weights.take("cnf.field.b0")
        self.w = nn.ParameterList([weights.take("cnf.field.w%d" % i) for i in range(1, depth)])
        self.b = nn.ParameterList([weights.take("cnf.field.b%d" % i) for i in range(1, depth)])
        self.w_out = weights.take("cnf.field.w_out")
        self.b_out = weights.take("cnf.field.b_out")
        self.act_name = act
        self.act = activation(act)

    def forward(self, z, t):
        d = self.dim
        w_z, w_t = self.w_in[:d], self.w_in[d:d + 1]
        pre = z @ w_z + (self.b_in + t * w_t)
        post = self.act(pre)
        slopes = [activation_slope(self.act_name, pre, post)]
        for w, b in zip(self.w, self.b):
            pre = post @ w + b
            post = self.act(pre)
            slopes.append(activation_slope(self.act_name, pre, post))
        f = post @ self.w_out + self.b_out
        trace = z.new_zeros(z.shape[0])
        for i in range(d):
            v = w_z[i:i + 1] * slopes[0]
            for w, s in zip(self.w, slopes[1:]):
                v = (v @ w) * s
            trace = trace + (v @ self.w_out[:, i:i + 1])[:, 0]
        return f, trace


def rk4(field, z, t0, t1, steps):
    """Classic RK4 on `steps` equal steps from t0 to t1, with ∫ Tr(∂f/∂z) dt alongside."""
    h = (t1 - t0) / steps
    log_det = z.new_zeros(z.shape[0])
    for n in range(steps):
        t = t0 + n * h
        f1, tr1 = field(z, t)
        f2, tr2 = field(z + (0.5 * h) * f1, t + 0.5 * h)
        f3, tr3 = field(z + (0.5 * h) * f2, t + 0.5 * h)
        f4, tr4 = field(z + h * f3, t + h)
        z = z + (f1 + f4) * (h / 6.0) + (f2 + f3) * (h / 3.0)
        log_det = log_det + (tr1 + tr4) * (h / 6.0) + (tr2 + tr3) * (h / 3.0)
    return z, log_det


class Ode:
    """What every time segment of one CNF shares."""

    def __init__(self, field, data_dim, cfg):
        self.field = field
        self.data_dim = data_dim
        self.augment = cfg["cnf"]["augment"]
        self.end_time = cfg["cnf"]["end_time"]
        self.steps = cfg["cnf"]["steps"]

    def time_at(self, step):
        return self.end_time * step / self.steps

    def pad(self, x):
        if self.augment == 0:
            return x
        return torch.cat([x, x.new_zeros(x.shape[0], self.augment)], 1)

    def augmented_log_prob(self, z):
        a = z[:, self.data_dim:]
        return -0.5 * (a * a).sum(1) - self.augment * HALF_LOG_TAU


class OdeSegment(nn.Module):
    """The time slice from step `first` to `first + steps` of the grid, integrated by RK4."""

    def __init__(self, ode, field, first, steps):
        super().__init__()
        self.ode = ode
        self.field = field
        self.first = first
        self.steps = steps

    def span(self):
        return self.ode.time_at(self.first), self.ode.time_at(self.first + self.steps)

    def forward(self, x):
        ta, tb = self.span()
        z, log_det = rk4(self.field, self.ode.pad(x), ta, tb, self.steps)
        if self.ode.augment > 0:
            log_det = log_det + self.ode.augment * HALF_LOG_TAU
        return z[:, :self.ode.data_dim], log_det

    def inverse(self, y):
        ta, tb = self.span()
        z, log_det = rk4(self.field, self.ode.pad(y), tb, ta, self.steps)
        if self.ode.augment > 0:
            log_det = log_det + self.ode.augmented_log_prob(z)
        return z[:, :self.ode.data_dim], log_det


def cnf_field(cfg, dim, weights):
    state_dim = dim + cfg["cnf"]["augment"]
    field = VectorField(weights, state_dim, cfg["depth"], cfg["activation"])
    return Ode(field, dim, cfg), field


def build_cnf(cfg, dim, weights):
    ode, field = cnf_field(cfg, dim, weights)
    steps = cfg["cnf"]["steps"]
    segments = 1 if ode.augment > 0 else min(cfg["layers"], steps)
    layers, first = [], 0
    for k in range(segments):
        n = steps // segments + (1 if k < steps % segments else 0)
        layers.append(OdeSegment(ode, field, first, n))
        first += n
    return layers
