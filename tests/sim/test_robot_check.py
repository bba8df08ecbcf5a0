"""The robot check (`locksmith robot check`, `locksmith.sim.check`): every bundled robot passes
it, and each mistake of issue #20, made on purpose with a bundled model
(`robot_check_fixtures.py`), gets its finding, naming what to change, and exit code 2.
"""

import json
import logging
import os
import subprocess
import sys

import pytest
import robot_check_fixtures as fx  # tests/sim is on sys.path (pytest's rootdir-relative import)

import locksmith
from locksmith.cli import main
from locksmith.embodiment import registry
from locksmith.embodiment.registry import (
    BUNDLED_ROBOTS,
    ROBOTS_ENV,
    RegistryError,
    RobotCheckError,
)
from locksmith.sim.check import CHECKS, check_robot
from locksmith.sim.robots import so101


def codes(report) -> set[str]:
    return {f.code for f in report.findings}


def finding(report, code: str):
    return next(f for f in report.findings if f.code == code)


@pytest.fixture
def fresh_discovery(monkeypatch):
    """A process that has not looked at LOCKSMITH_ROBOTS yet (restored afterwards)."""
    monkeypatch.setattr(registry, "_DISCOVERED", set())
    monkeypatch.setattr(registry, "_DISCOVERY_ERRORS", {})
    monkeypatch.setattr(registry, "_REGISTERED", dict(registry._REGISTERED))
    monkeypatch.delenv(ROBOTS_ENV, raising=False)


# ---------------------------------------------------------------------------- bundled robots
@pytest.mark.parametrize("robot", BUNDLED_ROBOTS)
def test_every_bundled_robot_passes_the_quick_check(robot):
    report = check_robot(robot, full=False)
    assert report.ok, report.format()
    assert report.passed == [c for c in CHECKS if c != "expert"] and not report.skipped


@pytest.mark.parametrize("robot", ["panda", "aloha"])
def test_full_check_is_clean_on_a_single_arm_and_a_bimanual_robot(robot):
    report = check_robot(robot, full=True)
    assert report.ok, report.format()
    assert set(report.expert) == {"reach", "lift", "push", "pick_place"}
    assert all(r["successes"] >= 3 for r in report.expert.values())


def test_a_bimanual_robot_built_with_the_public_helpers_passes():
    """Two SO-101s side by side, from `load_model` and `add_servo_arm` (the docs' example)."""
    report = check_robot(fx.twin_so101_spec(), fx.twin_so101, full=False)
    assert report.ok, report.format()


# ---------------------------------------------------------------------------- the mistakes
def test_degree_valued_gripper_range_is_named_with_the_compiler_fix():
    report = check_robot(fx.my_ur5e_spec(), fx.ur5e_degree_gripper, full=True, tasks=("lift",), episodes=1)
    units = finding(report, "gripper_range_degrees")
    assert units.severity == "error" and units.where == "model joint 'ur5e/gripper/right_driver_joint'"
    assert "[0, 0.8] degrees" in units.message and 'compiler angle="radian"' in units.fix
    assert finding(report, "gripper_no_close").severity == "error"  # and physically, on a cube
    assert "7 hinge(s)" in finding(report, "tiny_hinge_range").message  # the linkage's other joints
    # The one spec field that disagrees with the model: the elbow's upper limit.
    elbow = finding(report, "joint_range")
    assert elbow.where == "spec joints[2] ('elbow').lower/upper" and "upper: 3.1415" in elbow.fix
    assert report.expert["lift"]["failure"]["cause"] == "did not close"


def test_spec_limits_in_degrees():
    def in_degrees(data):
        data["joints"][3].update(lower=-176.0, upper=-22.9)  # panda joint4, [-3.07, -0.4] rad
    report = check_robot(fx.spec_like("panda", "panda_deg", in_degrees), "locksmith.sim.robots.panda:build",
                         full=False)
    found = finding(report, "spec_range_degrees")
    assert found.where == "spec joints[3] ('joint4').lower/upper" and "lower: -3.07" in found.fix


def test_fingertips_below_the_push_height_drag():
    report = check_robot(fx.spec_like("vx300s", "vx_low_push"), fx.vx300s_low_push, full=True, tasks=("push",))
    drag = finding(report, "fingertips_drag")
    assert drag.where == "builder RobotRig.extra['push_height']" and "push_height'] = 1" in drag.fix
    assert "13.1 mm below the TCP" in drag.message
    assert report.expert["push"]["failure"]["cause"] == "dragged"
    assert finding(report, "expert_push").severity == "error"


