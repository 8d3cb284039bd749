/* FMI 3.0 co-simulation test twin with FMI 3 arrays: parameter A (2x2, row-major) and output y (2).
 * x' = -k*x, x(0) = 1;  y = A * [x, 1].  Explicit Euler, internal step 1e-3.
 * The FMI 3 functions it does not need exist and return fmi3Error (3). */
#include <stdlib.h>
#include <string.h>
#include "fmi3Functions.h"

typedef struct { double time, k, A[4], x; } Model;

static void defaults(Model *m) {
    m->time = 0; m->k = 1.0; m->x = 1.0;
    m->A[0] = 1; m->A[1] = 0; m->A[2] = 0; m->A[3] = 2;
}

const char *fmi3GetVersion(void) { return fmi3Version; }
fmi3Status fmi3SetDebugLogging(fmi3Instance c, fmi3Boolean on, size_t n, const fmi3String cat[]) { return fmi3OK; }
fmi3Instance fmi3InstantiateCoSimulation(fmi3String name, fmi3String token, fmi3String res, fmi3Boolean visible,
    fmi3Boolean logging, fmi3Boolean eventMode, fmi3Boolean early, const fmi3ValueReference req[], size_t nreq,
    fmi3InstanceEnvironment env, fmi3LogMessageCallback log, fmi3IntermediateUpdateCallback upd) {
    if (strcmp(token, "{9d3e7c10-2b4a-4e61-b8f5-0c7a6d2e1f93}") != 0) return NULL;
    Model *m = (Model *)calloc(1, sizeof(Model));
    defaults(m);
    return m;
}
void fmi3FreeInstance(fmi3Instance c) { free(c); }
fmi3Status fmi3EnterInitializationMode(fmi3Instance c, fmi3Boolean td, fmi3Float64 tol, fmi3Float64 t0,
                                       fmi3Boolean sd, fmi3Float64 t1) { ((Model *)c)->time = t0; return fmi3OK; }
fmi3Status fmi3ExitInitializationMode(fmi3Instance c) { ((Model *)c)->x = 1.0; return fmi3OK; }
fmi3Status fmi3Terminate(fmi3Instance c) { return fmi3OK; }
fmi3Status fmi3Reset(fmi3Instance c) { defaults((Model *)c); return fmi3OK; }

fmi3Status fmi3GetFloat64(fmi3Instance c, const fmi3ValueReference vr[], size_t nvr, fmi3Float64 v[], size_t nv) {
    Model *m = (Model *)c;
    size_t j = 0;
    for (size_t i = 0; i < nvr; i++) {
        switch (vr[i]) {
            case 0: v[j++] = m->time; break;
            case 1: v[j++] = m->k; break;
            case 2: for (int a = 0; a < 4; a++) v[j++] = m->A[a]; break;
            case 3: v[j++] = m->x; break;
            case 4: v[j++] = m->A[0] * m->x + m->A[1]; v[j++] = m->A[2] * m->x + m->A[3]; break;
            default: return fmi3Error;
        }
    }
    return j == nv ? fmi3OK : fmi3Error;
}
fmi3Status fmi3SetFloat64(fmi3Instance c, const fmi3ValueReference vr[], size_t nvr, const fmi3Float64 v[], size_t nv) {
    Model *m = (Model *)c;
    size_t j = 0;
    for (size_t i = 0; i < nvr; i++) {
        switch (vr[i]) {
            case 1: m->k = v[j++]; break;
            case 2: for (int a = 0; a < 4; a++) m->A[a] = v[j++]; break;
            default: return fmi3Error;
        }
    }
    return j == nv ? fmi3OK : fmi3Error;
}
fmi3Status fmi3DoStep(fmi3Instance c, fmi3Float64 t, fmi3Float64 h, fmi3Boolean noSet, fmi3Boolean *eventNeeded,
                      fmi3Boolean *terminate, fmi3Boolean *early, fmi3Float64 *last) {
    Model *m = (Model *)c;
    const double dt = 1e-3;
    double end = t + h;
    while (m->time < end - 1e-12) {
        double step = (end - m->time < dt) ? end - m->time : dt;
        m->x += step * (-m->k * m->x);
        m->time += step;
    }
    m->time = end;
    *eventNeeded = fmi3False; *terminate = fmi3False; *early = fmi3False; *last = end;
    return fmi3OK;
}
