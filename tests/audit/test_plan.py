import pytest
import yaml

from locksmith.audit.plan import PlanError, TrainingRule, bundled_plan, bundled_plans, load_plan, parse_plan
from locksmith.cli import main

BASE = {
    "name": "t",
    "targets": [{"robot": "so101", "task": "reach"}],
    "recipes": ["lora"],
    "budgets": [2, 4],
}


def _write(tmp_path, data, name="plan.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("name", bundled_plans())
def test_every_bundled_plan_loads(name):
    plan = bundled_plan(name)
    assert plan.arms[0] == "scratch" and "act" in plan.arms
    assert all(t.metric == "success" for t in plan.targets)


def test_default_plan_names_the_three_targets():
    labels = [t.label() for t in bundled_plan("default").targets]
    assert labels == ["tabletop_arm", "mobile_manipulator", "bimanual_platform"]


def test_scratch_always_runs_and_arms_are_ordered():
    plan = parse_plan({**BASE, "recipes": ["scratch", "lora", "head", "lora"]})
    assert plan.recipes == ("lora", "head")
    assert plan.arms == ("scratch", "act", "lora", "head")
    assert parse_plan({**BASE, "peer_baseline": "none"}).arms == ("scratch", "lora")


def test_target_label_defaults_to_role():
    plan = parse_plan(BASE)
    assert plan.targets[0].label() == "tabletop_arm"


def test_toml_plan(tmp_path):
    path = tmp_path / "plan.toml"
    path.write_text('name = "t"\nrecipes = ["token"]\nbudgets = [3, 1]\n[[targets]]\nrobot = "aloha"\ntask = "lift"\n')
    plan = load_plan(path)
    assert plan.budgets == (1, 3) and plan.targets[0].label() == "bimanual_platform"


def test_training_rule_is_one_clipped_formula():
    rule = TrainingRule(steps_per_demo=10, min_steps=50, max_steps=300)
    assert [rule.steps(n) for n in (1, 5, 10, 100)] == [50, 50, 100, 300]


@pytest.mark.parametrize("change, field, words", [
    ({"targets": [{"robot": "robby"}]}, "targets.0.robot", "unknown robot 'robby'"),
    ({"recipes": ["lorra"]}, "recipes", "unknown recipe 'lorra'"),
    ({"recipes": ["scratch"]}, "recipes", "at least one adapted recipe"),
    ({"evaluation": {"slices": ["sideways"]}}, "evaluation.slices", "unknown slice 'sideways'"),
    ({"budgets": []}, "budgets", "budget list is empty"),
    ({"budgets": [0, 3]}, "budgets", ">= 1"),
    ({"threshold": {"absolute": 1.5}}, "<root>", "must be in [0, 1]"),
    ({"threshold": {"expert_fraction": 0}}, "threshold", "(0, 1]"),
    ({"threshold": {"absolute": 0.5, "expert_fraction": 0.5}}, "threshold", "exactly one"),
    ({"targets": [{"task": "reach"}]}, "targets.0", "needs 'robot'"),
    ({"targets": [{"dataset": "/d"}]}, "<root>", "threshold: {absolute"),
    ({"training": {"min_steps": 10, "max_steps": 5}}, "training", "min_steps=10 > max_steps=5"),
    ({"budget": [1]}, "budget", "Extra inputs"),
    ({"prior": {"demo_noise": -0.01}}, "prior.demo_noise", "greater than or equal to 0"),
])
def test_bad_plans_name_file_field_and_value(tmp_path, change, field, words):
    path = _write(tmp_path, {**BASE, **change})
    with pytest.raises(PlanError) as err:
        load_plan(path)
    text = str(err.value)
    assert str(path) in text and f"field {field!r}" in text and words in text


def test_unknown_bundled_plan_suggests_the_nearest():
    with pytest.raises(PlanError, match="did you mean 'quick'"):
        bundled_plan("quik")


def test_cli_rejects_a_bad_plan_with_exit_2_and_writes_nothing(tmp_path, capsys):
    path = _write(tmp_path, {**BASE, "recipes": ["nope"]})
    out = tmp_path / "out"
    assert main(["audit", str(path), "--out", str(out)]) == 2
    assert "unknown recipe 'nope'" in capsys.readouterr().err
    assert not out.exists()
    assert main(["audit", "nosuchplan"]) == 2
    assert main(["audit", str(path), "--quick"]) == 2


def _fake_results(curves: dict[str, dict[int, float]], episodes: int = 20) -> list[dict]:
    """Sweep results as `execute_run` writes them, from a success rate per (arm, budget)."""
    rows = []
    for arm, curve in curves.items():
        for budget, rate in curve.items():
            for seed in (0, 1):
                k = int(round(rate * episodes))
                rows.append({"target": "tabletop_arm", "arm": arm, "budget": budget, "seed": seed,
                             "successes": k, "episodes": episodes, "value": k / episodes,
                             "train_seconds": 10.0 * budget, "eval_seconds": 1.0, "frames": 100 * budget,
                             "trainable_parameters": 1000, "checkpoint": "x",
                             "per_slice": {"nominal": {"success_rate": k / episodes}}})
    return rows


def _resolved(plan):
    from locksmith.audit.run import ResolvedTarget

    return ResolvedTarget("tabletop_arm", plan.targets[0], "so101", "reach", "d", tuple(range(40)), 0.5,
                          "absolute 0.5", "", None)


def test_refinement_bisects_the_bracket_of_each_crossing_on_log_demos():
    from locksmith.audit.summary import refine_budgets

    plan = parse_plan({**BASE, "budgets": [2, 8, 32], "peer_baseline": "none"})
    results = _fake_results({"scratch": {2: 0.0, 8: 0.1, 32: 0.9}, "lora": {2: 0.2, 8: 0.8, 32: 1.0}})
    budgets = refine_budgets(plan, [_resolved(plan)], results, {})
    assert budgets["tabletop_arm"] == {"scratch": [2, 8, 16, 32], "lora": [2, 4, 8, 32]}


def test_summary_reports_a_lower_bound_when_scratch_never_reaches():
    from locksmith.audit.summary import format_table, summarize

    plan = parse_plan({**BASE, "budgets": [2, 8, 32], "peer_baseline": "none"})
    results = _fake_results({"scratch": {2: 0.0, 8: 0.0, 32: 0.1}, "lora": {2: 0.2, 8: 0.8, 32: 1.0}})
    audit = summarize(plan, [_resolved(plan)], results, {"checkpoint": "p"})
    target = audit["targets"]["tabletop_arm"]
    assert target["baseline_arm"] == "scratch" and target["adapted_arm"] == "lora"
    gain = target["adaptation_gain"]
    assert gain["is_lower_bound"] and gain["text"].startswith("> ") and not target["goal_met"]
    # max budget / adapted crossing: 0.2 at 2 and 0.8 at 8 cross 0.5 half-way in log demos, at 4
    assert gain["value"] == pytest.approx(32 / 4)
    assert format_table(audit).splitlines()[0] == f"tabletop_arm: adaptation_gain={gain['text']}"


def test_the_demonstrations_noise_is_part_of_the_prior_cache_key():
    from locksmith.audit.plan import PriorSection

    assert PriorSection(demo_noise=0.004).cache_key() != PriorSection().cache_key()