def test_a_gripper_that_cannot_hold_the_cube_slips():
    report = check_robot(fx.spec_like("vx300s", "vx_slippery"), fx.vx300s_slippery_fingers, full=True,
                         tasks=("lift",), episodes=1)
    assert finding(report, "gripper_slip").where == "model actuator 'vx300s/right/act_gripper'"
    assert report.expert["lift"]["failure"]["cause"] == "slipped"


def test_a_linkage_gripper_driven_too_weakly_never_releases():
    report = check_robot(fx.spec_like("ur5e", "ur5e_weak"), fx.ur5e_weak_linkage, full=False)
    found = finding(report, "gripper_no_open")
    assert "closure_threshold" in found.message and found.where == "model actuator 'ur5e/act_gripper'"


def test_spec_with_fewer_joints_than_the_builder():
    def six_joints(data):
        del data["joints"][6]
        data["arms"][0]["joints"] = data["arms"][0]["joints"][:6]
        for section in ("state", "action"):
            for comp in data[section]:
                if comp["kind"] in ("joint_position", "joint_velocity"):
                    comp["size"] = 6
    spec = fx.spec_like("panda", "panda_six", six_joints)
    report = check_robot(spec, "locksmith.sim.robots.panda:build", full=False)
    found = finding(report, "joint_count")
    assert found.where == "spec arms[0].joints" and "6 joints in the spec but 7" in found.message
    assert "home" in report.skipped  # the environment could not be built: no crash, a finding
    # register_robot runs the quick check and refuses the robot, naming the finding.
    with pytest.raises(RobotCheckError, match="joint_count|6 joints in the spec but 7") as err:
        locksmith.register_robot(spec, "locksmith.sim.robots.panda:build")
    assert err.value.report.errors and "panda_six" not in registry.registered_robots()


def test_arm_names_that_differ_between_spec_and_builder():
    def rename(data):
        for arm, new in zip(data["arms"], ("L", "R"), strict=True):
            old, arm["name"] = arm["name"], new
            for section in ("state", "action"):
                for comp in data[section]:
                    if comp.get("arm") == old:
                        comp["arm"] = new
    report = check_robot(fx.spec_like("aloha", "aloha_lr", rename), "locksmith.sim.robots.aloha:build", full=False)
    found = finding(report, "arm_names")
    assert "['L', 'R']" in found.message and "['left', 'right']" in found.fix


def test_gripper_open_value_outside_its_joint_range():
    report = check_robot(fx.spec_like("so101", "so101_wide"), fx.so101_open_outside_range, full=False)
    found = finding(report, "gripper_outside_range")
    assert found.where == "builder ArmRig('arm').gripper_q_open" and "[-0.1745, 1.745]" in found.message


def test_control_rate_against_the_physics_step():
    slow = check_robot(fx.spec_like("panda", "panda_100hz", control_rate_hz=100), "locksmith.sim.robots.panda:build",
                       full=False)
    found = finding(slow, "control_period")
    assert found.severity == "warning" and found.where == "spec control_rate_hz" and "83.33, 125" in found.fix
    fast = check_robot(fx.spec_like("panda", "panda_400hz", control_rate_hz=400), "locksmith.sim.robots.panda:build",
                       full=False)
    assert finding(fast, "control_period").severity == "error"


def test_home_pose_in_contact():
    report = check_robot(fx.spec_like("panda", "panda_folded"), fx.panda_folded_home, full=False)
    contacts = [f for f in report.findings if f.code == "home_contact"]
    assert any("panda0_link0" in f.where and "finger" in f.where for f in contacts)


def test_spawn_box_out_of_reach():
    report = check_robot(fx.spec_like("vx300s", "vx_far"), fx.vx300s_far_workspace, full=False)
    found = finding(report, "workspace_unreachable")
    assert found.where == "builder RobotRig.workspace" and "spawn_x's upper end (0.68)" in found.fix


def test_safety_workspace_below_the_lift_height():
    def low_box(data):
        data["safety"]["workspace_max"][2] = 0.1
    report = check_robot(fx.spec_like("panda", "panda_low_box", low_box), "locksmith.sim.robots.panda:build",
                         full=False)
    assert finding(report, "safety_top").where == "spec safety.workspace_max[2]"


