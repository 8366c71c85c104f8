"""so101_reward: the wrist-image success classifier: model, datasets, training CLI and the reward node."""
