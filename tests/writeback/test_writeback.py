"""Write-back: the written FMU really runs with the new values, the input is untouched, the .ssv is
valid SSP, verification catches a wrong FMU, and bad inputs are refused with one-line errors.

Test FMUs are built at test time (no binaries are committed): a tiny hand-written model with every
parameter type, as FMI 2.0 (tests/twins/writeback_model) and FMI 3.0 (tests/twins/writeback_model3),
compiled with the C compiler, and sample twins from fmus/ (heat_sink, servo_pid_fmi3, building_zone)
compiled with fmpy.build. libcosim (an importer independent of fmpy) runs for real: libcosimpy is a test
dependency.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import fmpy
import numpy as np
import pytest
from fmpy import read_model_description, simulate_fmu
from fmpy.validation import validate_fmu

from fmi_optimizer.errors import (
    FmuError,
    FmuUnsupportedError,
    OutputError,
    ValueValidationError,
    VerificationError,
)
from fmi_optimizer.writeback.proxy_fmu import ProxyInfo, Value, sha256
from fmi_optimizer.writeback.ssp import read_ssv, write_ssv
from fmi_optimizer.writeback.write import (
    CheckSettings,
    read_result_values,
    verify_written_fmu,
    write_back,
    write_optimized_fmu,
    write_result_json,
)

RUN_LIBCOSIM = Path(__file__).resolve().parent / "run_libcosim.py"  # the FMU in libcosim, rows as JSON
FMPY_DIR = Path(fmpy.__file__).parent
WB_VALUES: dict[str, Value] = {"k": 2.5, "n": 2, "mode": "fast", "flip": True, "label": "abcd"}
WB_START: dict[str, Value] = {"k": 2.5, "n": 2, "mode": 3, "flip": True, "label": "abcd"}
HS_VALUES: dict[str, Value] = {"n_fins": 24, "fin_height": 0.045, "base_thickness": 0.004, "material": "CuC110",
             "fan_model": 3, "fan_speed": 4, "tim": "phase_change", "duct": True}
HS_START: dict[str, Value] = {**HS_VALUES, "material": 4, "tim": 3}
HS_OUTPUTS = ["T_junction", "T_junction_max", "cost", "mass", "E_fan"]


def _zip_dir(folder: Path, out: Path) -> Path:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    return out


@pytest.fixture(scope="module")
def wb_fmu(binary_twin: Callable[..., Path]) -> Path:
    """The tiny model as a runnable FMI 2.0 CS FMU (tests/twins/writeback_model, compiled in this run)."""
    return binary_twin("writeback_model", "wbmodel")


@pytest.fixture(scope="module")
def wb3_fmu(binary_twin: Callable[..., Path]) -> Path:
    """The FMI 3.0 version of the tiny model (tests/twins/writeback_model3), compiled in this run."""
    return binary_twin("writeback_model3", "wbmodel3")


@pytest.fixture(scope="module")
def runnable_twin(compiled_sample: Callable[[str], Path],
                  tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``runnable_twin("heat_sink")`` -> the sample twin as a binary FMU: its sources compiled by fmpy.build
    (once per session, see conftest), zipped."""
    root, built = tmp_path_factory.mktemp("runnable"), {}

    def get(name: str) -> Path:
        if name not in built:
            built[name] = _zip_dir(compiled_sample(name), root / f"{name}.fmu")
        return built[name]

    return get


@pytest.fixture(scope="module")
def heat_sink_fmu(runnable_twin: Callable[[str], Path]) -> Path:
    return runnable_twin("heat_sink")


def _sim(fmu: Path, **kwargs: object) -> np.ndarray:
    return simulate_fmu(str(fmu), **kwargs)


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(b))), 1e-300)
    return float(np.max(np.abs(a - b))) / scale


def test_written_fmu_runs_with_every_value_type_under_default_settings(wb_fmu: Path, tmp_path: Path) -> None:
    written = write_optimized_fmu(wb_fmu, WB_VALUES, tmp_path / "wb.optimized.fmu")
    outputs = ["y", "x", "k_eff", "k", "n", "mode", "flip"]
    new = _sim(written, output=outputs)  # default settings, no start values
    reference = _sim(wb_fmu, output=outputs, start_values=WB_START)
    default = _sim(wb_fmu, output=outputs)
    assert new.shape == reference.shape
    assert np.array_equal(new["time"], reference["time"])
    for name in ("y", "x", "k_eff"):
        assert _rel(new[name], reference[name]) < 1e-12, name
    assert new["k"][0] == 2.5 and new["n"][0] == 2 and new["mode"][0] == 3 and bool(new["flip"][0])
    # the String value matters too: y = x + 0.1*len(label); a lost label would shift y by 0.2
    assert np.allclose(new["y"] - new["x"], 0.4)
    assert _rel(new["y"], default["y"]) > 0.05  # the values do change the behaviour
    # an importer that pushes the XML start values gets the same run (it sets the same values again)
    pushed = _sim(written, output=outputs, apply_default_start_values=True)
    assert _rel(pushed["y"], reference["y"]) < 1e-12


