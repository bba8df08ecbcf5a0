"""Crossings, the arm containers and the joint bootstrap, checked against answers known by hand."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from locksmith.audit import stats
from locksmith.audit.stats import (
    ArmResults,
    arm_curve,
    crossing_interval,
    demos_to_threshold,
    isotonic_fit,
    joint_replicate_curves,
)

KEYS = tuple(f"nominal/{2000000000 + i}" for i in range(6))


def constant_arm(name, curve, seeds=3, keys=KEYS):
    """Every episode of every seed at budget b scores curve[b]: each replicate equals the point estimate."""
    return ArmResults(name, {b: {s: [v] * len(keys) for s in range(seeds)} for b, v in curve.items()}, keys)


def logistic(n, centre, slope=3.0):
    return 1.0 / (1.0 + np.exp(-(np.log(n) - np.log(centre)) * slope))


# ---- isotonic_fit -----------------------------------------------------------------------------


def min_max_isotonic(x, y, w):
    """The isotonic fit's closed form (not PAVA): f_i = max_{j<=i} min_{k>=i} weighted mean of y[j..k]."""
    ux = np.unique(x)
    uw = np.array([w[x == v].sum() for v in ux])
    uy = np.array([(w * y)[x == v].sum() for v in ux]) / uw
    n = ux.size
    fit = [max(min(np.dot(uw[j:k + 1], uy[j:k + 1]) / uw[j:k + 1].sum() for k in range(i, n)) for j in range(i + 1))
           for i in range(n)]
    return np.array([fit[np.searchsorted(ux, v)] for v in x])


samples = st.integers(1, 8).flatmap(lambda n: st.tuples(
    st.lists(st.integers(0, 5), min_size=n, max_size=n),  # small range: ties in x happen
    st.lists(st.floats(-10, 10), min_size=n, max_size=n),
    st.lists(st.floats(0.1, 5), min_size=n, max_size=n)))


@settings(max_examples=100, deadline=None, derandomize=True)
@given(samples)
def test_isotonic_fit_is_the_min_max_formula(sample):
    x, y, w = (np.asarray(a, float) for a in sample)
    np.testing.assert_allclose(isotonic_fit(x, y, w), min_max_isotonic(x, y, w), atol=1e-9)
    np.testing.assert_allclose(isotonic_fit(x, y, w, increasing=False), -min_max_isotonic(x, -y, w), atol=1e-9)


def test_isotonic_pools_violators_and_ties():
    np.testing.assert_allclose(isotonic_fit([1, 2, 3, 4], [1.0, 3.0, 2.0, 4.0]), [1.0, 2.5, 2.5, 4.0])
    np.testing.assert_allclose(isotonic_fit([2, 1, 1], [5.0, 0.0, 2.0]), [5.0, 1.0, 1.0])  # tied x pooled
    np.testing.assert_allclose(isotonic_fit([1, 2], [1.0, 3.0], weights=[3, 1], increasing=False), [1.5, 1.5])


# ---- demos_to_threshold on hand-made curves ---------------------------------------------------


@pytest.mark.parametrize(("budgets", "values", "threshold", "demos"), [
    ([10, 40], [0.25, 0.75], 0.5, 20.0),  # halfway in log-demos: the geometric mean
    ([5, 10, 20, 40], [0.1, 0.3, 0.6, 0.9], 0.5, 10 * 2 ** (2 / 3)),  # 2/3 of the way from 10 to 20
    ([40, 5, 20, 10], [0.9, 0.1, 0.6, 0.3], 0.5, 10 * 2 ** (2 / 3)),  # any order
    ([5, 10, 20, 40], [0.2, 0.6, 0.4, 0.8], 0.35, math.sqrt(50)),  # 0.6, 0.4 pooled to 0.5
    ([5, 10, 20, 40], [0.2, 0.6, 0.4, 0.8], 0.5, 10.0),  # the pooled 0.5 reaches it at 10
    ([5, 10, 10, 20], [0.2, 0.4, 0.6, 0.9], 0.35, math.sqrt(50)),  # repeated budget pooled to 0.5
])
def test_crossing_on_hand_made_curves(budgets, values, threshold, demos):
    crossing = demos_to_threshold(budgets, values, threshold)
    assert crossing.status == "reached" and crossing.demos == pytest.approx(demos, rel=1e-12)


def test_crossing_of_noiseless_logistic_is_its_centre():
    budgets = np.array([5, 10, 20, 40, 80])
    assert demos_to_threshold(budgets, logistic(budgets, 20), 0.5).demos == pytest.approx(20, rel=1e-12)


