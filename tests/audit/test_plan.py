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
    assert parse_plan({**BASE, "peer_baseline": "act_and_intent"}).arms == ("scratch", "act", "act_intent", "lora")


def test_the_intent_act_needs_a_simulator(tmp_path):
    """ACT on intent acts through the robot's decoder, closed loop: a dataset-only target is refused."""
    spec = tmp_path / "arm.yaml"
    data = {**BASE, "peer_baseline": "act_and_intent",
            "targets": [{"dataset": str(tmp_path / "arm_data"), "spec": str(spec), "task": "pick_place",
                         "threshold": {"absolute": 0.1}}]}
    with pytest.raises(PlanError, match="peer_baseline: act_and_intent"):
        load_plan(_write(tmp_path, data))


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
    assert plan.headline == "full" and plan.tune_budget(plan.targets[0]) == 10  # the first recipe; the median budget
    assert parse_plan({**BASE, "recipes": ["full", "lora"], "headline_recipe": "lora"}).headline == "lora"


def test_the_pool_holds_twice_the_largest_budget_so_seeds_draw_their_own_demos():
    from locksmith.audit.targets import ResolvedTarget, demo_episodes

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
    ({"targets": [{"robot": "so101", "training": {"batch_sise": 64}}]}, "<root>",
     "target 'tabletop_arm': training.batch_sise: Extra inputs"),
    ({"targets": [{"robot": "so101", "training": {"min_steps": 10, "max_steps": 5}}]}, "<root>",
     "training: Value error, min_steps=10 > max_steps=5"),
    ({"targets": [{"robot": "so101", "training": {"recipes": {"full": {"weight": 0.1}}}}]}, "<root>",
     "training.recipes names ['full'], which the plan does not run"),
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
    from locksmith.audit.prior_section import PriorSection

    assert PriorSection(demo_noise=0.004).cache_key() != PriorSection().cache_key()
    assert PriorSection(demo_start_jitter=0.05).cache_key() != PriorSection().cache_key()
    with pytest.raises(ValueError, match="demo_start_jitter"):
        PriorSection(demo_start_jitter=0.5)


def test_the_peer_runs_only_where_it_can_still_be_the_stronger_baseline():
    from locksmith.audit.run import peer_budget_cap
    from locksmith.audit.targets import ResolvedTarget

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


def test_a_target_may_override_the_training_rule_for_every_arm_on_it():
    plan = parse_plan({**BASE, "training": {"batch_size": 32, "min_steps": 50, "max_steps": 300, "lr": [1e-3, 3e-3]},
                       "targets": [{"robot": "so101", "task": "reach"},
                                   {"robot": "mobile_panda", "task": "reach",
                                    "training": {"batch_size": 128, "min_steps": 3000, "max_steps": 3000,
                                                 "tune_budget": 4}}]})
    so101, mobile = plan.targets
    assert plan.training_for(so101) == plan.training  # no override: the plan's rule itself
    rule = plan.training_for(mobile)
    assert (rule.batch_size, rule.steps(2), rule.steps(400)) == (128, 3000, 3000)
    assert rule.lr == (1e-3, 3e-3) and rule.warmup_fraction == plan.training.warmup_fraction  # the rest inherited
    assert (plan.tune_budget(so101), plan.tune_budget(mobile)) == (2, 4)  # the median budget; its own


def test_the_peer_runs_from_the_largest_budget_down_and_stops_where_it_misses(monkeypatch):
    import locksmith.audit.run as run
    from locksmith.audit.run import peer_budget_floor
    from locksmith.audit.targets import ResolvedTarget
    from locksmith.audit.sweep import RunSpec

    plan = parse_plan({**BASE, "budgets": [5, 10, 20, 40]})
    target = ResolvedTarget("tabletop_arm", plan.targets[0], "so101", "reach", "d", tuple(range(80)), 0.5,
                            "absolute 0.5", "", None)

    def result(arm, budget, seed, value):
        return {"target": "tabletop_arm", "arm": arm, "budget": budget, "seed": seed, "value": value}

    # the largest budget at which the peer's mean over seeds missed 0.5; other arms do not count
    assert peer_budget_floor(target, [result("act", 10, s, 0.2) for s in range(3)]
                             + [result("act", 40, s, v) for s, v in enumerate([0.4, 0.6, 0.3])], "act") == 40
    assert peer_budget_floor(target, [result("act", 40, s, 0.9) for s in range(3)]
                             + [result("scratch", 20, 0, 0.0)], "act") == float("-inf")

    peer_curve = {5: 0.0, 10: 0.2, 20: 0.7, 40: 0.9}  # crosses between 10 and 20
    ran = []

    def fake_sweep(specs, **_):
        ran.append(sorted({s.budget for s in specs}))
        return [result(s.arm, s.budget, s.seed, peer_curve[s.budget]) for s in specs]

    monkeypatch.setattr(run, "run_sweep", fake_sweep)
    fields = {f: None for f in RunSpec.__dataclass_fields__}
    specs = [RunSpec(**{**fields, "target": "tabletop_arm", "arm": "act", "budget": b, "seed": s})
             for b in plan.budgets for s in plan.seeds]
    done, results = run._run_peers([target], specs, [], {})
    assert ran == [[40], [20], [10]]  # 10 misses: 5 cannot change the peer's demos-to-threshold
    assert sorted({s.budget for s in done}) == [10, 20, 40] and len(results) == 9


