/* strict - a test-only FMI 2.0 co-simulation twin that behaves like FMUs exported by real tools.
 *
 * x' = k (gain - x), x(0) = 0, integrated exactly per step; y = x + 0.1 * strlen(label);
 * count = number of steps; status = "high" when y > 1.5 else "low".
 *
 * What makes it strict (each of these broke write-back through fmpy's container runtime):
 *  - fmi2SetupExperiment resets every parameter to its default, like 20-sim FMUs: a value set before
 *    it is lost (importers that set start values after it, as fmpy does, are unaffected);
 *  - it calls the logger, allocateMemory and freeMemory callbacks without checking them (a NULL or
 *    bogus callback crashes it) and refuses memory that is not zeroed (FMI 2.0 asks for calloc);
 *  - it needs a resource location (it has no resources/ folder): NULL or a non-file URI fail
 *    instantiation;
 *  - it prints to stdout and stderr (with JSON-looking text) when instantiated and on every step.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmi2Functions.h"

#define VR_K 1
#define VR_GAIN 2
#define VR_LABEL 3
#define VR_Y 4
#define VR_COUNT 5
#define VR_STATUS 6
#define LABEL_MAX 256

typedef struct {
    const fmi2CallbackFunctions *cb;
    char name[128];
    double k, gain, x, time;
    char label[LABEL_MAX];
    int count;
    double *scratch; /* from allocateMemory: must be zeroed */
} Model;

static void defaults(Model *m) {
    m->k = 0.01;
    m->gain = 2.0;
    snprintf(m->label, LABEL_MAX, "%s", "ab");
}

static double y_of(const Model *m) { return m->x + 0.1 * (double)strlen(m->label); }

const char *fmi2GetTypesPlatform(void) { return fmi2TypesPlatform; }
const char *fmi2GetVersion(void) { return fmi2Version; }

fmi2Component fmi2Instantiate(fmi2String instanceName, fmi2Type fmuType, fmi2String guid, fmi2String resources,
                              const fmi2CallbackFunctions *cb, fmi2Boolean visible, fmi2Boolean loggingOn) {
    (void)fmuType; (void)visible; (void)loggingOn;
    printf("strict: instantiating %s {\"reply\": \"not json\"\n", instanceName);
    fprintf(stderr, "strict: a line on stderr\n");
    fflush(stdout);
    cb->logger(cb->componentEnvironment, instanceName, fmi2OK, "logAll", "strict: instantiate (%s)", guid);
    if (strcmp(guid, "{5f1c3e7a-2b9d-4c8e-a1f0-57a1c7000002}") != 0) {
        cb->logger(cb->componentEnvironment, instanceName, fmi2Error, "logAll", "strict: wrong GUID %s", guid);
        return NULL;
    }
    if (resources == NULL || strncmp(resources, "file:", 5) != 0) {
        cb->logger(cb->componentEnvironment, instanceName, fmi2Error, "logAll",
                   "strict: resource location is %s", resources ? resources : "NULL");
        return NULL;
    }
    Model *m = (Model *)cb->allocateMemory(1, sizeof(Model));
    double *scratch = (double *)cb->allocateMemory(512, sizeof(double));
    for (int i = 0; i < 512; i++) {
        if (scratch[i] != 0.0) {
            cb->logger(cb->componentEnvironment, instanceName, fmi2Error, "logAll", "strict: memory is not zeroed");
            return NULL;
        }
    }
    m->cb = cb;
    m->scratch = scratch;
    snprintf(m->name, sizeof m->name, "%s", instanceName);
    defaults(m);
    return m;
}

void fmi2FreeInstance(fmi2Component c) {
    Model *m = (Model *)c;
    if (!m) return;
    const fmi2CallbackFunctions *cb = m->cb;
    cb->freeMemory(m->scratch);
    cb->freeMemory(m);
}

fmi2Status fmi2SetDebugLogging(fmi2Component c, fmi2Boolean on, size_t n, const fmi2String cats[]) {
    (void)c; (void)on; (void)n; (void)cats;
    return fmi2OK;
}

