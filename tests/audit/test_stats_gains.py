"""Gains, negative transfer, wall-clock and the stronger arm, against answers known by hand."""

import json
import math
import re

import numpy as np
import pytest

from locksmith.audit.stats import (
    MIN_SEEDS_FOR_INTERVAL,
    ArmResults,
    CheckpointResults,
    adaptation_gain,
    joint_replicate_curves,
    negative_transfer,
    replicate_crossings,
    stronger_arm,
    time_to_threshold,
    wallclock_gain,
)

BUDGETS = (2, 5, 10, 20, 40, 80)
KEYS = tuple(f"nominal/{2000000000 + i}" for i in range(8))
# scratch crosses 0.5 two thirds of the way from 10 to 20 in log-demos, lora halfway from 5 to 10
SCRATCH = {2: 0.0, 5: 0.0, 10: 0.3, 20: 0.6, 40: 0.9, 80: 1.0}
LORA = {2: 0.0, 5: 0.25, 10: 0.75, 20: 1.0, 40: 1.0, 80: 1.0}
HAND_GAIN = 10 * 2 ** (2 / 3) / (5 * math.sqrt(2))  # 2^(7/6) = 2.2449


def constant_arm(name, curve, seeds=3, keys=KEYS):
    """Every episode of every seed at budget b scores curve[b]: every replicate equals the point estimate."""
    return ArmResults(name, {b: {s: [v] * len(keys) for s in range(seeds)} for b, v in curve.items()}, keys)


def bernoulli_arm(name, rate, rng, seeds=4, episodes=200, budgets=BUDGETS):
    keys = tuple(f"nominal/{i}" for i in range(episodes))
    return ArmResults(name, {b: {s: (rng.random(episodes) < rate(b)).astype(float) for s in range(seeds)}
                             for b in budgets}, keys)


def logistic(n, centre, slope=3.0):
    return 1.0 / (1.0 + np.exp(-(np.log(n) - np.log(centre)) * slope))


# ---- adaptation_gain: values, intervals, text -------------------------------------------------


def test_exact_gain_by_hand():
    gain = adaptation_gain(constant_arm("scratch", SCRATCH), constant_arm("lora", LORA), 0.5, n_boot=200)
    assert gain.kind == "exact" and gain.value == pytest.approx(HAND_GAIN, rel=1e-12)
    assert gain.baseline_cost == pytest.approx(10 * 2 ** (2 / 3)) and gain.adapted_cost == pytest.approx(5 * 2 ** 0.5)
    assert gain.ci95 == pytest.approx((HAND_GAIN, HAND_GAIN), rel=1e-9)  # no noise: every replicate is the point
    assert gain.confidence_bound is None and gain.n_seeds == 3 and gain.n_boot == 200 and gain.quantity == "demos"
    assert gain.text == "2.2x [2.2, 2.2] (3 seeds)"


@pytest.mark.parametrize(("seeds", "text"), [(2, "2.2x, no interval (2 seeds)"), (1, "2.2x, no interval (1 seed)")])
def test_below_three_seeds_no_interval(seeds, text):
    assert MIN_SEEDS_FOR_INTERVAL == 3
    gain = adaptation_gain(constant_arm("scratch", SCRATCH, seeds=seeds), constant_arm("lora", LORA, seeds=seeds), 0.5)
    assert gain.value == pytest.approx(HAND_GAIN) and gain.kind == "exact"
    assert (gain.ci95, gain.confidence_bound, gain.n_boot, gain.n_seeds, gain.text) == (None, None, 0, seeds, text)


def test_identical_arms_give_a_gain_of_exactly_one_in_every_replicate():
    """Paired: both arms see the same drawn seeds and episodes, so equal data give equal crossings.
    Resampled independently, two copies of a noisy arm would give a wide interval around 1."""
    rng = np.random.default_rng(4)
    arm = bernoulli_arm("scratch", lambda n: logistic(n, 20), rng, seeds=3, episodes=50)
    twin = ArmResults("lora", arm.runs, arm.episode_keys)
    gain = adaptation_gain(arm, twin, 0.5, n_boot=500)
    assert gain.kind == "exact" and gain.value == 1.0 and gain.ci95 == (1.0, 1.0)
    assert gain.text == "1.0x [1.0, 1.0] (3 seeds)"
    (curve,) = joint_replicate_curves([arm], 500)  # the same arm's crossing alone does vary across replicates
    demos, _ = replicate_crossings(arm.budgets, curve, 0.5)
    assert np.percentile(demos, 97.5) / np.percentile(demos, 2.5) > 1.2


