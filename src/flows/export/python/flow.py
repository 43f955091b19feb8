# ---- the flow -----------------------------------------------------------------------------------


class Flow(nn.Module):
    """The trained flow: `layers` in sample order over `base`.

    `log_prob(x)` inverts the layers last to first (the density direction) and adds the
    log-determinants to the base log-density; `sample(n)` pushes base draws through them.
    """

    def __init__(self, dtype=torch.float64):
        super().__init__()
        weights = Weights(dtype)
        self.dtype = dtype
        self.dim = DIM
        self.layers = nn.ModuleList(BUILD(CONFIG, DIM, weights))
        self.base = Base(weights, DIM, CONFIG["learnable_base"])
        if weights.unused:
            raise ValueError("embedded parameters left unused: %s" % ", ".join(sorted(weights.unused)))
        self.to(dtype)

    def log_prob(self, x):
        """`log p(x)` per row of `x` (`[n, DIM]`), as a `[n]` tensor."""
        x = torch.as_tensor(x, dtype=self.dtype)
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError("expected points of shape [n, %d], got %s" % (self.dim, list(x.shape)))
        h = x
        total = x.new_zeros(x.shape[0])
        for layer in reversed(self.layers):
            h, log_det = layer.inverse(h)
            total = total + log_det
        return self.base.log_prob(h) + total

    def sample(self, n, generator=None):
        """`n` samples (`[n, DIM]`), from standard-normal draws of `generator`."""
        eps = torch.randn(n, self.dim, generator=generator, dtype=self.dtype)
        h = self.base.sample(eps)
        for layer in self.layers:
            h, _ = layer.forward(h)
        return h


def load(dtype=torch.float64):
    """The trained flow with its embedded weights, in `dtype` (float64 reproduces flowlab)."""
    return Flow(dtype).eval()


if __name__ == "__main__":
    flow = load()
    points = torch.linspace(-1.5, 1.5, 3 * DIM, dtype=torch.float64).reshape(3, DIM)
    with torch.no_grad():
        for point, log_p in zip(points.tolist(), flow.log_prob(points).tolist()):
            print("log p(%s) = %.6f" % (", ".join("%g" % v for v in point), log_p))
        samples = flow.sample(1000, generator=torch.Generator().manual_seed(0))
    finite = bool(torch.isfinite(samples).all())
    print("sample(1000): shape %s, all finite: %s" % (list(samples.shape), finite))
    if not finite:
        raise SystemExit(1)
