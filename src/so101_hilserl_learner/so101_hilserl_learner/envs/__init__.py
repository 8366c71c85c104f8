"""Gymnasium environments of the project. Importing this package registers them:

    import gymnasium as gym
    env = gym.make("so101_hilserl_learner.envs:so101/Pick-v0", stage=1)   # imports this module, then makes
    # or: import so101_hilserl_learner.envs; gym.make("so101/Pick-v0")

setup.py also lists ``register_envs`` under the ``gymnasium.envs`` entry-point group, the plugin hook of gymnasium
0.26-0.29 and of tools that scan it; gymnasium 1.x no longer loads plugins by itself, hence the import form above.
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

PICK_ID = "so101/Pick-v0"


def register_envs() -> None:
    """Register so101/Pick-v0 once (the episode rules end episodes, so no TimeLimit wrapper is added)."""
    if PICK_ID not in registry:
        register(id=PICK_ID, entry_point="so101_hilserl_learner.envs.pick:PickEnv")


register_envs()