def test_sampled_gain_of_eight():
    rng = np.random.default_rng(4)
    scratch = bernoulli_arm("scratch", lambda n: logistic(n, 40), rng)
    lora = bernoulli_arm("lora", lambda n: logistic(n, 5), rng)
    gain = adaptation_gain(scratch, lora, 0.5, n_boot=1000)
    assert gain.value == pytest.approx(8, rel=0.1) and gain.ci95[0] < 8 < gain.ci95[1]
    assert gain.value == pytest.approx(gain.baseline.demos / gain.adapted.demos)
    assert gain.text == f"{gain.value:.1f}x [{gain.ci95[0]:.1f}, {gain.ci95[1]:.1f}] (4 seeds)"
    assert adaptation_gain(scratch, lora, 0.5, n_boot=1000).to_dict() == gain.to_dict()  # fixed seed


def test_lower_bound_prints_as_a_bound_without_a_bracket():
    scratch = constant_arm("scratch", {b: 0.0 for b in BUDGETS})
    gain = adaptation_gain(scratch, constant_arm("lora", LORA), 0.5, n_boot=200)
    assert gain.kind == "lower_bound" and gain.value == pytest.approx(80 / (5 * math.sqrt(2)))
    assert gain.ci95 is None and gain.confidence_bound == pytest.approx(gain.value, rel=1e-9)
    assert gain.text == ("> 11.3x (95 % lower confidence bound 11.3x, 3 seeds; "
                         "scratch did not reach the threshold within 80 demos)")
    assert gain.ci_censored_fraction == 1.0 and gain.baseline.lower_bound == 80


def test_lower_confidence_bound_is_the_fifth_percentile_of_paired_ratios():
    rng = np.random.default_rng(6)
    scratch = bernoulli_arm("scratch", lambda n: 0.1, rng, seeds=3, episodes=60)
    lora = bernoulli_arm("lora", lambda n: logistic(n, 10), rng, seeds=3, episodes=60)
    gain = adaptation_gain(scratch, lora, 0.5, n_boot=400, seed=5)
    curves = joint_replicate_curves([scratch, lora], 400, seed=5)
    demos = [replicate_crossings(arm.budgets, curve, 0.5)[0] for arm, curve in zip((scratch, lora), curves)]
    ratios = demos[0] / demos[1]
    assert gain.kind == "lower_bound" and gain.confidence_bound == pytest.approx(np.percentile(ratios, 5))
    assert gain.confidence_bound < gain.value
    assert "[" not in gain.text and re.fullmatch(
        r"> \d+\.\dx \(95 % lower confidence bound \d+\.\dx, 3 seeds; scratch did not reach the threshold "
        r"within 80 demos\)", gain.text)


def test_adapted_at_its_smallest_budget_is_a_lower_bound():
    gain = adaptation_gain(constant_arm("scratch", SCRATCH), constant_arm("lora", {b: 1.0 for b in BUDGETS}), 0.5,
                           n_boot=100)
    assert gain.kind == "lower_bound" and gain.value == pytest.approx(10 * 2 ** (2 / 3) / 2)
    assert gain.adapted.status == "at_or_below_min" and gain.adapted_cost == 2
    assert gain.text == ("> 7.9x (95 % lower confidence bound 7.9x, 3 seeds; "
                         "lora was already at the threshold at 2 demos)")


def test_adapted_never_reaching_is_an_upper_bound():
    gain = adaptation_gain(constant_arm("scratch", SCRATCH), constant_arm("lora", {b: 0.1 for b in BUDGETS}), 0.5,
                           n_boot=100)
    assert gain.kind == "upper_bound" and gain.value == pytest.approx(10 * 2 ** (2 / 3) / 80)
    assert gain.text == ("< 0.2x (95 % upper confidence bound 0.2x, 3 seeds; "
                         "lora did not reach the threshold within 80 demos)")
    two_seeds = adaptation_gain(constant_arm("scratch", SCRATCH, seeds=2),
                                constant_arm("lora", {b: 0.1 for b in BUDGETS}, seeds=2), 0.5)
    assert two_seeds.text == "< 0.2x, no confidence bound (2 seeds; lora did not reach the threshold within 80 demos)"


