"""Compile the review path (FHIR reading, visit model, rules) to C extensions with Cython.

The code stays plain Python and runs as such; Cython compiles the same source unchanged, and a
review then runs a quarter fewer instructions (2-18% less time; docs/speed.md). Compiling is
optional: without Cython or a C compiler, or with UNITGUARD_PURE=1, the package installs as pure
Python and gives the same results. The build writes ``plugin/_compiled.json`` (each compiled
module with the SHA-256 of the source it was compiled from); ``plugin/__init__.py`` runs a
module's source instead of its extension when the two differ, so an edited module never runs
stale compiled code.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess  # nosec B404
import sys
import sysconfig
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent

# Every module the review of one visit runs through, and nothing that does I/O or serves HTTP.
COMPILED = [
    "plugin/domain.py",
    "plugin/errors.py",
    "plugin/frozen.py",
    "plugin/narrative.py",
    "plugin/report.py",
    "plugin/review.py",
    "plugin/units.py",
    "plugin/policy/model.py",
    "plugin/fhir/billing.py",
    "plugin/fhir/codemap.py",
    "plugin/fhir/documents.py",
    "plugin/fhir/episode.py",
    "plugin/fhir/extract.py",
    "plugin/fhir/index.py",
    "plugin/fhir/practitioners.py",
    "plugin/fhir/spend.py",
    "plugin/fhir/therapy.py",
    "plugin/rules/base.py",
    "plugin/rules/batch.py",
    "plugin/rules/context.py",
    "plugin/rules/coverage.py",
    "plugin/rules/documentation.py",
    "plugin/rules/engine.py",
    "plugin/rules/episode.py",
    "plugin/rules/kx.py",
    "plugin/rules/modifiers.py",
    "plugin/rules/narrative.py",
    "plugin/rules/overlap.py",
    "plugin/rules/units.py",
]
MANIFEST = "_compiled.json"
# -O2, not Python's -O3: as fast here (352-359 against 346-356 us per visit), compiled in about
# half the time.
BASE_FLAGS = [] if sys.platform == "win32" else ["-O2"]


def _module(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def _digest(path: str) -> str:
    return hashlib.sha256((ROOT / path).read_bytes()).hexdigest()


# The training run of the profile-guided build: the benchmarks' mix of visits, reviewed by the
# instrumented modules (standard library only, so it runs in pip's isolated build environment).
TRAINING = """
import random, sys
from plugin.policy import load_policy
from plugin.review import review_bundle
from plugin.synthetic import benchmark_visit
rng, policy = random.Random(11), load_policy()
for n in range(int(sys.argv[1])):
    review_bundle(benchmark_visit(rng, n), policy=policy)
"""
TRAINING_VISITS = 1500


class BuildCompiled(build_ext):
    """build_ext on every core, profile-guided with gcc, then the manifest of what was compiled.

    With gcc (Linux), the modules are built instrumented, the training run reviews synthetic
    visits with them, and they are built again from that profile, which lays out the hot code
    together: 0.83-0.93 of a plain build's CPU per review (docs/speed.md).
    UNITGUARD_PGO=0 builds once, without it; a training run that fails does the same, and says so.
    """

    def finalize_options(self) -> None:
        super().finalize_options()
        if self.parallel is None:
            self.parallel = os.cpu_count() or 1

    def run(self) -> None:
        if not self.extensions:
            return
        pgo = self._can_profile()
        if pgo:
            self._flags(["-fprofile-generate", "-fprofile-update=single"], ["-fprofile-generate"])
        super().run()
        # Before the training run: a manifest left by an earlier build would make the modules
        # whose digests differ run from source, untrained. The rebuild below leaves it true.
        self._write_manifest()
        if pgo:
            use = ["-fprofile-use", "-fprofile-correction", "-Wno-missing-profile"]
            self._flags(use if self._train() else [], [])
            self.force = True  # every object again, from the profile (or plain)
            self.build_extensions()

    def _can_profile(self) -> bool:
        if os.environ.get("UNITGUARD_PGO") == "0" or sys.platform != "linux":
            return False
        compiler = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
        try:
            # The C compiler the build uses.
            version = subprocess.run(  # noqa: S603 # nosec B603
                [*compiler.split(), "--version"], capture_output=True, text=True, timeout=30
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return False
        return "Free Software Foundation" in version  # gcc: clang needs llvm-profdata too

    def _flags(self, compile_args: list[str], link_args: list[str]) -> None:
        for extension in self.extensions:
            extension.extra_compile_args = [*BASE_FLAGS, *compile_args]
            extension.extra_link_args = list(link_args)

    def _train(self) -> bool:
        """Review the training visits with the instrumented modules; whether it worked."""
        root = Path(self.get_ext_fullpath("plugin.domain")).parent.parent
        env = {k: v for k, v in os.environ.items() if k != "UNITGUARD_PURE"}
        env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        )
        try:
            # Our own interpreter and training code.
            done = subprocess.run(  # noqa: S603 # nosec B603
                [sys.executable, "-c", TRAINING, str(TRAINING_VISITS)],
                cwd=root,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            why = str(exc)
        else:
            if done.returncode == 0:
                return True
            why = (done.stderr.strip().splitlines() or ["no message"])[-1]
        sys.stderr.write(
            f"unitguard: the training run failed ({why}); building without a profile\n"
        )
        return False

    def _write_manifest(self) -> None:
        built = {}
        for path in COMPILED:
            name = _module(path)
            if Path(self.get_ext_fullpath(name)).exists():
                built[name] = _digest(path)
        target = Path(self.get_ext_fullpath("plugin.domain")).parent / MANIFEST
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(built, indent=1, sort_keys=True) + "\n")
        if len(built) < len(COMPILED):
            sys.stderr.write(
                f"unitguard: {len(COMPILED) - len(built)} of {len(COMPILED)} modules were not "
                "compiled; they run as Python (slower, same results)\n"
            )


def _extensions() -> list:
    if os.environ.get("UNITGUARD_PURE") == "1":
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        sys.stderr.write("unitguard: Cython is not installed; installing as pure Python\n")
        return []
    extensions = cythonize(
        COMPILED,
        build_dir="build/cython",
        nthreads=os.cpu_count() or 1,
        quiet=True,
        compiler_directives={
            "language_level": 3,
            # Annotations are for readers and ruff, not checks: "dict[str, int]" must accept a
            # defaultdict, as it does in Python.
            "annotation_typing": False,
        },
    )
    for extension in extensions:
        extension.optional = True  # a module that fails to compile runs as Python
        extension.extra_compile_args = list(BASE_FLAGS)
    return extensions


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildCompiled})
