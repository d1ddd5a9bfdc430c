"""Compiled extensions only (pyproject.toml holds the metadata): each optional, with a pure-Python twin."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("tutela._native.udpfast", ["src/tutela/_native/udpfast.c"], optional=True, extra_compile_args=["-O2"]),
    ]
)
