"""The wheel's package list (pyproject.toml) holds every package of the source tree.

Packages are listed rather than found, so that the top-level mappings/ folder can ship as
bridge._builtin_mappings; a package added to bridge/ but not to the list would be missing from the
installed bridge. tests/e2e/test_wheel.py builds and installs the wheel itself.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from bridge.mapping.files import BUILTIN_DIR, all_mapping_files

REPO = Path(__file__).resolve().parents[2]


def _pyproject() -> dict[str, object]:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def test_every_package_on_disk_is_in_the_wheel() -> None:
    setuptools = _pyproject()["tool"]["setuptools"]  # type: ignore[index]
    on_disk = {
        ".".join(init.parent.relative_to(REPO).parts)
        for top in ("bridge", "facturation_sandbox")
        for init in (REPO / top).rglob("__init__.py")
    }
    assert set(setuptools["packages"]) == on_disk | {"bridge._builtin_mappings"}
    assert setuptools["package-dir"] == {"bridge._builtin_mappings": "mappings"}


def test_the_built_in_mappings_are_the_top_level_folder() -> None:
    assert BUILTIN_DIR == REPO / "mappings"
    found = all_mapping_files()
    assert ("stripe", "invoice.paid") in found
    assert ("shopify", "orders_paid") in found
    assert {path.parent.parent for path in found.values()} == {REPO / "mappings"}


def test_the_docker_image_installs_the_wheel_built_from_every_source_folder() -> None:
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    _, build, final = dockerfile.split("\nFROM ")  # comments, build stage, image stage
    for folder in ("bridge", "facturation_sandbox", "mappings"):  # what the wheel is built from
        assert f"COPY {folder} ./{folder}" in build
    assert "pip wheel --no-deps --wheel-dir /dist ." in build
    assert "COPY --from=build /dist/" in final
    assert "pip install -c /tmp/constraints.txt /tmp/dist/*.whl" in final
    assert " -e " not in dockerfile
    assert "COPY bridge" not in final  # no source tree in the image
