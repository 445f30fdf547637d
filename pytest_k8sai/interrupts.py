"""Ctrl-C and SIGTERM: a run that is interrupted still cleans up, and says so in one line.

The first SIGINT or SIGTERM outside a teardown stops the run as Ctrl-C does in plain pytest
(``KeyboardInterrupt``), so fixtures tear down. A signal that arrives while something is being
torn down (a test's fixtures, the session's final teardown, the results being written, the
summary, ``pytest_unconfigure``) is deferred instead: raising in the middle of a finalizer would
skip the finalizers after it (pytest drops the rest of that node's list) and leave namespaces,
queues or a started cluster behind, and a ``KeyboardInterrupt`` after the summary ends in a
traceback. After a deferred signal the teardown finishes; in a test's teardown the run then stops
(``session.shouldstop``), in the final one it ends. Either way, once ``pytest_unconfigure`` is
done, one line says what happened and the exit status is pytest's ``INTERRUPTED`` (2).

Once any signal arrived, everything after it is teardown, so later signals are deferred too:
within ``FORCE_AFTER_S`` of the first, each prints that teardown is still running; after that,
one more abandons the teardown at once (``os._exit``) with a line naming ``k8sai sweep`` and
``k8sai local down``, for a teardown that hangs.

Handlers are installed only where the default ones are in place (a handler someone else set,
or SIGINT ignored in a background job, is left alone) and restored at the end of the session.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Generator
from types import FrameType

import pytest

from pytest_k8sai.runstate import STATE

# After this many seconds since the first signal, another one abandons the teardown.
FORCE_AFTER_S = 10.0
SIGNALS = (signal.SIGINT, signal.SIGTERM)
_DEFAULTS = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}


def _remove_client_temp_files() -> None:
    """The Kubernetes client writes a kubeconfig's embedded CA, client certificate and key to
    temporary files, removed by an atexit hook that ``os._exit`` skips: remove them here."""
    with contextlib.suppress(Exception):
        from kubernetes.config import kube_config

        kube_config._cleanup_temp_files()


class InterruptGuard:
    """The session's signal handling; registered as a plugin by ``install``."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.session: pytest.Session | None = None
        self.previous: dict[int, object] = {}
        self.signal_name: str | None = None  # the first signal received
        self.first_at = 0.0
        self.during_teardown = False  # the first signal arrived in a teardown (deferred)
        self.in_teardown = 0  # nesting depth of teardowns being guarded
        self.final = False  # the session's final teardown has begun: it lasts until the end

    # -- signals -------------------------------------------------------------------------
    def handle(self, signum: int, frame: FrameType | None) -> None:
        __tracebackhide__ = True  # pytest shows where the run was, not this handler
        name = signal.Signals(signum).name
        if self.signal_name is None:
            self.signal_name, self.first_at = name, time.monotonic()
            if self.in_teardown or self.final:
                self.during_teardown = True
                return  # deferred: the teardown finishes first
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise KeyboardInterrupt(name)
        waited = time.monotonic() - self.first_at
        if waited < FORCE_AFTER_S:
            self.say(
                f"k8sai: {name} received; still tearing down (namespaces, cluster, results); "
                f"another signal after {FORCE_AFTER_S - waited:.0f}s more abandons it"
            )
            return
        self.say(f"k8sai: {name} after {waited:.0f}s of teardown: abandoned; {self.cleanup_hint()}")
        _remove_client_temp_files()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(int(pytest.ExitCode.INTERRUPTED))  # no atexit: a hung teardown may be there

    def cleanup_hint(self) -> str:
        state = self.config.stash.get(STATE, None)
        if state is None:
            return "what it created may be left: see 'k8sai sweep --help'"
        profile = self.config.option.cluster
        hint = f"remove what it left with 'k8sai sweep --run-id {state.run_id} --cluster {profile}'"
        if state.profile.provider == "local":
            hint += f", and a cluster it started with 'k8sai local --cluster {profile} down'"
        return hint

    def say(self, line: str) -> None:
        """One line on the terminal, also from a signal handler: pytest's capture (which holds
        fd 2 during a test's teardown) is suspended around it, and ``os.write`` cannot collide
        with a ``sys.stderr`` write the signal interrupted."""
        capman = self.config.pluginmanager.getplugin("capturemanager")
        uncaptured = capman.global_and_fixture_disabled() if capman else contextlib.nullcontext()
        with contextlib.suppress(Exception), uncaptured:
            os.write(2, (line + "\n").encode())

    # -- teardown phases -----------------------------------------------------------------
    @contextlib.contextmanager
    def teardown(self) -> Generator[None]:
        self.in_teardown += 1
        try:
            yield
        finally:
            self.in_teardown -= 1

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.session = session

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_teardown(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, object, object]:
        if nextitem is None:
            self.final = True  # session-scoped fixtures end here: guarded until the end
        try:
            with self.teardown():
                return (yield)
        finally:
            if self.during_teardown and not self.final:
                # The test's teardown is complete (or failed): stop before the next test, as
                # -x does, and tear the rest down at the session's end.
                item.session.shouldstop = f"k8sai: {self.signal_name} during teardown"

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Generator[None, object, object]:
        # Interrupted runs tear the rest down here (pytest's runner), results are written here.
        self.final = True
        if self.signal_name is not None:
            session.exitstatus = pytest.ExitCode.INTERRUPTED  # also into results.json
        return (yield)

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """Last of all: restore the handlers, then the one line and the exit status."""
        self.restore()
        if self.signal_name is None:
            return
        if self.session is not None:
            self.session.exitstatus = pytest.ExitCode.INTERRUPTED  # what pytest returns
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        self.say(self.summary_line())

    def summary_line(self) -> str:
        when = " during teardown" if self.during_teardown else ""
        head = f"k8sai: interrupted ({self.signal_name}){when}; teardown finished"
        state = self.config.stash.get(STATE, None)
        left = state.left_behind if state is not None else []
        if not left:
            return f"{head}, nothing left behind"
        return f"{head}, but {len(left)} thing(s) may be left (listed above): {self.cleanup_hint()}"

    # -- install / restore ---------------------------------------------------------------
    def install(self) -> bool:
        for sig in SIGNALS:
            if signal.getsignal(sig) is _DEFAULTS[sig]:
                self.previous[sig] = signal.signal(sig, self.handle)
        return bool(self.previous)

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            if signal.getsignal(sig) == self.handle:
                signal.signal(sig, handler)  # type: ignore[arg-type]
        self.previous.clear()


def install(config: pytest.Config) -> InterruptGuard | None:
    """Guard this session (from ``pytest_configure``); None where signals cannot be handled
    (not the main thread) or are handled already (an outer session, another tool)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    guard = InterruptGuard(config)
    if not guard.install():
        return None
    config.pluginmanager.register(guard, "k8sai-interrupts")
    return guard
