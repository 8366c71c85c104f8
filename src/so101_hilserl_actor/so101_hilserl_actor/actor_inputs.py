"""The actor's newest readings, as plain Python: the follower's and the leader's joints, the last few wrist images
(with their stamps), the intervention flag. Subscription callbacks write them from executor threads, the control
loop reads them; every access holds one lock. The loop's questions about them live here too: what has not been heard
yet, whether an image after a given instant has arrived, whether the readings of a step's instant are in."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from so101_contract.joints import positions_by_name
from so101_driver.vision.image_messages import image_msg_to_array
from so101_hilserl_actor.control_step import StepInputs

IMAGES_KEPT = 8  # the loop acts on the newest judged image among these


class Snapshot(NamedTuple):
    follower: np.ndarray  # (6,) rad
    leader: np.ndarray  # (6,) rad
    images: list[tuple[int, Any]]  # (stamp ns, image), oldest first


class Readings:
    def __init__(self, images_kept: int = IMAGES_KEPT):
        self._lock = threading.Lock()
        self._follower: np.ndarray | None = None
        self._leader: np.ndarray | None = None
        self._follower_stamp_ns = -1
        self._images: deque[tuple[int, Any]] = deque(maxlen=images_kept)
        self.intervention = False  # one bool, written whole: no lock needed

    # ---- writers (callbacks) ----
    def store_follower(self, names, positions, stamp_ns: int) -> None:
        """A follower JointState's fields; one without all joints is ignored."""
        q, _ = positions_by_name(names, positions)
        if q is not None:
            with self._lock:
                self._follower, self._follower_stamp_ns = q, int(stamp_ns)

    def store_leader(self, names, positions) -> None:
        q, _ = positions_by_name(names, positions)
        if q is not None:
            with self._lock:
                self._leader = q

    def add_image(self, stamp_ns: int, image: Any) -> None:
        with self._lock:
            self._images.append((int(stamp_ns), image))

    # ---- the loop's questions ----
    def missing(self) -> list[str]:
        """The inputs not heard yet, by topic."""
        with self._lock:
            heard = {
                "follower/joint_states": self._follower is not None,
                "leader/joint_states": self._leader is not None,
                "wrist_camera/image_raw": bool(self._images),
            }
        return [topic for topic, present in heard.items() if not present]

    def snapshot(self) -> Snapshot | None:
        """Copies of the newest joints and the kept images; None until all three inputs were heard."""
        with self._lock:
            if self._follower is None or self._leader is None or not self._images:
                return None
            return Snapshot(self._follower.copy(), self._leader.copy(), list(self._images))

    def step_inputs(self, now_ns: int, choose: Callable[[list[int]], int]) -> StepInputs | None:
        """The control step's inputs at ``now_ns``: the newest joints, the image ``choose`` picks by the kept images'
        stamps (a sensor_msgs/Image, converted), the flag. None until all three inputs were heard."""
        now = self.snapshot()
        if now is None:
            return None
        stamp, image = now.images[choose([s for s, _ in now.images])]
        return StepInputs(int(now_ns), now.follower, now.leader, image_msg_to_array(image), stamp, self.intervention,
                          image.encoding)  # fmt: skip

    def follower(self) -> np.ndarray:
        with self._lock:
            return self._follower.copy()

    def image_after(self, stamp_ns: int) -> bool:
        """Whether the newest image is stamped after ``stamp_ns``."""
        with self._lock:
            return bool(self._images) and self._images[-1][0] > stamp_ns

    def instant_in(self, due_ns: int, judged: Callable[[int], bool] | None = None) -> bool:
        """Whether the follower state and the newest image of the step due at ``due_ns`` are in (stamped at or after
        it) and, with ``judged``, the reward node's verdict on that image."""
        with self._lock:
            if not self._images or self._follower_stamp_ns < due_ns:
                return False
            stamp = self._images[-1][0]
        return stamp >= due_ns and (judged is None or judged(stamp))

    def keep_images_after(self, stamp_ns: int) -> None:
        """Forget the images stamped at or before ``stamp_ns`` (after a reset: they show the previous episode)."""
        with self._lock:
            self._images = deque((i for i in self._images if i[0] > stamp_ns), maxlen=self._images.maxlen)
