"""setup.py exists for the compiled extension in csrc/ (see pyproject.toml for the rest)."""

from setuptools import setup

setup()
