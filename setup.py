"""C extensions only: pyproject.toml holds the metadata. Each is optional: where it does not build, tutela
uses its pure-Python twin (src/tutela/_native/__init__.py)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "tutela._native.charcnn", ["src/tutela/_native/charcnn.c"], optional=True, extra_compile_args=["-O2"]
        ),
    ]
)
