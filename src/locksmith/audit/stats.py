"""The statistics of the transfer audit: how many demos each arm needs, and what the prior saves.

This module is the one place to import them from; the code lives by concept in `crossing`
(the crossing), `arms` (the data), `bootstrap` (the joint resampling), `gains` (gains, negative
transfer, the stronger baseline) and `wallclock` (seconds from checkpoints).

The data. One *arm* (a training recipe: ``scratch``, ``lora``, ``act``, ...) on one target robot is
trained at several demo budgets with the same training seeds at every budget (seed s trains on
nested demo subsets), and every arm at (budget, seed) trains on the same demos. Every run (arm,
budget, training seed) is scored on the SAME evaluation episodes, named by keys such as
``"nominal/2000000003"``: its outcomes are an (E,) array aligned with the keys (0/1 successes,
higher is better), or one scalar per run (offline action error, lower is better). Training seed ×
evaluation episode is therefore a crossed design, shared by every arm and budget.

The estimates:

    curve(n)            mean over seeds of each run's mean outcome at budget n
    demos_to_threshold  isotonic fit of the curve against log(n), then linear interpolation in
                        log(n) of where the fit first reaches the threshold
    adaptation gain     baseline demos-to-threshold / adapted demos-to-threshold
    negative transfer   adapted curve(n) - baseline curve(n) at each shared budget
    wall-clock gain     baseline seconds-to-threshold / (adapted seconds + extra_seconds), where an
                        arm's seconds are the fewest mean-over-seeds training seconds of a checkpoint
                        whose mean-over-seeds outcome reaches the threshold (no interpolation)

Censoring. A crossing outside the measured range is a bound, never a plain number: not reaching
the threshold within the largest budget N means > N demos; being at it already at the smallest
budget n0 means <= n0 (checkpoints: the most / the fewest seconds measured). The gain is then a
lower bound (baseline > N, or adapted <= n0), an upper bound (the reverse), or undefined (both at
once), and prints as a bound: ``> 2.3x (95 % lower confidence bound 1.3x, 3 seeds; scratch did not
reach the threshold within 50 demos)``, never as a bracket.

Uncertainty: a joint, paired bootstrap. Each replicate draws S training seeds and E evaluation
episodes with replacement, once, and applies that one draw to every arm and every budget (or
checkpoint) involved; a replicate curve value is the mean of the outcomes over the drawn seeds ×
the drawn episodes (scalar metrics: over the drawn seeds only; checkpoint seconds: over the drawn
seeds). A gain replicate is the ratio of the two arms' crossings under the same draw, a negative-
transfer replicate the difference of their curves under it; a replicate whose crossing is censored
uses the bound in its place, and the result reports the fraction of such replicates. Intervals are
95 % percentile intervals; a bound gets a one-sided 95 % confidence bound instead, the 5th (lower
bound) or 95th (upper bound) percentile of the replicate ratios. Arms that differ in seeds or
episode keys are refused (ValueError), since they cannot be paired.

The 3-seed rule. Below ``MIN_SEEDS_FOR_INTERVAL`` = 3 training seeds no interval or confidence bound
is computed at all (with 1-2 seeds a nominal 95 % interval covered 53-80 % in simulation, and with
one seed it collapses to a point): gains print ``8.2x, no interval (2 seeds)``, curves and
crossings have ``ci95`` None, and negative transfer is never flagged. Every interval carries its
seed count: ``8.2x [6.1, 10.4] (3 seeds)``.
"""

from locksmith.audit.arms import ArmResults, CheckpointResults
from locksmith.audit.bootstrap import (
    MIN_SEEDS_FOR_INTERVAL,
    ArmCurve,
    CrossingInterval,
    arm_crossing,
    arm_curve,
    crossing_interval,
    joint_replicate_curves,
    replicate_crossings,
)
from locksmith.audit.crossing import (
    REACH_TOLERANCE,
    Crossing,
    CrossingStatus,
    demos_to_threshold,
    isotonic_fit,
)
from locksmith.audit.gains import (
    Gain,
    StrongerArm,
    adaptation_gain,
    negative_transfer,
    stronger_arm,
)
from locksmith.audit.wallclock import time_to_threshold, wallclock_gain

__all__ = [
    "MIN_SEEDS_FOR_INTERVAL", "REACH_TOLERANCE", "ArmCurve", "ArmResults", "CheckpointResults", "Crossing",
    "CrossingInterval", "CrossingStatus", "Gain", "StrongerArm", "adaptation_gain", "arm_crossing", "arm_curve",
    "crossing_interval", "demos_to_threshold", "isotonic_fit", "joint_replicate_curves", "negative_transfer",
    "replicate_crossings", "stronger_arm", "time_to_threshold", "wallclock_gain",
]
