# ---- planar flows (src/flows/planar.rs) -------------------------------------------------------
# f(z) = z + û·tanh(wᵀz + b), log det = log(1 + c·(1 − tanh²)), c = ûᵀw. The raw u is
# reparameterised as û = u + (m(wᵀu) − wᵀu)·w/(‖w‖² + 1e-12), m(a) = −1 + 1e-6 + softplus(a),
# so c > −1. The inverse solves x + c·tanh x = wᵀy + b as flowlab does: 16 bisection steps on
# wᵀy + b ± |c|, 4 Newton steps, a clamp to the last bracket widened twice; z = y − û·tanh x.

BISECTION_STEPS = 16
NEWTON_STEPS = 4
FOLD_MARGIN = 1e-6
NORM_FLOOR = 1e-12


class Planar(nn.Module):
    """Planar layer `layer{k}.planar.{u,w,b}`."""

    def __init__(self, weights, k):
        super().__init__()
        self.u = weights.take("layer%d.planar.u" % k)
        self.w = weights.take("layer%d.planar.w" % k)
        self.b = weights.take("layer%d.planar.b" % k)

    def params(self):
        w_dot_u = (self.u * self.w).sum()
        m = softplus(w_dot_u) + (FOLD_MARGIN - 1.0)
        norm2 = (self.w * self.w).sum()
        floored = norm2 + NORM_FLOOR
        u_hat = self.u + (m - w_dot_u) / floored * self.w
        # ûᵀw in closed form, as flowlab computes it.
        c = m * (norm2 / floored) + w_dot_u * (NORM_FLOOR / floored)
        return u_hat, c

    def forward(self, z):
        u_hat, c = self.params()
        th = torch.tanh(z @ self.w.T + self.b)
        return z + th * u_hat, torch.log(1.0 + c * (1.0 - th * th))[:, 0]

    def solve(self, y, c):
        target = y @ self.w.T + self.b
        half = torch.abs(c)
        x = target
        for _ in range(BISECTION_STEPS):
            value = x + c * torch.tanh(x)
            half = half * 0.5
            x = x + torch.sign(target - value) * half
        centre = x.detach()
        half = half.detach()
        x = centre
        for _ in range(NEWTON_STEPS):
            th = torch.tanh(x)
            x = x - (x + c * th - target) / (1.0 + c * (1.0 - th * th))
        low, high = centre - 2.0 * half, centre + 2.0 * half
        x = torch.where(x > high, high, torch.where(x < low, low, x))
        return torch.tanh(x)

    def inverse(self, y):
        u_hat, c = self.params()
        th = self.solve(y, c)
        return y - th * u_hat, -torch.log(1.0 + c * (1.0 - th * th))[:, 0]


def build_planar(cfg, dim, weights):
    return [Planar(weights, k) for k in range(cfg["layers"])]
