"""CUPED: variance reduction with a pre-experiment covariate.

A per-unit metric (a mean, a proportion, an NPS score) is adjusted by the
regression on its own pre-period value (Deng, Xu, Kohavi & Walker 2013). A ratio
of sums is adjusted the same way on its linearisation: each unit's first-order
(delta-method) contribution to the ratio, (x − R y) / ȳ, regressed on the same
for the pre-period ratio (Deng, Knoblich & Lu 2018; Budylin et al. 2018).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cxlab.stats.aggregates import CovariateStats, Estimate, RatioCovariateStats


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


Moments = tuple[float, float, float, float, float]


def _ratio_moments(s: RatioCovariateStats) -> Moments:
    """The ratio, the pre-period ratio, their linearised variances and covariance.

    With R = x̄/ȳ and R₀ = x̄₀/ȳ₀, a unit's linearised values are
    l = (x − R y)/ȳ and l₀ = (x₀ − R₀ y₀)/ȳ₀; their sample variances and
    covariance come from the centred sums C(a, b) = Σab − n ā b̄. The ratio
    is NaN where ȳ = 0; without a pre-period denominator (ȳ₀ = 0) there is no
    covariate: R₀ is NaN and l₀ = 0.
    """
    n = s.n
    mx, my, mx0, my0 = s.sum_x / n, s.sum_y / n, s.pre_x / n, s.pre_y / n
    if my == 0:
        return math.nan, math.nan, math.nan, 0.0, 0.0

    def centred(sum_ab: float, ma: float, mb: float) -> float:
        return (sum_ab - n * ma * mb) / (n - 1)

    # Deng, Knoblich & Lu (2018) eq. 3: Var(x̄/ȳ) ≈ (σ²ₓ − 2Rσₓᵧ + R²σ²ᵧ)/ȳ² per unit,
    # and the same expansion of both ratios for their covariance.
    r = mx / my
    var_l = (
        centred(s.sum_xx, mx, mx)
        - 2 * r * centred(s.sum_xy, mx, my)
        + r**2 * centred(s.sum_yy, my, my)
    ) / my**2
    if my0 == 0:
        return r, math.nan, max(var_l, 0.0), 0.0, 0.0
    r0 = mx0 / my0
    var_l0 = (
        centred(s.pre_xx, mx0, mx0)
        - 2 * r0 * centred(s.pre_xy, mx0, my0)
        + r0**2 * centred(s.pre_yy, my0, my0)
    ) / my0**2
    cov = (
        centred(s.cross_xx, mx, mx0)
        - r0 * centred(s.cross_xy, mx, my0)
        - r * centred(s.cross_yx, my, mx0)
        + r * r0 * centred(s.cross_yy, my, my0)
    ) / (my * my0)
    return r, r0, max(var_l, 0.0), max(var_l0, 0.0), cov


def _arm_moments(s: CovariateStats | RatioCovariateStats) -> Moments:
    return _ratio_moments(s) if isinstance(s, RatioCovariateStats) else _moments(s)


def cuped_adjust(
    control: CovariateStats | RatioCovariateStats,
    treatment: CovariateStats | RatioCovariateStats,
) -> CupedResult:
    """Adjust both arms' means and variances by the pre-period covariate.

    θ = Cov(Y, X) / Var(X) over the pooled units of both arms; adjusted
    mean_i = ȳ_i − θ (x̄_i − x̄), adjusted per-unit variance
    var_i = var(y)_i − 2θ cov(y, x)_i + θ² var(x)_i. The returned arms feed the
    fixed, sequential and Bayesian tests unchanged. With Var(X) = 0 there is
    nothing to adjust by: θ = 0, variance_reduction 0 and a reason.

    For a ratio (:class:`~stats.aggregates.RatioCovariateStats`) Y is the
    ratio's linearised per-unit value and X the pre-period ratio's: ȳ_i is the
    arm's ratio R_i, x̄_i its pre-period ratio, the variances and covariance
    those of the linearised values (pooled ones linearised at the pooled
    ratios), so the adjusted arm is R_i − θ (R₀,i − R₀) with the delta-method
    variance of l − θ l₀.

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
        Deng, A., Knoblich, U. & Lu, J. (2018). Applying the delta method in
        metric analytics. KDD 2018. arXiv:1803.06336, eq. 3 and §3.3 (CUPED of
        ratio metrics through the delta method).
        Budylin, R., Drutsa, A., Katsev, I. & Tsoy, V. (2018). Consistent
        transformation of ratio metrics for efficient online controlled
        experiments. WSDM 2018. DOI:10.1145/3159652.3159699 (linearisation).
    """
    if control.n < 2 or treatment.n < 2:
        return CupedResult(
            Estimate(control.n, math.nan, math.nan),
            Estimate(treatment.n, math.nan, math.nan),
            math.nan,
            math.nan,
            "an arm has fewer than 2 units",
        )
    pooled = control + treatment  # type: ignore[operator]
    _, mx_pooled, _, var_x_pooled, cov_pooled = _arm_moments(pooled)
    moments = [_arm_moments(control), _arm_moments(treatment)]
    reason = None
    if any(math.isnan(m[0]) for m in moments):
        theta, reason = 0.0, "an arm's ratio has a zero denominator"
    elif any(math.isnan(m[1]) for m in moments):
        theta, reason = 0.0, "an arm has no pre-period denominator"
    elif var_x_pooled > 0:
        theta = cov_pooled / var_x_pooled  # Deng et al. (2013) §3: θ = cov(Y, X)/var(X)
    else:
        theta, reason = 0.0, "the pre-period covariate has zero variance"
    arms = []
    unadjusted = adjusted = 0.0
    for s, (my, mx, var_y, var_x, cov) in zip(
        (control, treatment), moments, strict=True
    ):
        # Deng et al. (2013) §3: ȳ − θ (x̄ − E[X])
        mean = my - theta * (mx - mx_pooled) if theta else my
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