@pytest.mark.parametrize(("scratch_rate", "lora_rate", "text"), [
    (0.0, 0.1, "n/a (neither arm reached the threshold)"),
    (1.0, 1.0, "n/a (both arms were already at the threshold at their smallest budget)"),
])
def test_undefined_gain(scratch_rate, lora_rate, text):
    gain = adaptation_gain(constant_arm("scratch", {b: scratch_rate for b in BUDGETS}),
                           constant_arm("lora", {b: lora_rate for b in BUDGETS}), 0.5, n_boot=100)
    assert (gain.value, gain.kind, gain.ci95, gain.confidence_bound, gain.n_boot, gain.text) == (
        None, "undefined", None, None, 0, text)


def test_censored_replicates_are_reported():
    # scratch hovers just above the threshold at its largest budget: some replicates do not reach it
    successes = {5: 4, 10: 4, 20: 4, 40: 4, 80: 22}  # of 40 episodes: 0.1, ..., 0.55
    scratch = ArmResults("scratch", {b: {s: np.r_[np.ones(k), np.zeros(40 - k)] for s in range(3)}
                                     for b, k in successes.items()}, tuple(f"k/{i}" for i in range(40)))
    lora = ArmResults("lora", {b: {s: [float(b >= 10)] * 40 for s in range(3)} for b in successes},
                      scratch.episode_keys)
    gain = adaptation_gain(scratch, lora, 0.5, n_boot=500)
    assert gain.baseline.status == "reached" and gain.kind == "exact"
    assert 0.05 < gain.ci_censored_fraction < 0.95
    assert gain.text.endswith(f"(3 seeds; CI censored at the budget range in {100 * gain.ci_censored_fraction:.0f}% "
                              "of replicates)")


def test_lower_is_better_scalar_gain_by_hand():
    offsets = (-0.01, 0.0, 0.01)  # seed effects, shared by both arms
    scratch = ArmResults("scratch", {b: {s: v + d for s, d in enumerate(offsets)}
                                     for b, v in {5: 0.9, 10: 0.6, 20: 0.4, 40: 0.2}.items()})
    lora = ArmResults("lora", {b: {s: v + d for s, d in enumerate(offsets)}
                               for b, v in {5: 0.6, 10: 0.4, 20: 0.3, 40: 0.2}.items()})
    gain = adaptation_gain(scratch, lora, 0.5, higher_is_better=False, n_boot=500)
    assert gain.value == pytest.approx(math.sqrt(200) / math.sqrt(50)) and gain.kind == "exact"
    assert gain.ci95[0] < 2.0 < gain.ci95[1] and gain.ci95[1] / gain.ci95[0] < 1.3
    assert adaptation_gain(scratch, lora, 0.5, higher_is_better=True, n_boot=10).kind != "exact"


def test_gain_to_dict_is_json_with_every_field():
    gain = adaptation_gain(constant_arm("scratch", SCRATCH), constant_arm("lora", LORA), 0.5, n_boot=50)
    data = json.loads(json.dumps(gain.to_dict()))
    assert set(data) == {"value", "kind", "ci95", "confidence_bound", "n_seeds", "text", "quantity", "baseline_cost",
                         "adapted_cost", "baseline", "adapted", "ci_censored_fraction", "n_boot", "threshold",
                         "higher_is_better"}
    assert data["adapted"] == {"demos": pytest.approx(5 * math.sqrt(2)), "status": "reached", "lower_bound": None,
                               "upper_bound": None}
    assert (data["kind"], data["n_seeds"], data["n_boot"], data["threshold"]) == ("exact", 3, 50, 0.5)


def test_gain_refuses_arms_that_cannot_be_paired():
    with pytest.raises(ValueError, match="'scratch' has .*'lora' has"):
        adaptation_gain(constant_arm("scratch", SCRATCH, seeds=3), constant_arm("lora", LORA, seeds=4), 0.5)
    with pytest.raises(ValueError, match="evaluation episodes"):
        adaptation_gain(constant_arm("scratch", SCRATCH), constant_arm("lora", LORA, keys=KEYS[:4]), 0.5)


# ---- negative_transfer ------------------------------------------------------------------------


