/* Tiny FMI 2.0 co-simulation model for the write-back tests.
 * x' = -k*n*x + bias, bias = 0.5*(mode-1) + (flip ? -0.3 : 0.3) + u;  y = x + 0.1*strlen(label).
 * Every parameter type (Real, Integer, Enumeration, Boolean, String) changes y, so a write-back that
 * loses one of them shows up in the trajectory. Integrated with explicit Euler, internal step 1e-3.
 * Built with IMPORTER_DEPENDENT (tests/twins/importer_dependent), y also adds 0.01 when the importer
 * leaves the stop time undefined in fmi2SetupExperiment: two importers then disagree on one FMU. */
#include <stdlib.h>
#include <string.h>
#include "fmi2Functions.h"

typedef struct {
    double time, k, x0, u, x, offset;
    int n, mode, flip;
    char label[64];
    const fmi2CallbackFunctions *cb;
    const char *name;
} Model;

static void defaults(Model *m) {
    m->time = 0; m->k = 1.0; m->x0 = 1.0; m->u = 0.0; m->x = 1.0;
    m->n = 1; m->mode = 1; m->flip = 0;
    strcpy(m->label, "ab");
}
static double y_of(const Model *m) { return m->x + 0.1 * (double)strlen(m->label) + m->offset; }
static double deriv(const Model *m) {
    double bias = 0.5 * (m->mode - 1) + (m->flip ? -0.3 : 0.3) + m->u;
    return -m->k * m->n * m->x + bias;
}

const char *fmi2GetTypesPlatform(void) { return fmi2TypesPlatform; }
const char *fmi2GetVersion(void) { return fmi2Version; }
fmi2Status fmi2SetDebugLogging(fmi2Component c, fmi2Boolean on, size_t n, const fmi2String cat[]) { return fmi2OK; }

fmi2Component fmi2Instantiate(fmi2String name, fmi2Type type, fmi2String guid, fmi2String res,
                              const fmi2CallbackFunctions *cb, fmi2Boolean visible, fmi2Boolean logging) {
    if (strcmp(guid, "{7e6f1a52-4c1d-4b8e-9a0b-3f2d1c0e5a11}") != 0) return NULL;
    Model *m = (Model *)calloc(1, sizeof(Model));
    defaults(m);
    m->cb = cb; m->name = name;
    return m;
}
void fmi2FreeInstance(fmi2Component c) { free(c); }
fmi2Status fmi2SetupExperiment(fmi2Component c, fmi2Boolean td, fmi2Real tol, fmi2Real t0, fmi2Boolean sd, fmi2Real t1) {
    ((Model *)c)->time = t0;
#ifdef IMPORTER_DEPENDENT
    ((Model *)c)->offset = sd ? 0.0 : 0.01;
#endif
    return fmi2OK;
}
fmi2Status fmi2EnterInitializationMode(fmi2Component c) { return fmi2OK; }
fmi2Status fmi2ExitInitializationMode(fmi2Component c) { Model *m = (Model *)c; m->x = m->x0; return fmi2OK; }
fmi2Status fmi2Terminate(fmi2Component c) { return fmi2OK; }
fmi2Status fmi2Reset(fmi2Component c) { defaults((Model *)c); return fmi2OK; }

