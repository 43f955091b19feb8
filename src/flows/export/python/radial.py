# ---- radial flows (src/flows/radial.rs) -------------------------------------------------------
# f(z) = z + β/(α + r)·(z − z₀), r = ‖z − z₀‖, α = softplus(α̂), β = −α + softplus(β̂);
# log det = (D − 1)·log(1 + βh) + log(1 + βh·α/(α + r)), h = 1/(α + r). The inverse solves
# r² + (α + β − s)·r − α·s = 0 for r ≥ 0 in flowlab's cancellation-free form, s = ‖y − z₀‖.

DISTANCE_FLOOR = 1e-24


class Radial(nn.Module):
    """Radial layer `layer{k}.radial.{centre,alpha,beta}`."""

    def __init__(self, weights, k, dim):
        super().__init__()
        self.centre = weights.take("layer%d.radial.centre" % k)
        self.alpha_raw = weights.take("layer%d.radial.alpha" % k)
        self.beta_raw = weights.take("layer%d.radial.beta" % k)
        self.dim = dim

    def params(self):
        alpha = softplus(self.alpha_raw)
        return alpha, softplus(self.beta_raw) - alpha

    def offset(self, x):
        d = x - self.centre
        return d, torch.sqrt((d * d).sum(1, keepdim=True) + DISTANCE_FLOOR)

    def gain_and_log_det(self, alpha, beta, r):
        bh = beta / (r + alpha)
        gain = bh + 1.0
        log_det = torch.log(bh * (alpha / (r + alpha)) + 1.0)
        if self.dim > 1:
            log_det = log_det + (self.dim - 1) * torch.log(gain)
        return gain, log_det[:, 0]

    def forward(self, z):
        alpha, beta = self.params()
        d, r = self.offset(z)
        gain, log_det = self.gain_and_log_det(alpha, beta, r)
        return self.centre + d * gain, log_det

    def inverse(self, y):
        alpha, beta = self.params()
        d, s = self.offset(y)
        b = alpha + beta - s
        root = torch.sqrt(b * b + 4.0 * (s * alpha))
        positive = b > 0
        plain = (root - b) * 0.5
        stable = 2.0 * (s * alpha) / torch.where(positive, b + root, torch.ones_like(b))
        r = torch.where(positive, stable, plain)
        gain, log_det = self.gain_and_log_det(alpha, beta, r)
        return self.centre + d / gain, -log_det


def build_radial(cfg, dim, weights):
    return [Radial(weights, k, dim) for k in range(cfg["layers"])]