def test_an_intent_prior_is_its_own_cache_entry_and_a_native_one_keeps_its_key():
    """The action space is part of what a plan pretrains; a native prior's key is computed as it
    was before the field existed, so the priors already cached stay found."""
    import hashlib
    import json

    from locksmith.audit.prior_section import PriorSection

    def key_before(section: PriorSection, later: set[str]) -> str:  # as computed before the later fields
        data = section.model_dump(mode="json", exclude={"checkpoint"} | later)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    native, intent = PriorSection(), PriorSection(action_space="intent")
    pixels = {"observation", "image_size"}
    assert native.cache_key() == key_before(native, {"action_space", "intent_features", "demo_start_jitter", *pixels})
    assert intent.cache_key() == key_before(intent, {"intent_features", "demo_start_jitter", *pixels})  # intent priors cached before it, too
    relative = PriorSection(action_space="intent", intent_features="relative")
    assert len({native.cache_key(), intent.cache_key(), relative.cache_key()}) == 3
    assert relative.policy_fields() == {"action_space": "intent", "intent_features": "relative"}
    with pytest.raises(ValueError, match="unknown action space 'joint'"):
        PriorSection(action_space="joint")
    with pytest.raises(ValueError, match="needs action_space: intent"):
        PriorSection(intent_features="relative")


def test_the_plain_head_scratch_arm_runs_only_beside_an_intent_prior(tmp_path):
    """``prior_and_native`` adds the plain-head twin of an intent prior as a second scratch arm;
    beside a native prior (the published one, or a plan pretraining one) it would repeat scratch,
    so the plan is refused before anything is written."""
    from locksmith.audit.priors import check_prior

    both = {**BASE, "scratch_architectures": "prior_and_native"}
    assert parse_plan(both).arms == ("scratch", "scratch_native", "act", "lora")
    for plan in (both, {**both, "prior": {"robots": ["panda"], "tasks": ["reach"]}}):
        with pytest.raises(PlanError, match="plan.yaml: scratch_architectures: 'prior_and_native'"):
            check_prior(parse_plan(plan), "plan.yaml")
    intent = {**both, "prior": {"robots": ["panda"], "tasks": ["reach"], "action_space": "intent"}}
    assert check_prior(parse_plan(intent), "plan.yaml").prior is None  # built later, by the plan


def test_a_pixel_plan_gives_its_pretraining_stage_its_observation_and_refuses_what_it_cannot_run():
    """``observation`` is the plan's: a pretraining stage sees what the arms see (and its cache key
    says so, a state prior's staying as it was); a contrary prior.observation, ACT on an intent
    decoder and the published (state) prior are refused before any work."""
    from locksmith.audit.prior_section import PriorSection
    from locksmith.audit.priors import check_prior

    stage = {"robots": ["panda"], "tasks": ["reach"]}
    pixels = parse_plan({**BASE, "observation": "pixels", "prior": stage})
    assert pixels.prior.observation == "pixels"
    assert pixels.prior.policy_fields() == {"observation": "pixels"}
    state = parse_plan({**BASE, "prior": stage})
    assert state.prior.cache_key() == PriorSection(**stage).cache_key() != pixels.prior.cache_key()
    assert parse_plan({**BASE, "observation": "pixels", "prior": {**stage, "image_size": 32}}).prior.cache_key() \
        != pixels.prior.cache_key()
    with pytest.raises(PlanError, match="prior.observation 'pixels' differs from the plan's observation 'state'"):
        parse_plan({**BASE, "prior": {**stage, "observation": "pixels"}})
    with pytest.raises(PlanError, match="multiple of 16"):
        parse_plan({**BASE, "observation": "pixels", "prior": {**stage, "image_size": 40}})
    with pytest.raises(PlanError, match="act_and_intent"):
        parse_plan({**BASE, "observation": "pixels", "peer_baseline": "act_and_intent"})
    with pytest.raises(PlanError, match="pixels' with action_space 'intent'"):
        parse_plan({**BASE, "observation": "pixels", "prior": {**stage, "action_space": "intent"}})
    with pytest.raises(PlanError, match="plan.yaml: observation: the plan's arms see 'pixels', but the published"):
        check_prior(parse_plan({**BASE, "observation": "pixels"}), "plan.yaml")
    assert check_prior(pixels, "plan.yaml").prior is None  # built later, by the plan


def test_a_recipe_for_pixel_priors_is_refused_beside_a_state_prior(tmp_path, capsys):
    from locksmith.cli import main

    plan = tmp_path / "plan.yaml"
    plan.write_text("name: p\ntargets: [{name: t, robot: so101, task: pick_place}]\nrecipes: [full, frozen_vision]\n"
                    "budgets: [2]\nseeds: [0, 1, 2]\nthreshold: {absolute: 0.3}\n")
    assert main(["audit", str(plan), "--out", str(tmp_path / "out")]) == 2
    assert "recipes: 'frozen_vision' freezes a pixel prior's vision encoder" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
