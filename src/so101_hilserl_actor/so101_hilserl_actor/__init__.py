"""so101_hilserl_actor: intervention detection and the 10 Hz actor around a pure control step."""