def test_crossing_censored_statuses_and_lower_is_better():
    at_min = demos_to_threshold([5, 10], [0.8, 0.9], 0.5)
    assert (at_min.status, at_min.demos, at_min.upper_bound, at_min.lower_bound) == ("at_or_below_min", 5, 5, None)
    never = demos_to_threshold([5, 10], [0.1, 0.2], 0.5)
    assert (never.status, never.demos, never.lower_bound, never.demos_or_bound) == ("not_reached", None, 10, 10)
    error = demos_to_threshold([5, 10, 20], [0.9, 0.5, 0.1], 0.3, higher_is_better=False)
    assert error.status == "reached" and error.demos == pytest.approx(math.sqrt(200))
    assert demos_to_threshold([5, 10, 10], [0.0, 0.0, 1.0], 0.5).status == "reached"  # 10 pools to exactly 0.5
    assert never.to_dict() == {"demos": None, "status": "not_reached", "lower_bound": 10, "upper_bound": None}


# ---- ArmResults -------------------------------------------------------------------------------


def test_arm_results_tables_and_means():
    keys = ["nominal/1", "nominal/2"]
    arm = ArmResults("lora", {20: {7: [1, 1], 3: [0, 1]}, 5: {3: [0, 0], 7: [1, 0]}}, keys,
                     train_seconds={5: {3: 10.0, 7: 30.0}, 20: {3: 40.0, 7: 60.0}})
    assert arm.budgets.tolist() == [5.0, 20.0] and arm.seeds == (3, 7) and arm.n_seeds == 2
    assert arm.kind == "episodes" and arm.episode_keys == ("nominal/1", "nominal/2")
    assert arm.outcomes.shape == (2, 2, 2) and arm.outcomes[1].tolist() == [[0, 1], [1, 1]]  # seed 3, then 7
    assert arm.run_means(5).tolist() == [0.0, 0.5] and arm.run_means(20).tolist() == [0.5, 1.0]
    assert arm.mean_curve().tolist() == [0.25, 0.75]
    assert arm.mean_train_seconds().tolist() == [20.0, 50.0]
    scalar = ArmResults("act", {10: {0: 0.4, 1: 0.2}})
    assert scalar.kind == "scalar" and scalar.outcomes.shape == (1, 2)
    assert scalar.mean_curve() == pytest.approx([0.3])
    with pytest.raises(ValueError):
        arm.outcomes[0, 0, 0] = 5.0  # read-only: the validated table cannot drift


@pytest.mark.parametrize(("make", "words"), [
    (lambda: ArmResults("s", {}), "runs"),
    (lambda: ArmResults("s", {0: {0: 0.5}}), "budgets"),
    (lambda: ArmResults("s", {5: {}}), r"runs\[5.0\]"),
    (lambda: ArmResults("s", {5: [0.5]}), "training seed"),
    (lambda: ArmResults("s", {5: {0: 0.5, 1: 0.5}, 10: {0: 0.5, 2: 0.5}}), r"seeds \[0, 2\].*\[0, 1\]"),
    (lambda: ArmResults("s", {5: {0: [1.0, 0.0]}}), "no episode_keys"),
    (lambda: ArmResults("s", {5: {0: [1.0, 0.0]}}, ("a", "b", "c")), "3 finite per-episode outcomes"),
    (lambda: ArmResults("s", {5: {0: [1.0, np.nan]}}, ("a", "b")), "finite"),
    (lambda: ArmResults("s", {5: {0: 0.5}}, ("a",)), "per-episode"),
    (lambda: ArmResults("s", {5: {0: [1.0, 0.0]}}, ("a", "a")), "unique"),
    (lambda: ArmResults("s", {5: {0: 0.5}}, "ab"), "episode_keys"),
    (lambda: ArmResults("s", {5: {0.5: 0.5}}), "integers"),
    (lambda: ArmResults("", {5: {0: 0.5}}), "name"),
    (lambda: ArmResults("s", {5: {0: 0.5}}, train_seconds={5: {0: 0.0}}), "positive"),
    (lambda: ArmResults("s", {5: {0: 0.5}}, train_seconds={10: {0: 1.0}}), "train_seconds"),
    (lambda: ArmResults("s", {5: {0: 0.5}}, train_seconds={5: {1: 1.0}}), "seeds"),
])
def test_arm_results_rejects_bad_input(make, words):
    with pytest.raises(ValueError, match=words):
        make()


# ---- the joint bootstrap ----------------------------------------------------------------------


