/* FMI 3.0 co-simulation version of tests/data/writeback_model (same equations):
 * x' = -k*n*x + bias, bias = 0.5*(mode-1) + (flip ? -0.3 : 0.3) + u;  y = x + 0.1*strlen(label).
 * Only the functions a co-simulation run calls are real; the rest are in stubs.c. */
#include <stdlib.h>
#include <string.h>
#include "fmi3Functions.h"

typedef struct {
    double time, k, x0, u, x;
    int n, flip;
    long long mode;
    char label[64];
} Model;

static void defaults(Model *m) {
    m->time = 0; m->k = 1.0; m->x0 = 1.0; m->u = 0.0; m->x = 1.0;
    m->n = 1; m->mode = 1; m->flip = 0;
    strcpy(m->label, "ab");
}
static double y_of(const Model *m) { return m->x + 0.1 * (double)strlen(m->label); }

const char *fmi3GetVersion(void) { return fmi3Version; }
fmi3Status fmi3SetDebugLogging(fmi3Instance c, fmi3Boolean on, size_t n, const fmi3String cat[]) { return fmi3OK; }

fmi3Instance fmi3InstantiateCoSimulation(fmi3String name, fmi3String token, fmi3String res, fmi3Boolean visible,
    fmi3Boolean logging, fmi3Boolean eventMode, fmi3Boolean early, const fmi3ValueReference req[], size_t nreq,
    fmi3InstanceEnvironment env, fmi3LogMessageCallback log, fmi3IntermediateUpdateCallback upd) {
    if (strcmp(token, "{2c1d8e0a-55b3-4f9e-8d21-6a0b7c3e9f42}") != 0) return NULL;
    Model *m = (Model *)calloc(1, sizeof(Model));
    defaults(m);
    return m;
}
void fmi3FreeInstance(fmi3Instance c) { free(c); }
fmi3Status fmi3EnterInitializationMode(fmi3Instance c, fmi3Boolean td, fmi3Float64 tol, fmi3Float64 t0,
                                       fmi3Boolean sd, fmi3Float64 t1) {
    ((Model *)c)->time = t0; return fmi3OK;
}
fmi3Status fmi3ExitInitializationMode(fmi3Instance c) { Model *m = (Model *)c; m->x = m->x0; return fmi3OK; }
fmi3Status fmi3Terminate(fmi3Instance c) { return fmi3OK; }
fmi3Status fmi3Reset(fmi3Instance c) { defaults((Model *)c); return fmi3OK; }

fmi3Status fmi3GetFloat64(fmi3Instance c, const fmi3ValueReference vr[], size_t nvr, fmi3Float64 v[], size_t nv) {
    Model *m = (Model *)c;
    for (size_t i = 0; i < nvr; i++) {
        switch (vr[i]) {
            case 0: v[i] = m->time; break;
            case 1: v[i] = m->k; break;
            case 2: v[i] = m->x0; break;
            case 6: v[i] = m->u; break;
            case 7: v[i] = y_of(m); break;
            case 8: v[i] = m->x; break;
            case 10: v[i] = m->k * m->n; break;
            default: return fmi3Error;
        }
    }
    return fmi3OK;
}
fmi3Status fmi3SetFloat64(fmi3Instance c, const fmi3ValueReference vr[], size_t nvr, const fmi3Float64 v[], size_t nv) {
    Model *m = (Model *)c;
    for (size_t i = 0; i < nvr; i++) {
        switch (vr[i]) {
            case 1: m->k = v[i]; break;
            case 2: m->x0 = v[i]; break;
            case 6: m->u = v[i]; break;
            default: return fmi3Error;
        }
    }
    return fmi3OK;
}
fmi3Status fmi3GetInt32(fmi3Instance c, const fmi3ValueReference vr[], size_t nvr, fmi3Int32 v[], size_t nv) {
    for (size_t i = 0; i < nvr; i++) { if (vr[i] != 3) return fmi3Error; v[i] = ((Model *)c)->n; }
    return fmi3OK;
}
fmi3Status fmi3SetInt32(fmi3Instance c, const fmi3ValueReference vr[], size_t nvr, const fmi3Int32 v[], size_t nv) {
    for (size_t i = 0; i < nvr; i++) { if (vr[i] != 3) return fmi3Error; ((Model *)c)->n = v[i]; }
    return fmi3OK;
}
fmi3Status fmi3GetInt64(fmi3Instance c, const fmi3ValueReference vr[], size_t nvr, fmi3Int64 v[], size_t nv) {
    for (size_t i = 0; i < nvr; i++) { if (vr[i] != 4) return fmi3Error; v[i] = ((Model *)c)->mode; }
    return fmi3OK;
}
fmi3Status fmi3SetInt64(fmi3Instance c, const fmi3ValueReference vr[], size_t nvr, const fmi3Int64 v[], size_t nv) {
    for (size_t i = 0; i < nvr; i++) { if (vr[i] != 4) return fmi3Error; ((Model *)c)->mode = v[i]; }
    return fmi3OK;
}
fmi3Status fmi3GetBoolean(fmi3Instance c, const fmi3ValueReference vr[], size_t nvr, fmi3Boolean v[], size_t nv) {
    for (size_t i = 0; i < nvr; i++) { if (vr[i] != 5) return fmi3Error; v[i] = ((Model *)c)->flip != 0; }
    return fmi3OK;
}
fmi3Status fmi3SetBoolean(fmi3Instance c, const fmi3ValueReference vr[], size_t nvr, const fmi3Boolean v[], size_t nv) {
    for (size_t i = 0; i < nvr; i++) { if (vr[i] != 5) return fmi3Error; ((Model *)c)->flip = v[i] ? 1 : 0; }
    return fmi3OK;
}
fmi3Status fmi3GetString(fmi3Instance c, const fmi3ValueReference vr[], size_t nvr, fmi3String v[], size_t nv) {
    for (size_t i = 0; i < nvr; i++) { if (vr[i] != 9) return fmi3Error; v[i] = ((Model *)c)->label; }
    return fmi3OK;
}
fmi3Status fmi3SetString(fmi3Instance c, const fmi3ValueReference vr[], size_t nvr, const fmi3String v[], size_t nv) {
    Model *m = (Model *)c;
    for (size_t i = 0; i < nvr; i++) {
        if (vr[i] != 9 || strlen(v[i]) >= sizeof(m->label)) return fmi3Error;
        strcpy(m->label, v[i]);
    }
    return fmi3OK;
}
fmi3Status fmi3DoStep(fmi3Instance c, fmi3Float64 t, fmi3Float64 h, fmi3Boolean noSet, fmi3Boolean *eventNeeded,
                      fmi3Boolean *terminate, fmi3Boolean *early, fmi3Float64 *last) {
    Model *m = (Model *)c;
    const double dt = 1e-3;
    double end = t + h;
    while (m->time < end - 1e-12) {
        double step = (end - m->time < dt) ? end - m->time : dt;
        double bias = 0.5 * (double)(m->mode - 1) + (m->flip ? -0.3 : 0.3) + m->u;
        m->x += step * (-m->k * m->n * m->x + bias);
        m->time += step;
    }
    m->time = end;
    *eventNeeded = fmi3False; *terminate = fmi3False; *early = fmi3False; *last = end;
    return fmi3OK;
}
