"""so101_hilserl_learner: DrQ-v2 training, replay buffers, the learner node, checkpoints and importers."""
