import pytest
import yaml

from locksmith.audit.plan import (
    PlanError,
    TrainingRule,
    bundled_plan,
    bundled_plans,
    load_plan,
    parse_plan,
)
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
    assert [rule.warmup_steps(s) for s in (5, 300, 3000)] == [1, 30, 100]
    assert TrainingRule(checkpoint_fractions=(0.5, 0.25)).checkpoint_steps(300) == (75, 150)


def test_training_is_one_stated_recipe_with_a_grid_and_per_recipe_lambda():
    plan = parse_plan({**BASE, "recipes": ["full", "lora"], "budgets": [5, 10, 20, 40],
                       "training": {"lr": [3e-3, 1e-3], "schedule": "constant", "grad_clip": 0.5,
                                    "recipes": {"full": {"weight": 0.01}, "lora": {"lora_rank": 4}}}})
    assert plan.training.lr == (1e-3, 3e-3) and plan.training.schedule == "constant"
    assert plan.training.recipe("full").weight == 0.01 and plan.training.recipe("lora").alpha == 8.0
    assert plan.training.recipe("scratch").weight == 0.0  # a recipe the plan leaves alone gets the defaults
    assert parse_plan({**BASE, "training": {"lr": 0.002}}).training.lr == (0.002,)  # one number is a grid of one
    assert plan.headline == "full" and plan.tune_budget == 10  # the first recipe; the median budget
    assert parse_plan({**BASE, "recipes": ["full", "lora"], "headline_recipe": "lora"}).headline == "lora"


def test_the_pool_holds_twice_the_largest_budget_so_seeds_draw_their_own_demos():
    from locksmith.audit.run import ResolvedTarget, demo_episodes

    plan = parse_plan({**BASE, "budgets": [5, 20]})
    assert plan.pool_size() == 40
    target = ResolvedTarget("t", plan.targets[0], "so101", "reach", "d", tuple(range(plan.pool_size())), 0.5,
                            "absolute 0.5", "", None)
    at_max = [set(demo_episodes(target, 20, seed)) for seed in plan.seeds]
    assert all(len(s) == 20 for s in at_max) and len({frozenset(s) for s in at_max}) == len(plan.seeds)
    assert set(demo_episodes(target, 5, 1)) < set(demo_episodes(target, 20, 1))  # nested within a seed


@pytest.mark.parametrize("change, field, words", [
    ({"targets": [{"robot": "robby"}]}, "targets.0.robot", "unknown robot 'robby'"),
    ({"recipes": ["lorra"]}, "recipes", "unknown recipe 'lorra'"),
    ({"recipes": ["scratch"]}, "recipes", "at least one adapted recipe"),
    ({"evaluation": {"slices": ["sideways"]}}, "evaluation.slices", "unknown slice 'sideways'"),
    ({"budgets": []}, "budgets", "budget list is empty"),
    ({"budgets": [0, 3]}, "budgets", "between 1 and 5000"),
    ({"threshold": {"absolute": 1.5}}, "<root>", "must be in [0, 1]"),
    ({"threshold": {"expert_fraction": 0}}, "threshold", "(0, 1]"),
    ({"threshold": {"absolute": 0.5, "expert_fraction": 0.5}}, "threshold", "exactly one"),
    ({"targets": [{"task": "reach"}]}, "targets.0", "needs 'robot'"),
    ({"targets": [{"dataset": "/d"}]}, "<root>", "threshold: {absolute"),
    ({"training": {"min_steps": 10, "max_steps": 5}}, "training", "min_steps=10 > max_steps=5"),
    ({"budget": [1]}, "budget", "Extra inputs"),
    ({"prior": {"demo_noise": -0.01}}, "prior.demo_noise", "greater than or equal to 0"),
    ({"seeds": [-1, 0, 1]}, "seeds", "between 0 and 99999"),
    ({"threshold": {"absolute": float("nan")}}, "threshold.absolute", "finite number"),
    ({"training": {"lr": [1e-3, float("inf")]}}, "training.lr", "must be in (0, 1]"),
    ({"training": {"lr": []}}, "training.lr", "grid is empty"),
    ({"training": {"recipes": {"lora": {"lora_rank": 100000}}}}, "training.recipes.lora.lora_rank", "less than"),
    ({"training": {"recipes": {"full": {"weight": -1}}}}, "training.recipes.full.weight", "greater than"),
    ({"training": {"recipes": {"full": {"weight": 0.1}}}}, "<root>", "does not run"),
    ({"training": {"checkpoint_fractions": [1.0]}}, "training.checkpoint_fractions", "in (0, 1)"),
    ({"headline_recipe": "full"}, "<root>", "not one of the plan's recipes"),
    ({"evaluation": {"episodes": 1000000000}}, "evaluation.episodes", "less than or equal to 10000"),
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


def test_the_demonstrations_noise_is_part_of_the_prior_cache_key():
    from locksmith.audit.plan import PriorSection

    assert PriorSection(demo_noise=0.004).cache_key() != PriorSection().cache_key()


def test_the_peer_runs_only_where_it_can_still_be_the_stronger_baseline():
    from locksmith.audit.run import ResolvedTarget, peer_budget_cap

    plan = parse_plan({**BASE, "budgets": [5, 10, 20, 40]})
    target = ResolvedTarget("tabletop_arm", plan.targets[0], "so101", "reach", "d", tuple(range(80)), 0.5,
                            "absolute 0.5", "", None)

    def runs(curve: dict[int, list[float]], arm="scratch"):
        return [{"target": "tabletop_arm", "arm": arm, "budget": b, "seed": s, "value": v}
                for b, values in curve.items() for s, v in enumerate(values)]

    # scratch's mean reaches 0.5 first at 20 demos: a peer that has not reached it by 20 cannot win
    assert peer_budget_cap(target, runs({5: [0.0, 0.1, 0.0], 10: [0.3, 0.4, 0.2], 20: [0.5, 0.6, 0.5],
                                         40: [0.9, 0.8, 0.9]})) == 20
    assert peer_budget_cap(target, runs({5: [0.0] * 3, 40: [0.4] * 3})) == float("inf")  # never: every budget
    assert peer_budget_cap(target, runs({5: [1.0] * 3}, arm="lora")) == float("inf")  # only scratch counts
