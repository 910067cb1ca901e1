"""Ship the top-level templates/, static/, migrations/ and translations/ inside the wheel.

DESIGN.md keeps these folders at the top of the repository; an installed wheel finds
them under ``authserver/_data/`` (see ``authserver.paths``).
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

DATA_DIRS = ("templates", "static", "migrations", "translations")


class BuildWithData(build_py):
    def run(self) -> None:
        super().run()
        root = Path(__file__).parent
        target = Path(self.build_lib) / "authserver" / "_data"
        for name in DATA_DIRS:
            src = root / name
            if src.is_dir():
                shutil.copytree(
                    src, target / name, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
                )


setup(cmdclass={"build_py": BuildWithData})
