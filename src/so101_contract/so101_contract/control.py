"""The policy's control interface: how often it acts and what one action holds.

An action is [dx, dy, dz, gripper] in [-1, 1]: an end-effector displacement (scaled to metres by the actor's
action mapping) and a jaw command. The policy, the actor, the replay buffers, the importers and the reward
dataset's simulated episodes all run at the one control rate.
"""

ACTION_DIM = 4
CONTROL_RATE_HZ = 10.0
CONTROL_PERIOD_S = 1.0 / CONTROL_RATE_HZ
JOINT_STATE_RATE_HZ = 100.0  # how often the arms' drivers (and the simulation) publish joint states
