"""A built wheel (not only an editable install) carries what gpugraph needs at run time: the
CUDA backend's kernel sources, the op registry and its backends, the OpDef set; installed from
the wheel, the CUDA loader finds its kernels through the package."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                            "--no-build-isolation", "-q", "-w", str(out)],
                           capture_output=True, text=True)
    if build.returncode != 0 and "No module named" in build.stderr:
        pytest.skip(f"cannot build wheels here: {build.stderr.strip()[-200:]}")
    assert build.returncode == 0, build.stderr
    (found,) = out.glob("gpugraph-*.whl")
    return found


def test_the_wheel_holds_the_kernels_and_the_registry(wheel: pathlib.Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = sorted((ROOT / "gpugraph" / "devices" / "cuda" / "kernels").glob("*.cu"))
    assert sources
    for source in sources:
        assert f"gpugraph/devices/cuda/kernels/{source.name}" in names
    for module in ("gpugraph/ops/registry.py", "gpugraph/ops/cpu/conv.py",
                   "gpugraph/ops/cuda/training.py", "gpugraph/framework/tf_op_defs.binpb",
                   "gpugraph/config.py"):
        assert module in names


def test_an_installed_wheel_finds_its_cuda_kernels(wheel: pathlib.Path, tmp_path) -> None:
    target = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q",
                              "--target", str(target), str(wheel)], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr
    probe = ("import gpugraph, gpugraph.ops.registry as r\n"
             "from gpugraph.devices.cuda import rawmodule\n"
             "print(gpugraph.__file__)\n"
             "print((rawmodule.KERNELS / 'training.cu').is_file())\n"
             "print(len(r.registered_op_types()))\n")
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=tmp_path, env={"PYTHONPATH": str(target), "PATH": ""})
    assert run.returncode == 0, run.stderr
    where, found, count = run.stdout.split()
    assert pathlib.Path(where).is_relative_to(target)
    assert found == "True" and int(count) > 400
