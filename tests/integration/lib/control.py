"""sheave-control as a test peer: one process on loopback ports, its stderr kept for failure messages."""

import os
import shutil
import signal
import subprocess
import tempfile
import urllib.error
import urllib.request

from . import proxy as P
from .base import ProxyTestCase

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def control_binary():
    env = os.environ.get("SHEAVE_CONTROL")
    if env:
        return env
    beside_proxy = os.path.join(os.path.dirname(P.proxy_binary()), "sheave-control")
    if os.path.exists(beside_proxy):
        return beside_proxy
    return os.path.join(REPO_ROOT, "build", "bin", "sheave-control")


def http_get(port, path, timeout=5.0):
    """(status, content-type, body) of GET http://127.0.0.1:port/path."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


class Control:
    """sheave-control --config config_dir on free loopback ports. With secure=True the xDS port is
    --secure-xds-address (the caller passes --ca-dir in extra_args), else --xds-address."""

    def __init__(self, config_dir, extra_args=(), secure=False):
        self.config_dir = config_dir
        self.xds_port = P.free_port()
        self.http_port = P.free_port()
        self.stderr_file = tempfile.TemporaryFile()
        xds_flag = "--secure-xds-address" if secure else "--xds-address"
        self.proc = subprocess.Popen(
            [control_binary(), "--config", config_dir,
             xds_flag, "127.0.0.1:%d" % self.xds_port,
             "--http-address", "127.0.0.1:%d" % self.http_port,
             "--debounce-after", "10ms", "--debounce-max", "100ms"] + list(extra_args),
            stdout=subprocess.DEVNULL, stderr=self.stderr_file, stdin=subprocess.DEVNULL)

    def get(self, path):
        return http_get(self.http_port, path)

    def wait_ready(self, timeout=15.0):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("sheave-control exited %s: %s" % (self.proc.returncode, self.stderr()))
            try:
                return self.get("/ready")[0] == 200
            except OSError:
                return False
        if not P.wait_until(ready, timeout, 0.1):
            raise AssertionError("sheave-control not ready after %ss: %s" % (timeout, self.stderr()))

    def stderr(self):
        self.stderr_file.seek(0)
        return self.stderr_file.read().decode(errors="replace")

    def stop(self, timeout=10.0):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("sheave-control ignored SIGTERM")
        return self.proc.returncode

    def close(self):
        self.stderr_file.close()


class ControlPlaneTestCase(ProxyTestCase):
    """ProxyTestCase plus one sheave-control (cls.control) and a scratch directory (cls.dir), both torn down
    after the proxies."""

    control = None
    dir = None

    @classmethod
    def start_control(cls, config_dir, **kw):
        cls.control = Control(config_dir, **kw)
        cls.control.wait_ready()
        return cls.control

    @classmethod
    def control_log(cls):
        return cls.control.stderr()[-4000:]

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            if cls.control is not None:
                cls.control.stop()
                cls.control.close()
            if cls.dir:
                shutil.rmtree(cls.dir, ignore_errors=True)