fmi2Status fmi2SetupExperiment(fmi2Component c, fmi2Boolean tolDefined, fmi2Real tol, fmi2Real start,
                               fmi2Boolean stopDefined, fmi2Real stop) {
    Model *m = (Model *)c;
    (void)tolDefined; (void)tol; (void)stopDefined; (void)stop;
    defaults(m); /* like 20-sim: the parameters start over here */
    m->time = start;
    m->cb->logger(m->cb->componentEnvironment, m->name, fmi2OK, "logAll", "strict: setup experiment at %g", start);
    return fmi2OK;
}

fmi2Status fmi2EnterInitializationMode(fmi2Component c) { (void)c; return fmi2OK; }

fmi2Status fmi2ExitInitializationMode(fmi2Component c) {
    Model *m = (Model *)c;
    m->x = 0.0;
    m->count = 0;
    return fmi2OK;
}

fmi2Status fmi2Terminate(fmi2Component c) { (void)c; return fmi2OK; }

fmi2Status fmi2Reset(fmi2Component c) {
    Model *m = (Model *)c;
    defaults(m);
    m->x = 0.0;
    m->count = 0;
    m->time = 0.0;
    return fmi2OK;
}

fmi2Status fmi2GetReal(fmi2Component c, const fmi2ValueReference vr[], size_t n, fmi2Real v[]) {
    Model *m = (Model *)c;
    for (size_t i = 0; i < n; i++) {
        switch (vr[i]) {
        case 0: v[i] = m->time; break;
        case VR_K: v[i] = m->k; break;
        case VR_GAIN: v[i] = m->gain; break;
        case VR_Y: v[i] = y_of(m); break;
        default: return fmi2Error;
        }
    }
    return fmi2OK;
}

fmi2Status fmi2GetInteger(fmi2Component c, const fmi2ValueReference vr[], size_t n, fmi2Integer v[]) {
    Model *m = (Model *)c;
    for (size_t i = 0; i < n; i++) {
        if (vr[i] != VR_COUNT) return fmi2Error;
        v[i] = m->count;
    }
    return fmi2OK;
}

fmi2Status fmi2GetBoolean(fmi2Component c, const fmi2ValueReference vr[], size_t n, fmi2Boolean v[]) {
    (void)c; (void)vr; (void)v;
    return n ? fmi2Error : fmi2OK;
}

fmi2Status fmi2GetString(fmi2Component c, const fmi2ValueReference vr[], size_t n, fmi2String v[]) {
    Model *m = (Model *)c;
    for (size_t i = 0; i < n; i++) {
        if (vr[i] == VR_LABEL) v[i] = m->label;
        else if (vr[i] == VR_STATUS) v[i] = y_of(m) > 1.5 ? "high" : "low";
        else return fmi2Error;
    }
    return fmi2OK;
}

fmi2Status fmi2SetReal(fmi2Component c, const fmi2ValueReference vr[], size_t n, const fmi2Real v[]) {
    Model *m = (Model *)c;
    for (size_t i = 0; i < n; i++) {
        if (vr[i] == VR_K) m->k = v[i];
        else if (vr[i] == VR_GAIN) m->gain = v[i];
        else return fmi2Error;
    }
    return fmi2OK;
}

fmi2Status fmi2SetInteger(fmi2Component c, const fmi2ValueReference vr[], size_t n, const fmi2Integer v[]) {
    (void)c; (void)vr; (void)v;
    return n ? fmi2Error : fmi2OK;
}

fmi2Status fmi2SetBoolean(fmi2Component c, const fmi2ValueReference vr[], size_t n, const fmi2Boolean v[]) {
    (void)c; (void)vr; (void)v;
    return n ? fmi2Error : fmi2OK;
}

