"""The wheel, installed for real: built from the sources, installed (not editable) in a fresh
virtualenv, it invoices a signed Stripe webhook end to end; without its built-in mapping files it
refuses to start.

Nothing of the repository is on the installed bridge's path: the processes run from the
virtualenv's own commands, in a temporary folder, so a file left out of the wheel (a mapping, a
migration, a package) fails this test instead of a merchant's first sale.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.support.bridge_procs import bridge_env, invoice_custom, stripe_sale
from tests.support.procs import free_port, wait_http
from tests.support.sandbox import FIRM_ID, KEY, LOGIN
from tests.support.webhooks import stripe_header

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SOURCES = (
    "pyproject.toml",
    "README.md",
    "constraints.txt",
    "bridge",
    "facturation_sandbox",
    "mappings",
)


@dataclass(frozen=True)
class Installed:
    venv: Path
    work: Path  # the processes' working folder: no .env, no mappings/, no sources

    def command(self, name: str) -> str:
        return str(self.venv / "bin" / name)


def _run(*argv: str, cwd: Path, timeout: float = 300) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{' '.join(argv)}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"  # a copy, so that the build leaves nothing in the repository
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(
                REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    dist = root / "dist"
    _run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "-q",
        "--no-deps",
        "-w",
        str(dist),
        str(source),
        cwd=root,
    )
    (wheel,) = dist.glob("facturation_bridge-*.whl")
    venv = root / "venv"
    _run(sys.executable, "-m", "venv", str(venv), cwd=root)
    _run(
        str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
        "-c", str(REPO / "constraints.txt"), str(wheel),
        cwd=root,
    )  # fmt: skip
    work = root / "work"
    work.mkdir()
    return Installed(venv, work)


@pytest.fixture
def sandbox(installed: Installed, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    with (tmp_path / "sandbox.log").open("ab") as log:
        proc = subprocess.Popen(
            [
                installed.command("facturation-sandbox"), "--port", str(port),
                "--login", LOGIN, "--key", KEY, "--firm-id", str(FIRM_ID),
            ],
            cwd=installed.work, stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/__sandbox/stats", timeout=30)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def test_the_installed_package_is_the_wheel_with_its_mappings(installed: Installed) -> None:
    out = _run(
        installed.command("python"),
        "-c",
        "import bridge.mapping.files as f; print(f.BUILTIN_DIR); print(len(f.all_mapping_files()))",
        cwd=installed.work,
    )
    folder, count = out.split()
    assert Path(folder).is_relative_to(installed.venv), folder  # not the repository's mappings/
    assert Path(folder).name == "_builtin_mappings"
    assert int(count) == len(list((REPO / "mappings").glob("*/*.yaml")))


def test_the_installed_wheel_invoices_a_signed_webhook(
    installed: Installed, sandbox: str, tmp_path: Path
) -> None:
    port = free_port()
    env = bridge_env(f"sqlite:///{tmp_path}/bridge.db", sandbox)
    env.pop("PYTHONPATH", None)
    with (tmp_path / "serve.log").open("ab") as log:
        serve = subprocess.Popen(
            [installed.command("facturation-bridge"), "serve", "--port", str(port)],
            cwd=installed.work, env=env, stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/readyz", timeout=60)
        hook = stripe_sale(1, "cus_wheel", 1999)
        answer = httpx.post(
            f"{url}/webhooks/stripe",
            content=hook.body,
            headers={
                "Stripe-Signature": stripe_header(hook.body),
                "Content-Type": "application/json",
            },
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        invoices: list[dict[str, object]] = []
        deadline = time.monotonic() + 60
        while not invoices and time.monotonic() < deadline:
            ledger = httpx.get(f"{sandbox}/__sandbox/ledger", timeout=30).json()
            invoices = [i for i in ledger["invoices"] if i["api_custom"] == invoice_custom(1)]
            time.sleep(0.2)
        assert len(invoices) == 1, (tmp_path / "serve.log").read_text()
        assert Decimal(str(invoices[0]["total_with_vat"])) == Decimal("19.99")
        assert Decimal(str(invoices[0]["total"])) == Decimal("16.66")  # VAT 20 % included: 3.33
    finally:
        serve.terminate()
        serve.wait(60)


def test_the_installed_wheel_without_its_mappings_refuses_to_start(
    installed: Installed, tmp_path: Path
) -> None:
    """Last in this module: it empties the installed built-in set, as a wheel without them would."""
    out = _run(
        installed.command("python"),
        "-c",
        "import bridge._builtin_mappings as m; print(m.__path__[0])",
        cwd=installed.work,
    )
    builtin = Path(out.strip())
    for folder in ("stripe", "shopify"):
        shutil.rmtree(builtin / folder)
    env = bridge_env(f"sqlite:///{tmp_path}/bridge.db", "http://127.0.0.1:9")
    for command in ("serve", "web", "worker"):
        result = subprocess.run(
            [installed.command("facturation-bridge"), command],
            cwd=installed.work, env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("configuration error: mappings: no mapping file found "), (
            result.stderr
        )
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "bridge.db").exists()