def test_one_draw_of_seeds_and_episodes_for_every_arm_and_budget():
    """Probe arms read the draw back: seed probe s scores 1 on seed s only, episode probe e on episode e."""
    rng = np.random.default_rng(0)
    n_seeds, keys = 4, KEYS
    values = rng.normal(size=(n_seeds, len(keys)))
    arm = ArmResults("lora", {b: dict(enumerate(values + b)) for b in (5, 10, 20)}, keys)
    seed_probes = [ArmResults(f"seed{s}", {5: {t: [float(t == s)] * len(keys) for t in range(n_seeds)}}, keys)
                   for s in range(n_seeds)]
    episode_probes = [ArmResults(f"ep{e}", {5: {t: np.eye(len(keys))[e] for t in range(n_seeds)}}, keys)
                      for e in range(len(keys))]
    reps = joint_replicate_curves([arm, *seed_probes, *episode_probes], n_boot=40, seed=3)
    seed_counts = np.rint(np.hstack(reps[1:1 + n_seeds]) * n_seeds).astype(int)  # (R, S)
    episode_counts = np.rint(np.hstack(reps[1 + n_seeds:]) * len(keys)).astype(int)  # (R, E)
    assert np.all(seed_counts.sum(axis=1) == n_seeds) and np.all(episode_counts.sum(axis=1) == len(keys))
    for r in range(40):  # the replicate is the plain mean over drawn seeds x drawn episodes, at every budget
        drawn_seeds = np.repeat(np.arange(n_seeds), seed_counts[r])
        drawn_episodes = np.repeat(np.arange(len(keys)), episode_counts[r])
        mean = values[np.ix_(drawn_seeds, drawn_episodes)].mean()
        np.testing.assert_allclose(reps[0][r], [mean + 5, mean + 10, mean + 20], rtol=1e-12)
    assert np.unique(seed_counts, axis=0).shape[0] > 10  # the draws do vary


def test_draw_depends_on_the_seed_only_not_on_the_other_arms():
    arm = constant_arm("a", {5: 0.2, 10: 0.6}, seeds=4)
    noisy = ArmResults("b", {5: {s: np.random.default_rng(s).random(len(KEYS)) for s in range(4)}}, KEYS)
    alone = joint_replicate_curves([noisy], 200, seed=1)[0]
    np.testing.assert_array_equal(alone, joint_replicate_curves([arm, noisy], 200, seed=1)[1])
    assert not np.array_equal(alone, joint_replicate_curves([noisy], 200, seed=2)[0])
    np.testing.assert_allclose(joint_replicate_curves([arm], 50)[0], np.tile([0.2, 0.6], (50, 1)), rtol=1e-12)


def test_replicate_variance_is_the_crossed_bootstrap_variance():
    """Var(a'Vb) with a, b independent multinomial weights: tr(V M_b V' M_a) - (mean)^2, M = E[ww']."""
    rng = np.random.default_rng(2)
    values = (rng.random((3, 5)) < 0.5) + rng.normal(0, 0.3, size=(1, 5))  # seed x episode, episode effects
    arm = ArmResults("lora", {10: dict(enumerate(values))}, KEYS[:5])

    def second_moment(n):  # E[w w'] for w = Multinomial(n, 1/n) / n
        return (np.eye(n) - 1 / n) / n ** 2 + 1 / n ** 2

    expected = np.trace(values @ second_moment(5) @ values.T @ second_moment(3)) - values.mean() ** 2
    replicates = joint_replicate_curves([arm], 20000, seed=0)[0][:, 0]
    assert replicates.mean() == pytest.approx(values.mean(), abs=0.01)
    assert replicates.var() == pytest.approx(expected, rel=0.05)
    scalar = ArmResults("act", {10: dict(enumerate([0.1, 0.4, 0.2, 0.9, 0.5]))})  # seeds only
    scalar_reps = joint_replicate_curves([scalar], 20000, seed=0)[0][:, 0]
    assert scalar_reps.var() == pytest.approx(np.var([0.1, 0.4, 0.2, 0.9, 0.5]) / 5, rel=0.05)


def test_joint_bootstrap_covers_the_mean_under_shared_episode_effects():
    """y = 0.5 + seed effect + episode effect + noise: the joint draw covers 0.5 about 95 % of the time;
    resampling seeds alone (the episodes' shared difficulty ignored) covers it about half the time."""
    rng = np.random.default_rng(7)
    keys = tuple(f"k/{i}" for i in range(30))
    covered = np.zeros(2)
    for _ in range(250):
        y = (0.5 + 0.05 * rng.standard_normal((10, 1)) + 0.2 * rng.standard_normal((1, 30))
             + 0.1 * rng.standard_normal((10, 30)))
        joint = ArmResults("joint", {10: dict(enumerate(y))}, keys)
        seeds_only = ArmResults("seeds", {10: dict(enumerate(y.mean(axis=1)))})
        for i, arm in enumerate((joint, seeds_only)):
            (replicates,) = joint_replicate_curves([arm], 400, seed=int(rng.integers(1 << 30)))
            low, high = np.percentile(replicates, [2.5, 97.5])
            covered[i] += low <= 0.5 <= high
    coverage = covered / 250
    assert 0.88 <= coverage[0] <= 0.99 and coverage[1] < 0.75