fmi2Status fmi2SetString(fmi2Component c, const fmi2ValueReference vr[], size_t n, const fmi2String v[]) {
    Model *m = (Model *)c;
    for (size_t i = 0; i < n; i++) {
        if (vr[i] != VR_LABEL || v[i] == NULL) return fmi2Error;
        snprintf(m->label, LABEL_MAX, "%s", v[i]);
    }
    return fmi2OK;
}

fmi2Status fmi2DoStep(fmi2Component c, fmi2Real t, fmi2Real h, fmi2Boolean noSetPrior) {
    Model *m = (Model *)c;
    (void)noSetPrior;
    m->x = m->gain + (m->x - m->gain) * exp(-m->k * h);
    m->time = t + h;
    m->count++;
    m->scratch[m->count % 512] = m->x; /* the memory from allocateMemory is really used */
    printf("strict: step %d at t=%g\n", m->count, m->time);
    fprintf(stderr, "strict: stderr step %d\n", m->count);
    return fmi2OK;
}

/* not supported: the rest of the FMI 2.0 co-simulation API */
fmi2Status fmi2GetFMUstate(fmi2Component c, fmi2FMUstate *s) { (void)c; (void)s; return fmi2Error; }
fmi2Status fmi2SetFMUstate(fmi2Component c, fmi2FMUstate s) { (void)c; (void)s; return fmi2Error; }
fmi2Status fmi2FreeFMUstate(fmi2Component c, fmi2FMUstate *s) { (void)c; (void)s; return fmi2Error; }
fmi2Status fmi2SerializedFMUstateSize(fmi2Component c, fmi2FMUstate s, size_t *n) { (void)c; (void)s; (void)n; return fmi2Error; }
fmi2Status fmi2SerializeFMUstate(fmi2Component c, fmi2FMUstate s, fmi2Byte b[], size_t n) { (void)c; (void)s; (void)b; (void)n; return fmi2Error; }
fmi2Status fmi2DeSerializeFMUstate(fmi2Component c, const fmi2Byte b[], size_t n, fmi2FMUstate *s) { (void)c; (void)b; (void)n; (void)s; return fmi2Error; }
fmi2Status fmi2GetDirectionalDerivative(fmi2Component c, const fmi2ValueReference u[], size_t nu, const fmi2ValueReference k[],
                                        size_t nk, const fmi2Real dk[], fmi2Real du[]) {
    (void)c; (void)u; (void)nu; (void)k; (void)nk; (void)dk; (void)du;
    return fmi2Error;
}
fmi2Status fmi2SetRealInputDerivatives(fmi2Component c, const fmi2ValueReference vr[], size_t n, const fmi2Integer o[],
                                       const fmi2Real v[]) {
    (void)c; (void)vr; (void)n; (void)o; (void)v;
    return fmi2Error;
}
fmi2Status fmi2GetRealOutputDerivatives(fmi2Component c, const fmi2ValueReference vr[], size_t n, const fmi2Integer o[],
                                        fmi2Real v[]) {
    (void)c; (void)vr; (void)n; (void)o; (void)v;
    return fmi2Error;
}
fmi2Status fmi2CancelStep(fmi2Component c) { (void)c; return fmi2Error; }
fmi2Status fmi2GetStatus(fmi2Component c, const fmi2StatusKind s, fmi2Status *v) { (void)c; (void)s; (void)v; return fmi2Discard; }
fmi2Status fmi2GetRealStatus(fmi2Component c, const fmi2StatusKind s, fmi2Real *v) { (void)c; (void)s; (void)v; return fmi2Discard; }
fmi2Status fmi2GetIntegerStatus(fmi2Component c, const fmi2StatusKind s, fmi2Integer *v) { (void)c; (void)s; (void)v; return fmi2Discard; }
fmi2Status fmi2GetBooleanStatus(fmi2Component c, const fmi2StatusKind s, fmi2Boolean *v) { (void)c; (void)s; (void)v; return fmi2Discard; }
fmi2Status fmi2GetStringStatus(fmi2Component c, const fmi2StatusKind s, fmi2String *v) { (void)c; (void)s; (void)v; return fmi2Discard; }
