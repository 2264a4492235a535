//! The statistics of a plan's compare guard: a gray lane's metric against stable's.
//!
//! Each side gives one value per instance. The guard asks two questions. Is the lane worse with
//! significance (a one-sided Mann-Whitney U test)? Is it worse by more than the allowed effect
//! (a ratio of medians and, optionally, an absolute difference)? The lane fails only when both
//! answers are yes.
//!
//! The test reproduces `scipy.stats.mannwhitneyu` with `method="auto"` and continuity
//! correction. Everything here is pure arithmetic: no I/O, no clock, no threads.

use crate::words::words;
use std::cmp::Ordering;
use std::f64::consts::{FRAC_1_SQRT_2, PI};

words! {
    /// Which way is good for a metric.
    pub enum Direction {
        /// Smaller values are better: error rates, latencies.
        LowerIsBetter = "lower_is_better",
        /// Larger values are better: success rates, throughput.
        HigherIsBetter = "higher_is_better",
    }
}

/// Which way the one-sided test looks: is x stochastically greater / less than y.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alternative {
    /// x tends to be greater than y.
    Greater,
    /// x tends to be less than y.
    Less,
}

/// U statistic of `x` and the one-sided p-value, as `scipy.stats.mannwhitneyu(x, y,
/// alternative=..., method="auto", use_continuity=True)` computes them.
///
/// U is scipy's U1 = R1 - n1(n1+1)/2, where R1 sums the ranks of `x` in the pooled sample. Tied
/// values share their average rank.
///
/// The p-value is exact when there are no ties and at least one side has 8 values or fewer. This
/// is scipy's own rule (scipy 1.17: asymptotic when both sides exceed 8 or any value is tied).
/// Otherwise it comes from the normal approximation with tie and continuity corrections. When
/// every value is the same, the tie-corrected variance is zero and U equals its mean; the
/// p-value is then 1.0, as scipy gives. The exact distribution takes time in proportion to
/// n1 n2 times the smaller side, and memory in proportion to n1 n2.
///
/// Returns `None` when either side is empty or holds a value that is not finite.
pub fn mann_whitney_u(x: &[f64], y: &[f64], alternative: Alternative) -> Option<(f64, f64)> {
    if x.is_empty() || y.is_empty() || x.iter().chain(y).any(|v| !v.is_finite()) {
        return None;
    }
    let (n1, n2) = (x.len(), y.len());
    let (rank_sum, tie_term) = rank_sum_and_ties(x, y);
    let n1f = n1 as f64;
    let pairs = n1f * n2 as f64;
    let u1 = rank_sum - n1f * (n1f + 1.0) / 2.0;
    // As scipy does: "less" is the survival function of U2 = n1 n2 - U1.
    let u = match alternative {
        Alternative::Greater => u1,
        Alternative::Less => pairs - u1,
    };
    let p = if (n1 > 8 && n2 > 8) || tie_term > 0.0 {
        asymptotic_sf(u, n1, n2, tie_term)
    } else {
        // Without ties U is a whole number from 0 to n1 n2.
        exact_sf(u.round() as usize, n1, n2)
    };
    Some((u1, p.clamp(0.0, 1.0)))
}

/// The sum of `x`'s average ranks in the pooled sample, and the tie term sum(t³ - t) over the
/// groups of tied values.
fn rank_sum_and_ties(x: &[f64], y: &[f64]) -> (f64, f64) {
    let mut pooled: Vec<(f64, bool)> = x
        .iter()
        .map(|&v| (v, true))
        .chain(y.iter().map(|&v| (v, false)))
        .collect();
    // All values are finite; -0.0 and 0.0 compare equal, so they tie.
    pooled.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(Ordering::Equal));
    let (mut rank_sum, mut tie_term) = (0.0, 0.0);
    let mut start = 0;
    while start < pooled.len() {
        let mut end = start + 1;
        while end < pooled.len() && pooled[end].0 == pooled[start].0 {
            end += 1;
        }
        // Ranks start + 1 ..= end share their mean.
        let average = (start + 1 + end) as f64 / 2.0;
        let in_x = pooled[start..end].iter().filter(|(_, is_x)| *is_x).count();
        rank_sum += average * in_x as f64;
        let t = (end - start) as f64;
        tie_term += t * t * t - t;
        start = end;
    }
    (rank_sum, tie_term)
}

/// P(U >= u) from the normal approximation, with tie and continuity corrections.
fn asymptotic_sf(u: f64, n1: usize, n2: usize, tie_term: f64) -> f64 {
    let (n1, n2) = (n1 as f64, n2 as f64);
    let n = n1 + n2;
    let mu = n1 * n2 / 2.0;
    let variance = n1 * n2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    if variance <= 0.0 || !variance.is_finite() {
        // Every value is tied, so U is its mean: nothing points either way.
        return 1.0;
    }
    let z = (u - mu - 0.5) / variance.sqrt();
    normal_sf(z)
}

