"""so101_hilserl_core: the task's MDP, the DrQ-v2 policy network and its formats, shared by actor, learner and tools."""
