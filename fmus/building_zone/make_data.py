"""Generate the SYNTHETIC data of the building_zone twin (run once; outputs are committed).

1. Weather and schedules for 56 days from 1 March (hourly): outdoor temperature (seasonal trend,
   daily cycle, AR(1) synoptic noise), solar irradiance (clear-sky sun elevation at 48 N times a
   daily cloudiness), occupancy (office hours on weekdays).
2. An HVAC thermal-power command recorded from a thermostat (heating 21/17 degC occupied/unoccupied,
   cooling 25 degC when occupied, 6 kW heating / 4 kW cooling) run in closed loop on the TRUE
   parameters below, held constant over each hour: this is the logged command, an input signal.
3. The "measured" zone temperature: the FMU itself simulated with the TRUE parameters and these
   inputs, plus sensor artefacts: a constant bias, white noise, 0.1 K quantisation and three gaps.

Usage: ``python fmus/building_zone/make_data.py`` (needs cmake and a C compiler).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RES = HERE / "resources"
sys.path.insert(0, str(HERE.parent))

import build  # noqa: E402

TRUE = {
    "R_wall": 0.0125,
    "R_win": 0.02,
    "R_im": 0.0015,
    "C_air": 1.2e6,
    "C_mass": 3.5e7,
    "A_sol": 6.5,
    "ACH": 0.8,
    "eta_hvac": 0.85,
    "sensor_bias": 0.4,
}
NOISE_K = 0.15
GAPS_H = [(200, 212), (610, 640), (1001, 1007)]  # [start, end) hours without measurements
DAYS = 56
SEED = 20260301


def weather_and_schedule(rng: np.random.Generator) -> dict[str, np.ndarray]:
    hours = np.arange(DAYS * 24 + 1, dtype=float)
    day = hours / 24.0
    hod = hours % 24.0
    synoptic = np.zeros_like(hours)
    phi = np.exp(-1.0 / 72.0)
    for k in range(1, len(hours)):
        synoptic[k] = phi * synoptic[k - 1] + np.sqrt(1 - phi**2) * 3.0 * rng.standard_normal()
    t_out = 5.0 + 0.12 * day + 4.0 * np.cos(2 * np.pi * (hod - 15.0) / 24.0) + synoptic
    doy = 60 + day
    decl = np.radians(23.45) * np.sin(2 * np.pi * (284 + doy) / 365.0)
    lat = np.radians(48.0)
    hour_angle = np.radians(15.0 * (hod - 12.0))
    sin_elev = np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(hour_angle)
    cloud = np.repeat(rng.uniform(0.25, 1.0, DAYS + 1), 24)[: len(hours)]
    i_sol = np.clip(sin_elev, 0.0, None) * 850.0 * cloud
    weekday = (np.floor(day).astype(int) % 7) < 5
    occ = np.where(weekday & (hod >= 8) & (hod < 18), 1.0, 0.05)
    occ = np.where(weekday & (hod >= 12) & (hod < 13), 0.6, occ)
    return {"time_s": hours * 3600.0, "T_out_C": t_out, "I_sol_W_m2": i_sol, "occupancy": occ}


def thermostat_command(sig: dict[str, np.ndarray]) -> np.ndarray:
    """Closed-loop HVAC command on the true zone (explicit Euler, 60 s), averaged per hour."""
    p = TRUE
    g_inf = 1206.0 * 300.0 * p["ACH"] / 3600.0
    ta = tm = 20.0
    cmd = np.zeros(len(sig["time_s"]))
    for k in range(len(cmd) - 1):
        occ = sig["occupancy"][k]
        heat_set = 21.0 if occ > 0.5 else 17.0
        acc = 0.0
        for s in range(60):
            f = s / 60.0
            to = sig["T_out_C"][k] * (1 - f) + sig["T_out_C"][k + 1] * f
            isol = sig["I_sol_W_m2"][k] * (1 - f) + sig["I_sol_W_m2"][k + 1] * f
            u = 0.0
            if ta < heat_set:
                u = min(6000.0, 2000.0 * (heat_set - ta))
            elif occ > 0.5 and ta > 25.0:
                u = -min(4000.0, 2000.0 * (ta - 25.0))
            qs = p["A_sol"] * isol
            qi = 200.0 + 1500.0 * occ
            q_im = (tm - ta) / p["R_im"]
            dta = (q_im + (to - ta) * (1 / p["R_win"] + g_inf) + 0.4 * qs + qi + p["eta_hvac"] * u) / p[
                "C_air"
            ]
            dtm = (-q_im + (to - tm) / p["R_wall"] + 0.6 * qs) / p["C_mass"]
            ta += 60.0 * dta
            tm += 60.0 * dtm
            acc += u
        cmd[k] = round(acc / 60.0, 1)
    return cmd


def simulate_truth() -> tuple[np.ndarray, np.ndarray]:
    from fmpy import simulate_fmu

    with tempfile.TemporaryDirectory() as tmp:
        fmu = build.build_sample("building_zone", Path(tmp))
        unzip = build.compile_fmu(fmu, Path(tmp) / "bz")
        start = dict(TRUE)
        start["sensor_bias"] = 0.0
        res = simulate_fmu(str(unzip), start_values=start, output_interval=3600.0, output=["T_air"])
    return res["time"], res["T_air"] - 273.15


def main() -> None:
    rng = np.random.default_rng(SEED)
    sig = weather_and_schedule(rng)
    sig["P_hvac_W"] = thermostat_command(sig)
    RES.mkdir(exist_ok=True)
    rows = zip(*(sig[c] for c in ("time_s", "T_out_C", "I_sol_W_m2", "occupancy", "P_hvac_W")), strict=True)
    with open(RES / "inputs.csv", "w") as f:
        f.write("time_s,T_out_C,I_sol_W_m2,occupancy,P_hvac_W\n")
        for t, to, isol, occ, ph in rows:
            f.write(f"{t:.0f},{to:.2f},{isol:.1f},{occ:.2f},{ph:.1f}\n")
    (RES / "measured.csv").write_text("time_s,T_zone_C\n")  # the FMU needs the file to exist
    t, t_air = simulate_truth()
    meas = t_air + TRUE["sensor_bias"] + NOISE_K * rng.standard_normal(len(t_air))
    meas = np.round(meas, 1)
    with open(RES / "measured.csv", "w") as f:
        f.write("time_s,T_zone_C\n")
        for k, (tt, v) in enumerate(zip(t, meas, strict=True)):
            hour = int(round(tt / 3600.0))
            gap = any(a <= hour < b for a, b in GAPS_H)
            f.write(f"{tt:.0f},{'' if gap else f'{v:.1f}'}\n")
            del k
    info = {
        "synthetic": True,
        "true_parameters": TRUE,
        "noise_std_K": NOISE_K,
        "quantisation_K": 0.1,
        "gaps_hours": GAPS_H,
        "seed": SEED,
        "days": DAYS,
        "generator": "fmus/building_zone/make_data.py",
    }
    (HERE / "true_parameters.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"wrote {RES / 'inputs.csv'}, {RES / 'measured.csv'}, {HERE / 'true_parameters.json'}")


if __name__ == "__main__":
    main()
