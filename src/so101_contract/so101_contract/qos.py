"""The QoS profile of every project topic, chosen once (docs/architecture.md, "The graph"). Nodes import these;
nobody types a depth or a reliability by hand."""

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)

# Joint states and camera images: the newest sample matters, a late one is worthless. Best effort, depth 5.
SENSOR_DATA: QoSProfile = qos_profile_sensor_data

# Joint commands: only the latest target matters, but it must not be dropped on the floor.
COMMAND = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)

# State that a late joiner must see at once (intervention flag, policy weights): reliable, transient local, depth 1.
LATCHED = QoSProfile(
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
    history=HistoryPolicy.KEEP_LAST,
)

# Transitions: every one must arrive; a deep queue absorbs learner hiccups (10 Hz x 100 s). Transient local: a
# learner (or recorder) that joins or restarts late still gets the last 1000 from the actor; the learner's
# sequencer drops the copies it already has.
TRANSITIONS = QoSProfile(
    depth=1000,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
    history=HistoryPolicy.KEEP_LAST,
)

# Reward signals, episode summaries and learner stats: reliable, a modest queue.
EVENTS = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)

# /clock (the sim node publishes it in clock_mode sim and lockstep): the newest time is all that counts, but a lost
# one could stall a lockstep run. Reliable and depth 1; rclpy's TimeSource subscribes best effort with depth 1,
# which a reliable publisher also serves.
CLOCK = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
