# ---- MAF and IAF on MADE conditioners (src/flows/autoregressive.rs) -------------------------
# Input j has degree position[j] + 1, hidden unit k degree k mod (D − 1) + 1; hidden weights are
# kept when deg(out) ≥ deg(in), output weights when deg(out) > deg(in). Layer k is autoregressive
# in x₀, x₁, … for even k and reversed for odd k. The MADE gives (μ, α̂) per dimension and
# α = 3·tanh(α̂/3).
# MAF: x = μ(x_<) + e^α(x_<) ⊙ z; density in one pass, sampling in D passes from 0.
# IAF: x = μ(z_<) + e^α(z_<) ⊙ z; sampling in one pass, density in D passes from 0.

ALPHA_BOUND = 3.0


def made_masks(position, hidden, depth, outputs_per_dim, dtype):
    dim = len(position)
    inputs = [p + 1 for p in position]
    units = [k % max(dim - 1, 1) + 1 for k in range(hidden)]
    outputs = inputs * outputs_per_dim
    masks = []
    for layer in range(depth + 1):
        last = layer == depth
        source = inputs if layer == 0 else units
        target = outputs if last else units
        rows = [[1.0 if (b > a if last else b >= a) else 0.0 for b in target] for a in source]
        masks.append(torch.tensor(rows, dtype=dtype))
    return masks


class AutoregressiveAffine(nn.Module):
    """One MAF (`layer{k}.maf`) or IAF (`layer{k}.iaf`) layer."""

    def __init__(self, weights, k, dim, cfg, inverse_autoregressive):
        super().__init__()
        position = list(range(dim)) if k % 2 == 0 else list(reversed(range(dim)))
        name = ("layer%d.iaf" if inverse_autoregressive else "layer%d.maf") % k
        masks = made_masks(position, cfg["hidden"], cfg["depth"], 2, weights.dtype)
        self.made = Mlp(weights, name, cfg["depth"] + 1, cfg["activation"], masks)
        self.dim = dim
        self.inverse_autoregressive = inverse_autoregressive

    def shift_log_scale(self, u):
        out = self.made(u)
        d = self.dim
        return out[:, :d], ALPHA_BOUND * torch.tanh(out[:, d:2 * d] / ALPHA_BOUND)

    @staticmethod
    def affine(shift, log_scale, v, expand):
        if expand:
            return v * torch.exp(log_scale) + shift, log_scale.sum(1)
        return (v - shift) * torch.exp(-log_scale), -log_scale.sum(1)

    def one_pass(self, v, expand):
        shift, log_scale = self.shift_log_scale(v)
        return self.affine(shift, log_scale, v, expand)

    def sequential(self, v, expand):
        u = torch.zeros_like(v)
        out = (u, v.new_zeros(v.shape[0]))
        for _ in range(self.dim):
            shift, log_scale = self.shift_log_scale(u)
            out = self.affine(shift, log_scale, v, expand)
            u = out[0]
        return out

    def forward(self, z):
        if self.inverse_autoregressive:
            return self.one_pass(z, True)
        return self.sequential(z, True)

    def inverse(self, x):
        if self.inverse_autoregressive:
            return self.sequential(x, False)
        return self.one_pass(x, False)


def build_maf(cfg, dim, weights):
    return [AutoregressiveAffine(weights, k, dim, cfg, False) for k in range(cfg["layers"])]


def build_iaf(cfg, dim, weights):
    return [AutoregressiveAffine(weights, k, dim, cfg, True) for k in range(cfg["layers"])]