@pytest.mark.parametrize("builder, code, text", [
    (fx.so101_misspelled_tcp, "missing_site", "did you mean 'so101/tcp'"),
    (fx.panda_motor_joint, "not_a_servo", "not a position servo"),
    (fx.not_a_rig, "builder_return", "NoneType"),
    (fx.two_so101_one_prefix, "builder_raised", "repeated name"),
])
def test_builder_mistakes(builder, code, text):
    robot = "so101" if "so101" in builder.__name__ else "panda"
    report = check_robot(fx.spec_like(robot, f"broken_{code}"), builder, full=False)
    found = finding(report, code)
    assert text in found.message
    assert report.errors and report.skipped
    if code == "builder_raised":
        assert "its own prefix" in found.fix


def test_two_arms_sharing_a_servo():
    report = check_robot(fx.spec_like("aloha", "aloha_shared"), fx.aloha_shared_gripper_servo, full=False)
    assert "both use the actuator 'aloha/left/act_gripper'" in finding(report, "shared_name").message


# ---------------------------------------------------------------------------- registration
def test_register_robot_runs_the_quick_check(fresh_discovery, caplog):
    spec = fx.spec_like("vx300s", "vx_low_push_registered")
    with caplog.at_level(logging.WARNING, logger="locksmith.embodiment.registry"):
        locksmith.register_robot(spec, fx.vx300s_low_push)  # warnings only: registered, warned
    assert "vx_low_push_registered" in registry.registered_robots()
    assert any("fingertips" in r.getMessage() and "push_height" in r.getMessage() for r in caplog.records)
    broken = fx.spec_like("ur5e", "ur5e_degrees_registered")
    with pytest.raises(RobotCheckError, match="gripper_range_degrees|read its radians as degrees"):
        locksmith.register_robot(broken, fx.ur5e_degree_gripper)
    assert "ur5e_degrees_registered" not in registry.registered_robots()
    locksmith.register_robot(broken, fx.ur5e_degree_gripper, check=False)  # on purpose
    assert "ur5e_degrees_registered" in registry.registered_robots()


def test_bad_discovery_entries_are_one_line_with_the_fix(fresh_discovery, monkeypatch, caplog):
    monkeypatch.setenv(ROBOTS_ENV, "no_such_pkg.robots:register,robot_check_fixtures:register_failing")
    with caplog.at_level(logging.WARNING, logger="locksmith.embodiment.registry"):
        assert registry.known_robots() == BUNDLED_ROBOTS  # nothing registered, nothing raised
    errors = registry.discovery_errors()
    missing = errors[f"{ROBOTS_ENV} entry 'no_such_pkg.robots:register'"]
    assert "cannot import module 'no_such_pkg.robots'" in missing and "PYTHONPATH" in missing
    assert "builder" not in missing and "\n" not in missing
    raised = errors[f"{ROBOTS_ENV} entry 'robot_check_fixtures:register_failing'"]
    assert "register function raised RuntimeError: the robot's config server is down" in raised
    assert len(caplog.records) == 2 and all("\n" not in r.getMessage() for r in caplog.records)
    with pytest.raises(KeyError) as err:
        registry.load_robot_spec("my_arm")
    message = err.value.args[0]
    assert "known robots: panda" in message and "register_robot" in message and ROBOTS_ENV in message
    assert "no_such_pkg" in message  # the failed entries are named


def test_registration_equality_ignores_where_the_spec_came_from(fresh_discovery, tmp_path):
    """A worker gets the spec object from the pool initializer, then discovery registers the same
    spec from its file: the same registration, not a clash."""
    path = tmp_path / "twin.yaml"
    path.write_text(fx.twin_so101_spec().to_yaml())
    registry.install_registrations([registry.RobotRegistration(fx.twin_so101_spec(), fx.twin_so101)])
    locksmith.register_robot(path, fx.twin_so101)  # equal: a no-op, and no check run
    assert registry.registration("twin_so101").source == "<memory>"


# ---------------------------------------------------------------------------- command line
def test_cli_checks_a_bundled_robot(capsys):
    assert main(["robot", "check", "panda", "--quick"]) == 0
    assert "no findings" in capsys.readouterr().out


