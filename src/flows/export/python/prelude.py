# ---- flowlab's building blocks, in PyTorch (src/flows/{mlp,base}.rs) ----------------------

HALF_LOG_TAU = 0.5 * math.log(2.0 * math.pi)


class Weights:
    """The trained parameters by name, decoded from `_WEIGHTS` (little-endian float32)."""

    def __init__(self, dtype):
        self.dtype = dtype
        raw = base64.b64decode(_WEIGHTS)
        flat = torch.tensor(struct.unpack("<%df" % (len(raw) // 4), raw), dtype=dtype)
        self.tensors = {}
        offset = 0
        for name, rows, cols in _SPECS:
            self.tensors[name] = flat[offset:offset + rows * cols].reshape(rows, cols)
            offset += rows * cols
        if offset != flat.numel():
            raise ValueError("the embedded weights do not match their table (%d values, %d listed)"
                             % (flat.numel(), offset))
        self.unused = set(self.tensors)

    def take(self, name):
        """The parameter `name` as a trainable tensor."""
        if name not in self.tensors:
            raise KeyError("parameter %r is not among the embedded weights" % name)
        self.unused.discard(name)
        return nn.Parameter(self.tensors[name].clone())


def softplus(a):
    """`ln(1 + e^a)`, linear above 30 (as flowlab's)."""
    return torch.where(a > 30.0, a, torch.log1p(torch.exp(torch.clamp(a, max=30.0))))


def activation(name):
    """The hidden nonlinearity `name` (tanh, relu, silu: `a·σ(a)`, elu: `a` or `e^a − 1`)."""
    if name == "tanh":
        return torch.tanh
    if name == "relu":
        return torch.relu
    if name == "silu":
        return lambda a: a * torch.sigmoid(a)
    if name == "elu":
        return lambda a: torch.where(a > 0, a, torch.expm1(torch.clamp(a, max=0.0)))
    raise ValueError("unknown activation %r" % name)


class Mlp(nn.Module):
    """Dense layers `h·W + b` (W is `in × out`, optionally masked) with `act` between them."""

    def __init__(self, weights, name, n_layers, act, masks=None):
        super().__init__()
        self.w = nn.ParameterList([weights.take("%s.w%d" % (name, i)) for i in range(n_layers)])
        self.b = nn.ParameterList([weights.take("%s.b%d" % (name, i)) for i in range(n_layers)])
        self.act = activation(act)
        self.masked = masks is not None
        for i, mask in enumerate(masks or []):
            self.register_buffer("mask%d" % i, mask)

    def forward(self, x):
        h = x
        n = len(self.w)
        for i in range(n):
            w = self.w[i] * getattr(self, "mask%d" % i) if self.masked else self.w[i]
            h = h @ w + self.b[i]
            if i + 1 < n:
                h = self.act(h)
        return h


class Base(nn.Module):
    """`N(0, I)`, or `N(μ, diag σ²)` with trained `μ` and `log σ` (`base.mean`, `base.log_std`)."""

    def __init__(self, weights, dim, learnable):
        super().__init__()
        self.dim = dim
        self.learnable = learnable
        if learnable:
            self.mean = weights.take("base.mean")
            self.log_std = weights.take("base.log_std")

    def log_prob(self, z):
        """`−½ Σ ((z − μ)/σ)² − Σ log σ − (D/2)·log 2π` per row."""
        if self.learnable:
            u = (z - self.mean) * torch.exp(-self.log_std)
            return -0.5 * (u * u).sum(1) - self.log_std.sum() - self.dim * HALF_LOG_TAU
        return -0.5 * (z * z).sum(1) - self.dim * HALF_LOG_TAU

    def sample(self, eps):
        """Base points from standard-normal draws."""
        if self.learnable:
            return eps * torch.exp(self.log_std) + self.mean
        return eps


def per_row(value, x):
    """A `1×1` (or scalar) log-det repeated for each row of `x`."""
    return value.reshape(()).expand(x.shape[0])