def test_model_description_shows_new_starts_under_original_names(wb_fmu: Path, tmp_path: Path) -> None:
    written = write_optimized_fmu(wb_fmu, WB_VALUES, tmp_path / "wb.optimized.fmu")
    assert validate_fmu(str(written)) == []
    md = read_model_description(str(written))
    original = read_model_description(str(wb_fmu))
    # a one-to-one proxy: the same variables with the same value references (no remapping)
    assert [(v.name, v.valueReference) for v in md.modelVariables] == [
        (v.name, v.valueReference) for v in original.modelVariables]
    assert md.coSimulation.modelIdentifier == "fmio_proxy"
    starts = {v.name: v.start for v in md.modelVariables}
    assert starts["k"] == "2.5" and starts["n"] == "2" and starts["mode"] == "3"
    assert starts["flip"] == "true" and starts["label"] == "abcd"
    assert starts["x0"] == "1.0"  # untouched parameters keep their start
    kinds = {v.name: (v.causality, v.variability, v.type) for v in md.modelVariables}
    for v in original.modelVariables:
        assert kinds[v.name] == (v.causality, v.variability, v.type)
    assert [o.variable.name for o in md.outputs] == [o.variable.name for o in original.outputs]
    assert md.guid != original.guid


def test_inputs_and_other_parameters_pass_through(wb_fmu: Path, tmp_path: Path) -> None:
    written = write_optimized_fmu(wb_fmu, WB_VALUES, tmp_path / "wb.optimized.fmu")
    signal = np.array([(0.0, 0.0), (1.0, 1.5), (2.0, -0.5)], dtype=[("time", "f8"), ("u", "f8")])
    new = _sim(written, input=signal, start_values={"x0": 3.0}, output=["y"])
    reference = _sim(wb_fmu, input=signal, start_values={**WB_START, "x0": 3.0}, output=["y"])
    without_input = _sim(written, start_values={"x0": 3.0}, output=["y"])
    assert _rel(new["y"], reference["y"]) < 1e-12
    assert _rel(new["y"], without_input["y"]) > 0.01


@pytest.mark.slow
def test_input_fmu_is_byte_identical_afterwards(wb_fmu: Path, tmp_path: Path) -> None:
    before = sha256(wb_fmu)
    stamp = wb_fmu.stat().st_mtime_ns
    write_back(wb_fmu, WB_VALUES, tmp_path / "out", check=CheckSettings(["y"], 2.0, 0.01))
    assert sha256(wb_fmu) == before
    assert wb_fmu.stat().st_mtime_ns == stamp


def test_refuses_to_overwrite_the_input(wb_fmu: Path, tmp_path: Path) -> None:
    copy = shutil.copy(wb_fmu, tmp_path / "model.fmu")
    before = sha256(Path(copy))
    with pytest.raises(OutputError, match="never overwrites its input"):
        write_optimized_fmu(Path(copy), WB_VALUES, Path(copy))
    assert sha256(Path(copy)) == before


