"""Compiled extensions only; the metadata lives in pyproject.toml.

Every extension is optional: where it does not build, tutela runs on its pure-Python twins (tutela/_native)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "tutela._native.charcnn", ["src/tutela/_native/charcnn.c"], optional=True, extra_compile_args=["-O2"]
        ),
        Extension(
            "tutela._native.dnsfeatures",
            ["src/tutela/_native/dnsfeatures.c"],
            optional=True,
            extra_compile_args=["-O2"],
        ),
        Extension(
            "tutela._native.linearscore",
            ["src/tutela/_native/linearscore.c"],
            optional=True,
            extra_compile_args=["-O2"],
        ),
        Extension(
            "tutela._native.tunnelwindow",
            ["src/tutela/_native/tunnelwindow.c"],
            optional=True,
            extra_compile_args=["-O2"],
        ),
        Extension(
            "tutela._native.udpfast", ["src/tutela/_native/udpfast.c"], optional=True, extra_compile_args=["-O2"]
        ),
    ]
)
