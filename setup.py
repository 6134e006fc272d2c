"""The one compiled part of Helios: the BSD syslog fast pass's header scan
(helios/parsing/_bsdfast.c). It is optional: when it does not build (no C
compiler or Python headers), Helios runs the same pass as a regex, slower.
Everything else is in setup.cfg."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("helios.parsing._bsdfast", ["helios/parsing/_bsdfast.c"], optional=True,
                             extra_compile_args=["-O2"])])