/// The survival function of the standard normal distribution: P(Z > z).
fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z * FRAC_1_SQRT_2)
}

/// P(U >= u) under the exact null distribution of U for sides of `n1` and `n2` values (no ties).
fn exact_sf(u: usize, n1: usize, n2: usize) -> f64 {
    let (small, large) = (n1.min(n2), n1.max(n2));
    let pairs = small * large;
    if u == 0 {
        return 1.0;
    }
    if u > pairs {
        return 0.0;
    }
    // The distribution is symmetric: P(U >= u) = P(U <= n1 n2 - u). Sum the shorter tail.
    if 2 * u > pairs {
        ways_up_to::<i128>(pairs - u, small, large)
            .map_or_else(|| exact_tail_f64(pairs - u, small, large), |(w, t)| w / t)
    } else {
        ways_up_to::<i128>(u - 1, small, large).map_or_else(
            || 1.0 - exact_tail_f64(u - 1, small, large),
            |(w, t)| (t - w) / t,
        )
    }
}

/// P(U <= k) with floating-point counts, for sizes whose counts overflow i128.
fn exact_tail_f64(k: usize, small: usize, large: usize) -> f64 {
    ways_up_to::<f64>(k, small, large).map_or(f64::NAN, |(w, t)| w / t)
}

/// A number of ways: exact integers while they fit, floating point beyond.
trait Ways: Copy {
    const ZERO: Self;
    const ONE: Self;
    fn plus(self, other: Self) -> Option<Self>;
    fn minus(self, other: Self) -> Option<Self>;
    /// `self * numerator / denominator`, where the division is exact for integers.
    fn scale(self, numerator: usize, denominator: usize) -> Option<Self>;
    fn as_f64(self) -> f64;
}

impl Ways for i128 {
    const ZERO: Self = 0;
    const ONE: Self = 1;
    fn plus(self, other: Self) -> Option<Self> {
        self.checked_add(other)
    }
    fn minus(self, other: Self) -> Option<Self> {
        self.checked_sub(other)
    }
    fn scale(self, numerator: usize, denominator: usize) -> Option<Self> {
        let product = self.checked_mul(i128::try_from(numerator).ok()?)?;
        Some(product / i128::try_from(denominator).ok()?)
    }
    fn as_f64(self) -> f64 {
        self as f64
    }
}

impl Ways for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    fn plus(self, other: Self) -> Option<Self> {
        Some(self + other)
    }
    fn minus(self, other: Self) -> Option<Self> {
        Some(self - other)
    }
    fn scale(self, numerator: usize, denominator: usize) -> Option<Self> {
        Some(self * numerator as f64 / denominator as f64)
    }
    fn as_f64(self) -> f64 {
        self
    }
}

/// The number of arrangements with U <= k and the number of all arrangements, C(small + large,
/// small), as floating point. `None` when a count overflows.
///
/// The frequencies of U are the coefficients of the Gaussian binomial [small + large choose
/// small] in q. It is built one factor (1 - q^(large + j)) / (1 - q^j) at a time, truncated
/// at degree k; after step j it is [large + j choose j], so every coefficient stays a count.
fn ways_up_to<W: Ways>(k: usize, small: usize, large: usize) -> Option<(f64, f64)> {
    let mut ways = vec![W::ZERO; k + 1];
    ways[0] = W::ONE;
    let mut total = W::ONE;
    for j in 1..=small {
        for d in (large + j..=k).rev() {
            ways[d] = ways[d].minus(ways[d - large - j])?;
        }
        for d in j..=k {
            ways[d] = ways[d].plus(ways[d - j])?;
        }
        // C(large + j, j) = C(large + j - 1, j - 1) (large + j) / j, exactly.
        total = total.scale(large + j, j)?;
    }
    let mut sum = W::ZERO;
    for w in ways {
        sum = sum.plus(w)?;
    }
    Some((sum.as_f64(), total.as_f64()))
}

/// The complementary error function, erfc(x) = 1 - erf(x), to a relative error below 2e-15
/// (checked against mpmath from -6 to 27 in steps of 0.01; subnormal results lose digits).
///
/// Below 1 it is 1 - erf(x) from erf's series with positive terms. From 1 up it is the continued
/// fraction of erfc (Laplace's), 300 terms evaluated backwards. exp(-x²) is split so that x²
/// loses no digits.
pub(crate) fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < 1.0 {
        return 1.0 - erf_series(x);
    }
    if x > 27.3 {
        // Below the smallest subnormal number.
        return 0.0;
    }
    // erfc(x) = exp(-x²)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))).
    let mut fraction = x;
    for k in (1..=300_u32).rev() {
        fraction = x + f64::from(k) / 2.0 / fraction;
    }
    exp_minus_square(x) / (PI.sqrt() * fraction)
}

