"""The one ``main`` of every project node: init, spin, then an ordered shutdown that always ends the process in time.

``run_node`` lists what a node may implement for it (``destroy_node``, ``finished``, ``parameters_declared_later``,
``shutdown_timeout_s``) and the order of the teardown. rclpy's own signal handlers are not installed (they shut the
context down while the node's threads still publish): a signal only asks for the stop, and ``Shutdown``'s guard ends
a teardown that hangs before launch's SIGKILL. A refused or undeclared parameter ends the process with exit code 2
and one line naming it; an exception that escapes a worker thread stops the node and exits 1.
"""

from __future__ import annotations

import ctypes
import faulthandler
import math
import os
import signal
import stat
import sys
import threading
import time
from collections.abc import Callable

import rclpy
from rclpy.exceptions import InvalidHandle
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from rclpy.utilities import get_default_context

from so101_contract import quiet_interrupt
from so101_contract.parameters import ParameterError, check_given
from so101_contract.parent_death import die_with_parent

# launch's ExecuteProcess sends SIGTERM 5 s after SIGINT (sigterm_timeout) and SIGKILL 5 s after that
# (sigkill_timeout); a node leaves within the first period unless it declares slow final work.
LAUNCH_SIGTERM_AFTER_SIGINT_S = 5.0
LAUNCH_SIGKILL_AFTER_SIGINT_S = 10.0
DEFAULT_SHUTDOWN_TIMEOUT_S = 4.0
PARENT_GONE_TIMEOUT_S = 1.5  # the whole stop when the starter died (SIGHUP): nobody orders it, nothing waits for it
BACKSTOP_MARGIN_S = 1.0  # faulthandler's exit, after the guard thread had its chance
SPIN_POLL_S = 0.1  # how often the spin loop looks at the stop request (a Python signal handler runs between waits)
EXIT_FAILURE = 1
EXIT_REFUSED = 2  # a node that cannot start with its parameters: a usage error, not a crash

# What a publish (or a clock or graph call) raises once its node or context is gone.
SHUTDOWN_RACE_ERRORS = (_rclpy.RCLError, InvalidHandle, ExternalShutdownException)


