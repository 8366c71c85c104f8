"""Simulated time: who owns the clock in simulation, and how lockstep is agreed between the nodes.

On the robot every node uses the wall clock. In simulation the sim node owns time (its ``clock_mode`` parameter, one
of ``CLOCK_MODES``). In ``lockstep`` simulated time advances only as far as the actor has granted (``ADVANCE_TOPIC``)
and the learner keeps up (``PROGRESS_TOPIC``), so a run's result measures the method, not the machine: a slow CPU
learner stretches the wall time instead of silently training less.
"""

from __future__ import annotations

# - wall: simulated time follows the wall clock and no /clock is published; the other nodes keep their wall clock.
#   For tools and tests that run the simulation on its own.
# - sim: the sim node publishes /clock and paces simulated time to the wall clock times real_time_factor; every node
#   runs with use_sim_time (timers, stamps, the actor's 10 Hz, watchdogs, episode timing).
# - lockstep: as sim, but simulated time advances only as far as the actor has granted and only while the learner
#   keeps the requested update-to-data ratio, as fast as the machine allows.
# In lockstep the simulation publishes an instant's joint states and image before the /clock of that instant; a node
# that needs the image of the instant it acts at waits for that image's stamp, not for its arrival order. A resumed
# run's simulation starts at the first camera instant after the run's newest stamp (start_time_s); while it holds
# before its first instant it publishes the instant before, so the nodes learn the run's time.
CLOCK_MODES = ("wall", "sim", "lockstep")
CLOCK_TOPIC = "/clock"
# rosgraph_msgs/Clock from the actor: the simulated time up to which it needs nothing. Its next control step while it
# waits for it, one control period ahead while it waits for anything else (the reset pause, an image after a reset).
# While it computes a step it publishes nothing, so the simulation holds at the step's instant and every step starts
# exactly one control period after the previous one in simulated time.
ADVANCE_TOPIC = "sim/advance_until"
# LearnerProgress from the learner after every commit of an episode, after every update and every 0.05 s of simulated
# time, stamped with its simulated time. The simulation holds while its update_backlog exceeds the sim's
# lockstep_max_backlog_updates (transitions are committed per episode, so a bound of about one episode's updates lets
# the learner train on episode k while episode k+1 is collected), and holds any instant more than
# lockstep_learner_lead_s (one control period) past the newest stamp: a learner that stops reporting (killed, stopped,
# hung) holds the run. Before any learner has reported, nothing is owed.
PROGRESS_TOPIC = "hilserl/learner_progress"


def uses_sim_time(clock_mode: str) -> bool:
    """Whether the nodes of a graph whose simulation runs in ``clock_mode`` take their time from ``/clock``."""
    if clock_mode not in CLOCK_MODES:
        raise ValueError(f"clock mode {clock_mode!r}: use one of {', '.join(CLOCK_MODES)}")
    return clock_mode != "wall"