def test_negative_transfer_flagged_where_adapted_is_clearly_worse():
    rng = np.random.default_rng(9)
    scratch = bernoulli_arm("scratch", lambda n: logistic(n, 10), rng, episodes=100)
    lora = bernoulli_arm("lora", lambda n: 0.4, rng, episodes=100)
    rows = {r["budget"]: r for r in negative_transfer(scratch, lora, n_boot=1000)}
    assert list(rows) == list(BUDGETS)
    for b in (40, 80):
        assert rows[b]["below"] and rows[b]["negative_transfer"] and rows[b]["ci95"][1] < 0
    assert not rows[2]["below"] and not rows[2]["negative_transfer"]
    assert rows[80]["difference"] == pytest.approx(rows[80]["adapted_mean"] - rows[80]["baseline_mean"])


def test_negative_transfer_paired_and_seed_rules():
    rng = np.random.default_rng(10)
    arm = bernoulli_arm("scratch", lambda n: logistic(n, 10), rng, seeds=3, episodes=30)
    for row in negative_transfer(arm, ArmResults("lora", arm.runs, arm.episode_keys), n_boot=300):
        assert row["difference"] == 0 and row["ci95"] == [0.0, 0.0] and not row["below"]
    two = negative_transfer(constant_arm("scratch", {10: 0.9}, seeds=2), constant_arm("lora", {10: 0.1}, seeds=2))
    assert two == [{"budget": 10, "baseline_mean": 0.9, "adapted_mean": 0.1, "difference": pytest.approx(-0.8),
                    "ci95": None, "below": True, "negative_transfer": False}]  # 2 seeds: never flagged


def test_negative_transfer_lower_is_better():
    scratch = ArmResults("scratch", {10: {0: 0.10, 1: 0.11, 2: 0.09}, 20: {0: 0.05, 1: 0.06, 2: 0.04}})
    lora = ArmResults("lora", {10: {0: 0.20, 1: 0.21, 2: 0.19}, 20: {0: 0.05, 1: 0.06, 2: 0.04}})
    rows = negative_transfer(scratch, lora, higher_is_better=False, n_boot=500)
    assert rows[0]["below"] and rows[0]["negative_transfer"] and rows[0]["ci95"] == pytest.approx([0.1, 0.1])
    assert not rows[1]["below"] and not rows[1]["negative_transfer"]


# ---- wall-clock from checkpoints --------------------------------------------------------------


def checkpoints(name, cells, seeds=3, keys=KEYS, seconds_spread=(0.0, 0.0, 0.0)):
    """cells: (budget, step) -> (mean seconds, outcome); seed s takes seconds + seconds_spread[s]."""
    return CheckpointResults(name, {cell: {s: (t + seconds_spread[s], [v] * len(keys)) for s in range(seeds)}
                                    for cell, (t, v) in cells.items()}, keys)


SCRATCH_CELLS = {(10, 100): (50.0, 0.2), (10, 200): (100.0, 0.4), (40, 100): (200.0, 0.6), (40, 200): (400.0, 0.8)}
LORA_CELLS = {(10, 50): (10.0, 0.3), (10, 100): (20.0, 0.6), (40, 50): (40.0, 0.7)}


def test_time_to_threshold_by_hand():
    scratch = checkpoints("scratch", SCRATCH_CELLS, seconds_spread=(-10.0, 0.0, 10.0))
    assert time_to_threshold(scratch, 0.5).to_dict() == {"demos": 200, "status": "reached", "lower_bound": None,
                                                         "upper_bound": None}
    assert time_to_threshold(scratch, 0.9).to_dict() == {"demos": None, "status": "not_reached", "lower_bound": 400,
                                                         "upper_bound": None}
    assert time_to_threshold(scratch, 0.1).to_dict() == {"demos": 50, "status": "at_or_below_min", "lower_bound": None,
                                                         "upper_bound": 50}
    assert time_to_threshold(scratch, 0.3, higher_is_better=False).status == "at_or_below_min"