@pytest.mark.slow
def test_write_back_on_heat_sink_twin(heat_sink_fmu: Path, tmp_path: Path) -> None:
    before = sha256(heat_sink_fmu)
    result = write_back(heat_sink_fmu, HS_VALUES, tmp_path / "results", check=CheckSettings(HS_OUTPUTS, 600.0, 10.0),
                        stem="heat_sink", extra={"kpis": {"cost": 1.0}})
    assert result.ok and result.trajectories.ok and result.verification["ok"] is True
    assert result.trajectories.max_rel_diff <= 1e-9
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == [
        "heat_sink.optimized.fmu", "heat_sink.optimized.json", "heat_sink.optimized.ssv"]
    assert sha256(heat_sink_fmu) == before
    assert validate_fmu(str(result.fmu)) == []
    # the model description is the original's: same variables, same value references, same structure
    md, original = read_model_description(str(result.fmu)), read_model_description(str(heat_sink_fmu))
    assert [(v.name, v.valueReference) for v in md.modelVariables] == [
        (v.name, v.valueReference) for v in original.modelVariables]
    assert [o.variable.name for o in md.outputs] == [o.variable.name for o in original.outputs]
    assert [u.variable.name for u in md.initialUnknowns] == [u.variable.name for u in original.initialUnknowns]
    # default settings (the written DefaultExperiment), compared with the original run with start values
    new = _sim(result.fmu, output=HS_OUTPUTS)
    reference = _sim(heat_sink_fmu, output=HS_OUTPUTS, start_values=HS_START)
    default = _sim(heat_sink_fmu, output=HS_OUTPUTS)
    for name in HS_OUTPUTS:
        assert _rel(new[name], reference[name]) < 1e-12, name
    assert abs(new["cost"][-1] - default["cost"][-1]) > 1.0
    ssv = read_ssv(result.ssv)
    assert ssv["material"].kind == "Enumeration" and ssv["material"].value == "CuC110"
    assert ssv["fan_model"].value == "axial_92hp" and ssv["n_fins"].value == 24
    assert ssv["duct"].value is True and ssv["fin_height"].value == 0.045 and ssv["fin_height"].unit == "m"
    record = json.loads(result.json.read_text())
    assert record["values"]["material"] == 4 and record["verification"]["ok"] is True
    assert record["verification"]["validation"] == []
    assert record["extra"] == {"kpis": {"cost": 1.0}}
    assert read_result_values(result.json) == {**HS_VALUES, "material": 4, "tim": 3}


@pytest.mark.slow
def test_a_study_finer_than_fmpys_default_grid_gets_a_note(faulty_fmu: Path, tmp_path: Path) -> None:
    """plain fmpy.simulate_fmu without output_interval doubles a co-simulation FMU's stepSize until at most
    1000 points: a written FMU of a study at 2000 steps ran at twice the study's step there and gave other
    numbers (a 20-sim crane: p_final -0.21 %). The write-back says so and how to call fmpy."""
    from fmi_optimizer import optimize

    study = {"twin": {"fmu": str(faulty_fmu), "output_interval": 0.001},  # stop: the FMU's own (2 s)
             "parameters": {"x": {}}, "kpis": {"y_end": "final(y)"}, "objective": {"minimize": "y_end"},
             "method": {"name": "random", "budget": {"evaluations": 2}, "seed": 1}, "evaluation": {"workers": 1}}
    out = optimize(study, out=tmp_path / "fine")
    written = Path(out.files["fmu"])
    (note,) = json.loads(Path(out.files["json"]).read_text())["verification"]["notes"]
    assert f"runs {written.name} at a 0.002 s step, not the study's 0.001 s" in note
    assert "output_interval=0.001" in note
    default = simulate_fmu(str(written), output=["y"])  # what the note warns of: fmpy's own choice
    assert np.diff(default["time"][:3]).tolist() == pytest.approx([0.002, 0.002])
    study["twin"]["output_interval"] = 0.01  # 200 points: fmpy keeps the step, nothing to say
    coarse = optimize(study, out=tmp_path / "coarse")
    assert json.loads(Path(coarse.files["json"]).read_text())["verification"]["notes"] == []


def test_ssv_is_valid_ssp_and_round_trips(tmp_path: Path) -> None:
    from lxml import etree

    out = write_ssv({"a": 1.5, "b": 3, "c": False, "d": "text", "e": "fast"}, tmp_path / "p.ssv",
                    units={"a": "m"}, kinds={"e": "Enumeration"})
    schema = etree.XMLSchema(etree.parse(str(FMPY_DIR / "ssp" / "schema" / "SystemStructureParameterValues.xsd")))
    assert schema.validate(etree.parse(str(out))), schema.error_log
    params = read_ssv(out)
    assert {k: (p.kind, p.value) for k, p in params.items()} == {
        "a": ("Real", 1.5), "b": ("Integer", 3), "c": ("Boolean", False), "d": ("String", "text"),
        "e": ("Enumeration", "fast")}
    assert params["a"].unit == "m"
    with pytest.raises(ValueValidationError, match="'a'"):
        write_ssv({"a": float("nan")}, tmp_path / "bad.ssv")


def test_write_back_ssv_passes_the_schema(wb_fmu: Path, tmp_path: Path) -> None:
    from lxml import etree

    result = write_back(wb_fmu, WB_VALUES, tmp_path, check=CheckSettings(["y"], 1.0, 0.01))
    schema = etree.XMLSchema(etree.parse(str(FMPY_DIR / "ssp" / "schema" / "SystemStructureParameterValues.xsd")))
    assert schema.validate(etree.parse(str(result.ssv))), schema.error_log
    assert {k: p.value for k, p in read_ssv(result.ssv).items()} == WB_VALUES


