"""Build the write-back proxy runtime (fmi_optimizer/writeback/proxy/fmio_proxy.c) with the package.

The proxy is a plain shared library (not a Python extension): written FMUs carry it as their binary.
Building it here means a user installing a wheel needs no C compiler for write-back. The build is
optional: without a compiler the package still installs, and fmi_optimizer compiles the proxy on first
use (fmi_optimizer/writeback/proxy_build.py), or says how to get one.
"""

import importlib.util
import os
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent


def _proxy_build():
    path = HERE / "fmi_optimizer" / "writeback" / "proxy_build.py"
    spec = importlib.util.spec_from_file_location("_fmio_proxy_build", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildProxy(build_ext):
    """Name the library fmio_proxy.so (no Python ABI tag): it is loaded by FMI importers, not by Python."""

    def get_ext_filename(self, ext_name):
        return os.path.join(*ext_name.split(".")) + _proxy_build().library_suffix()

    def get_export_symbols(self, ext):
        return []


ext_modules = []
if os.name == "posix":
    pb = _proxy_build()
    ext_modules.append(Extension(
        "fmi_optimizer.writeback.proxy.fmio_proxy",
        sources=[os.path.relpath(pb.SOURCE, HERE)],
        include_dirs=[os.path.relpath(pb.INCLUDE, HERE)],
        define_macros=[("FMIO_PROXY_SOURCE_ID", f'"{pb.source_id()}"')],
        extra_compile_args=["-fvisibility=hidden", "-O2"],
        libraries=["dl"],
        optional=True,
    ))

setup(ext_modules=ext_modules, cmdclass={"build_ext": BuildProxy})
