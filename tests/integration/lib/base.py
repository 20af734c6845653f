"""A unittest base class that owns upstreams and proxies for a whole test class and always cleans them up."""

import unittest

from lib import proxy as proxylib
from lib import upstream as upstreamlib


class ProxyTestCase(unittest.TestCase):
    """Subclasses build their world in `setUpWorld` (a classmethod) using start_upstream/start_proxy.

    Everything started through these helpers is torn down in tearDownClass: proxies first with SIGTERM (their exit
    code must be 0), then killed if anything went wrong; upstreams after.
    """

    _proxies = []
    _upstreams = []

    @classmethod
    def setUpClass(cls):
        cls._proxies = []
        cls._upstreams = []
        try:
            cls.setUpWorld()
        except BaseException:
            cls._teardown_all(check_exit=False)
            raise

    @classmethod
    def setUpWorld(cls):
        pass

    @classmethod
    def tearDownClass(cls):
        cls._teardown_all(check_exit=True)

    @classmethod
    def _teardown_all(cls, check_exit):
        errors = []
        for p in cls._proxies:
            try:
                if p.proc is not None and p.proc.poll() is None:
                    code = p.stop(timeout=10)
                    if check_exit and code != 0:
                        errors.append("sheave-proxy exited %s after SIGTERM; stderr tail:\n%s"
                                      % (code, p.stderr()[-2000:]))
            except Exception as e:  # still clean up the rest
                errors.append(str(e))
            finally:
                p.cleanup()
        for u in cls._upstreams:
            try:
                u.stop()
            except Exception:
                pass
        cls._proxies = []
        cls._upstreams = []
        if errors:
            raise AssertionError("\n".join(errors))

    @classmethod
    def start_upstream(cls, name="upstream", keepalive_timeout=None, also_ipv6=False):
        u = upstreamlib.UpstreamServer(0, name, keepalive_timeout, also_ipv6=also_ipv6).start()
        cls._upstreams.append(u)
        return u

    @classmethod
    def start_tcp_echo(cls):
        u = upstreamlib.TcpEchoServer().start()
        cls._upstreams.append(u)
        return u

    @classmethod
    def start_proxy(cls, config, **kw):
        p = proxylib.Proxy(config, **kw)
        cls._proxies.append(p)
        p.start()
        return p

    @classmethod
    def new_proxy(cls, config, **kw):
        """A Proxy registered for cleanup but not started (for validate mode or custom starts)."""
        p = proxylib.Proxy(config, **kw)
        cls._proxies.append(p)
        return p
