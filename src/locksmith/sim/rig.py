"""What a robot builder hands the simulator: names inside the compiled scene and scene sizing.

Every bundled robot is a module in `locksmith.sim.robots` with one function (and a user's robot,
registered with `locksmith.register_robot`, brings one of its own, see docs/own_robot.md)

    build(spec: mujoco.MjSpec, parent: mujoco.MjsBody, variant: str) -> RobotRig

that attaches the robot model (loaded from the installed package that ships it, see
`locksmith.sim.assets`) under ``parent`` with its base at the parent's origin, and adds, for
every arm, one position actuator per arm joint and one gripper actuator. The same builder is
called twice: once into the full scene, once alone into an empty model for inverse kinematics,
so it must not depend on anything else in the scene.

Conventions shared by all robots (the local differences live in the spec, not here):
- the table top is the plane z = 0 of the robot's base frame; the base sits on it;
- arm joints are driven by position actuators and all robot bodies are gravity-compensated
  (``gravcomp = 1``), so a joint-position target is tracked closely;
- each arm has a tool-centre-point site between the fingertips whose +z axis points from the
  palm towards the fingertips (pointing down for a top-down grasp) and whose +x axis is the
  fingers' closing direction;
- the gripper actuator's control moves linearly from ``gripper_ctrl_open`` to
  ``gripper_ctrl_closed``; ``gripper_joint`` measures the opening.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SIM_TIMESTEP = 0.004
"""Physics step (s) of every scene; a builder whose model file sets another should adopt this."""

GRIPPER_VARIANTS = ("default", "changed")
"""``changed`` is the `gripper_changed` evaluation slice: other finger geometry and closure."""


@dataclass(frozen=True)
class ArmRig:
    """Names of one arm inside the compiled model."""

    name: str
    joints: tuple[str, ...]
    actuators: tuple[str, ...]
    tcp_site: str
    gripper_actuator: str
    gripper_ctrl_open: float
    gripper_ctrl_closed: float
    gripper_joint: str
    gripper_q_open: float
    gripper_q_closed: float
    home_qpos: tuple[float, ...]
    # Geometry needed to place the robot's scene: the TCP's approach axis is (0, 0, -1) in the
    # world when grasping top-down; ``tcp_yaw`` is the extra yaw (rad) about it that aligns the
    # closing direction with the world x axis.
    tcp_yaw: float = 0.0


@dataclass(frozen=True)
class Workspace:
    """Where a robot's task objects live, in its base frame (m)."""

    spawn_x: tuple[float, float]
    spawn_y: tuple[float, float]
    cube_half: float
    lift_height: float
    hover_height: float


@dataclass(frozen=True)
class RobotRig:
    """Everything the environment and experts need to know about a built robot."""

    arms: tuple[ArmRig, ...]
    workspace: Workspace
    base_joints: tuple[str, ...] = ()
    base_actuators: tuple[str, ...] = ()
    base_home: tuple[float, ...] = ()
    extra: dict[str, float] = field(default_factory=dict)

    def arm(self, name: str) -> ArmRig:
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise KeyError(f"no arm {name!r}; arms are {[a.name for a in self.arms]}")
