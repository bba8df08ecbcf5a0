"""The robot check: a user's spec and builder against the compiled model, the gripper on a cube,
reach, and a short scripted-expert run, each finding naming what to change.

    report = check_robot("my_arm")              # a known robot, full check
    report = check_robot(spec, builder, full=False)
    print(report.format()); report.ok; report.to_dict()

`locksmith robot check NAME` is the command line; `locksmith.register_robot` runs the quick form
(`full=False`) and refuses a robot with errors. See docs/own_robot.md for what each finding means.
"""

from locksmith.sim.check.report import CHECKS, Finding, RobotCheckReport
from locksmith.sim.check.run import check_robot

__all__ = ["CHECKS", "Finding", "RobotCheckReport", "check_robot"]