def test_verification_catches_an_fmu_with_other_values(wb_fmu: Path, tmp_path: Path) -> None:
    wrong = write_optimized_fmu(wb_fmu, {**WB_VALUES, "k": 3.0}, tmp_path / "wrong.fmu")
    result = verify_written_fmu(wb_fmu, wrong, WB_VALUES, ["y", "k_eff"], 2.0, 0.01, rtol=1e-6)
    assert not result.ok
    assert result.per_output["y"] > 1e-3 and result.per_output["k_eff"] > 0.1
    assert any("'y'" in p for p in result.problems)


def test_each_importer_is_held_to_its_own_run_of_the_original(binary_twin: Callable[..., Path],
                                                               tmp_path: Path) -> None:
    """fmpy and libcosim disagree on this FMU (its output depends on whether the importer defines a stop time,
    as a real 20-sim FMU's does on its step): a correct write-back must still verify in both importers, and a
    wrong one still fail in both. Held to fmpy's run of the original, libcosim used to fail the correct one."""
    fmu = binary_twin("importer_dependent")
    values = {"k": 2.0, "n": 2, "flip": True}  # types libcosim can set (it ignores enumerations)
    written = write_optimized_fmu(fmu, values, tmp_path / "right.fmu")
    right = verify_written_fmu(fmu, written, values, ["y"], 2.0, 0.01)
    assert right.ok and right.importers == {"fmpy": "ok", "libcosim": "ok"}, right.problems
    wrong = write_optimized_fmu(fmu, {**values, "k": 3.0}, tmp_path / "wrong.fmu")
    caught = verify_written_fmu(fmu, wrong, values, ["y"], 2.0, 0.01)
    assert not caught.ok and caught.importers == {"fmpy": "failed", "libcosim": "failed"}, caught.importers


