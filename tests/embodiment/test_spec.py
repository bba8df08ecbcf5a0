import copy

import pytest
import yaml

from locksmith.embodiment.registry import BUNDLED_ROBOTS, bundled_spec_path, load_bundled_spec
from locksmith.embodiment.spec import SpecError, load_spec, parse_spec


@pytest.mark.parametrize("name", BUNDLED_ROBOTS)
def test_every_bundled_spec_loads_and_is_consistent(name):
    spec = load_bundled_spec(name)
    assert spec.name == name
    assert spec.state_dim == len(spec.names("state"))
    assert spec.action_dim == len(spec.names("action"))
    for arm in spec.arms:
        grip = arm.gripper
        assert grip.to_closure(grip.to_native(0.25)) == pytest.approx(0.25)
    # slices tile the vector without gaps
    ends = [s.stop for s in spec.slices("action").values()]
    assert ends[-1] == spec.action_dim


def test_roles_of_the_bundled_suite():
    roles = {n: load_bundled_spec(n).role for n in BUNDLED_ROBOTS}
    assert roles["so101"] == "tabletop_arm"
    assert roles["mobile_panda"] == "mobile_manipulator"
    assert roles["aloha"] == "bimanual_platform"
    assert sum(r == "pretrain" for r in roles.values()) >= 4


def test_local_conventions_differ_across_the_suite():
    specs = [load_bundled_spec(n) for n in BUNDLED_ROBOTS]
    assert len({s.action_kind for s in specs}) >= 3
    assert len({s.control_rate_hz for s in specs}) >= 4
    assert {a.gripper.polarity for s in specs for a in s.arms} == {"open_high", "open_low"}
    assert "deg" in {c.units for s in specs for c in s.action}
    assert any(c.kind == "base_velocity" for c in load_bundled_spec("mobile_panda").action)


def _panda_dict():
    return yaml.safe_load(bundled_spec_path("panda").read_text())


def _error(data, tmp_path):
    path = tmp_path / "robot.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    return str(err.value)


def test_missing_field_names_file_and_field(tmp_path):
    data = _panda_dict()
    del data["control_rate_hz"]
    msg = _error(data, tmp_path)
    assert str(tmp_path / "robot.yaml") in msg
    assert "control_rate_hz" in msg and "missing" in msg


def test_wrong_type_names_field_and_value(tmp_path):
    data = _panda_dict()
    data["control_rate_hz"] = "fast"
    msg = _error(data, tmp_path)
    assert "control_rate_hz" in msg and "'fast'" in msg


def test_inverted_joint_limits(tmp_path):
    data = _panda_dict()
    data["joints"][1]["lower"], data["joints"][1]["upper"] = 1.0, -1.0
    msg = _error(data, tmp_path)
    assert "joints.1" in msg and "lower=1.0" in msg


def test_unknown_action_kind_lists_expected(tmp_path):
    data = _panda_dict()
    data["action"][0]["kind"] = "joint_torque"
    msg = _error(data, tmp_path)
    assert "action.0.kind" in msg and "joint_torque" in msg and "joint_position" in msg


def test_inverted_workspace_and_bad_units(tmp_path):
    data = _panda_dict()
    data["safety"]["workspace_min"][2] = 2.0
    data["action"][0]["units"] = "furlongs"
    msg = _error(data, tmp_path)
    assert "workspace z" in msg and "furlongs" in msg


def test_action_size_must_match_arm(tmp_path):
    data = _panda_dict()
    data["action"][0]["size"] = 6
    msg = _error(data, tmp_path)
    assert "action.arm_joints.size" in msg and "got 6" in msg


def test_newer_spec_version_is_refused(tmp_path):
    data = _panda_dict()
    data["spec_version"] = 99
    assert "newer" in _error(data, tmp_path)


def test_not_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(bad)
    with pytest.raises(SpecError, match="not found"):
        load_spec(tmp_path / "nope.yaml")


def test_round_trip_through_yaml():
    spec = load_bundled_spec("mobile_panda")
    again = parse_spec(yaml.safe_load(spec.to_yaml()))
    assert again == spec


def test_gripper_polarity():
    data = copy.deepcopy(_panda_dict())
    spec = parse_spec(data)
    assert spec.arms[0].gripper.polarity == "open_high"
    data["arms"][0]["gripper"]["open_value"], data["arms"][0]["gripper"]["closed_value"] = 0.0, 0.08
    assert parse_spec(data).arms[0].gripper.polarity == "open_low"


def test_a_spec_without_feature_names_is_written_as_before_names_were_added():
    # `names` came after specs were written beside datasets and digested into audit run keys:
    # unset, it is left out, so those files and keys stay what they were
    import yaml

    from locksmith.embodiment.spec import parse_spec

    panda = load_bundled_spec("panda")
    assert "names" not in panda.to_yaml()
    so101 = load_bundled_spec("so101")
    text = so101.to_yaml()
    assert "shoulder_pan.pos" in text and parse_spec(yaml.safe_load(text)).names("action") == so101.names("action")
