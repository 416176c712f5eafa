"""CUPED: variance reduction with a pre-experiment covariate."""

from __future__ import annotations

import math
from dataclasses import dataclass

from stats.aggregates import CovariateStats, Estimate


@dataclass(frozen=True, slots=True)
class CupedResult:
    """Result of :func:`cuped_adjust`.

    Attributes:
        control: adjusted control arm (n, mean, per-unit var).
        treatment: adjusted treatment arm.
        theta: regression coefficient Cov(Y, X) / Var(X) from the pooled arms.
        variance_reduction: 1 − Var_adj(diff) / Var_unadj(diff), the share of the
            difference's variance removed.
        reason: why no adjustment was made, else None.
    """

    control: Estimate
    treatment: Estimate
    theta: float
    variance_reduction: float
    reason: str | None = None


def _moments(s: CovariateStats) -> tuple[float, float, float, float, float]:
    """Means of y and x, sample variances of y and x and their covariance."""
    n = s.n
    my, mx = s.sum_y / n, s.sum_x / n
    var_y = max((s.sum_yy - n * my**2) / (n - 1), 0.0)
    var_x = max((s.sum_xx - n * mx**2) / (n - 1), 0.0)
    cov = (s.sum_xy - n * my * mx) / (n - 1)
    return my, mx, var_y, var_x, cov


def cuped_adjust(control: CovariateStats, treatment: CovariateStats) -> CupedResult:
    """Adjust both arms' means and variances by the pre-period covariate.

    θ = Cov(Y, X) / Var(X) over the pooled units of both arms; adjusted
    mean_i = ȳ_i − θ (x̄_i − x̄), adjusted per-unit variance
    var_i = var(y)_i − 2θ cov(y, x)_i + θ² var(x)_i. The returned arms feed the
    fixed, sequential and Bayesian tests unchanged. With Var(X) = 0 there is
    nothing to adjust by: θ = 0, variance_reduction 0 and a reason.

    Args:
        control: control sums of y, x and their products.
        treatment: treatment sums.

    Returns:
        Adjusted arms, θ and the variance reduction of the difference.

    References:
        Deng, A., Xu, Y., Kohavi, R. & Walker, T. (2013). Improving the sensitivity
        of online controlled experiments by utilizing pre-experiment data. WSDM
        2013. DOI:10.1145/2433396.2433413, section 3 (control variates:
        θ = cov(Y, X)/var(X), Ŷ_cv = Ȳ − θ(X̄ − E X)).
    """
    if control.n < 2 or treatment.n < 2:
        return CupedResult(
            Estimate(control.n, math.nan, math.nan),
            Estimate(treatment.n, math.nan, math.nan),
            math.nan,
            math.nan,
            "an arm has fewer than 2 units",
        )
    pooled = control + treatment
    _, mx_pooled, _, var_x_pooled, cov_pooled = _moments(pooled)
    reason = None
    if var_x_pooled > 0:
        theta = cov_pooled / var_x_pooled  # Deng et al. (2013) §3: θ = cov(Y, X)/var(X)
    else:
        theta, reason = 0.0, "the pre-period covariate has zero variance"
    arms = []
    unadjusted = adjusted = 0.0
    for s in (control, treatment):
        my, mx, var_y, var_x, cov = _moments(s)
        mean = my - theta * (mx - mx_pooled)  # Deng et al. (2013) §3: ȳ − θ (x̄ − E[X])
        # Deng et al. (2013) §3: Var(Y − θX) = Var(Y) − 2θ Cov(Y, X) + θ² Var(X)
        var = max(var_y - 2 * theta * cov + theta**2 * var_x, 0.0)
        arms.append(Estimate(s.n, float(mean), float(var)))
        unadjusted += var_y / s.n
        adjusted += var / s.n
    reduction = 1.0 - adjusted / unadjusted if unadjusted > 0 else math.nan
    if reason is not None:
        reduction = 0.0
    elif unadjusted <= 0:
        reason = "the outcome has zero variance"
    return CupedResult(arms[0], arms[1], float(theta), float(reduction), reason)
