/* FMI 2.0 co-simulation test twin whose variables carry the names tool-exported FMUs use (room.T, A[1],
 * wall.lambda, heat.in, der(room.T)) and every parameter type. Values live in tables indexed by value reference.
 * room.T' = -room.k * (room.T - Tamb), Tamb = room.T0 + 5*ctrl.on + 2*(ctrl.mode-1) + A[1] + A[2] + wall.lambda
 * y[1] = A[1]*room.T/300, y[2] = A[2]*n*gain.N + strlen(ctrl.label), heat.in = room.k*(room.T - room.T0),
 * alarm.on = room.T > 300, count.n = floor(time). Explicit Euler, internal step 1e-3. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "fmi2Functions.h"

#define NV 18
typedef struct {
    double r[NV];
    int i[NV];
    char s[64];
} Model;

static void defaults(Model *m) {
    memset(m, 0, sizeof(*m));
    m->r[1] = 293.15; m->r[2] = 0.5; m->r[3] = 1.0; m->r[4] = -2.0; m->r[5] = 0.0;
    m->i[10] = 3; m->i[11] = 2; m->i[12] = 1; m->i[13] = 1;
    strcpy(m->s, "say \"hi\"");
    m->r[6] = m->r[1];
}
static double tamb(const Model *m) {
    return m->r[1] + 5.0 * m->i[13] + 2.0 * (m->i[12] - 1) + m->r[3] + m->r[4] + m->r[5];
}
static void outputs(Model *m) {
    m->r[7] = m->r[3] * m->r[6] / 300.0;
    m->r[8] = m->r[4] * m->i[10] * m->i[11] + (double)strlen(m->s);
    m->r[9] = m->r[2] * (m->r[6] - m->r[1]);
    m->r[17] = -m->r[2] * (m->r[6] - tamb(m));
    m->i[14] = m->r[6] > 300.0;
    m->i[16] = (int)floor(m->r[0] + 1e-9);
}
static int settable(fmi2ValueReference vr) { return (vr >= 1 && vr <= 5) || (vr >= 10 && vr <= 13); }

const char *fmi2GetTypesPlatform(void) { return fmi2TypesPlatform; }
const char *fmi2GetVersion(void) { return fmi2Version; }
fmi2Status fmi2SetDebugLogging(fmi2Component c, fmi2Boolean on, size_t n, const fmi2String cat[]) { return fmi2OK; }
fmi2Component fmi2Instantiate(fmi2String name, fmi2Type type, fmi2String guid, fmi2String res,
                              const fmi2CallbackFunctions *cb, fmi2Boolean visible, fmi2Boolean logging) {
    if (strcmp(guid, "{5b0c2a51-9f0e-4d53-8a7e-2e61d8c4f0a3}") != 0) return NULL;
    Model *m = (Model *)calloc(1, sizeof(Model));
    defaults(m);
    return m;
}
void fmi2FreeInstance(fmi2Component c) { free(c); }
fmi2Status fmi2SetupExperiment(fmi2Component c, fmi2Boolean td, fmi2Real tol, fmi2Real t0, fmi2Boolean sd, fmi2Real t1) {
    ((Model *)c)->r[0] = t0; return fmi2OK;
}
fmi2Status fmi2EnterInitializationMode(fmi2Component c) { return fmi2OK; }
fmi2Status fmi2ExitInitializationMode(fmi2Component c) {
    Model *m = (Model *)c; m->r[6] = m->r[1]; outputs(m); return fmi2OK;
}
fmi2Status fmi2Terminate(fmi2Component c) { return fmi2OK; }
fmi2Status fmi2Reset(fmi2Component c) { defaults((Model *)c); return fmi2OK; }

fmi2Status fmi2GetReal(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, fmi2Real v[]) {
    Model *m = (Model *)c; outputs(m);
    for (size_t k = 0; k < nvr; k++) { if (vr[k] >= 10 && vr[k] != 17) return fmi2Error; v[k] = m->r[vr[k]]; }
    return fmi2OK;
}
fmi2Status fmi2GetInteger(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, fmi2Integer v[]) {
    Model *m = (Model *)c; outputs(m);
    for (size_t k = 0; k < nvr; k++) { if (vr[k] != 10 && vr[k] != 11 && vr[k] != 12 && vr[k] != 16) return fmi2Error; v[k] = m->i[vr[k]]; }
    return fmi2OK;
}
fmi2Status fmi2GetBoolean(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, fmi2Boolean v[]) {
    Model *m = (Model *)c; outputs(m);
    for (size_t k = 0; k < nvr; k++) { if (vr[k] != 13 && vr[k] != 14) return fmi2Error; v[k] = m->i[vr[k]]; }
    return fmi2OK;
}
fmi2Status fmi2GetString(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, fmi2String v[]) {
    Model *m = (Model *)c;
    for (size_t k = 0; k < nvr; k++) { if (vr[k] != 15) return fmi2Error; v[k] = m->s; }
    return fmi2OK;
}
fmi2Status fmi2SetReal(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, const fmi2Real v[]) {
    Model *m = (Model *)c;
    for (size_t k = 0; k < nvr; k++) { if (!settable(vr[k]) || vr[k] >= 10) return fmi2Error; m->r[vr[k]] = v[k]; }
    return fmi2OK;
}
fmi2Status fmi2SetInteger(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, const fmi2Integer v[]) {
    Model *m = (Model *)c;
    for (size_t k = 0; k < nvr; k++) { if (vr[k] < 10 || vr[k] > 12) return fmi2Error; m->i[vr[k]] = v[k]; }
    return fmi2OK;
}
fmi2Status fmi2SetBoolean(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, const fmi2Boolean v[]) {
    Model *m = (Model *)c;
    for (size_t k = 0; k < nvr; k++) { if (vr[k] != 13) return fmi2Error; m->i[13] = v[k] != fmi2False; }
    return fmi2OK;
}
fmi2Status fmi2SetString(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, const fmi2String v[]) {
    Model *m = (Model *)c;
    for (size_t k = 0; k < nvr; k++) {
        if (vr[k] != 15 || strlen(v[k]) >= sizeof(m->s)) return fmi2Error;
        strcpy(m->s, v[k]);
    }
    return fmi2OK;
}
fmi2Status fmi2DoStep(fmi2Component c, fmi2Real t, fmi2Real h, fmi2Boolean noSet) {
    Model *m = (Model *)c;
    const double dt = 1e-3;
    double end = t + h;
    while (m->r[0] < end - 1e-12) {
        double step = (end - m->r[0] < dt) ? end - m->r[0] : dt;
        m->r[6] += step * (-m->r[2] * (m->r[6] - tamb(m)));
        m->r[0] += step;
    }
    m->r[0] = end;
    outputs(m);
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
