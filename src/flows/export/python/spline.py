# ---- neural spline flows (src/flows/spline.rs) ------------------------------------------------
# Per transformed coordinate the conditioner `layer{k}.spline` gives 3K − 1 values (θʷ, θʰ, θᵈ):
# widths 2B·(m + (1 − K·m)·softmax(θʷ/2)), heights likewise, m = 1e-3; knots from −B by cumulative
# sums; interior derivatives exp(L·tanh(θᵈ/L)), L = −ln 1e-3, and 1 at both ends. Outside
# [−B, B] the map is the identity. Forward (Durkan et al. 2019, eq. 4–5) and inverse (eq. 6–8,
# the stable root ξ = 2sΔ / (b + √(b² + 4a·sΔ))) as in flowlab.

MIN_BIN_SIZE = 1e-3
MIN_DERIVATIVE = 1e-3
LOGIT_SCALE = 0.5


def bin_sizes(theta, bins, bound):
    span = 2.0 * bound
    p = torch.softmax(theta * LOGIT_SCALE, dim=1)
    return p * (span * (1.0 - bins * MIN_BIN_SIZE)) + span * MIN_BIN_SIZE


def knots(sizes, bound):
    start = torch.full((sizes.shape[0], 1), -bound, dtype=sizes.dtype)
    return torch.cumsum(torch.cat([start, sizes], 1), 1)


class Spline:
    """Rational-quadratic splines, one per row, from unnormalised parameters `raw`."""

    def __init__(self, raw, bins, bound):
        k = bins
        self.bound = bound
        self.widths = bin_sizes(raw[:, :k], k, bound)
        self.heights = bin_sizes(raw[:, k:2 * k], k, bound)
        self.x_knots = knots(self.widths, bound)
        self.y_knots = knots(self.heights, bound)
        limit = -math.log(MIN_DERIVATIVE)
        interior = torch.exp(limit * torch.tanh(raw[:, 2 * k:3 * k - 1] / limit))
        ones = raw.new_ones(raw.shape[0], 1)
        self.derivatives = torch.cat([ones, interior, ones], 1)

    def bin(self, edges, v):
        index = (edges[:, 1:-1] <= v).sum(1, keepdim=True)
        pick = lambda t: torch.gather(t, 1, index)
        width, height = pick(self.widths), pick(self.heights)
        d_left, d_right = pick(self.derivatives), torch.gather(self.derivatives[:, 1:], 1, index)
        slope = height / width
        return pick(self.x_knots), pick(self.y_knots), width, height, slope, d_left, d_right

    @staticmethod
    def log_derivative(xi, slope, d_left, d_right):
        t = xi - xi * xi
        denominator = slope + (d_left + d_right - 2.0 * slope) * t
        inner = d_right * xi * xi + d_left * (1.0 - xi) ** 2 + 2.0 * slope * t
        return torch.log(slope * slope * inner) - 2.0 * torch.log(denominator), denominator

    def forward(self, x):
        inside = (x >= -self.bound) & (x <= self.bound)
        xc = torch.clamp(x, -self.bound, self.bound)
        x_k, y_k, width, height, slope, d_left, d_right = self.bin(self.x_knots, xc)
        xi = (xc - x_k) / width
        log_derivative, denominator = self.log_derivative(xi, slope, d_left, d_right)
        y = y_k + height * (slope * xi * xi + d_left * (xi - xi * xi)) / denominator
        return torch.where(inside, y, x), torch.where(inside, log_derivative, 0.0)

    def inverse(self, y):
        inside = (y >= -self.bound) & (y <= self.bound)
        yc = torch.clamp(y, -self.bound, self.bound)
        x_k, y_k, width, height, slope, d_left, d_right = self.bin(self.y_knots, yc)
        delta = yc - y_k
        delta_sigma = delta * (d_left + d_right - 2.0 * slope)
        a = height * (slope - d_left) + delta_sigma
        b = height * d_left - delta_sigma
        s_delta = slope * delta
        disc = torch.clamp(b * b + 4.0 * (a * s_delta), min=1e-30)
        xi = 2.0 * s_delta / (b + torch.sqrt(disc))
        x = x_k + xi * width
        log_derivative, _ = self.log_derivative(xi, slope, d_left, d_right)
        return torch.where(inside, x, y), torch.where(inside, -log_derivative, 0.0)


class SplineCoupling(nn.Module):
    """A rational-quadratic spline coupling, conditioner `layer{k}.spline`; with
    `layer{k}.marginal` (models saved since flowlab had them) the conditioning half is first
    bent by splines of its own, and the conditioner sees it unbent."""

    def __init__(self, weights, k, dim, cfg):
        super().__init__()
        self.partition = Partition(dim, k)
        self.mlp = Mlp(weights, "layer%d.spline" % k, cfg["depth"] + 1, cfg["activation"])
        name = "layer%d.marginal" % k
        self.marginal = weights.take(name) if name in weights.tensors else None
        self.bins = cfg["bins"]
        self.bound = cfg["tail_bound"]

    def map_columns(self, raw, x, inverse):
        n = 3 * self.bins - 1
        ys, log_dets = [], []
        for j in range(x.shape[1]):
            spline = Spline(raw[:, j * n:(j + 1) * n], self.bins, self.bound)
            out = spline.inverse(x[:, j:j + 1]) if inverse else spline.forward(x[:, j:j + 1])
            ys.append(out[0])
            log_dets.append(out[1])
        return torch.cat(ys, 1), torch.cat(log_dets, 1).sum(1)

    def apply(self, x, inverse):
        a, b = self.partition.split(x)
        kept, log_det = a, 0.0
        if self.marginal is not None:
            theta = self.marginal.expand(a.shape[0], -1)
            kept, log_det = self.map_columns(theta, a, inverse)
            if inverse:
                a = kept
        yb, ld = self.map_columns(self.mlp(a), b, inverse)
        return self.partition.merge(kept, yb), ld + log_det

    def forward(self, x):
        return self.apply(x, False)

    def inverse(self, y):
        return self.apply(y, True)


def build_nsf(cfg, dim, weights):
    return [SplineCoupling(weights, k, dim, cfg) for k in range(cfg["layers"])]