class Shutdown:
    """The process's one stop request and the guard that bounds the teardown after it.

    The guard thread exists from the start and only waits: a signal handler that started a thread could deadlock on
    threading's own lock if the signal came while the main thread was starting one.

    From the stop request on, the guard gives the process ``timeout_s``; then it flushes the output and leaves with
    ``os._exit``: with the run's own exit code if the node was already destroyed (only the middleware hung), 1 if the
    node's own stop did not finish. A hang in C that holds the GIL starves the guard thread; faulthandler's watchdog
    (a C thread) then dumps every thread's stack and exits 1 ``BACKSTOP_MARGIN_S`` later.
    """

    def __init__(self, name: str, timeout_s: float = DEFAULT_SHUTDOWN_TIMEOUT_S):
        self.name = name
        self.timeout_s = float(timeout_s)
        self.cap_s = math.inf  # a bound on timeout_s whatever the node declares (PARENT_GONE_TIMEOUT_S)
        self.reason: str | None = None  # what asked for the stop: "SIGINT", "thread actor-loop died", ...
        self.exit_code = 0  # the run's own result, used unless the node's stop itself overruns
        self.phase = "start-up"  # where the teardown is, for the guard's message
        self.node_stopped = False
        self._lock = threading.RLock()  # a signal handler may run while the main thread holds it
        self._armed = threading.Event()
        threading.Thread(target=self._watch, name="shutdown-guard", daemon=True).start()

    @property
    def requested(self) -> bool:
        return self.reason is not None

    def request(self, reason: str, exit_code: int = 0) -> None:
        """Ask for the stop (the first reason is kept, a failure code wins) and start the bounded exit's clock."""
        with self._lock:
            if self.reason is None:
                self.reason = reason
            if exit_code and not self.exit_code:
                self.exit_code = exit_code
            if self._armed.is_set():
                return
            self._armed.set()
        try:  # no usable stderr file descriptor (an unusual embedding): the guard thread alone bounds the exit
            faulthandler.dump_traceback_later(self.bound_s + BACKSTOP_MARGIN_S, exit=True)
        except (RuntimeError, ValueError, OSError, AttributeError):
            pass

    @property
    def bound_s(self) -> float:
        return min(self.timeout_s, self.cap_s)

    def _watch(self) -> None:
        self._armed.wait()
        time.sleep(self.bound_s)
        code = self.exit_code if self.node_stopped else (self.exit_code or EXIT_FAILURE)
        _write_line(
            f"[{self.name}] shutdown after {self.reason} did not finish within {self.bound_s:g} s "
            f"(stuck in {self.phase}); exiting with code {code} without waiting for it"
        )
        _flush_output()
        os._exit(code)

    # ---- signals ----
    def install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # Python delivers signals to the main thread only; rclpy's defaults stay in charge
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        if quiet_interrupt.INTERRUPTED.is_set():  # a Ctrl-C while the modules loaded (noted, not raised): honour it
            self.request("SIGINT")

    def _on_signal(self, signum: int, _frame) -> None:
        if signum == signal.SIGHUP:  # the starter died (parent_death): a short stop, whatever the node declared
            self.cap_s = PARENT_GONE_TIMEOUT_S
            _detach_from_dead_pipes()
        if self.requested:
            return  # a second Ctrl-C, or launch's SIGTERM: the teardown under way finishes or the guard ends it
        self.request("its starter's exit (SIGHUP)" if signum == signal.SIGHUP else signal.Signals(signum).name)

    # ---- worker threads ----
    def thread_excepthook(self, args: threading.ExceptHookArgs) -> None:
        name = args.thread.name if args.thread is not None else "a thread"
        if self.requested and issubclass(args.exc_type, SHUTDOWN_RACE_ERRORS):
            return  # a publish racing the teardown: the thread ends quietly
        threading.__excepthook__(args)  # the traceback: this is a bug or a broken device, not a shutdown
        cause = f"{args.exc_type.__name__}: {args.exc_value}".splitlines()[0][:500]  # the cause, last, on one line
        _write_line(f"[{self.name}] thread {name} died ({cause}): stopping the node (exit code {EXIT_FAILURE})")
        self.request(f"thread {name} died", EXIT_FAILURE)