/// erf(x) = 2/sqrt(pi) exp(-x²) sum over k of 2^k x^(2k+1) / (1·3·…·(2k+1)); for 0 <= x < 1.
fn erf_series(x: f64) -> f64 {
    let two_x2 = 2.0 * x * x;
    let (mut term, mut sum) = (x, x);
    let mut k = 0.0;
    while term > sum * 1e-17 {
        k += 1.0;
        term *= two_x2 / (2.0 * k + 1.0);
        sum += term;
    }
    2.0 / PI.sqrt() * exp_minus_square(x) * sum
}

/// exp(-x²) with x² split into an exact part and a small rest, as in W. J. Cody's erfc.
fn exp_minus_square(x: f64) -> f64 {
    let head = (x * 16.0).trunc() / 16.0;
    let rest = (x - head) * (x + head);
    (-head * head).exp() * (-rest).exp()
}

/// The median of the finite values: the middle one, or the mean of the two middle ones for an
/// even count. NaN and infinite values are dropped first. `None` when nothing is left.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        Some(sorted[mid])
    } else {
        Some(sorted[mid - 1] / 2.0 + sorted[mid] / 2.0)
    }
}

/// What a compare guard allows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Which way is good for the metric.
    pub direction: Direction,
    /// How many times worse the lane's median may be. Default 1.2.
    pub max_ratio: f64,
    /// How much worse, in the metric's unit, the lane's median may be. `None`: the ratio alone
    /// judges the effect.
    pub max_delta: Option<f64>,
    /// Fewer finite values than this on either side is no data. Default 3.
    pub min_instances_per_side: usize,
    /// How sure the test must be that the lane is worse. Default 0.95 (p < 0.05).
    pub confidence: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            direction: Direction::LowerIsBetter,
            max_ratio: 1.2,
            max_delta: None,
            min_instances_per_side: 3,
            confidence: 0.95,
        }
    }
}

/// What a compare guard concludes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Enough values on both sides, and the lane is not worse beyond the limits.
    Passing,
    /// The lane is worse with significance and beyond the allowed effect.
    Failing,
    /// Too few values on a side to judge.
    NoData,
}

/// A lane judged against stable.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Comparison {
    /// The median of the lane's finite values.
    pub lane_median: Option<f64>,
    /// The median of stable's finite values.
    pub baseline_median: Option<f64>,
    /// How many times worse the lane is (lane/baseline for lower_is_better, baseline/lane for
    /// higher_is_better). Infinite when the divisor is 0 and the other median is not. `None` when
    /// not computable: a median is missing or negative.
    pub ratio: Option<f64>,
    /// How much worse in absolute terms (lane - baseline for lower_is_better, baseline - lane for
    /// higher_is_better). Negative when the lane is better.
    pub delta: Option<f64>,
    /// The lane's U statistic. `None` with too few values.
    pub u: Option<f64>,
    /// The one-sided p-value that the lane is worse. `None` with too few values.
    pub p_value: Option<f64>,
    /// The lane's finite values.
    pub lane_n: usize,
    /// Stable's finite values.
    pub baseline_n: usize,
    /// The conclusion.
    pub verdict: Verdict,
}

/// Judges the lane's values against stable's (the baseline's).
///
/// NaN and infinite values are dropped before anything is counted. With fewer than
/// `min_instances_per_side` values left on either side (or none), the verdict is no data. The
/// lane fails when it is worse with significance (the one-sided p-value is below
/// 1 - confidence) and beyond the allowed effect (the ratio above `max_ratio` and, when set, the
/// delta above `max_delta`; without a ratio, the delta above `max_delta`, or above 0 when that is
/// not set). Otherwise it passes.
pub fn compare(lane: &[f64], baseline: &[f64], limits: &Limits) -> Comparison {
    let lane: Vec<f64> = lane.iter().copied().filter(|v| v.is_finite()).collect();
    let baseline: Vec<f64> = baseline.iter().copied().filter(|v| v.is_finite()).collect();
    let (lane_median, baseline_median) = (median(&lane), median(&baseline));
    let (ratio, delta) = match (lane_median, baseline_median) {
        (Some(l), Some(b)) => (ratio(l, b, limits.direction), Some(worse_by(l, b, limits))),
        _ => (None, None),
    };
    let needed = limits.min_instances_per_side.max(1);
    let enough = lane.len() >= needed && baseline.len() >= needed;
    let alternative = match limits.direction {
        Direction::LowerIsBetter => Alternative::Greater,
        Direction::HigherIsBetter => Alternative::Less,
    };
    let test = if enough {
        mann_whitney_u(&lane, &baseline, alternative)
    } else {
        None
    };
    let verdict = match (test, delta) {
        (Some((_, p)), Some(delta)) => {
            let worse = p < 1.0 - limits.confidence;
            if worse && beyond(ratio, delta, limits) {
                Verdict::Failing
            } else {
                Verdict::Passing
            }
        }
        _ => Verdict::NoData,
    };
    Comparison {
        lane_median,
        baseline_median,
        ratio,
        delta,
        u: test.map(|(u, _)| u),
        p_value: test.map(|(_, p)| p),
        lane_n: lane.len(),
        baseline_n: baseline.len(),
        verdict,
    }
}