def test_cli_done_when(fresh_discovery, monkeypatch, capsys):
    """The issue's acceptance test: a user's arm with a degree-valued gripper range and a spec
    that disagrees with the model in one field, registered through LOCKSMITH_ROBOTS as the docs
    say; `locksmith robot check` names both, with what to change, and exits 2."""
    monkeypatch.setenv(ROBOTS_ENV, "robot_check_fixtures:register_degree_ur5e")
    assert main(["robot", "check", "my_ur5e", "--json", "--tasks", "lift", "--episodes", "1"]) == 2
    report = json.loads(capsys.readouterr().out)
    by_code = {f["code"]: f for f in report["findings"]}
    assert by_code["gripper_range_degrees"]["where"] == "model joint 'ur5e/gripper/right_driver_joint'"
    assert 'compiler angle="radian"' in by_code["gripper_range_degrees"]["fix"]
    assert by_code["joint_range"]["where"] == "spec joints[2] ('elbow').lower/upper"
    assert report["expert"]["lift"]["failure"]["cause"] == "did not close" and not report["ok"]
    # Outside the check, the same entry is refused at registration, in one warning line.
    monkeypatch.setattr(registry, "_DISCOVERED", set())
    registry.unregister_robot("my_ur5e")
    assert "my_ur5e" not in registry.known_robots()
    assert "read its radians as degrees" in next(iter(registry.discovery_errors().values()))


def test_cli_checks_a_spec_file_and_builder_before_registering(tmp_path, capsys):
    path = tmp_path / "my_ur5e.yaml"
    path.write_text(fx.my_ur5e_spec().to_yaml())
    argv = ["robot", "check", "--spec", str(path), "--builder", "robot_check_fixtures:ur5e_degree_gripper", "--quick"]
    assert main(argv) == 2
    out = capsys.readouterr().out
    assert "ERROR   [gripper] model joint 'ur5e/gripper/right_driver_joint'" in out and "fix: add <compiler" in out
    assert "my_ur5e" not in registry.registered_robots()  # checked, not left registered


@pytest.mark.parametrize("argv, expect", [
    (["robot", "check", "nope"], "unknown robot 'nope'"),
    (["robot", "check"], "give a robot NAME"),
    (["robot", "check", "panda", "--tasks", "dance"], "unknown task 'dance'"),
    (["robot", "check", "--spec", "x.yaml", "--builder", "no_such_module:build"], "spec file not found"),
])
def test_cli_bad_input_exits_2(argv, expect, capsys):
    assert main(argv) == 2
    assert expect in capsys.readouterr().err


def test_cli_bad_robots_entry_is_one_line_not_a_traceback():
    env = {k: v for k, v in os.environ.items() if k != ROBOTS_ENV}
    env[ROBOTS_ENV] = "my_robots_pkg:register"
    done = subprocess.run([sys.executable, "-m", "locksmith.cli", "robot", "check", "my_arm", "--quick"],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 2, done.stderr  # the warning, then the error
    assert "cannot import module 'my_robots_pkg'" in lines[0] and "PYTHONPATH" in lines[0]
    assert lines[1].startswith("error: unknown robot 'my_arm'") and "register" in lines[1]


# ---------------------------------------------------------------------------- builder helpers
def test_solve_home_pose_reproduces_a_bundled_home():
    home = locksmith.solve_home_pose(so101.build, (0.2, 0.0, 0.07), yaw=1.5707963)
    assert home == pytest.approx(so101.HOME, abs=2e-3)
    with pytest.raises(ValueError, match="cannot point down"):
        locksmith.solve_home_pose(so101.build, (0.6, 0.0, 0.07))


def test_add_servo_arm_names_servos_after_their_joints():
    import mujoco

    spec = mujoco.MjSpec()
    rig = fx.twin_so101(spec, spec.worldbody)
    left, right = rig.arms
    assert left.actuators[0] == "left/shoulder_pan/servo" and right.gripper_actuator == "right/gripper/servo"
    model = spec.compile()
    assert model.nu == 12
    with pytest.raises(ValueError, match="no joint 'left/elbow'"):
        locksmith.add_servo_arm(spec, "left", ["left/elbow"], "left/tcp", "left/gripper", 1.0, 0.0,
                                kp=1.0, gripper_kp=1.0)


def test_load_model_warns_about_a_file_without_an_angle_unit(tmp_path, caplog):
    import mujoco

    path = tmp_path / "gripper.xml"
    path.write_text('<mujoco><worldbody><body name="b"><joint name="j" range="0 0.8"/>'
                    '<geom size="0.01"/></body></worldbody></mujoco>')
    scene = mujoco.MjSpec()
    with caplog.at_level(logging.WARNING, logger="locksmith.sim.builder_helpers"):
        as_degrees = locksmith.load_model(path, scene)
    assert "declares no <compiler angle>" in caplog.text
    radians = locksmith.load_model(path, scene, angle="radian")
    assert as_degrees.compile().jnt_range[0, 1] == pytest.approx(0.8 / 57.29578)
    assert radians.compile().jnt_range[0, 1] == pytest.approx(0.8)
    with pytest.raises(RegistryError):
        registry.resolve_callable("no_such_module:build")
