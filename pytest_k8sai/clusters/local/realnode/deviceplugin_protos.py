"""The kubelet device-plugin API (v1beta1) as Python gRPC stubs, generated from upstream.

The proto is upstream data: it is read from the Go module k8s.io/kubelet (``go mod download``
finds it in the module cache or fetches it), never copied into this project. The stubs are
generated once per proto content into ``<cache>/deviceplugin/v1beta1-<sha>/`` and imported
from there.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

from pytest_k8sai.clusters.local.build import cache_root, file_lock
from pytest_k8sai.core.errors import BuildError

MODULE = "k8s.io/kubelet"
PROTO = "pkg/apis/deviceplugin/v1beta1/api.proto"
INSTALL_HINT = "pip install 'pytest-k8sai[nodes]'"
DOWNLOAD_TIMEOUT_S = 600


def proto_file(version: str) -> Path:
    """The api.proto of k8s.io/kubelet@version in the Go module cache (downloaded if needed)."""
    go = shutil.which("go")
    what = f"{MODULE}@{version}"
    if go is None:
        raise BuildError(
            f"The real-node device plugin reads the kubelet device-plugin API ({PROTO}) from the "
            f"Go module {what}, but no 'go' command is on PATH. Install Go 1.26 or newer and retry."
        )
    env = dict(os.environ, GOFLAGS="-mod=mod", GOTOOLCHAIN="local")
    # An empty cwd: a go.mod around the caller's directory must not take part.
    with tempfile.TemporaryDirectory(prefix="k8sai-gomod-") as cwd:
        try:
            proc = subprocess.run(
                [go, "mod", "download", "-json", what],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=DOWNLOAD_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise BuildError(
                f"'go mod download {what}' (for the device plugin's api.proto) did not finish "
                f"within {DOWNLOAD_TIMEOUT_S}s; check the network or GOPROXY and retry."
            ) from None
    try:
        info = json.loads(proc.stdout[proc.stdout.index("{") :])
    except ValueError:
        info = {"Error": (proc.stderr.strip() or proc.stdout.strip())[-500:]}
    if proc.returncode != 0 or "Error" in info or "Dir" not in info:
        raise BuildError(
            f"Go could not download {what} (for the device plugin's api.proto): "
            f"{info.get('Error') or f'exit code {proc.returncode}'}"
        )
    proto = Path(info["Dir"]) / PROTO
    if not proto.is_file():
        raise BuildError(f"The Go module {what} has no {PROTO} (looked in {info['Dir']}).")
    return proto


def generate(proto: Path, dest: Path) -> None:
    """Run grpc_tools' protoc on ``proto`` into ``dest``, atomically (tmp dir, then rename)."""
    try:
        import grpc_tools
        from grpc_tools import protoc
    except ImportError:
        raise BuildError(
            f"grpcio-tools is not installed, and the real-node device plugin generates its "
            f"kubelet API stubs with it: {INSTALL_HINT}"
        ) from None
    # Well-known types (google/protobuf/*.proto) ship inside grpc_tools; api.proto needs none
    # today, but a later version may.
    well_known = Path(grpc_tools.__path__[0]) / "_proto"
    with file_lock(dest.parent / "generate.lock"):
        if (dest / "api_pb2_grpc.py").is_file():
            return  # another process generated it while we waited
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
        try:
            rc = protoc.main(
                [
                    "grpc_tools.protoc",
                    f"-I{proto.parent}",
                    f"-I{well_known}",
                    f"--python_out={tmp}",
                    f"--grpc_python_out={tmp}",
                    proto.name,
                ]
            )
            if rc != 0:
                raise BuildError(
                    f"grpc_tools.protoc failed (exit {rc}) on {proto}; its messages are above."
                )
            tmp.chmod(0o755)  # mkdtemp makes it private; the stubs are not secret
            tmp.rename(dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _import(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@functools.cache
def load_protos(version: str = "v0.36.3") -> tuple[ModuleType, ModuleType]:
    """(api_pb2, api_pb2_grpc) of the kubelet device-plugin API v1beta1 from k8s.io/kubelet."""
    proto = proto_file(version)
    digest = hashlib.sha256(proto.read_bytes()).hexdigest()[:10]
    dest = cache_root() / "deviceplugin" / f"v1beta1-{digest}"
    if not (dest / "api_pb2_grpc.py").is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        generate(proto, dest)
    try:
        import grpc  # noqa: F401  (the generated grpc module needs it)
    except ImportError:
        raise BuildError(
            f"grpcio is not installed, and the real-node device plugin needs it: {INSTALL_HINT}"
        ) from None
    # The generated grpc module does `import api_pb2`: that name must resolve to this copy.
    if str(dest) not in sys.path:
        sys.path.insert(0, str(dest))
    try:
        return _import("api_pb2", dest / "api_pb2.py"), _import(
            "api_pb2_grpc", dest / "api_pb2_grpc.py"
        )
    except Exception as exc:  # e.g. protobuf or grpcio older than the stubs were made for
        sys.modules.pop("api_pb2", None)
        sys.modules.pop("api_pb2_grpc", None)
        raise BuildError(
            f"The generated device-plugin stubs in {dest} do not import with the installed "
            f"protobuf/grpcio ({type(exc).__name__}: {exc}). Delete that folder to regenerate "
            f"them, or reinstall the extra: {INSTALL_HINT}"
        ) from None
