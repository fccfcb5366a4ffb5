"""Build of driftline's optional native decoder (metadata lives in pyproject.toml)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "driftline._fastdecode",
            sources=["src/driftline/_fastdecode.c"],
            extra_compile_args=["-O2", "-Wextra", "-Wno-unused-parameter"],
            # Without a C compiler driftline still installs; events.py then decodes in
            # pure Python (CI asserts the extension is built, see tests/test_fastdecode.py).
            optional=True,
        )
    ]
)
