"""Three precisions a Gaussian could give a sinh-arcsinh step of unit scale, by tail weight t.

* ``1 / Var``: what the whitening uses (forecast.models.tails.sinh_arcsinh_variance's fit);
* Fisher information for location, E[(d log p / dx)^2] (quadrature over the standard normal z);
* the curvature of -log p at 0, (1 + t)^2.

Run from the repository root: .venv/bin/python benchmarks/results/dynamic/whitening_precision/step_precision.py
"""

import numpy as np

from forecast.models.tails import sinh_arcsinh, sinh_arcsinh_logp, sinh_arcsinh_variance

z = np.linspace(-14.0, 14.0, 400_001)
weight = np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi) * (z[1] - z[0])
ts = np.linspace(0.0, 0.5, 51)
fisher = []
for t in ts:
    x = sinh_arcsinh(z, t)
    h = 1e-6
    score = (sinh_arcsinh_logp(x + h, t) - sinh_arcsinh_logp(x - h, t)) / (2.0 * h)
    fisher.append(float(np.sum(score * score * weight)))
fisher = np.array(fisher)
design = np.vstack([ts, ts**2]).T
coefficients, *_ = np.linalg.lstsq(design, np.log(fisher), rcond=None)
print("t | 1 / Var (the whitening's) | Fisher information | curvature at 0")
for t, info in zip(ts, fisher, strict=True):
    if round(t * 100) % 10 == 0 or abs(t - 0.46) < 1e-9:
        print(f"{t:.2f} | {1.0 / float(sinh_arcsinh_variance(t)):.3f} | {info:.3f} | {(1.0 + t) ** 2:.3f}")
largest = np.abs(design @ coefficients - np.log(fisher)).max()
print(f"log Fisher information = {coefficients[0]:.8f} t + {coefficients[1]:.8f} t^2 (largest error {largest:.1e})")
h = 1e-3
for x in (0.0, 0.5, 1.0, 2.0):
    curvature = (
        -(sinh_arcsinh_logp(x + h, 0.46) - 2.0 * sinh_arcsinh_logp(x, 0.46) + sinh_arcsinh_logp(x - h, 0.46)) / h**2
    )
    print(f"t = 0.46: curvature of -log p at {x:.1f} scale: {curvature:.2f}")