fmi2Status fmi2GetReal(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, fmi2Real value[]) {
    Model *m = (Model *)c;
    for (size_t i = 0; i < nvr; i++) {
        switch (vr[i]) {
            case 0: value[i] = m->time; break;
            case 1: value[i] = m->k; break;
            case 2: value[i] = m->x0; break;
            case 6: value[i] = m->u; break;
            case 7: value[i] = y_of(m); break;
            case 8: value[i] = m->x; break;
            case 10: value[i] = m->k * m->n; break;
            default: return fmi2Error;
        }
    }
    return fmi2OK;
}
fmi2Status fmi2GetInteger(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, fmi2Integer value[]) {
    Model *m = (Model *)c;
    for (size_t i = 0; i < nvr; i++) {
        if (vr[i] == 3) value[i] = m->n; else if (vr[i] == 4) value[i] = m->mode; else return fmi2Error;
    }
    return fmi2OK;
}
fmi2Status fmi2GetBoolean(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, fmi2Boolean value[]) {
    Model *m = (Model *)c;
    for (size_t i = 0; i < nvr; i++) { if (vr[i] == 5) value[i] = m->flip; else return fmi2Error; }
    return fmi2OK;
}
fmi2Status fmi2GetString(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, fmi2String value[]) {
    Model *m = (Model *)c;
    for (size_t i = 0; i < nvr; i++) { if (vr[i] == 9) value[i] = m->label; else return fmi2Error; }
    return fmi2OK;
}
fmi2Status fmi2SetReal(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, const fmi2Real value[]) {
    Model *m = (Model *)c;
    for (size_t i = 0; i < nvr; i++) {
        switch (vr[i]) {
            case 1: m->k = value[i]; break;
            case 2: m->x0 = value[i]; break;
            case 6: m->u = value[i]; break;
            default: return fmi2Error;
        }
    }
    return fmi2OK;
}
fmi2Status fmi2SetInteger(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, const fmi2Integer value[]) {
    Model *m = (Model *)c;
    for (size_t i = 0; i < nvr; i++) {
        if (vr[i] == 3) m->n = value[i]; else if (vr[i] == 4) m->mode = value[i]; else return fmi2Error;
    }
    return fmi2OK;
}
fmi2Status fmi2SetBoolean(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, const fmi2Boolean value[]) {
    Model *m = (Model *)c;
    for (size_t i = 0; i < nvr; i++) { if (vr[i] == 5) m->flip = value[i] != fmi2False; else return fmi2Error; }
    return fmi2OK;
}
fmi2Status fmi2SetString(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, const fmi2String value[]) {
    Model *m = (Model *)c;
    for (size_t i = 0; i < nvr; i++) {
        if (vr[i] != 9 || strlen(value[i]) >= sizeof(m->label)) return fmi2Error;
        strcpy(m->label, value[i]);
    }
    return fmi2OK;
}

fmi2Status fmi2DoStep(fmi2Component c, fmi2Real t, fmi2Real h, fmi2Boolean noSet) {
    Model *m = (Model *)c;
    const double dt = 1e-3;
    double end = t + h;
    while (m->time < end - 1e-12) {
        double step = (end - m->time < dt) ? end - m->time : dt;
        m->x += step * deriv(m);
        m->time += step;
    }
    m->time = end;
    return fmi2OK;
}

/* Functions this model does not provide. */
fmi2Status fmi2GetFMUstate(fmi2Component c, fmi2FMUstate *s) { return fmi2Error; }
fmi2Status fmi2SetFMUstate(fmi2Component c, fmi2FMUstate s) { return fmi2Error; }
fmi2Status fmi2FreeFMUstate(fmi2Component c, fmi2FMUstate *s) { return fmi2Error; }
fmi2Status fmi2SerializedFMUstateSize(fmi2Component c, fmi2FMUstate s, size_t *n) { return fmi2Error; }
fmi2Status fmi2SerializeFMUstate(fmi2Component c, fmi2FMUstate s, fmi2Byte b[], size_t n) { return fmi2Error; }
fmi2Status fmi2DeSerializeFMUstate(fmi2Component c, const fmi2Byte b[], size_t n, fmi2FMUstate *s) { return fmi2Error; }
fmi2Status fmi2GetDirectionalDerivative(fmi2Component c, const fmi2ValueReference u[], size_t nu,
                                        const fmi2ValueReference k[], size_t nk, const fmi2Real dk[], fmi2Real du[]) {
    return fmi2Error;
}
fmi2Status fmi2SetRealInputDerivatives(fmi2Component c, const fmi2ValueReference vr[], size_t n,
                                       const fmi2Integer o[], const fmi2Real v[]) { return fmi2Error; }
fmi2Status fmi2GetRealOutputDerivatives(fmi2Component c, const fmi2ValueReference vr[], size_t n,
                                        const fmi2Integer o[], fmi2Real v[]) { return fmi2Error; }
fmi2Status fmi2CancelStep(fmi2Component c) { return fmi2Error; }
fmi2Status fmi2GetStatus(fmi2Component c, const fmi2StatusKind s, fmi2Status *v) { return fmi2Error; }
fmi2Status fmi2GetRealStatus(fmi2Component c, const fmi2StatusKind s, fmi2Real *v) { return fmi2Error; }
fmi2Status fmi2GetIntegerStatus(fmi2Component c, const fmi2StatusKind s, fmi2Integer *v) { return fmi2Error; }
fmi2Status fmi2GetBooleanStatus(fmi2Component c, const fmi2StatusKind s, fmi2Boolean *v) { return fmi2Error; }
fmi2Status fmi2GetStringStatus(fmi2Component c, const fmi2StatusKind s, fmi2String *v) { return fmi2Error; }