def test_wallclock_gain_by_hand():
    scratch, lora = checkpoints("scratch", SCRATCH_CELLS), checkpoints("lora", LORA_CELLS)
    gain = wallclock_gain(scratch, lora, 0.5, extra_seconds=5.0, n_boot=200)
    assert (gain.quantity, gain.kind, gain.baseline_cost, gain.adapted_cost) == ("seconds", "exact", 200.0, 25.0)
    assert gain.adapted.demos == 20 and gain.value == 8.0 and gain.ci95 == pytest.approx((8.0, 8.0))
    assert gain.text == "8.0x [8.0, 8.0] (3 seeds)"
    never = wallclock_gain(checkpoints("scratch", {c: (t, 0.1) for c, (t, _) in SCRATCH_CELLS.items()}), lora, 0.5,
                           extra_seconds=5.0, n_boot=200)
    assert never.kind == "lower_bound" and never.value == 16.0 and never.text == (
        "> 16.0x (95 % lower confidence bound 16.0x, 3 seeds; scratch did not reach the threshold within 400 s of "
        "training)")


def test_wallclock_gain_resamples_seeds_jointly_for_seconds():
    spread = (-30.0, 0.0, 30.0)
    scratch = checkpoints("scratch", SCRATCH_CELLS, seconds_spread=spread)
    twin = checkpoints("lora", SCRATCH_CELLS, seconds_spread=spread)
    paired = wallclock_gain(scratch, twin, 0.5, n_boot=300)
    assert paired.value == 1.0 and paired.ci95 == (1.0, 1.0)  # same seeds drawn for both arms
    varied = wallclock_gain(scratch, checkpoints("lora", LORA_CELLS), 0.5, n_boot=300)
    assert varied.value == 10.0 and varied.ci95[0] < 10.0 < varied.ci95[1]  # the seeds' seconds differ


@pytest.mark.parametrize(("make", "words"), [
    (lambda: CheckpointResults("s", {}), "cells"),
    (lambda: CheckpointResults("s", {10: {0: (1.0, 0.5)}}), "budget, training step"),
    (lambda: CheckpointResults("s", {(10, -1): {0: (1.0, 0.5)}}), "budget, training step"),
    (lambda: CheckpointResults("s", {(10, 5): {0: 0.5}}), r"\(seconds, outcomes\)"),
    (lambda: CheckpointResults("s", {(10, 5): {0: (0.0, 0.5)}}), "positive"),
    (lambda: CheckpointResults("s", {(10, 5): {0: (1.0, 0.5)}, (10, 9): {1: (2.0, 0.5)}}), "same seeds"),
    (lambda: wallclock_gain(checkpoints("s", SCRATCH_CELLS), checkpoints("a", LORA_CELLS), 0.5, extra_seconds=-1),
     "extra_seconds"),
    (lambda: wallclock_gain(checkpoints("s", SCRATCH_CELLS), checkpoints("a", LORA_CELLS, seeds=2), 0.5), "seeds"),
])
def test_checkpoint_bad_input(make, words):
    with pytest.raises(ValueError, match=words):
        make()


# ---- stronger_arm -----------------------------------------------------------------------------


def test_stronger_arm_by_demos_then_area():
    fast, slow = constant_arm("scratch", LORA), constant_arm("act", SCRATCH)
    choice = stronger_arm({"scratch": fast, "act": slow}, 0.5)
    assert (choice.name, choice.reason) == ("scratch", "fewer_demos")
    low, high = constant_arm("scratch", {5: 0.2, 10: 0.2}), constant_arm("act", {5: 0.3, 10: 0.3})
    choice = stronger_arm({"scratch": low, "act": high}, 0.9)
    assert (choice.name, choice.reason) == ("act", "area_under_curve")
    assert choice.areas == {"scratch": pytest.approx(0.2), "act": pytest.approx(0.3)}
    tie = stronger_arm({"scratch": low, "act": low}, 0.9)
    assert (tie.name, tie.reason) == ("act", "tie")
    errors = {"scratch": ArmResults("scratch", {5: {0: 0.5}, 10: {0: 0.4}}),
              "act": ArmResults("act", {5: {0: 0.6}, 10: {0: 0.5}})}
    assert stronger_arm(errors, 0.1, higher_is_better=False).name == "scratch"  # lower error area wins


@pytest.mark.parametrize(("call", "name"), [
    (lambda: adaptation_gain(constant_arm("s", SCRATCH), constant_arm("a", LORA), float("nan")), "threshold"),
    (lambda: adaptation_gain(constant_arm("s", SCRATCH), constant_arm("a", LORA), 0.5, n_boot=0), "n_boot"),
    (lambda: negative_transfer(constant_arm("s", {5: 0.5}), constant_arm("a", {10: 0.5})), "share none"),
    (lambda: stronger_arm({}, 0.5), "arms"),
])
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()