/// How much worse the lane's median is, in the metric's unit.
fn worse_by(lane: f64, baseline: f64, limits: &Limits) -> f64 {
    match limits.direction {
        Direction::LowerIsBetter => lane - baseline,
        Direction::HigherIsBetter => baseline - lane,
    }
}

/// How many times worse the lane's median is; `None` when a median is negative.
fn ratio(lane: f64, baseline: f64, direction: Direction) -> Option<f64> {
    let (worse, better) = match direction {
        Direction::LowerIsBetter => (lane, baseline),
        Direction::HigherIsBetter => (baseline, lane),
    };
    if worse < 0.0 || better < 0.0 {
        None
    } else if better == 0.0 {
        Some(if worse == 0.0 { 1.0 } else { f64::INFINITY })
    } else {
        Some(worse / better)
    }
}

/// Whether the effect is beyond what the limits allow.
fn beyond(ratio: Option<f64>, delta: f64, limits: &Limits) -> bool {
    let delta_beyond = delta > limits.max_delta.unwrap_or(0.0);
    match ratio {
        Some(ratio) => ratio > limits.max_ratio && (limits.max_delta.is_none() || delta_beyond),
        None => delta_beyond,
    }
}

/// One sentence for people, e.g. "lane p50 error rate 0.031 vs stable 0.01: 3.1× worse,
/// p = 0.004 over 6 vs 18 instances → failing".
///
/// `what` names the metric and may be empty. A lane that is not worse says "not worse". A ratio
/// below 1.05, infinite or missing gives the absolute difference instead ("worse by 0.002").
/// Too few values say e.g. "lane has 2 instances, stable 18; 3 needed on each side → no data".
pub fn sentence(c: &Comparison, what: &str, limits: &Limits) -> String {
    let what = what.trim();
    let subject = if what.is_empty() {
        "lane p50".to_owned()
    } else {
        format!("lane p50 {what}")
    };
    let (Some(lane), Some(baseline), Some(delta), Some(p), Verdict::Passing | Verdict::Failing) = (
        c.lane_median,
        c.baseline_median,
        c.delta,
        c.p_value,
        c.verdict,
    ) else {
        let needed = limits.min_instances_per_side.max(1);
        return format!(
            "lane has {}, stable {}; {needed} needed on each side → no data",
            instances(c.lane_n),
            c.baseline_n
        );
    };
    let effect = match c.ratio {
        _ if delta <= 0.0 => "not worse".to_owned(),
        Some(ratio) if ratio.is_finite() && ratio >= 1.05 => format!("{ratio:.1}× worse"),
        _ => format!("worse by {}", significant(delta, 3)),
    };
    let p = if p < 0.001 {
        "p < 0.001".to_owned()
    } else {
        format!("p = {}", significant(p, 2))
    };
    let verdict = if c.verdict == Verdict::Failing {
        "failing"
    } else {
        "passing"
    };
    format!(
        "{subject} {} vs stable {}: {effect}, {p} over {} vs {} instances → {verdict}",
        significant(lane, 3),
        significant(baseline, 3),
        c.lane_n,
        c.baseline_n
    )
}

/// "1 instance", "2 instances".
fn instances(n: usize) -> String {
    if n == 1 {
        "1 instance".to_owned()
    } else {
        format!("{n} instances")
    }
}

/// `value` with `digits` significant digits and no trailing zeros: 0.0312 → "0.0312",
/// 0.0100 → "0.01", 3.14159 → "3.14", 1234.6 → "1235". Very large or small magnitudes use
/// exponent notation ("1.23e-7").
pub fn significant(value: f64, digits: usize) -> String {
    if value == 0.0 || !value.is_finite() {
        return if value == 0.0 {
            "0".to_owned()
        } else {
            value.to_string()
        };
    }
    let magnitude = value.abs().log10().floor();
    if !(-4.0..6.0).contains(&magnitude) {
        return format!("{value:.prec$e}", prec = digits.saturating_sub(1));
    }
    // magnitude is a whole number in -4..6, so the cast is exact.
    let decimals = (digits as i64 - 1 - magnitude as i64).max(0);
    let text = format!("{value:.prec$}", prec = decimals as usize);
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The generator of the reference script: a 64-bit LCG, `off + scale * uniform[0, 1)`.
    fn lcg(seed: u64, n: usize, scale: f64, off: f64) -> Vec<f64> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                off + scale * ((s >> 11) as f64 / 9_007_199_254_740_992.0)
            })
            .collect()
    }

    fn rounded(values: Vec<f64>) -> Vec<f64> {
        values.into_iter().map(f64::round_ties_even).collect()
    }

    fn close(actual: f64, expected: f64, relative: f64) -> bool {
        actual == expected || (actual - expected).abs() <= relative * expected.abs()
    }

    /// (name, x, y, U1, p for "greater", p for "less").
    type Case = (&'static str, Vec<f64>, Vec<f64>, f64, f64, f64);

    /// Reference values from scipy 1.17.1 (numpy 2.4.6, Python 3.11.7):
    /// `scipy.stats.mannwhitneyu(x, y, alternative=alt, method="auto", use_continuity=True)`.
    /// Generated vectors follow `lcg` (the script's generator); rounded ones use Python's
    /// `round(v, 0)`.
    fn reference_cases() -> Vec<Case> {
        vec![
            // Exact: no ties, small.
            (
                "3 vs 4",
                vec![1.2, 3.4, 2.2],
                vec![4.1, 5.0, 2.9, 6.3],
                1.0,
                0.971_428_571_428_571_4,
                0.057_142_857_142_857_14,
            ),
            (
                "5 vs 5",
                vec![0.11, 0.52, 0.33, 0.94, 0.25],
                vec![0.61, 0.72, 0.18, 0.89, 0.47],
                9.0,
                0.789_682_539_682_539_7,
                0.273_809_523_809_523_84,
            ),
            (
                "7 vs 7",
                vec![3.1, 4.7, 2.2, 5.9, 4.4, 3.8, 6.6],
                vec![2.0, 2.9, 4.1, 1.5, 3.3, 2.6, 5.2],
                37.0,
                0.064_102_564_102_564_11,
                0.951_340_326_340_326_4,
            ),
            // Ties force the normal approximation even when small.
            (
                "3 vs 4 tied",
                vec![1.0, 2.0, 2.0],
                vec![2.0, 3.0, 4.0, 4.0],
                1.0,
                0.979_206_829_383_906_9,
                0.047_741_616_048_773_65,
            ),
            // One side of 8 or fewer without ties: still exact in scipy.
            (
                "6 vs 18",
                lcg(1, 6, 0.02, 0.02),
                lcg(2, 18, 0.01, 0.005),
                108.0,
                7.429_641_296_918_184e-6,
                1.0,
            ),
            (
                "8 vs 9",
                lcg(7, 8, 1.0, 0.0),
                lcg(8, 9, 1.0, 0.0),
                38.0,
                0.444_179_350_061_703_06,
                0.592_595_639_654_463_2,
            ),
            (
                "8 vs 60",
                lcg(11, 8, 1.0, 0.4),
                lcg(12, 60, 1.0, 0.0),
                371.0,
                0.005_490_073_643_528_226,
                0.994_838_246_404_221_9,
            ),
            // Both sides above 8: asymptotic.
            (
                "9 vs 9",
                lcg(9, 9, 1.0, 0.2),
                lcg(10, 9, 1.0, 0.0),
                57.0,
                0.078_852_193_731_538_84,
                0.933_339_892_205_186_3,
            ),
            (
                "20 vs 30",
                lcg(3, 20, 1.0, 0.3),
                lcg(4, 30, 1.0, 0.0),
                474.0,
                0.000_295_390_416_791_084_9,
                0.999_725_480_460_786_7,
            ),
            (
                "20 vs 30 tied",
                rounded(lcg(5, 20, 10.0, 1.0)),
                rounded(lcg(6, 30, 10.0, 0.0)),
                292.5,
                0.563_354_680_688_952_7,
                0.444_509_716_231_593_5,
            ),
            // Zero tie-corrected variance: scipy's z is -inf, so p = 1 both ways.
            ("all equal", vec![0.5; 5], vec![0.5; 5], 12.5, 1.0, 1.0),
            // Extreme separation, exact and asymptotic.
            (
                "7 vs 7 apart",
                (10..17).map(f64::from).collect(),
                (0..7).map(f64::from).collect(),
                49.0,
                0.000_291_375_291_375_291_4,
                1.0,
            ),
            (
                "12 vs 12 apart",
                (100..112).map(f64::from).collect(),
                (0..12).map(f64::from).collect(),
                144.0,
                1.829_227_676_948_55e-5,
                0.999_985_791_166_164_8,
            ),
        ]
    }

    #[test]
    fn compare_mann_whitney_matches_scipy() {
        for (name, x, y, u, greater, less) in reference_cases() {
            for (alternative, expected) in
                [(Alternative::Greater, greater), (Alternative::Less, less)]
            {
                let (got_u, got_p) = mann_whitney_u(&x, &y, alternative).unwrap();
                assert_eq!(got_u, u, "{name} {alternative:?}: U");
                assert!(
                    close(got_p, expected, 1e-9),
                    "{name} {alternative:?}: p {got_p} vs {expected}"
                );
            }
        }
    }

    #[test]
    fn compare_mann_whitney_refuses_empty_and_non_finite() {
        assert_eq!(mann_whitney_u(&[], &[1.0], Alternative::Greater), None);
        assert_eq!(mann_whitney_u(&[1.0], &[], Alternative::Less), None);
        assert_eq!(
            mann_whitney_u(&[1.0, f64::NAN], &[2.0], Alternative::Greater),
            None
        );
        assert_eq!(
            mann_whitney_u(&[1.0], &[f64::INFINITY], Alternative::Greater),
            None
        );
    }

    #[test]
    fn compare_exact_counts_fall_back_to_floats_when_huge() {
        // Where both run, floating-point counts agree with the integers.
        let from_ints = ways_up_to::<i128>(50, 5, 30).unwrap();
        assert_eq!(from_ints, ways_up_to::<f64>(50, 5, 30).unwrap());
        // C(35, 5).
        assert_eq!(from_ints.1, 324_632.0);
        // C(300008, 8) is about 1.6e39, beyond i128: the floating-point path takes over and
        // stays close to the normal approximation in the middle.
        let pairs = 8 * 300_000;
        assert!(ways_up_to::<i128>(pairs / 2, 8, 300_000).is_none());
        let u = pairs / 2 + 50_000;
        let exact = exact_sf(u, 8, 300_000);
        let normal = asymptotic_sf(u as f64, 8, 300_000, 0.0);
        assert!(close(exact, normal, 0.05), "{exact} vs {normal}");
        assert!(exact_sf(pairs, 8, 300_000) > 0.0);
    }

    #[test]
    fn compare_erfc_is_precise() {
        // scipy.special.erfc (scipy 1.17.1). erfc(0.5) and erfc(2) are the brief's values too; its
        // erfc(5) = 1.5374597944280349e-12 is one ulp above scipy's, well within the tolerance.
        let known = [
            (-1.0, 1.842_700_792_949_714_8),
            (0.0, 1.0),
            (0.1, 0.887_537_083_981_715_2),
            (0.3, 0.671_373_240_540_872_6),
            (0.5, 0.479_500_122_186_953_5),
            (0.7, 0.322_198_806_162_581_7),
            (1.0, 0.157_299_207_050_285_16),
            (1.3, 0.065_992_055_059_347_58),
            (1.7, 0.016_209_541_409_225_44),
            (2.0, 0.004_677_734_981_047_266),
            (2.5, 0.000_406_952_017_444_958_86),
            (3.0, 2.209_049_699_858_544_5e-5),
            (4.0, 1.541_725_790_028_002e-8),
            (5.0, 1.537_459_794_428_034_7e-12),
            (6.5, 3.842_148_327_120_647e-20),
            (8.0, 1.122_429_717_298_292_8e-29),
            (10.0, 2.088_487_583_762_544_6e-45),
            (15.0, 7.212_994_172_451_209e-100),
            (26.0, 5.663_192_408_856_145e-296),
        ];
        for (x, expected) in known {
            let got = erfc(x);
            assert!(
                close(got, expected, 1e-13),
                "erfc({x}) = {got}, not {expected}"
            );
        }
        assert_eq!(erfc(30.0), 0.0);
        assert_eq!(erfc(-30.0), 2.0);
    }

    #[test]
    fn compare_median() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[1.0, f64::INFINITY, 2.0]), Some(1.5));
    }

    fn error_rates() -> (Vec<f64>, Vec<f64>) {
        (lcg(1, 6, 0.02, 0.02), lcg(2, 18, 0.01, 0.005))
    }

    #[test]
    fn compare_three_times_worse_fails() {
        let (lane, stable) = error_rates();
        let limits = Limits::default();
        let c = compare(&lane, &stable, &limits);
        assert_eq!(c.verdict, Verdict::Failing);
        assert_eq!((c.lane_n, c.baseline_n), (6, 18));
        assert_eq!(c.u, Some(108.0));
        assert!(c.ratio.unwrap() > 2.5);
        assert_eq!(
            sentence(&c, "error rate", &limits),
            "lane p50 error rate 0.0301 vs stable 0.0103: 2.9× worse, p < 0.001 over 6 vs 18 instances → failing"
        );
    }

    #[test]
    fn compare_equal_lane_passes() {
        let (_, stable) = error_rates();
        // scipy: p = 0.38193905527319266 (asymptotic: the lane's values also occur in stable).
        let lane = stable[..6].to_vec();
        let limits = Limits::default();
        let c = compare(&lane, &stable, &limits);
        assert_eq!(c.verdict, Verdict::Passing);
        assert_eq!(
            sentence(&c, "error rate", &limits),
            "lane p50 error rate 0.0107 vs stable 0.0103: worse by 0.00038, p = 0.38 over 6 vs 18 instances → passing"
        );
        let c = compare(&stable, &stable, &limits);
        assert_eq!(c.verdict, Verdict::Passing);
        assert_eq!(c.delta, Some(0.0));
        assert!(sentence(&c, "", &limits)
            .starts_with("lane p50 0.0103 vs stable 0.0103: not worse, p = 0.5"));
    }

    #[test]
    fn compare_too_few_is_no_data() {
        let (lane, stable) = error_rates();
        let limits = Limits::default();
        let c = compare(&lane[..2], &stable, &limits);
        assert_eq!(c.verdict, Verdict::NoData);
        assert_eq!((c.u, c.p_value), (None, None));
        assert_eq!(
            sentence(&c, "error rate", &limits),
            "lane has 2 instances, stable 18; 3 needed on each side → no data"
        );
        // Non-finite values do not count.
        let c = compare(&[0.1, f64::NAN, f64::INFINITY], &stable, &limits);
        assert_eq!((c.verdict, c.lane_n), (Verdict::NoData, 1));
        assert_eq!(
            sentence(&c, "error rate", &limits),
            "lane has 1 instance, stable 18; 3 needed on each side → no data"
        );
        let c = compare(
            &lane,
            &[],
            &Limits {
                min_instances_per_side: 0,
                ..limits
            },
        );
        assert_eq!(c.verdict, Verdict::NoData);
    }

    #[test]
    fn compare_higher_is_better_mirrors() {
        let (lane, stable) = error_rates();
        let success = |rates: &[f64]| rates.iter().map(|r| 1.0 - 20.0 * r).collect::<Vec<_>>();
        let limits = Limits {
            direction: Direction::HigherIsBetter,
            ..Limits::default()
        };
        let c = compare(&success(&lane), &success(&stable), &limits);
        assert_eq!(c.verdict, Verdict::Failing);
        assert!(c.delta.unwrap() > 0.3);
        assert!(c.ratio.unwrap() > 1.2);
        // The other way round the lane is better: it passes and is "not worse".
        let c = compare(&success(&stable), &success(&lane), &limits);
        assert_eq!(c.verdict, Verdict::Passing);
        assert!(sentence(&c, "success rate", &limits).contains(": not worse, p = 1 over 18 vs 6"));
    }

    #[test]
    fn compare_max_delta_keeps_a_tiny_difference_passing() {
        let lane: Vec<f64> = lcg(1, 10, 0.0001, 0.0021);
        let stable: Vec<f64> = lcg(2, 20, 0.0001, 0.001);
        let ratio_only = compare(&lane, &stable, &Limits::default());
        assert_eq!(ratio_only.verdict, Verdict::Failing);
        let limits = Limits {
            max_delta: Some(0.01),
            ..Limits::default()
        };
        let c = compare(&lane, &stable, &limits);
        assert_eq!(c.verdict, Verdict::Passing);
        assert!(c.p_value.unwrap() < 0.001);
        let limits = Limits {
            max_delta: Some(0.0005),
            ..Limits::default()
        };
        assert_eq!(compare(&lane, &stable, &limits).verdict, Verdict::Failing);
    }

    #[test]
    fn compare_baseline_median_zero() {
        let zeros = vec![0.0; 18];
        let limits = Limits::default();
        let c = compare(&zeros[..6], &zeros, &limits);
        assert_eq!(
            (c.ratio, c.p_value, c.verdict),
            (Some(1.0), Some(1.0), Verdict::Passing)
        );
        let (lane, _) = error_rates();
        let c = compare(&lane, &zeros, &limits);
        assert_eq!(
            (c.ratio, c.verdict),
            (Some(f64::INFINITY), Verdict::Failing)
        );
        assert_eq!(
            sentence(&c, "error rate", &limits),
            "lane p50 error rate 0.0301 vs stable 0: worse by 0.0301, p < 0.001 over 6 vs 18 instances → failing"
        );
    }

    #[test]
    fn compare_negative_medians_judge_by_delta() {
        let stable: Vec<f64> = lcg(2, 12, 1.0, -10.0);
        let lane: Vec<f64> = lcg(1, 12, 1.0, -8.0);
        let c = compare(&lane, &stable, &Limits::default());
        assert_eq!((c.ratio, c.verdict), (None, Verdict::Failing));
        let limits = Limits {
            max_delta: Some(5.0),
            ..Limits::default()
        };
        assert_eq!(compare(&lane, &stable, &limits).verdict, Verdict::Passing);
    }

    #[test]
    fn compare_significant_digits() {
        assert_eq!(significant(0.031_24, 3), "0.0312");
        assert_eq!(significant(0.01, 3), "0.01");
        assert_eq!(significant(2.468_13, 3), "2.47");
        assert_eq!(significant(1234.6, 3), "1235");
        assert_eq!(significant(0.099_96, 3), "0.1");
        assert_eq!(significant(-0.5, 3), "-0.5");
        assert_eq!(significant(1.234e-7, 3), "1.23e-7");
        assert_eq!(significant(0.004_12, 2), "0.0041");
    }

    /// Small whole numbers, so that ties happen and shifts stay exact.
    fn sample(max_len: usize) -> impl Strategy<Value = Vec<f64>> {
        prop::collection::vec((0_i32..20).prop_map(f64::from), 1..max_len)
    }

    fn alternative() -> impl Strategy<Value = Alternative> {
        prop_oneof![Just(Alternative::Greater), Just(Alternative::Less)]
    }

    proptest! {
        #[test]
        fn compare_p_is_a_probability(x in sample(25), y in sample(25), alt in alternative()) {
            let (_, p) = mann_whitney_u(&x, &y, alt).unwrap();
            prop_assert!((0.0..=1.0).contains(&p));
        }

        #[test]
        fn compare_u_of_both_sides_adds_up(x in sample(25), y in sample(25)) {
            let (u1, _) = mann_whitney_u(&x, &y, Alternative::Greater).unwrap();
            let (u2, _) = mann_whitney_u(&y, &x, Alternative::Greater).unwrap();
            prop_assert_eq!(u1 + u2, (x.len() * y.len()) as f64);
        }

        #[test]
        fn compare_swapping_sides_and_alternative_keeps_p(x in sample(25), y in sample(25)) {
            let (_, greater) = mann_whitney_u(&x, &y, Alternative::Greater).unwrap();
            let (_, less) = mann_whitney_u(&y, &x, Alternative::Less).unwrap();
            prop_assert!(close(greater, less, 1e-12), "{} vs {}", greater, less);
        }

        #[test]
        fn compare_shifting_everything_changes_nothing(
            x in sample(25), y in sample(25), alt in alternative(), shift in -1000_i32..1000
        ) {
            let moved = |v: &[f64]| v.iter().map(|a| a + f64::from(shift)).collect::<Vec<_>>();
            prop_assert_eq!(mann_whitney_u(&x, &y, alt), mann_whitney_u(&moved(&x), &moved(&y), alt));
        }

        #[test]
        fn compare_distinct_values_with_small_sides_are_exact(x in 1_usize..9, y in 1_usize..30) {
            // x values above all y values: U = n1 n2 and p = 1 / C(n1 + n2, n1).
            let lane: Vec<f64> = (0..x).map(|i| 1000.0 + i as f64).collect();
            let stable: Vec<f64> = (0..y).map(|i| i as f64).collect();
            let (u, p) = mann_whitney_u(&lane, &stable, Alternative::Greater).unwrap();
            prop_assert_eq!(u, (x * y) as f64);
            let mut total = 1.0;
            for j in 1..=x {
                total = total * (y + j) as f64 / j as f64;
            }
            prop_assert!(close(p, 1.0 / total, 1e-12), "{} vs {}", p, 1.0 / total);
        }

        #[test]
        fn compare_a_lane_above_all_of_stable_fails(
            lane in prop::collection::vec(0.0_f64..1.0, 8..30),
            stable in prop::collection::vec(0.0_f64..1.0, 8..30),
        ) {
            let worse: Vec<f64> = lane.iter().map(|v| v + 10.0).collect();
            prop_assert_eq!(compare(&worse, &stable, &Limits::default()).verdict, Verdict::Failing);
            let better: Vec<f64> = stable.iter().map(|v| v + 10.0).collect();
            prop_assert_eq!(compare(&lane, &better, &Limits::default()).verdict, Verdict::Passing);
        }

        #[test]
        fn compare_too_few_is_always_no_data(
            lane in prop::collection::vec(-1.0e6_f64..1.0e6, 0..3),
            stable in prop::collection::vec(-1.0e6_f64..1.0e6, 0..40),
            higher in any::<bool>(),
        ) {
            let direction = if higher { Direction::HigherIsBetter } else { Direction::LowerIsBetter };
            let limits = Limits { direction, ..Limits::default() };
            prop_assert_eq!(compare(&lane, &stable, &limits).verdict, Verdict::NoData);
            prop_assert_eq!(compare(&stable, &lane, &limits).verdict, Verdict::NoData);
        }
    }
}
