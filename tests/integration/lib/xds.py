"""Envoy's v3 protos for Python, generated at test time from api/ with Debian's protoc, and a small ADS server
on python3-grpcio: a real gRPC peer that serves whatever resources a test puts in it and records every
DiscoveryRequest (ACKs, NACKs and their error details)."""

import glob
import importlib
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading

API_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "api")
ADS_METHOD = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ENDPOINT = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
ROUTE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"

_gen_dir = None


def protos():
    """Generates the Python modules once per process and returns the module namespace loader."""
    global _gen_dir
    if _gen_dir is None:
        out = tempfile.mkdtemp(prefix="sheave-pyproto-")
        api = os.path.abspath(API_DIR)
        files = [os.path.relpath(p, api) for p in glob.glob(os.path.join(api, "**", "*.proto"), recursive=True)]
        subprocess.run(["protoc", "--proto_path=" + api, "--python_out=" + out] + files, check=True)
        for root, _dirs, _files in os.walk(out):
            open(os.path.join(root, "__init__.py"), "a").close()
        # The generated `envoy` and `google.rpc` packages; google.protobuf stays the installed one.
        os.remove(os.path.join(out, "google", "__init__.py"))
        sys.path.insert(0, out)
        import google
        google.__path__.append(os.path.join(out, "google"))
        _gen_dir = out
        # Every message must be known before JSON with "@type" can be parsed.
        for path in glob.glob(os.path.join(out, "**", "*_pb2.py"), recursive=True):
            importlib.import_module(os.path.relpath(path, out)[:-3].replace(os.sep, "."))
    return importlib


def module(name):
    protos()
    return importlib.import_module(name)


def cleanup():
    global _gen_dir
    if _gen_dir is not None:
        shutil.rmtree(_gen_dir, ignore_errors=True)


def ads_bootstrap(node_id, xds_port, admin_port):
    """A sidecar bootstrap that takes everything over ADS from 127.0.0.1:xds_port (Istio's shape: a static
    xds-grpc cluster, CDS and LDS over ADS)."""
    return {
        "node": {"id": node_id, "cluster": node_id.split("~")[2].split(".")[0] if "~" in node_id else node_id},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "dynamic_resources": {
            "ads_config": {"api_type": "GRPC", "transport_api_version": "V3",
                           "grpc_services": [{"envoy_grpc": {"cluster_name": "xds-grpc"}}]},
            "cds_config": {"ads": {}, "resource_api_version": "V3"},
            "lds_config": {"ads": {}, "resource_api_version": "V3"},
        },
        "static_resources": {"clusters": [{
            "name": "xds-grpc", "type": "STATIC", "connect_timeout": "1s",
            "load_assignment": {"cluster_name": "xds-grpc", "endpoints": [{"lb_endpoints": [{"endpoint": {
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": xds_port}}}}]}]}}]},
    }


def ads_tls_bootstrap(node_id, xds_port, admin_port, root_cert, sni="istiod.sheave-system.svc"):
    """ads_bootstrap over TLS, as Istio's sidecars reach istiod on 15012: the control plane's certificate is checked
    against root_cert (a file), and the proxy presents its workload certificate (secret `default`, which
    --workload-token-file makes the proxy obtain from the CA first)."""
    b = ads_bootstrap(node_id, xds_port, admin_port)
    b["static_resources"]["clusters"][0]["transport_socket"] = {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "sni": sni,
            "common_tls_context": {
                "alpn_protocols": ["h2"],
                "tls_certificate_sds_secret_configs": [{"name": "default", "sds_config": {"ads": {}}}],
                "validation_context": {"trusted_ca": {"filename": root_cert}},
            }}}
    return b


def from_json(message_type, obj):
    """A protobuf message from a JSON-like dict (Envoy's JSON mapping, "@type" for Any)."""
    import json
    from google.protobuf import json_format
    return json_format.Parse(json.dumps(obj), message_type())


class AdsServer:
    """Serves `resources[type_url] = [(name, message)]` at `versions[type_url]`; push() sends every subscribed
    type again to every open stream. requests() returns all DiscoveryRequests seen so far."""

    def __init__(self):
        import grpc
        from concurrent import futures
        self._disc = module("envoy.service.discovery.v3.discovery_pb2")
        self._lock = threading.Lock()
        self._resources = {}
        self._versions = {}
        self._requests = []
        self._streams = []
        self._nonce = 0
        handler = grpc.method_handlers_generic_handler(
            "envoy.service.discovery.v3.AggregatedDiscoveryService",
            {"StreamAggregatedResources": grpc.stream_stream_rpc_method_handler(
                self._stream,
                request_deserializer=self._disc.DiscoveryRequest.FromString,
                response_serializer=lambda m: m.SerializeToString())})
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        self._server.add_generic_rpc_handlers((handler,))
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    def start(self):
        self._server.start()
        return self

    def stop(self):
        with self._lock:
            for q in self._streams:
                q.put(None)
        self._server.stop(grace=None)

    def set(self, type_url, named_messages, version):
        with self._lock:
            self._resources[type_url] = list(named_messages)
            self._versions[type_url] = str(version)

    def push(self, type_url):
        with self._lock:
            for q in self._streams:
                q.put(("push", type_url))

    def requests(self, type_url=None):
        with self._lock:
            return [r for r in self._requests if type_url is None or r.type_url == type_url]

    def _response(self, type_url, names):
        from google.protobuf import any_pb2
        with self._lock:
            self._nonce += 1
            resp = self._disc.DiscoveryResponse(type_url=type_url, version_info=self._versions.get(type_url, "0"),
                                                nonce=str(self._nonce))
            for name, msg in self._resources.get(type_url, []):
                if names and name not in names:
                    continue
                a = any_pb2.Any()
                a.Pack(msg)
                resp.resources.append(a)
            return resp

    def _stream(self, request_iterator, context):
        q = queue.Queue()
        with self._lock:
            self._streams.append(q)
        subscribed = {}

        def reader():
            try:
                for req in request_iterator:
                    with self._lock:
                        self._requests.append(req)
                    q.put(("request", req))
            except Exception:
                pass
            q.put(None)

        threading.Thread(target=reader, daemon=True).start()
        try:
            while True:
                item = q.get()
                if item is None:
                    return
                kind, value = item
                if kind == "request":
                    req = value
                    known = req.type_url in subscribed
                    names = list(req.resource_names)
                    changed = subscribed.get(req.type_url) != names
                    subscribed[req.type_url] = names
                    # First request of a type, or new names: answer. An ACK/NACK needs nothing.
                    if (not known or changed) and req.type_url in self._versions:
                        yield self._response(req.type_url, names)
                elif value in subscribed and value in self._versions:
                    yield self._response(value, subscribed[value])
        finally:
            with self._lock:
                self._streams.remove(q)
