# so101-hilserl: every entry point a user or CI needs. `make help` lists them.
SHELL := /bin/bash
ROOT := $(CURDIR)
# Everything here runs on this machine's loopback unless the caller chose otherwise.
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST
export MUJOCO_GL ?= egl
# Build without install/ sourced (colcon warns about a workspace that overlays itself).
IN_ENV := SO101_ACTIVATE_SKIP_INSTALL=1 source $(ROOT)/activate.sh &&
IN_BUILT_ENV := source $(ROOT)/activate.sh &&
COLCON_BUILD_ARGS ?=

# The variables a run target reads from the command line (make sim EPISODES=5), each list in one place: any other
# given with a run target stops make before anything is set up or built, naming the closest known variable (a typo
# such as EPISODE=5 would otherwise run until Ctrl-C). Variables from the environment are not checked.
RUN_TARGETS := sim bench-sim bench-buffer bench-learner bench-learning bench-actor bench-reward bench-drivers bench-hil \
	bench-lerobot
COMMON_VARIABLES := COLCON_BUILD_ARGS ROS_DOMAIN_ID ROS_AUTOMATIC_DISCOVERY_RANGE MUJOCO_GL \
	SO101_VENV SO101_ROS_SOURCE TORCH_SPEC PYTHON PIP_EXTRA_INDEX_URL
VARIABLES_sim := EPISODES RUN_DIR
VARIABLES_bench-hil := HIL_CONFIG HIL_ARGS
ifneq ($(filter $(RUN_TARGETS),$(MAKECMDGOALS)),)
  GIVEN_VARIABLES := $(foreach v,$(.VARIABLES),$(if $(filter command line,$(origin $(v))),$(v)))
  GOAL_VARIABLES := $(sort $(foreach goal,$(MAKECMDGOALS),$(VARIABLES_$(goal))))
  UNKNOWN_VARIABLES := $(filter-out $(GOAL_VARIABLES) $(COMMON_VARIABLES),$(GIVEN_VARIABLES))
  ifneq ($(UNKNOWN_VARIABLES),)
    $(error $(or $(shell python3 scripts/make_variables.py --goals "$(MAKECMDGOALS)" --known "$(GOAL_VARIABLES)" \
      --common "$(COMMON_VARIABLES)" $(UNKNOWN_VARIABLES) 2>/dev/null),unknown variable(s) $(UNKNOWN_VARIABLES)))
  endif
endif

.PHONY: help setup build test test-lerobot lerobot-venv sim lint format clean distclean bench-sim bench-buffer \
	bench-learner bench-learning bench-actor bench-reward bench-drivers bench-hil bench-lerobot

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

setup: ## create .venv with ROS 2 Jazzy (an install, or PyPI wheels) and the Python dependencies
	@scripts/setup_workspace.sh

build: setup ## colcon build of every package (symlinked Python, so edits need no rebuild)
	@$(IN_ENV) colcon build --base-paths src --symlink-install --event-handlers console_cohesion- summary+ $(COLCON_BUILD_ARGS)

test: build ## build, colcon test of every package, workspace tests, ruff; ends with `N passed, N failed, N skipped`
	@scripts/run_tests.sh

# LeRobot itself never enters .venv: it lives in .venv-lerobot (Python >= 3.12, lerobot pinned in
# requirements/lerobot.txt) and tools/lerobot/ run it as a separate interpreter.
lerobot-venv: ## create .venv-lerobot with the pinned LeRobot (seconds once built; exit 3 where it cannot be built)
	@scripts/lerobot_venv.sh

test-lerobot: build ## LeRobotDataset checks with the real LeRobot; without .venv-lerobot: exit 3, "test-lerobot: skipped: <why>" (not a pass)
	@scripts/test_lerobot.sh

# make sim EPISODES=50 RUN_DIR=runs/sim2: until the run holds 50 episodes (all its sessions together); the same
# RUN_DIR resumes it. Its own DDS domain (37) unless you set ROS_DOMAIN_ID; a domain in use is refused.
EPISODES ?= 0
RUN_DIR ?= runs/sim
sim: build ## HIL-SERL in simulation with the simulated operator until Ctrl-C (or the run holds EPISODES); resumes RUN_DIR
	@$(IN_BUILT_ENV) ROS_DOMAIN_ID=$${ROS_DOMAIN_ID:-37} python -m so101_bringup.runner --mode sim --run-dir $(RUN_DIR) --episodes $(EPISODES)

bench-sim: build ## simulation: operator demo grasp rate (50 episodes) and real-time factor with the camera at 10 Hz
	@$(IN_BUILT_ENV) python -m so101_bench.sim

bench-buffer: build ## replay buffer: bytes per stored transition and batches of 256 sampled per second
	@$(IN_BUILT_ENV) python -m so101_bench.buffer

bench-learner: build ## DrQ-v2 updates per second, batch 256 on 9x84x84, vs a drqv2-style reference update
	@$(IN_BUILT_ENV) python -m so101_bench.learner

bench-learning: build ## DrQ-v2 learns the dot-to-target pixel task (300 episodes, a few minutes on CPU)
	@$(IN_BUILT_ENV) python -m so101_bench.learning --episodes 300

bench-actor: build ## actor step compute p50/p99 (full-size policy) and loop period jitter over a sim run
	@$(IN_BUILT_ENV) python -m so101_bench.actor

bench-reward: build ## reward classifier: held-out F1 on simulated episodes, and the node's per-frame latency p50/p99
	@$(IN_BUILT_ENV) python -m so101_bench.reward

# make bench-hil [HIL_CONFIG=gpu] [HIL_ARGS="--minutes 40 --overwrite"]
HIL_CONFIG ?= cpu
HIL_ARGS ?=
bench-hil: build ## HIL learning in the sim graph (lockstep, operator correcting, weak pretrained start) vs operator off
	@$(IN_BUILT_ENV) ROS_DOMAIN_ID=$${ROS_DOMAIN_ID:-38} python -m so101_bench.hil --config $(HIL_CONFIG) $(HIL_ARGS)

bench-lerobot: build ## LeRobot datasets: import a 10k-frame 30 fps 640x480 AV1 recording, export a 10k-transition session
	@$(IN_BUILT_ENV) python -m so101_bench.lerobot

bench-drivers: build ## follower driver vs the servo bus emulator at 1 Mbps: state rate and command-to-bus latency
	@$(IN_BUILT_ENV) python -m so101_bench.drivers

lint: setup ## ruff check and format check over all Python
	@$(IN_ENV) ruff check . && ruff format --check .

format: setup ## apply ruff's fixes and formatting
	@$(IN_ENV) ruff check --fix . ; ruff format .

clean: ## remove build/, install/, log/
	rm -rf build install log

distclean: clean ## also remove the venvs
	rm -rf .venv .venv-lerobot
