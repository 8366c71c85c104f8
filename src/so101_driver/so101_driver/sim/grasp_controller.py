"""ScriptedGrasp: the scripted "hand" of a simulated operator (demonstrations, interventions, benchmarks).

Top grasp in four phases: approach a point above the cube with the gripper open, descend, close, hold. It works in
Cartesian space like the policy's action, so its output is a TCP target at most ``max_step`` per axis from the current
TCP; the caller turns it into joints with one Kinematics.ik_step and sends the gripper target as the jaw angle. The
TCP sits on the inner face of the fixed finger, so the grasp point is offset from the cube (GraspConfig.grasp_offset)
to put the cube between the fingers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The TCP orientation at the reset's home pose: z straight down, x backwards (towards the base), y to the left.
TOOL_DOWN_ROTATION = np.diag([-1.0, 1.0, -1.0])

APPROACH, DESCEND, CLOSE, HOLD = "approach", "descend", "close", "hold"
PHASES = (APPROACH, DESCEND, CLOSE, HOLD)


@dataclass(frozen=True)
class GraspConfig:
    """Geometry and timing of the scripted grasp. Lengths in metres, angles in radians."""

    # Cube centre in the TCP frame at the grasp. x: towards the jaw by half the 3 cm cube + 3 mm clearance from the
    # fixed finger's inner face, plus the TCP's own 0.1 mm behind that face. z: 7 mm up the fingers, so the TCP is
    # 8 mm above the table under a cube centre 15 mm high and the jaw tip (it swings ~5 mm past the TCP) misses it.
    # Geometry (URDF, gripper_link frame): fixed finger inner face x = -0.008, fingers along -z, jaw opens towards +x;
    # the TCP is at (-0.0079, -0.0002, -0.0981) rotated pi about y, so in the TCP frame the jaw side is -x and the
    # wrist side is -z.
    grasp_offset: tuple[float, float, float] = (-0.0189, 0.0, -0.007)
    approach_height: float = 0.04  # m above the grasp point before descending
    approach_tolerance: float = 0.008  # m: close enough to the approach point to start descending
    descend_tolerance: float = 0.004  # m: close enough to the grasp point to close
    max_step: float = 0.02  # m per call and axis (the action contract's 0.02 m per unit)
    gripper_open: float = 1.0  # rad
    gripper_closed: float = 0.0  # rad: the servo squeezes the cube because the jaw stops on it before 0
    close_calls: int = 6  # calls in the close phase (0.6 s at 10 Hz) before holding
    miss_angle: float = 0.1  # rad: a jaw closed further than this while holding missed the cube; start over
    safe_height: float = 0.03  # m above the grasp point: fingers clear the cube's top, so moving sideways is safe
    min_table_clearance: float = 0.003  # m: never aim the TCP below this height above the table

    def __post_init__(self) -> None:
        if self.max_step <= 0:
            raise ValueError(f"GraspConfig.max_step must be > 0 m, got {self.max_step}")
        if self.close_calls < 1:
            raise ValueError(f"GraspConfig.close_calls must be >= 1, got {self.close_calls}")


class ScriptedGrasp:
    """Phase machine approach -> descend -> close -> hold (-> approach again if the jaw closed on air).

    Stateful: call ``reset`` at the start of each episode.
    """

    def __init__(self, config: GraspConfig | None = None):
        self.config = config or GraspConfig()
        self.reset()

    def reset(self) -> None:
        self.phase = APPROACH
        self._close_count = 0
        self._hold_target: np.ndarray | None = None
        self._approach_height = self.config.approach_height

    def resume(
        self, tcp_position: np.ndarray, gripper_position: float, cube_position: np.ndarray, tcp_rotation=None
    ) -> str:
        """Take over from wherever the arm is, keeping its progress: over the cube (within the approach tolerance
        sideways) it descends, or closes when already at the grasp point; elsewhere it approaches at its current
        height when that clears the cube, instead of first climbing to the full approach height. Returns the
        phase."""
        cfg = self.config
        self.reset()
        tcp = np.asarray(tcp_position, dtype=float)
        grasp = self.grasp_tcp_position(cube_position, tcp_rotation)
        above = tcp[2] - grasp[2]
        sideways = float(np.linalg.norm(tcp[:2] - grasp[:2]))
        if np.linalg.norm(tcp - grasp) < cfg.descend_tolerance:
            self.phase = CLOSE
        elif sideways < cfg.approach_tolerance and -cfg.descend_tolerance < above <= cfg.approach_height + 0.01:
            self.phase = DESCEND
        else:
            self._approach_height = float(np.clip(above, cfg.safe_height, cfg.approach_height))
        return self.phase

    def grasp_tcp_position(self, cube_position: np.ndarray, tcp_rotation: np.ndarray | None = None) -> np.ndarray:
        """Where the TCP must be for the cube centre to sit at the grasp point between the fingers."""
        rotation = TOOL_DOWN_ROTATION if tcp_rotation is None else np.asarray(tcp_rotation, dtype=float)
        target = np.asarray(cube_position, dtype=float) - rotation @ np.asarray(self.config.grasp_offset)
        target[2] = max(target[2], self.config.min_table_clearance)
        return target

    def act(
        self,
        tcp_position: np.ndarray,
        gripper_position: float,
        cube_position: np.ndarray,
        tcp_rotation: np.ndarray | None = None,
    ) -> tuple[np.ndarray, float, str]:
        """One control step: (TCP target (3,) at most max_step per axis away, gripper target (rad), phase).

        ``tcp_rotation`` (3x3, base_link) places the grasp offset exactly; without it the home orientation (fingers
        down, jaw pointing away from the base) is assumed, good to a few millimetres near home.
        """
        cfg = self.config
        tcp = np.asarray(tcp_position, dtype=float)
        grasp = self.grasp_tcp_position(cube_position, tcp_rotation)
        if self.phase == HOLD and gripper_position < cfg.miss_angle:
            self.reset()  # closed on air: open, go back above the cube and try again
        above = grasp + np.array([0.0, 0.0, self._approach_height])
        if self.phase == APPROACH:
            if np.linalg.norm(tcp - above) < cfg.approach_tolerance:
                self.phase = DESCEND
        if self.phase == DESCEND and np.linalg.norm(tcp - grasp) < cfg.descend_tolerance:
            self.phase = CLOSE
        if self.phase == CLOSE:
            if self._hold_target is None:
                self._hold_target = grasp
            self._close_count += 1
            if self._close_count > cfg.close_calls:
                self.phase = HOLD

        if self.phase == APPROACH:
            goal, gripper = above, cfg.gripper_open
        elif self.phase == DESCEND:  # an open jaw first: opening next to the cube would push it away
            goal = grasp if gripper_position >= cfg.gripper_open - 0.25 else tcp
            gripper = cfg.gripper_open
        else:  # close and hold keep the TCP where the grasp started; the cube moves with the fingers
            goal, gripper = self._hold_target, cfg.gripper_closed
        target = tcp + np.clip(goal - tcp, -cfg.max_step, cfg.max_step)
        return target, float(gripper), self.phase
