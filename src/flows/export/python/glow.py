# ---- Glow (src/flows/glow.rs) ----------------------------------------------------------------
# A step in sample order: affine coupling, invertible linear map, actnorm (so that scoring data
# runs actnorm first). Density direction: actnorm y = e^{log s} ⊙ (x + b), log det Σ log s;
# linear y = x·W, W = P·L·U with L = I + strict lower part of `lower`, U = strict upper part of
# `upper` + diag(σ ⊙ e^{log|s|}), log det Σ log|s|. flowlab starts W at the identity, so P = I
# and σ = +1 (they are constants, not saved parameters).


class ActNorm(nn.Module):
    """Actnorm `{name}.bias`, `{name}.log_scale`."""

    def __init__(self, weights, name):
        super().__init__()
        self.bias = weights.take(name + ".bias")
        self.log_scale = weights.take(name + ".log_scale")

    def forward(self, y):
        x = y * torch.exp(-self.log_scale) - self.bias
        return x, per_row(-self.log_scale.sum(), y)

    def inverse(self, x):
        return (x + self.bias) * torch.exp(self.log_scale), per_row(self.log_scale.sum(), x)


class InvertibleLinear(nn.Module):
    """The LU-parameterised `D×D` map `{name}.lower`, `{name}.upper`, `{name}.log_scale`."""

    def __init__(self, weights, name, dim):
        super().__init__()
        self.lower = weights.take(name + ".lower")
        self.upper = weights.take(name + ".upper")
        self.log_scale = weights.take(name + ".log_scale")
        ones = torch.ones(dim, dim, dtype=self.lower.dtype)
        self.register_buffer("below", torch.tril(ones, -1))
        self.register_buffer("above", torch.triu(ones, 1))
        self.register_buffer("eye", torch.eye(dim, dtype=self.lower.dtype))

    def matrix(self):
        lower = self.eye + self.lower * self.below
        upper = self.upper * self.above + torch.diag(torch.exp(self.log_scale[0]))
        return lower @ upper

    def forward(self, y):
        x = torch.linalg.solve(self.matrix(), y, left=False)
        return x, per_row(-self.log_scale.sum(), y)

    def inverse(self, x):
        return x @ self.matrix(), per_row(self.log_scale.sum(), x)


def build_glow(cfg, dim, weights):
    layers = []
    for k in range(cfg["layers"]):
        layers.append(AffineCoupling(weights, k, dim, cfg))
        layers.append(InvertibleLinear(weights, "step%d.linear" % k, dim))
        layers.append(ActNorm(weights, "step%d.actnorm" % k))
    return layers
