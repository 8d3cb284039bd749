"""Compile the hand-written C test twins (tests/twins/names2, tests/twins/array3) into binary FMUs.

Unlike the sample twins (fmus/build.py: generated variable tables, C-identifier names only) these carry
the names real tools export - ``room.T``, ``A[1]``, FMI 3 arrays - so they are plain C files against
fmpy's FMI headers, compiled here with the system C compiler; nothing binary is committed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import fmpy

HERE = Path(__file__).resolve().parent


def build(name: str, out_dir: Path, src: Path | None = None) -> Path:
    """``out_dir/<name>.fmu`` with a binary for this platform, compiled from ``tests/twins/<name>`` (or ``src``:
    any folder with a modelDescription.xml and the C files of one model, e.g. tests/data/writeback_model)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise RuntimeError("no C compiler (cc/gcc) to build the hand-written test twins")
    src = src or HERE / name
    xml = (src / "modelDescription.xml").read_text(encoding="utf-8")
    identifier = re.search(r'modelIdentifier="([^"]+)"', xml)
    assert identifier is not None, f"{src}: modelDescription.xml has no modelIdentifier"
    fmi3 = 'fmiVersion="3.0"' in xml
    platform = fmpy.platform_tuple if fmi3 else fmpy.platform
    stage = out_dir / f"{name}_unzipped"
    (stage / "binaries" / platform).mkdir(parents=True, exist_ok=True)
    shutil.copy(src / "modelDescription.xml", stage)
    library = stage / "binaries" / platform / f"{identifier.group(1)}{fmpy.sharedLibraryExtension}"
    sources = sorted(str(p) for p in src.glob("*.c"))
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-I", str(Path(fmpy.__file__).parent / "c-code"), *sources,
                    "-o", str(library), "-lm"], check=True)
    target = out_dir / f"{name}.fmu"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(stage.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(stage).as_posix())
    return target
