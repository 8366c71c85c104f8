"""so101_hilserl_actor: intervention detection, observation assembly, the DrQ-v2 policy network and the 10 Hz actor."""
