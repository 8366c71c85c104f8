"""The MuJoCo simulation that stands in for the follower arm, the leader arm (with a simulated operator) and the
wrist camera. Nothing here touches hardware."""
