"""Curriculum stages of the pick task: where an episode starts, defined once for the Gymnasium environment
(pretraining) and the sim node (the ROS graph, and so the HIL benchmark).

Numbered as pick-101's LiftCubeCartesianEnv where the meaning carries over; its stages 1 and 2 start with the cube
already in the closed gripper, which in this grasp-only task is the goal itself, so here they are the easy end of the
same ladder (STAGES).
"""

from __future__ import annotations

import numpy as np

from so101_driver.sim.grasp_controller import ScriptedGrasp
from so101_driver.sim.world import SimWorld

# 0  the project's reset (SimWorld.reset, as the robot): TCP at (0.25, 0, 0.07) m +- 1 cm, fingers down, gripper
#    open; cube +- 4 cm around (0.25, 0), yaw +- 0.4 rad
# 1  the cube between the open fingers: TCP at the grasp point (ScriptedGrasp.grasp_tcp_position), closing the
#    gripper is all that is left; cube +- 2 cm, yaw 0
# 2  TCP 1.5 cm above the grasp point, gripper open; cube +- 2 cm, yaw 0
# 3  pick-101's stage 3: the gripper open 3 cm above the grasp point; cube +- 2 cm around (0.25, 0), yaw 0
STAGES = (0, 1, 2, 3)
STAGE_HEIGHT_ABOVE_GRASP = {1: 0.0, 2: 0.015, 3: 0.03}  # m, TCP above the grasp point at the start
STAGE_CUBE_RANGE = 0.02  # m, uniform +- in x and y around SimConfig.cube_center for stages 1-3 (pick-101 stage 3)
MAX_SEED = 2**31 - 1


def check_stage(stage: int) -> int:
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES} (curriculum stage), got {stage!r}")
    return int(stage)


def reset_stage(world: SimWorld, stage: int, rng: np.random.Generator, grasp: ScriptedGrasp | None = None) -> dict:
    """Reset ``world`` to a start of ``stage``, every draw from ``rng`` (same rng state -> same start). Returns
    SimWorld.reset's {"joint_positions", "cube_position"}."""
    if check_stage(stage) == 0:
        return world.reset(seed=int(rng.integers(MAX_SEED)))  # the robot's own reset, from this stream
    cfg = world.config
    cube_xy = np.asarray(cfg.cube_center) + rng.uniform(-STAGE_CUBE_RANGE, STAGE_CUBE_RANGE, size=2)
    cube = np.array([cube_xy[0], cube_xy[1], cfg.scene.cube_size / 2])
    tcp = (grasp or ScriptedGrasp()).grasp_tcp_position(cube) + np.array([0.0, 0.0, STAGE_HEIGHT_ABOVE_GRASP[stage]])
    return world.reset_to(tcp, cube_xy, 0.0)