def test_verification_catches_a_tampered_proxy_config(wb_fmu: Path, tmp_path: Path) -> None:
    good = write_optimized_fmu(wb_fmu, WB_VALUES, tmp_path / "good.fmu")
    tampered = tmp_path / "tampered.fmu"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(tampered, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename == "resources/fmio_proxy/proxy.cfg":
                lines = data.decode().splitlines()
                assert sum(line.startswith("value Integer ") and line.endswith(" 2") for line in lines) == 1  # n = 2
                data = "\n".join(line[:-1] + "1" if line.startswith("value Integer ") and line.endswith(" 2")
                                 else line for line in lines).encode()
            zout.writestr(item, data)
    result = verify_written_fmu(wb_fmu, tampered, WB_VALUES, ["y"], 2.0, 0.01)
    assert not result.ok and result.max_rel_diff > 1e-3


def test_write_back_fails_loudly_and_removes_the_unverified_fmu(wb_fmu: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import fmi_optimizer.writeback.write as wb

    real = wb.write_proxy_fmu

    def broken(original: Path, values: dict[str, Value], out_fmu: Path, **kwargs: object) -> ProxyInfo:
        info = real(original, {**values, "flip": False}, out_fmu, **kwargs)  # a bug that drops a value
        return info.__class__(**{**info.__dict__, "written": {**info.written, "flip": True}})

    monkeypatch.setattr(wb, "write_proxy_fmu", broken)
    with pytest.raises(VerificationError, match=r"wbmodel\.optimized\.fmu failed verification .*'y'.*no FMU was written"):
        write_back(wb_fmu, WB_VALUES, tmp_path, check=CheckSettings(["y"], 2.0, 0.01))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wbmodel.optimized.json", "wbmodel.optimized.ssv"]
    record = json.loads((tmp_path / "wbmodel.optimized.json").read_text())
    assert record["verification"]["ok"] is False and record["verification"]["max_rel_diff"] > 1e-3
    assert record["files"]["fmu"] is None


@pytest.mark.slow
def test_written_fmu_takes_any_communication_step(wb_fmu: Path, tmp_path: Path) -> None:
    """The proxy has no fixed step of its own: the importer's steps reach the original unchanged."""
    written = write_optimized_fmu(wb_fmu, WB_VALUES, tmp_path / "wb.fmu")
    for interval in (0.015, 0.05):
        result = verify_written_fmu(wb_fmu, written, WB_VALUES, ["y"], 1.0, interval)
        assert result.ok and result.verified_by == ["fmpy", "libcosim"], result.problems


def test_verification_with_nothing_to_compare_is_not_ok(wb_fmu: Path, tmp_path: Path) -> None:
    written = write_optimized_fmu(wb_fmu, WB_VALUES, tmp_path / "wb.fmu")
    result = verify_written_fmu(wb_fmu, written, WB_VALUES, [], 1.0, 0.01)
    assert not result.ok and "no outputs" in result.problems[0]


def test_verification_reports_an_fmu_that_does_not_simulate(wb_fmu: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.fmu"
    junk.write_bytes(b"not a zip")
    result = verify_written_fmu(wb_fmu, junk, WB_VALUES, ["y"], 1.0, 0.01)
    assert not result.ok and "failed to simulate" in result.problems[0]


def test_unwritable_output_folder_is_an_output_error(wb_fmu: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the output folder should be")
    with pytest.raises(OutputError, match="not_a_folder.*writable output folder"):
        write_back(wb_fmu, WB_VALUES, blocker, check=CheckSettings(["y"], 1.0, 0.01))
    with pytest.raises(OutputError, match="writable output folder"):
        write_optimized_fmu(wb_fmu, WB_VALUES, blocker / "x.fmu")


@pytest.mark.parametrize(("values", "message"), [
    ({"nope": 1.0}, "no variable named 'nope'"),
    ({"k": "fast"}, "'k' is not a finite number"),
    ({"k": 50.0}, "'k' is outside"),
    ({"n": 1.5}, "'n' is not an integer"),
    ({"mode": "warp"}, "'mode' is not an item"),
    ({"mode": 7}, "'mode' is not an item value"),
    ({"flip": 2}, "'flip' is not a boolean"),
    ({"y": 1.0}, "'y' .*cannot be set before initialization"),
])
def test_bad_values_are_refused_with_the_variable_named(wb_fmu: Path, tmp_path: Path, values: dict[str, Value],
                                                        message: str) -> None:
    with pytest.raises(ValueValidationError, match=message):
        write_optimized_fmu(wb_fmu, values, tmp_path / "x.fmu")
    assert not (tmp_path / "x.fmu").exists()


def _variant(wb_fmu: Path, out: Path, edit: Callable[[str], str]) -> Path:
    """A copy of the FMU with its modelDescription.xml edited."""
    with zipfile.ZipFile(wb_fmu) as zin, zipfile.ZipFile(out, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename == "modelDescription.xml":
                data = edit(data.decode()).encode()
            zout.writestr(item, data)
    return out


def test_model_exchange_only_is_refused(wb_fmu: Path, tmp_path: Path) -> None:
    me = _variant(wb_fmu, tmp_path / "me.fmu", lambda xml: xml.replace("<CoSimulation", "<ModelExchange"))
    with pytest.raises(FmuUnsupportedError, match=r"me\.fmu: model-exchange only.*co-simulation"):
        write_optimized_fmu(me, WB_VALUES, tmp_path / "x.fmu")


def test_fmi1_is_refused_clearly(wb_fmu: Path, tmp_path: Path) -> None:
    fmi1 = _variant(wb_fmu, tmp_path / "v1.fmu", lambda xml: xml.replace('fmiVersion="2.0"', 'fmiVersion="1.0"'))
    with pytest.raises(FmuUnsupportedError, match=r"v1\.fmu: FMI 1\.0 model exchange is not supported by write-back"):
        write_optimized_fmu(fmi1, WB_VALUES, tmp_path / "x.fmu")


def test_fmi3_write_back_for_every_value_type(wb3_fmu: Path, tmp_path: Path) -> None:
    before = sha256(wb3_fmu)
    result = write_back(wb3_fmu, WB_VALUES, tmp_path, check=CheckSettings(["y", "x", "k_eff"], 2.0, 0.01))
    assert result.ok and result.trajectories.max_rel_diff < 1e-12
    assert sha256(wb3_fmu) == before
    assert validate_fmu(str(result.fmu)) == []
    md = read_model_description(str(result.fmu))
    assert md.fmiVersion == "3.0" and md.coSimulation.modelIdentifier == "fmio_proxy"
    assert [(v.name, v.valueReference) for v in md.modelVariables] == [
        (v.name, v.valueReference) for v in read_model_description(str(wb3_fmu)).modelVariables]
    starts = {v.name: v.start for v in md.modelVariables}
    assert starts["k"] == "2.5" and starts["n"] == "2" and starts["mode"] == "3" and starts["flip"] == "true"
    assert starts["label"] in ("abcd", ["abcd"])  # fmpy reads FMI 3.0 <Start value=...> children
    outputs = ["y", "x", "k_eff", "k", "n", "mode", "flip"]
    new = _sim(result.fmu, output=outputs)  # default settings
    reference = _sim(wb3_fmu, output=outputs, start_values=WB_START)
    for name in ("y", "x", "k_eff"):
        assert _rel(new[name], reference[name]) < 1e-12, name
    assert new["mode"][0] == 3 and bool(new["flip"][0]) and np.allclose(new["y"] - new["x"], 0.4)
    assert _rel(new["y"], _sim(wb3_fmu, output=["y"])["y"]) > 0.05


def test_fmi3_array_and_structural_variables_are_refused(wb3_fmu: Path, tmp_path: Path) -> None:
    def edit(xml: str) -> str:
        return xml.replace('<Float64 name="x0" valueReference="2" causality="parameter" variability="fixed" '
                           'start="1.0"/>', '<Float64 name="x0" valueReference="2" causality="parameter" '
                           'variability="fixed" start="1.0 1.0"><Dimension start="2"/></Float64>'
                           ).replace('<Int32 name="n" valueReference="3" causality="parameter"',
                                     '<Int32 name="n" valueReference="3" causality="structuralParameter"')
    variant = _variant(wb3_fmu, tmp_path / "arrays.fmu", edit)
    from fmi_optimizer.writeback.proxy_fmu import uncarried

    assert uncarried(variant, ["k", "x0", "n"]) == ["x0", "n"]  # what a study with write-back refuses up front
    for name, value in (("x0", 2.0), ("n", 2)):
        with pytest.raises(ValueValidationError, match=f"'{name}' .*cannot be set"):
            write_optimized_fmu(variant, {name: value}, tmp_path / "x.fmu")


def test_fmu_without_binary_for_this_platform_is_refused(wb_fmu: Path, tmp_path: Path) -> None:
    source_only = tmp_path / "source_only.fmu"
    with zipfile.ZipFile(wb_fmu) as zin, zipfile.ZipFile(source_only, "w") as zout:
        for item in zin.infolist():
            if not item.filename.startswith("binaries/"):
                zout.writestr(item, zin.read(item))
    with pytest.raises(FmuUnsupportedError, match="source_only.fmu: no .* binary.*compile the FMU"):
        write_optimized_fmu(source_only, WB_VALUES, tmp_path / "x.fmu")


def test_broken_input_is_an_fmu_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.fmu"
    junk.write_bytes(b"not a zip")
    with pytest.raises(FmuError, match="junk.fmu: not a zip"):
        write_optimized_fmu(junk, {}, tmp_path / "x.fmu")
    with pytest.raises(FmuError, match="missing.fmu: file not found"):
        write_optimized_fmu(tmp_path / "missing.fmu", {}, tmp_path / "x.fmu")


def test_result_json_round_trip_and_bad_file(wb_fmu: Path, tmp_path: Path) -> None:
    out = write_result_json(tmp_path / "r.json", {"k": 2.0, "flip": True}, source_fmu=wb_fmu)
    assert read_result_values(out) == {"k": 2.0, "flip": True}
    record = json.loads(out.read_text())
    assert record["source"]["sha256"] == sha256(wb_fmu) and record["types"] == {"k": "Real", "flip": "Boolean"}
    (tmp_path / "bad.json").write_text("[1, 2]")
    from fmi_optimizer.errors import DataError

    with pytest.raises(DataError, match="bad.json"):
        read_result_values(tmp_path / "bad.json")


def test_written_fmu_is_reproducible(wb_fmu: Path, tmp_path: Path) -> None:
    a = write_optimized_fmu(wb_fmu, WB_VALUES, tmp_path / "a.fmu")
    b = write_optimized_fmu(wb_fmu, WB_VALUES, tmp_path / "b.fmu")
    assert sha256(a) == sha256(b)


def _study(fmu: Path) -> dict[str, object]:
    return {
        "twin": {"fmu": str(fmu), "stop_time": 2.0, "output_interval": 0.05},
        "parameters": {"k": {}, "n": {}, "mode": {}, "flip": {}},
        "kpis": {"y_end": "final(y)", "x_peak": "max(x)"},
        "objective": {"minimize": {"y_end": 1.0}},
        "method": {"name": "random", "budget": {"evaluations": 4}, "seed": 5},
        "evaluation": {"workers": 1, "timeout": 30.0},
    }


@pytest.mark.slow
def test_study_write_back_recomputes_the_kpis_of_the_best_evaluation(wb_fmu: Path, tmp_path: Path) -> None:
    from fmi_optimizer import optimize

    outcome = optimize(_study(wb_fmu), out=tmp_path / "results")
    best = outcome.result.best
    assert best is not None and outcome.verification is not None and outcome.verification["ok"] is True
    rows = outcome.verification["kpis"]
    assert set(rows) == {"y_end", "x_peak"}
    assert all(r["expected"] == best.kpis[k] and r["rel_diff"] <= 1e-9 for k, r in rows.items())
    written = Path(outcome.files["fmu"])
    final_y = _sim(written, stop_time=2.0, output_interval=0.05, output=["y"])["y"][-1]
    assert abs(final_y - best.kpis["y_end"]) <= 1e-9 * max(1.0, abs(final_y))
    # the same study's problem with KPIs that the written FMU does not reproduce: refused
    wrong = {k: v * 1.01 + 0.01 for k, v in best.kpis.items()}
    failed = write_back(values=best.values, out_dir=tmp_path / "wrong", problem=outcome.problem, expected_kpis=wrong,
                        strict=False)
    assert not failed.ok and any("KPI 'y_end'" in p for p in failed.verification["problems"])
    assert failed.fmu is None and failed.json.exists()  # no FMU, and none named
    assert not (tmp_path / "wrong" / "wbmodel.optimized.fmu").exists()
    assert json.loads(failed.json.read_text())["files"]["fmu"] is None


def test_apply_values_from_a_result_json(wb_fmu: Path, tmp_path: Path) -> None:
    from fmi_optimizer.writeback.write import apply_values

    source = tmp_path / "result.json"
    source.write_text(json.dumps({"best": {"values": {"k": 2.5, "mode": 3, "flip": True}}}))
    result = apply_values(source, wb_fmu, tmp_path / "applied")
    assert result.ok and result.fmu.name == "wbmodel.optimized.fmu"
    assert set(result.trajectories.per_output) == {"y"}  # every output of the FMU is compared
    assert read_result_values(result.json) == {"k": 2.5, "mode": 3, "flip": True}
    # a result of another model: the refusal says whose values they are
    other = tmp_path / "pump.optimized.json"
    other.write_text(json.dumps({"source": {"fmu": "/x/pump.fmu", "model_name": "pump", "guid": "{abc}"},
                                 "values": {"mdotInit": 2.0}}))
    with pytest.raises(ValueValidationError, match=r"^pump.optimized.json holds values for model 'pump' \(pump.fmu\), "
                                                   r"not for 'wbmodel' \(wbmodel.fmu\): apply it to that FMU "
                                                   r"\(wbmodel.fmu: no variable named 'mdotInit'"):
        apply_values(other, wb_fmu, tmp_path / "other")


def test_apply_says_which_platforms_the_written_fmu_leaves_behind(wb_fmu: Path, tmp_path: Path) -> None:
    """Every FMU from a real tool seen so far ships binaries for several platforms; the written FMU runs on
    the one it was written on, and the CLI says so instead of leaving the user to find out on Windows."""
    import shutil
    import zipfile

    from fmi_optimizer.writeback.write import apply_values

    several = tmp_path / "several.fmu"
    shutil.copy(wb_fmu, several)
    with zipfile.ZipFile(several, "a") as z:
        z.writestr("binaries/win64/wbmodel.dll", b"MZ")  # never loaded: only its folder is read
        z.writestr("binaries/darwin64/wbmodel.dylib", b"\xcf\xfa")
    source = tmp_path / "result.json"
    source.write_text(json.dumps({"k": 2.5}))
    result = apply_values(source, several, tmp_path / "applied")
    assert result.ok and json.loads(result.json.read_text())["written_fmu"]["not_on"] == ["darwin64", "win64"]
    note = result.platform_note("several.fmu")
    assert note is not None and "runs on linux64 only" in note and "darwin64, win64" in note
    assert "fmi-optimizer apply several.optimized.json several.fmu" in note
    res = subprocess.run([sys.executable, "-m", "fmi_optimizer.cli.main", "apply", str(source), str(several), "-o",
                          str(tmp_path / "cli")], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and "runs on linux64 only" in res.stderr, res.stderr
    plain = apply_values(source, wb_fmu, tmp_path / "plain")
    assert plain.platform_note("wbmodel.fmu") is None and json.loads(plain.json.read_text())["written_fmu"]["not_on"] == []


def test_an_independent_importer_sees_the_new_values(wb_fmu: Path, tmp_path: Path) -> None:
    """libcosim (FMI Library based, not fmpy) runs the written FMU with default settings."""
    written = write_optimized_fmu(wb_fmu, WB_VALUES, tmp_path / "wb.optimized.fmu")
    rows = tmp_path / "rows.json"
    subprocess.run([sys.executable, str(RUN_LIBCOSIM), str(written), "y,x", "0.01", "200",
                    str(rows)], check=True, capture_output=True, timeout=120)
    libcosim = np.asarray(json.loads(rows.read_text()))
    reference = _sim(wb_fmu, output=["y", "x"], start_values=WB_START, stop_time=2.0, output_interval=0.01)
    default = _sim(wb_fmu, output=["y"], stop_time=2.0, output_interval=0.01)
    assert libcosim.shape == (200, 2)
    assert _rel(libcosim[:, 0], reference["y"][1:]) < 1e-12 and _rel(libcosim[:, 1], reference["x"][1:]) < 1e-12
    assert _rel(libcosim[:, 0], default["y"][1:]) > 0.05


def _non_default_values(fmu: Path) -> dict[str, Value]:
    """A different value for every tunable parameter of a twin (inside its bounds)."""
    values: dict[str, Value] = {}
    for v in read_model_description(str(fmu)).modelVariables:
        if v.causality != "parameter" or v.variability not in ("fixed", "tunable") or v.start is None:
            continue
        if v.type in ("Real", "Float64"):
            start, top = float(v.start), float(v.max) if v.max is not None else float(v.start) * 1.2 + 1.0
            values[v.name] = start + 0.3 * (top - start) if top > start else start * 0.9
        elif v.type in ("Integer", "Int32"):
            start = int(v.start)
            values[v.name] = start + 1 if v.max is None or start + 1 <= int(v.max) else start - 1
        elif v.type == "Enumeration":
            values[v.name] = next(int(i.value) for i in v.declaredType.items if int(i.value) != int(v.start))
        elif v.type == "Boolean":
            values[v.name] = v.start not in ("true", "1", True)
    return values


@pytest.mark.parametrize("name", ["servo_pid_fmi3", "building_zone"])
@pytest.mark.slow
def test_write_back_on_more_sample_twins(name: str, runnable_twin: Callable[[str], Path],
                                        tmp_path: Path) -> None:
    """FMI 3.0 (servo_pid_fmi3) and a twin that reads its own resources/ files (building_zone)."""
    from fmi_optimizer.writeback.write import check_settings_for

    fmu = runnable_twin(name)
    before = sha256(fmu)
    values = _non_default_values(fmu)
    outputs = [v.name for v in read_model_description(str(fmu)).modelVariables if v.causality == "output"]
    assert len(values) >= 5 and outputs
    result = write_back(fmu, values, tmp_path / "out", check=check_settings_for(fmu, outputs))
    assert result.ok and result.trajectories.max_rel_diff <= 1e-9
    assert validate_fmu(str(result.fmu)) == [] and sha256(fmu) == before
    new, default = _sim(result.fmu, output=outputs), _sim(fmu, output=outputs)
    assert max(_rel(new[o], default[o]) for o in outputs) > 1e-3  # the values matter


def test_fmi2_states_derivatives_and_dependencies_are_remapped(wb_fmu: Path, tmp_path: Path) -> None:
    """A state with its derivative and output dependencies keep pointing at the right variables."""
    def edit(xml: str) -> str:
        xml = xml.replace("""<ScalarVariable name="k_eff" """, """<ScalarVariable name="der(x)" valueReference="11"
      causality="local" variability="continuous" initial="calculated"><Real derivative="9"/></ScalarVariable>
    <ScalarVariable name="k_eff" """)
        return xml.replace('<Unknown index="8"/>\n    </Outputs>', '<Unknown index="8" dependencies="7 9"/>\n'
                           '    </Outputs>\n    <Derivatives><Unknown index="11" dependencies="9"/></Derivatives>'
                           ).replace('<Unknown index="11"/>', '<Unknown index="9"/><Unknown index="11"/><Unknown index="12"/>')
    variant = _variant(wb_fmu, tmp_path / "states.fmu", edit)
    assert validate_fmu(str(variant)) == []
    written = write_optimized_fmu(variant, {"k": 2.0}, tmp_path / "states.optimized.fmu")
    assert validate_fmu(str(written)) == []
    md = read_model_description(str(written))
    by_name = {v.name: v for v in md.modelVariables}
    assert by_name["der(x)"].derivative is by_name["x"]
    assert [d.variable.name for d in md.derivatives] == ["der(x)"]
    assert [d.name for d in md.derivatives[0].dependencies] == ["x"]
    (y,) = md.outputs
    assert y.variable.name == "y" and [d.name for d in y.dependencies] == ["u", "x"]
    assert [u.variable.name for u in md.initialUnknowns] == ["y", "x", "der(x)", "k_eff"]