def _detach_from_dead_pipes() -> None:
    """stdout/stderr that are pipes or terminals of the starter (launch's output=screen, emulate_tty) lost their reader
    with it: every write of the teardown would fail or stall. They go to /dev/null; a log file (the runner's) stays."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        try:
            if stat.S_ISFIFO(os.fstat(fd).st_mode) or os.isatty(fd):
                os.dup2(devnull, fd)
        except OSError:
            pass
    os.close(devnull)


def run_node(node_class: Callable[[], Node], args: list[str] | None = None) -> None:
    """Run one node in a single-threaded executor until a signal, its ``finished`` Future or an error.

    Nodes with timing-critical work (the actor's control loop, the simulation's physics) run it in their own thread;
    one executor thread for the callbacks keeps the GIL free for it (a multi-threaded executor measurably starved
    the actor's loop).

    What a node implements for it (a node without threads or final work needs none of it):
    - ``destroy_node()``: stop the node's own threads first (set their stop event, join them with a timeout), write any
      final state, then call ``super().destroy_node()``. It runs once, on the main thread, on every exit path, with the
      ROS context still valid, so a worker's last publish cannot fail.
    - ``finished``: an rclpy Future; when it completes, spinning ends and the process exits 0 (the actor after
      ``max_episodes``), without shutting the context down from another thread.
    - ``parameters_declared_later``: prefixes of parameters it declares after its constructor (so101_contract.parameters
      .check_given refuses any other given parameter it has not declared by then).
    - ``shutdown_timeout_s``: the seconds the whole shutdown may take from the stop request (default
      ``DEFAULT_SHUTDOWN_TIMEOUT_S``). Only a node with slow final work (moving an arm to rest, a final checkpoint,
      closing a bag) sets more, and stays under launch's SIGKILL (``LAUNCH_SIGKILL_AFTER_SIGINT_S``).

    The order on SIGINT or SIGTERM (or the ``finished`` Future, or an exception): spinning stops; ``destroy_node()``;
    the executor, the context (rclpy shutdown) and the middleware (the DDS participant) are torn down; the process
    exits (0 after a signal). A second signal (the terminal and launch both send SIGINT; launch sends SIGTERM after
    5 s) does not interrupt the teardown under way. When the process that started the node exits
    (so101_contract.parent_death sends SIGHUP) the same teardown runs, bounded to PARENT_GONE_TIMEOUT_S.

    A parameter the node refuses (ParameterError, raised while the node is built) ends the process with exit code 2
    and one line naming the parameter, what it got and what is allowed; so does a parameter given to the node (-p, its
    own params-file section) that it does not declare (check_given). An exception that escapes a worker thread stops
    the node and the process exits 1 (a dead control loop must not leave a node that looks alive); a publish that
    races the teardown (a thread that outlived its join timeout) ends its thread quietly once the stop was requested.
    """
    name = getattr(node_class, "__name__", "node")
    shutdown = Shutdown(name)
    shutdown.install_signal_handlers()
    if shutdown.requested:  # Ctrl-C while the modules loaded (quiet_interrupt noted it): nothing to start or stop
        return
    die_with_parent(signal.SIGHUP)  # the runner's or launch's death: a stop bounded to PARENT_GONE_TIMEOUT_S
    previous_excepthook = threading.excepthook
    threading.excepthook = shutdown.thread_excepthook
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    context = get_default_context()
    node = executor = None
    try:
        node = node_class()
        shutdown.name = node.get_name()
        shutdown.timeout_s = float(getattr(node, "shutdown_timeout_s", shutdown.timeout_s))
        check_given(node, sys.argv if args is None else args)  # a parameter it does not declare: exit 2, as above
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        finished = getattr(node, "finished", None)
        shutdown.phase = "spinning"
        while not shutdown.requested and not (finished is not None and finished.done()):
            executor.spin_once(timeout_sec=SPIN_POLL_S)
    except ExternalShutdownException:
        pass  # the context was shut down elsewhere: tear down what is left
    except KeyboardInterrupt:
        pass  # only without our handlers (run_node off the main thread)
    except ParameterError as err:  # a bad parameter: one line naming it, no traceback
        _write_line(f"[{shutdown.name}] {err}")
        shutdown.request("a refused parameter", EXIT_REFUSED)
    except SystemExit as exc:  # a node refusing to start: exit with its code once the context is torn down
        shutdown.request("SystemExit", _code_of(exc))
        raise
    except BaseException:
        shutdown.request("an exception", EXIT_FAILURE)
        raise
    finally:
        shutdown.request(shutdown.reason or "the end of the run")  # arms the guard for the teardown
        _teardown(node, executor, context, shutdown)
        threading.excepthook = previous_excepthook
    if shutdown.exit_code:
        sys.exit(shutdown.exit_code)


def _teardown(node: Node | None, executor, context, shutdown: Shutdown) -> None:
    """Node first (its threads, its final state), then the executor, the context and the DDS participant."""
    try:
        if node is not None:
            shutdown.phase = f"{type(node).__name__}.destroy_node"
            node.destroy_node()
        shutdown.node_stopped = True
    finally:  # a destroy_node that raised still leaves no context behind (its traceback follows)
        shutdown.phase = "rclpy shutdown"
        if executor is not None:
            executor.shutdown(timeout_sec=0)
        context.try_shutdown()
        shutdown.phase = "the middleware's teardown (DDS participant)"
        context.destroy()  # now, under the guard; otherwise at interpreter exit, where nothing bounds it
        shutdown.phase = "interpreter exit"


def _code_of(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    return exc.code if isinstance(exc.code, int) else EXIT_FAILURE


def _write_line(text: str) -> None:
    try:
        sys.stderr.write(text + "\n")
    except (OSError, ValueError, AttributeError):
        pass


def _flush_output() -> None:
    """Python's buffers and C's (rcutils writes the ROS log lines with stdio) before os._exit skips them."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass
