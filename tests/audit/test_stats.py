"""The audit's statistics against plain-numpy references and synthetic curves with known answers."""

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from locksmith.audit import stats
from locksmith.audit.stats import (
    ArmResults,
    adaptation_gain,
    arm_curve,
    bootstrap_demos_to_threshold,
    demos_to_threshold,
    isotonic_fit,
    negative_transfer,
    stronger_arm,
    wallclock_gain,
)

BUDGETS = (2, 5, 10, 20, 40, 80)


# ---- plain-numpy references -------------------------------------------------------------------


def reference_isotonic(x, y, w=None):
    """Non-decreasing least-squares fit by the min-max formula: f_i = max_{j<=i} min_{k>=i} mean(y[j..k])."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    w = np.ones_like(y) if w is None else np.asarray(w, float)
    ux = np.unique(x)
    uw = np.array([w[x == v].sum() for v in ux])
    uy = np.array([(w * y)[x == v].sum() for v in ux]) / uw
    n = ux.size
    fit = np.array([max(min(np.dot(uw[j:k + 1], uy[j:k + 1]) / uw[j:k + 1].sum() for k in range(i, n))
                        for j in range(i + 1)) for i in range(n)])
    return np.array([fit[np.searchsorted(ux, v)] for v in x])


def reference_crossing(budgets, values, threshold, higher_is_better=True):
    """(demos or None, status) by a direct loop over the reference fit."""
    sign = 1.0 if higher_is_better else -1.0
    b = np.asarray(budgets, float)
    fit_all = reference_isotonic(np.log(b), sign * np.asarray(values, float))
    ub = np.unique(b)
    fit = np.array([fit_all[b == v][0] for v in ub])
    t = sign * threshold
    tolerance = 1e-9 * max(1.0, abs(t))  # values within rounding of the threshold have reached it
    if fit[0] >= t - tolerance:
        return ub[0], "at_or_below_min"
    for i in range(1, ub.size):
        if fit[i] >= t - tolerance:
            f = min(1.0, (t - fit[i - 1]) / (fit[i] - fit[i - 1]))
            return math.exp(math.log(ub[i - 1]) + f * (math.log(ub[i]) - math.log(ub[i - 1]))), "reached"
    return None, "not_reached"


def logistic(n, centre, slope=3.0):
    return 1.0 / (1.0 + np.exp(-(np.log(n) - np.log(centre)) * slope))


def sampled_arm(name, centre, rng, seeds=4, episodes=200, budgets=BUDGETS, seconds_per_demo=None):
    """Bernoulli episodes from the logistic success curve."""
    runs = {b: [(rng.random(episodes) < logistic(b, centre)).astype(float) for _ in range(seeds)] for b in budgets}
    seconds = None if seconds_per_demo is None else {b: [seconds_per_demo * b] * seeds for b in budgets}
    return ArmResults(name, runs, train_seconds=seconds)


def exact_arm(name, rate, seeds=2, episodes=200, budgets=BUDGETS, seconds_per_demo=None):
    """Episodes whose success fraction is exactly round(rate(b) * episodes) / episodes at each budget."""
    runs = {}
    for b in budgets:
        k = int(round(float(rate(b)) * episodes))
        runs[b] = [np.r_[np.ones(k), np.zeros(episodes - k)] for _ in range(seeds)]
    seconds = None if seconds_per_demo is None else {b: [seconds_per_demo * b] * seeds for b in budgets}
    return ArmResults(name, runs, train_seconds=seconds)


# ---- isotonic_fit -----------------------------------------------------------------------------

samples = st.integers(1, 9).flatmap(lambda n: st.tuples(
    st.lists(st.integers(0, 5), min_size=n, max_size=n),  # small range: ties in x happen
    st.lists(st.floats(-10, 10), min_size=n, max_size=n),
    st.lists(st.floats(0.1, 5), min_size=n, max_size=n)))


@settings(max_examples=150, deadline=None, derandomize=True)
@given(samples, st.booleans())
def test_isotonic_matches_reference_and_properties(sample, increasing):
    x, y, w = (np.asarray(a, float) for a in sample)
    fit = isotonic_fit(x, y, w, increasing=increasing)
    expected = reference_isotonic(x, y, w) if increasing else -reference_isotonic(x, -y, w)
    np.testing.assert_allclose(fit, expected, atol=1e-9)
    order = np.argsort(x, kind="stable")
    steps = np.diff(fit[order]) * (1 if increasing else -1)
    assert np.all(steps >= -1e-9)
    assert np.dot(w, fit) == pytest.approx(np.dot(w, y), abs=1e-8)  # same weighted mean
    np.testing.assert_allclose(isotonic_fit(x, fit, w, increasing=increasing), fit, atol=1e-9)  # idempotent


def test_isotonic_pools_violators_and_ties():
    np.testing.assert_allclose(isotonic_fit([1, 2, 3, 4], [1.0, 3.0, 2.0, 4.0]), [1.0, 2.5, 2.5, 4.0])
    np.testing.assert_allclose(isotonic_fit([2, 1, 1], [5.0, 0.0, 2.0]), [5.0, 1.0, 1.0])  # tied x pooled
    np.testing.assert_allclose(isotonic_fit([1, 2], [1.0, 3.0], weights=[3, 1], increasing=False), [1.5, 1.5])


# ---- demos_to_threshold -----------------------------------------------------------------------


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.sampled_from([1, 2, 3, 5, 8, 13, 21, 50]), st.floats(0, 1)), min_size=1, max_size=8),
       st.floats(0.05, 0.95), st.booleans())
def test_crossing_matches_reference(points, threshold, higher_is_better):
    budgets, values = zip(*points)
    crossing = demos_to_threshold(budgets, values, threshold, higher_is_better)
    demos, status = reference_crossing(budgets, values, threshold, higher_is_better)
    assert crossing.status == status
    if demos is None:
        assert crossing.demos is None and crossing.lower_bound == max(budgets)
    else:
        assert crossing.demos == pytest.approx(demos, rel=1e-9)
        assert min(budgets) <= crossing.demos <= max(budgets)


def test_crossing_noiseless_logistic_is_exact():
    budgets = np.array([5, 10, 20, 40, 80])
    crossing = demos_to_threshold(budgets, logistic(budgets, 20), 0.5)
    assert crossing.status == "reached" and crossing.demos == pytest.approx(20, rel=1e-12)
    # linear in log-demos: halfway from 0.25 to 0.75 between 10 and 40 is their geometric mean
    crossing = demos_to_threshold([10, 40], [0.25, 0.75], 0.5)
    assert crossing.demos == pytest.approx(20, rel=1e-12)


def test_crossing_order_and_duplicates():
    shuffled = demos_to_threshold([40, 5, 20, 10], [0.9, 0.1, 0.6, 0.3], 0.5)
    assert shuffled.demos == pytest.approx(demos_to_threshold([5, 10, 20, 40], [0.1, 0.3, 0.6, 0.9], 0.5).demos)
    pooled = demos_to_threshold([5, 5, 10], [0.0, 1.0, 1.0], 0.5)  # 5 → mean 0.5 reaches it
    assert pooled.status == "at_or_below_min" and pooled.demos == 5 and pooled.upper_bound == 5


def test_crossing_censored_statuses():
    at_min = demos_to_threshold([5, 10], [0.8, 0.9], 0.5)
    assert (at_min.status, at_min.demos, at_min.upper_bound, at_min.lower_bound) == ("at_or_below_min", 5, 5, None)
    never = demos_to_threshold([5, 10], [0.1, 0.2], 0.5)
    assert (never.status, never.demos, never.lower_bound) == ("not_reached", None, 10)
    error = demos_to_threshold([5, 10, 20], [0.9, 0.5, 0.1], 0.3, higher_is_better=False)
    assert error.status == "reached" and error.demos == pytest.approx(math.exp(math.log(10) + 0.5 * math.log(2)))


def test_sampled_logistic_estimate_and_ci_cover_twenty():
    rng = np.random.default_rng(1)
    arm = sampled_arm("scratch", 20, rng, seeds=5, episodes=400, budgets=(5, 10, 20, 40, 80))
    point = stats.arm_crossing(arm, 0.5)
    assert point.status == "reached" and point.demos == pytest.approx(20, rel=0.05)
    reps = bootstrap_demos_to_threshold(arm, 0.5, n_boot=1000, rng=np.random.default_rng(0))
    lo, hi = np.percentile(reps.demos, [2.5, 97.5])
    assert lo < 20 < hi and hi / lo < 1.5
    assert reps.censored_fraction == 0.0


# ---- the bootstrap ----------------------------------------------------------------------------


def test_two_level_bootstrap_variance_matches_formula():
    """Var of the replicate mean = (var_ddof0(seed means) + mean(within-seed var / E)) / S."""
    rng = np.random.default_rng(2)
    runs = [(rng.random(e) < p).astype(float) for e, p in ((30, 0.2), (50, 0.5), (80, 0.7))]
    arm = ArmResults("lora", {10: runs})
    means = np.array([r.mean() for r in runs])
    expected = (means.var() + np.mean([r.var() / r.size for r in runs])) / len(runs)
    replicates = stats._replicate_curves(arm, 8000, np.random.default_rng(0))[:, 0]
    assert replicates.var() == pytest.approx(expected, rel=0.08)
    scalar = ArmResults("act", {10: [0.1, 0.4, 0.2, 0.9, 0.5]})
    scalar_reps = stats._replicate_curves(scalar, 8000, np.random.default_rng(0))[:, 0]
    assert scalar_reps.var() == pytest.approx(np.var([0.1, 0.4, 0.2, 0.9, 0.5]) / 5, rel=0.08)


def test_shared_seed_draw_keeps_budgets_correlated():
    seed_effect = np.array([-0.2, 0.0, 0.1, 0.3])
    runs = {b: list(0.01 * b + seed_effect) for b in (5, 10, 20)}
    shared = stats._replicate_curves(ArmResults("s", runs), 2000, np.random.default_rng(0))
    independent = stats._replicate_curves(ArmResults("s", runs, same_seeds_at_every_budget=False), 2000,
                                          np.random.default_rng(0))
    assert np.corrcoef(shared[:, 0], shared[:, 2])[0, 1] == pytest.approx(1.0)
    assert abs(np.corrcoef(independent[:, 0], independent[:, 2])[0, 1]) < 0.1


def test_arm_curve_mean_and_ci():
    rng = np.random.default_rng(3)
    arm = sampled_arm("scratch", 20, rng, seeds=3, episodes=300, budgets=(5, 20, 80))
    curve = arm_curve(arm, n_boot=1000, seed=0)
    expected = [np.mean([r.mean() for r in arm.runs[b]]) for b in (5, 20, 80)]
    np.testing.assert_allclose(curve.mean, expected)
    assert np.all(curve.ci95_low <= curve.mean) and np.all(curve.mean <= curve.ci95_high)
    assert np.all(curve.ci95_low < logistic(np.array([5, 20, 80]), 20))
    assert np.all(logistic(np.array([5, 20, 80]), 20) < curve.ci95_high)
    assert curve.to_dict()["budgets"] == [5, 20, 80] and curve.n_seeds == (3, 3, 3)


def test_from_success_counts_matches_episode_arrays():
    arm = ArmResults.from_success_counts("scratch", {5: [(1, 4), (3, 4)], 10: [(4, 4), (2, 4)]})
    np.testing.assert_allclose(arm.mean_curve(), [0.5, 0.75])
    assert arm.kind == "episodes"


# ---- adaptation_gain --------------------------------------------------------------------------


def test_gain_of_eight_from_sampled_curves():
    rng = np.random.default_rng(4)
    scratch, adapted = sampled_arm("scratch", 40, rng), sampled_arm("lora", 5, rng)
    gain = adaptation_gain(scratch, adapted, 0.5, n_boot=1000, seed=0)
    assert not gain.is_lower_bound and not gain.is_upper_bound
    assert gain.value == pytest.approx(8, rel=0.1)
    assert gain.ci95[0] < 8 < gain.ci95[1]
    assert gain.value == pytest.approx(gain.scratch.demos / gain.adapted.demos)
    assert gain.text == f"{gain.value:.1f}x [{gain.ci95[0]:.1f}, {gain.ci95[1]:.1f}]"
    data = json.loads(json.dumps(gain.to_dict()))
    assert set(data) == {"value", "ci95", "is_lower_bound", "is_upper_bound", "text", "quantity", "threshold",
                         "higher_is_better", "n_boot", "ci_censored_fraction", "scratch_cost", "adapted_cost",
                         "scratch", "adapted"}
    assert data["scratch"] == {"demos": gain.scratch.demos, "status": "reached", "lower_bound": None,
                               "upper_bound": None}
    assert adaptation_gain(scratch, adapted, 0.5, n_boot=1000, seed=0).to_dict() == gain.to_dict()


def test_scratch_never_reaching_gives_lower_bound():
    scratch = exact_arm("scratch", lambda n: 0.0)
    adapted = exact_arm("lora", lambda n: logistic(n, 5))
    gain = adaptation_gain(scratch, adapted, 0.5, n_boot=300)
    assert gain.is_lower_bound and not gain.is_upper_bound
    assert gain.scratch.status == "not_reached" and gain.adapted.status == "reached"
    assert gain.value == pytest.approx(80 / gain.adapted.demos) and gain.adapted.demos == pytest.approx(5)
    assert gain.text.startswith("> ") and "scratch did not reach the threshold within 80 demos" in gain.text
    assert gain.ci_censored_fraction == 1.0


def test_adapted_at_smallest_budget_gives_lower_bound():
    scratch = exact_arm("scratch", lambda n: logistic(n, 40))
    adapted = exact_arm("lora", lambda n: 1.0)
    gain = adaptation_gain(scratch, adapted, 0.5, n_boot=300)
    assert gain.adapted.status == "at_or_below_min" and gain.adapted.demos == 2
    assert gain.is_lower_bound and gain.value == pytest.approx(40 / 2)
    assert gain.text.startswith("> ")


def test_adapted_never_reaching_gives_upper_bound():
    gain = adaptation_gain(exact_arm("scratch", lambda n: logistic(n, 10)), exact_arm("lora", lambda n: 0.1),
                           0.5, n_boot=300)
    assert gain.is_upper_bound and not gain.is_lower_bound
    assert gain.value == pytest.approx(10 / 80)
    assert gain.text.startswith("< ") and "adapted arm never reached" in gain.text


@pytest.mark.parametrize(("scratch_rate", "adapted_rate", "words"), [
    (0.0, 0.1, "neither arm reached"),
    (1.0, 1.0, "both arms were already at the threshold"),
])
def test_undefined_gain(scratch_rate, adapted_rate, words):
    gain = adaptation_gain(exact_arm("scratch", lambda n: scratch_rate), exact_arm("lora", lambda n: adapted_rate),
                           0.5, n_boot=100)
    assert gain.value is None and gain.ci95 is None
    assert not gain.is_lower_bound and not gain.is_upper_bound
    assert gain.text.startswith("n/a (") and words in gain.text
    assert json.loads(json.dumps(gain.to_dict()))["value"] is None


def test_lower_is_better_offline_error():
    rng = np.random.default_rng(5)

    def error_arm(name, centre):  # error 0.3 at `centre` demos, falling as 1/sqrt(n); seed noise 3 %
        return ArmResults(name, {b: list(0.3 * np.sqrt(centre / b) * np.exp(rng.normal(0, 0.03, 5)))
                                 for b in BUDGETS})

    scratch, adapted = error_arm("scratch", 40), error_arm("lora", 5)
    assert scratch.kind == "scalar"
    gain = adaptation_gain(scratch, adapted, 0.3, higher_is_better=False, n_boot=1000)
    assert not gain.is_lower_bound and gain.value == pytest.approx(8, rel=0.1)
    assert gain.ci95[0] < 8 < gain.ci95[1]
    wrong_way = adaptation_gain(scratch, adapted, 0.3, higher_is_better=True, n_boot=100)
    assert wrong_way.adapted.status != "reached"  # a decreasing curve read as higher-is-better


def test_censored_replicates_are_flagged():
    # scratch hovers at the threshold at its largest budget: some replicates do not reach it
    scratch = exact_arm("scratch", lambda n: 0.52 if n == 80 else 0.1, seeds=3, episodes=60)
    gain = adaptation_gain(scratch, exact_arm("lora", lambda n: logistic(n, 5)), 0.5, n_boot=500)
    assert gain.scratch.status == "reached" and not gain.is_lower_bound
    assert 0.05 < gain.ci_censored_fraction < 0.95
    assert "CI censored" in gain.text


# ---- wallclock_gain ---------------------------------------------------------------------------


def test_wallclock_gain_interpolates_seconds():
    scratch = exact_arm("scratch", lambda n: logistic(n, 40), seconds_per_demo=10.0)
    adapted = exact_arm("lora", lambda n: logistic(n, 5), seconds_per_demo=3.0)
    gain = wallclock_gain(scratch, adapted, 0.5, extra_seconds=5.0, n_boot=300)
    assert gain.quantity == "wall-clock seconds"
    assert gain.scratch_cost == pytest.approx(400) and gain.adapted_cost == pytest.approx(20)
    assert gain.value == pytest.approx(20) and not gain.is_lower_bound
    never = wallclock_gain(exact_arm("scratch", lambda n: 0.0, seconds_per_demo=10.0), adapted, 0.5, n_boot=100)
    assert never.is_lower_bound and never.value == pytest.approx(800 / 15) and never.text.startswith("> ")


def test_wallclock_needs_seconds():
    with pytest.raises(ValueError, match="train_seconds"):
        wallclock_gain(exact_arm("scratch", lambda n: 0.5), exact_arm("lora", lambda n: 0.5), 0.5, n_boot=10)


# ---- negative_transfer ------------------------------------------------------------------------


def test_negative_transfer_flagged_where_adapted_is_clearly_worse():
    scratch = exact_arm("scratch", lambda n: logistic(n, 10), seeds=4, episodes=100)
    adapted = exact_arm("lora", lambda n: 0.4, seeds=4, episodes=100)
    rows = {r["budget"]: r for r in negative_transfer(scratch, adapted, n_boot=1000)}
    assert list(rows) == list(BUDGETS)
    for b in (40, 80):
        assert rows[b]["below"] and rows[b]["negative_transfer"] and rows[b]["ci95"][1] < 0
    assert not rows[2]["below"] and not rows[2]["negative_transfer"]
    assert rows[80]["difference"] == pytest.approx(0.4 - rows[80]["scratch_mean"])


def test_negative_transfer_not_flagged_when_tied_or_not_significant():
    arm = exact_arm("scratch", lambda n: logistic(n, 10))
    for row in negative_transfer(arm, arm, n_boot=500):
        assert row["difference"] == 0 and not row["below"] and not row["negative_transfer"]
        assert row["ci95"][0] <= 0 <= row["ci95"][1]  # [0, 0] where both are all 0 or all 1
    close = negative_transfer(exact_arm("s", lambda n: 0.6, seeds=1, episodes=10, budgets=(10,)),
                              exact_arm("a", lambda n: 0.5, seeds=1, episodes=10, budgets=(10,)), n_boot=500)
    assert close[0]["below"] and not close[0]["negative_transfer"]


def test_negative_transfer_lower_is_better():
    scratch = ArmResults("scratch", {10: [0.10, 0.11, 0.09], 20: [0.05, 0.06, 0.04]})
    adapted = ArmResults("lora", {10: [0.20, 0.21, 0.19], 20: [0.05, 0.06, 0.04]})
    rows = negative_transfer(scratch, adapted, higher_is_better=False, n_boot=500)
    assert rows[0]["below"] and rows[0]["negative_transfer"]
    assert not rows[1]["below"] and not rows[1]["negative_transfer"]


# ---- stronger_arm -----------------------------------------------------------------------------


def test_stronger_arm_by_demos_then_area():
    fast, slow = exact_arm("scratch", lambda n: logistic(n, 10)), exact_arm("act", lambda n: logistic(n, 40))
    choice = stronger_arm({"scratch": fast, "act": slow}, 0.5)
    assert (choice.name, choice.reason) == ("scratch", "fewer_demos")
    low, high = exact_arm("scratch", lambda n: 0.2), exact_arm("act", lambda n: 0.3)
    choice = stronger_arm({"scratch": low, "act": high}, 0.9)
    assert (choice.name, choice.reason) == ("act", "area_under_curve")
    assert choice.areas["act"] == pytest.approx(0.3) and choice.areas["scratch"] == pytest.approx(0.2)
    tie = stronger_arm({"scratch": low, "act": low}, 0.9)
    assert (tie.name, tie.reason) == ("act", "tie")
    errors = {"scratch": ArmResults("scratch", {5: [0.5], 10: [0.4]}), "act": ArmResults("act", {5: [0.6], 10: [0.5]})}
    assert stronger_arm(errors, 0.1, higher_is_better=False).name == "scratch"  # lower error area wins


# ---- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(("call", "name"), [
    (lambda: demos_to_threshold([], [], 0.5), "budgets"),
    (lambda: demos_to_threshold([0, 5], [0.1, 0.2], 0.5), "budgets"),
    (lambda: demos_to_threshold([-5, 5], [0.1, 0.2], 0.5), "budgets"),
    (lambda: demos_to_threshold([5, 10], [0.1], 0.5), "values"),
    (lambda: demos_to_threshold([5, 10], [0.1, np.nan], 0.5), "values"),
    (lambda: demos_to_threshold([5, 10], [0.1, 0.2], float("nan")), "threshold"),
    (lambda: isotonic_fit([1, 2], [1, 2], weights=[1, -1]), "weights"),
    (lambda: isotonic_fit([1, 2], [1]), "y"),
    (lambda: ArmResults("scratch", {}), "runs"),
    (lambda: ArmResults("scratch", {0: [0.5]}), "runs"),
    (lambda: ArmResults("scratch", {5: []}), "runs"),
    (lambda: ArmResults("scratch", {5: [0.5, [1.0, 0.0]]}), "mix"),
    (lambda: ArmResults("scratch", {5: [0.5], 10: [0.5, 0.6]}), "same_seeds_at_every_budget"),
    (lambda: ArmResults("scratch", {5: [0.5]}, train_seconds={5: [0.0]}), "train_seconds"),
    (lambda: adaptation_gain(exact_arm("s", lambda n: 0.5), exact_arm("a", lambda n: 0.5), float("nan")),
     "threshold"),
    (lambda: adaptation_gain(exact_arm("s", lambda n: 0.5), exact_arm("a", lambda n: 0.5), 0.5, n_boot=0),
     "n_boot"),
    (lambda: negative_transfer(ArmResults("s", {5: [0.5]}), ArmResults("a", {10: [0.5]})), "share none"),
    (lambda: stronger_arm({}, 0.5), "arms"),
])
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()
