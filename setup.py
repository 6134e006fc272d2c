"""The one compiled part of Helios: a few hot loops in C (helios/_speedups.c:
the BSD syslog fast pass's header scan, the syslog deframer's test). It is
optional: when it does not build (no C compiler or Python headers), Helios
runs their Python twins, slower. Everything else is in setup.cfg."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("helios._speedups", ["helios/_speedups.c"], optional=True,
                             extra_compile_args=["-O2"])])
