# ---- coupling layers (src/flows/coupling.rs) -----------------------------------------------
# Layer k passes the coordinates j with j + k even through and moves the others.
# NICE: y_b = x_b + m(x_a), log det 0, then a diagonal scaling y = e^s ⊙ x (log det Σ s).
# RealNVP: y_b = x_b ⊙ e^s + t with (ŝ, t) = MLP(x_a), s = tanh(ŝ); log det Σ s.


class Partition:
    """Which columns condition (`conditioned`) and which move (`transformed`) in layer `k`."""

    def __init__(self, dim, k):
        self.conditioned = [j for j in range(dim) if (j + k) % 2 == 0]
        self.transformed = [j for j in range(dim) if (j + k) % 2 == 1]
        order = self.conditioned + self.transformed
        self.merge_index = [order.index(j) for j in range(dim)]

    def split(self, x):
        return x[:, self.conditioned], x[:, self.transformed]

    def merge(self, a, b):
        return torch.cat([a, b], 1)[:, self.merge_index]


class AffineCoupling(nn.Module):
    """RealNVP's coupling (also Glow's), conditioner `layer{k}.affine`."""

    def __init__(self, weights, k, dim, cfg):
        super().__init__()
        self.partition = Partition(dim, k)
        self.mlp = Mlp(weights, "layer%d.affine" % k, cfg["depth"] + 1, cfg["activation"])

    def scale_shift(self, a):
        nb = len(self.partition.transformed)
        out = self.mlp(a)
        return torch.tanh(out[:, :nb]), out[:, nb:2 * nb]

    def forward(self, x):
        a, b = self.partition.split(x)
        s, t = self.scale_shift(a)
        return self.partition.merge(a, b * torch.exp(s) + t), s.sum(1)

    def inverse(self, y):
        a, b = self.partition.split(y)
        s, t = self.scale_shift(a)
        return self.partition.merge(a, (b - t) * torch.exp(-s)), -s.sum(1)


class AdditiveCoupling(nn.Module):
    """NICE's coupling, shift network `layer{k}.shift`."""

    def __init__(self, weights, k, dim, cfg):
        super().__init__()
        self.partition = Partition(dim, k)
        self.mlp = Mlp(weights, "layer%d.shift" % k, cfg["depth"] + 1, cfg["activation"])

    def forward(self, x):
        a, b = self.partition.split(x)
        return self.partition.merge(a, b + self.mlp(a)), x.new_zeros(x.shape[0])

    def inverse(self, y):
        a, b = self.partition.split(y)
        return self.partition.merge(a, b - self.mlp(a)), y.new_zeros(y.shape[0])


class DiagonalScale(nn.Module):
    """NICE's last layer `y = e^s ⊙ x` (`nice.scale`)."""

    def __init__(self, weights, name):
        super().__init__()
        self.log_scale = weights.take(name)

    def forward(self, x):
        return x * torch.exp(self.log_scale), per_row(self.log_scale.sum(), x)

    def inverse(self, y):
        return y * torch.exp(-self.log_scale), per_row(-self.log_scale.sum(), y)


def build_realnvp(cfg, dim, weights):
    return [AffineCoupling(weights, k, dim, cfg) for k in range(cfg["layers"])]


def build_nice(cfg, dim, weights):
    layers = [AdditiveCoupling(weights, k, dim, cfg) for k in range(cfg["layers"])]
    return layers + [DiagonalScale(weights, "nice.scale")]
