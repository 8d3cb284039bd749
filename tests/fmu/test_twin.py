"""Twin layer on real FMUs: typed discovery, value checks, compilation cache, and every broken-FMU case."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from fmi_optimizer.errors import FmuError, FmuUnsupportedError, ValueValidationError
from fmi_optimizer.fmu.twin import Twin


def _rewrite(src: Path, dst: Path, edit=None, drop=lambda n: False) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            if drop(item.filename):
                continue
            data = zin.read(item)
            if edit is not None and item.filename == "modelDescription.xml":
                data = edit(data)
            zout.writestr(item, data)
    return dst


def test_parameters_are_typed(sample_fmu) -> None:
    twin = Twin.open(sample_fmu("heat_sink"))
    p = {v.name: v for v in twin.parameters}
    assert p["n_fins"].type == "Integer" and isinstance(p["n_fins"].start, int)
    assert isinstance(p["fin_height"].start, float) and p["fin_height"].unit == "m"
    assert p["fin_height"].min == pytest.approx(0.015) and isinstance(p["fin_height"].max, float)
    assert p["material"].type == "Enumeration" and ("CuC110", 4) in p["material"].items
    assert p["duct"].type == "Boolean" and p["duct"].start is False
    assert p["n_fins"].tunable == "before_init"
    assert {o.name for o in twin.outputs} >= {"T_junction", "mass", "cost", "P_fan", "dp"}
    info = twin.info()
    assert info["fmi_version"] == "2.0" and "co-simulation" in info["interfaces"]
    assert set(info["parameters"][0]) >= {"name", "type", "start", "min", "max", "unit", "causality", "variability",
                                          "tunable", "description", "items"}


def test_source_fmu_is_compiled_once_and_cached(sample_fmu) -> None:
    path = sample_fmu("heat_sink")
    before = path.read_bytes()
    first = Twin.open(path)
    built = Path(first.fmu.runnable).stat()
    second = Twin.open(path)
    assert second.fmu.runnable == first.fmu.runnable and first.fmu.compiled_from_sources
    again = Path(second.fmu.runnable).stat()  # a rebuild would replace the file: a new inode and mtime
    assert (again.st_ino, again.st_mtime_ns) == (built.st_ino, built.st_mtime_ns)  # a cache hit
    assert path.read_bytes() == before  # the input file is never modified


def test_values_are_checked_before_simulation(sample_fmu) -> None:
    twin = Twin.open(sample_fmu("heat_sink"))
    assert twin.check_values({"material": "CuC110", "n_fins": 20.0, "duct": True}) == {
        "material": 4, "n_fins": 20, "duct": True}
    with pytest.raises(ValueValidationError, match=r"'fin_height': 0.2 is outside its allowed range \[0.015, 0.05\] m"):
        twin.check_values({"fin_height": 0.2})
    with pytest.raises(ValueValidationError, match="expected an integer"):
        twin.check_values({"n_fins": 12.5})
    with pytest.raises(ValueValidationError, match="not an item of its enumeration"):
        twin.check_values({"material": "gold"})
    with pytest.raises(ValueValidationError, match=r"no variable named 'fin_heigth'; did you mean 'fin_height'\?"):
        twin.check_values({"fin_heigth": 0.02})
    # a name is looked up to be set: what may be set is suggested, not the outputs T_fin and fin_efficiency
    # (a Dymola pump's 'mdotInit2' once got ['mdotInit', 'mdot'], 'mdot' a local the next run refused)
    with pytest.raises(ValueValidationError, match=r"no variable named 'fin'; did you mean 'n_fins' or 'fin_height' "
                                                   r"or 'fin_thickness'\?$"):
        twin.check_values({"fin": 1.0})
    with pytest.raises(ValueValidationError, match="cannot be set"):
        twin.check_values({"mass": 1.0})


def test_a_variable_fmi_does_not_let_an_importer_set_is_not_a_design_parameter(sample_fmu) -> None:
    """An output in [parameters] is refused when the design space is built, before any simulation, by the rule
    the write-back applies; it used to run the whole study and fail only when the FMU was written."""
    from fmi_optimizer.errors import StudyError

    twin = Twin.open(sample_fmu("heat_sink"))
    mass = twin.variable("mass")
    assert mass.causality == "output" and not mass.settable_before_init
    with pytest.raises(StudyError, match=r"parameter 'mass' has causality 'output' .* vary a variable of causality "
                                         r"'parameter' or 'input'"):
        twin.dimension("mass", min=0.1, max=1.0)
    assert twin.dimension("fin_height").name == "fin_height"  # a parameter still is one
    # an unknown key is named with the keys the variable's type accepts (it once listed 'items' for a Real)
    with pytest.raises(StudyError, match=r"^\[parameters\] 'fin_height': step is not a key of a Real parameter; "
                                         r"accepted for it: min, max, levels, log$"):
        twin.dimension("fin_height", step=0.01)
    with pytest.raises(StudyError, match=r"'n_fins': levels does not apply to an Integer parameter; accepted for it: "
                                         r"min, max$"):
        twin.dimension("n_fins", levels=4)


def test_the_settable_rule_accepts_fmi1_parameters_and_inputs(lag1_fmu, echo_fmu) -> None:
    """What the rule must keep accepting: an FMI 1.0 parameter (a variability there, mapped by fmpy) as a design
    dimension and a fixed value, and an input as a fixed value; an FMI 1.0 output stays refused."""
    from fmi_optimizer.errors import StudyError
    from fmi_optimizer.fmu.variables import settable_before_init

    lag1 = Twin.open(lag1_fmu)
    k = lag1.variable("k")
    assert (k.causality, k.variability, k.settable_before_init) == ("parameter", "fixed", True)
    assert lag1.dimension("k").name == "k" and lag1.check_values({"k": 0.7, "n": 2}) == {"k": 0.7, "n": 2}
    with pytest.raises(StudyError, match="parameter 'y' has causality 'output'"):
        lag1.dimension("y", min=0.0, max=1.0)
    echo = Twin.open(echo_fmu)
    assert echo.variable("u").causality == "input" and echo.check_values({"u": 1.5}) == {"u": 1.5}
    assert settable_before_init("local", "continuous", "exact") and not settable_before_init("local", "continuous",
                                                                                              "calculated")
    assert not settable_before_init("parameter", "constant", None)
    assert not settable_before_init("calculatedParameter", "fixed", "calculated")


@pytest.mark.parametrize("case, error, message", [
    ("not_zip", FmuError, "not a zip archive"),
    ("truncated", FmuError, "truncated or corrupt|not a zip"),
    ("no_md", FmuError, "no modelDescription.xml"),
    ("xml_syntax", FmuError, "not well-formed XML"),
    ("xml_schema", FmuError, "not valid FMI"),
    ("no_binary", FmuUnsupportedError, "no binary for this platform .* and no sources"),
    ("wrong_identifier", FmuUnsupportedError, "modelIdentifier 'heat_sink' needs binaries/"),
])
def test_broken_fmus_get_one_line_errors(sample_fmu, tmp_path: Path, case: str, error: type, message: str) -> None:
    src = sample_fmu("heat_sink")
    runnable = Twin.open(src).fmu.runnable
    bad = tmp_path / f"{case}.fmu"
    if case == "not_zip":
        bad.write_text("hello")
    elif case == "truncated":
        data = src.read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    elif case == "no_md":
        _rewrite(src, bad, drop=lambda n: n == "modelDescription.xml")
    elif case == "xml_syntax":
        _rewrite(src, bad, edit=lambda d: d.replace(b"</ModelVariables>", b"</ModelVariable>"))
    elif case == "xml_schema":
        _rewrite(src, bad, edit=lambda d: d.replace(b'causality="parameter"', b'causality="sometimes"', 1))
    elif case == "no_binary":
        _rewrite(src, bad, drop=lambda n: n.startswith("sources/"))
    elif case == "wrong_identifier":
        _rewrite(runnable, bad, edit=lambda d: d, drop=lambda n: False)
        with zipfile.ZipFile(runnable) as zin, zipfile.ZipFile(bad, "w") as zout:
            for item in zin.infolist():
                name = item.filename.replace("heat_sink.so", "other.so")
                zout.writestr(name, zin.read(item))
    with pytest.raises(error, match=message) as info:
        Twin.open(bad)
    text = str(info.value)
    assert "\n" not in text and str(bad.name) in text


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(FmuError, match="no such file"):
        Twin.open(tmp_path / "nope.fmu")
    with pytest.raises(FmuError, match="is a folder"):
        Twin.open(tmp_path)
