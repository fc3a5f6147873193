from setuptools import find_packages, setup

setup(
    name="gethp2p",
    version="0.1.0",
    description="go-ethereum's p2p stack (discv4, RLPx, devp2p, dialer, server, NAT) ported to Python",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="LGPL-3.0-or-later",
    packages=find_packages(include=["p2p", "p2p.*"]),
    # PEP 561: the package's type hints are meant to be used by type checkers.
    package_data={"p2p": ["py.typed"], "p2p.simulations": ["ui/*"]},
    python_requires=">=3.10",
    install_requires=[
        "coincurve>=18",
        "ecdsa>=0.18",
        "cryptography>=41",
        "safe-pysha3>=1.0.4",
        "rlp>=3",
        "plyvel>=1.5",
        "python-snappy>=0.6",
        # the simulations' JSON-RPC over WebSocket (p2p/node/rpc.py), thread-based sync API
        "websockets>=12",
    ],
    extras_require={
        "test": ["pytest>=7", "pytest-timeout>=2", "hypothesis>=6", "matplotlib>=3.5",
                 # make lint (run by make test) and make deadcode
                 "ruff>=0.5", "mypy>=1.8", "vulture>=2.10",
                 # the web view's browser test drives Debian's chromium through chromedriver
                 "selenium>=4.10"],
        "demo": ["matplotlib>=3.5"],
    },
    entry_points={
        "console_scripts": [
            "bootnode=p2p.cmd.bootnode:main",
            "p2pnode=p2p.cmd.p2pnode:main",
            "p2psim=p2p.cmd.p2psim:main",
            "p2psim-server=p2p.simulations.__main__:main",
        ],
    },
)