@pytest.mark.parametrize(("other", "words"), [
    (ArmResults("lora", {5: {0: [1.0] * 6, 1: [1.0] * 6, 5: [1.0] * 6}}, KEYS), r"'scratch' has \[0, 1, 2\], 'lora'"),
    (ArmResults("lora", {5: {s: [1.0] * 6 for s in range(3)}}, KEYS[:5] + ("shifted/9",)),
     "'nominal/2000000005' only in 'scratch', 'shifted/9' only in 'lora'"),
    (ArmResults("lora", {5: {s: [1.0] * 6 for s in range(3)}}, KEYS[::-1]), "another order"),
    (ArmResults("lora", {5: {s: 1.0 for s in range(3)}}), "'lora' has 0"),
])
def test_joint_draw_rejects_arms_that_cannot_be_paired(other, words):
    with pytest.raises(ValueError, match=words):
        joint_replicate_curves([constant_arm("scratch", {5: 0.5}), other], 10)


# ---- arm_curve and crossing_interval ----------------------------------------------------------


def test_arm_curve_interval_needs_three_seeds():
    two = arm_curve(constant_arm("lora", {5: 0.25, 20: 0.75}, seeds=2), n_boot=100)
    assert two.ci95_low is None and two.ci95_high is None and two.n_seeds == 2
    assert two.to_dict() == {"budgets": [5, 20], "mean": [0.25, 0.75], "ci95": None, "n_seeds": 2}
    three = arm_curve(constant_arm("lora", {5: 0.25, 20: 0.75}, seeds=3), n_boot=100).to_dict()
    assert three["n_seeds"] == 3 and three["mean"] == [0.25, 0.75]
    np.testing.assert_allclose(three["ci95"], [[0.25, 0.25], [0.75, 0.75]], rtol=1e-12)


def test_arm_curve_of_sampled_logistic_covers_the_truth():
    rng = np.random.default_rng(3)
    keys = tuple(f"nominal/{i}" for i in range(300))
    budgets = (5, 20, 80)
    arm = ArmResults("scratch", {b: {s: (rng.random(300) < logistic(b, 20)).astype(float) for s in range(3)}
                                 for b in budgets}, keys)
    curve = arm_curve(arm, n_boot=1000)
    truth = logistic(np.array(budgets), 20)
    assert np.all(curve.ci95_low < truth) and np.all(truth < curve.ci95_high)
    assert np.all(curve.ci95_high - curve.ci95_low < 0.15)


def test_crossing_interval_rules():
    hand = constant_arm("lora", {10: 0.25, 40: 0.75})
    interval = crossing_interval(hand, 0.5, n_boot=50).to_dict()
    assert interval["ci95"] == pytest.approx([20.0, 20.0], rel=1e-12)
    assert (interval["censored_fraction"], interval["n_seeds"]) == (0.0, 3)
    assert crossing_interval(constant_arm("lora", {10: 0.25, 40: 0.75}, seeds=2), 0.5, n_boot=50).ci95 is None
    never = crossing_interval(constant_arm("lora", {10: 0.25, 40: 0.3}), 0.5, n_boot=50)
    assert never.ci95 is None and never.censored_fraction == 1.0


def test_crossing_interval_of_sampled_logistic_covers_twenty():
    rng = np.random.default_rng(1)
    keys = tuple(f"nominal/{i}" for i in range(300))
    arm = ArmResults("scratch", {b: {s: (rng.random(300) < logistic(b, 20)).astype(float) for s in range(5)}
                                 for b in (5, 10, 20, 40, 80)}, keys)
    assert stats.arm_crossing(arm, 0.5).demos == pytest.approx(20, rel=0.05)
    interval = crossing_interval(arm, 0.5, n_boot=1000)
    low, high = interval.ci95
    assert low < 20 < high and high / low < 1.5 and interval.censored_fraction == 0.0 and interval.n_seeds == 5


@pytest.mark.parametrize(("call", "name"), [
    (lambda: demos_to_threshold([], [], 0.5), "budgets"),
    (lambda: demos_to_threshold([0, 5], [0.1, 0.2], 0.5), "budgets"),
    (lambda: demos_to_threshold([5, 10], [0.1], 0.5), "values"),
    (lambda: demos_to_threshold([5, 10], [0.1, np.nan], 0.5), "values"),
    (lambda: demos_to_threshold([5, 10], [0.1, 0.2], float("nan")), "threshold"),
    (lambda: isotonic_fit([1, 2], [1, 2], weights=[1, -1]), "weights"),
    (lambda: isotonic_fit([1, 2], [1]), "y"),
    (lambda: joint_replicate_curves([], 10), "at least one arm"),
    (lambda: joint_replicate_curves([constant_arm("a", {5: 0.5})], 0), "n_boot"),
    (lambda: crossing_interval(constant_arm("a", {5: 0.5}), float("inf")), "threshold"),
])
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()
