"""Simulate an FMU with libcosim (DNV's FMI 2.0 co-simulation engine, an importer independent of fmpy).

Usage: python run_libcosim.py FMU OUTPUTS(comma-separated) STEP STEPS OUT.json
Writes the Real outputs after each step as a JSON list of rows. No start values are set: this is how
an importer with default settings sees the FMU. Run in a subprocess: libcosim logs to stdout.
"""

import json
import sys

from libcosimpy.CosimExecution import CosimExecution
from libcosimpy.CosimObserver import CosimObserver
from libcosimpy.CosimSlave import CosimLocalSlave

fmu, outputs, step, steps, out = sys.argv[1], sys.argv[2].split(","), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
execution = CosimExecution.from_step_size(step_size=round(step * 1e9))
index = execution.add_local_slave(CosimLocalSlave(fmu_path=fmu, instance_name="model"))
references = {v.name.decode(): v.reference for v in execution.slave_variables(index)}
observer = CosimObserver.create_last_value()
execution.add_observer(observer)
rows = []
for _ in range(steps):
    if not execution.step():
        sys.exit("libcosim step failed")
    rows.append(observer.last_real_values(index, [references[o] for o in outputs]))
with open(out, "w", encoding="utf-8") as f:
    json.dump(rows, f)
