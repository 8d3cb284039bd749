/* lag1 - a test-only FMI 1.0 co-simulation twin: y' = k (gain - y) + 0.1 n, y(0) = 0, exact per step.
 * Its functions carry the model identifier as prefix (FMI 1.0). It logs through the logger callback,
 * allocates with the allocateMemory callback (unchecked: NULL callbacks crash it) and refuses a NULL
 * or non-file FMU location. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fmi1Functions.h"

#define F(name) lag1_##name
#define EXPORT __attribute__((visibility("default")))

typedef struct {
    fmi1CallbackFunctions cb;
    double k, gain, y, time;
    int n;
} Model;

EXPORT const char *F(fmiGetTypesPlatform)(void) { return "standard32"; }
EXPORT const char *F(fmiGetVersion)(void) { return "1.0"; }

EXPORT fmi1Component F(fmiInstantiateSlave)(fmi1String name, fmi1String guid, fmi1String location, fmi1String mime,
                                            fmi1Real timeout, fmi1Boolean visible, fmi1Boolean interactive,
                                            fmi1CallbackFunctions cb, fmi1Boolean loggingOn) {
    (void)mime; (void)timeout; (void)visible; (void)interactive; (void)loggingOn;
    cb.logger(NULL, name, fmi1OK, "log", "lag1: instantiate %s", guid);
    if (strcmp(guid, "{9b2e7c41-6d3a-4f0e-8c5b-1a9f00000001}") != 0 || location == NULL ||
        strncmp(location, "file:", 5) != 0) {
        cb.logger(NULL, name, fmi1Error, "error", "lag1: wrong GUID or FMU location %s", location ? location : "NULL");
        return NULL;
    }
    Model *m = (Model *)cb.allocateMemory(1, sizeof(Model));
    m->cb = cb;
    m->k = 0.5;
    m->gain = 2.0;
    m->n = 1;
    printf("lag1: instantiated\n");
    return m;
}

EXPORT void F(fmiFreeSlaveInstance)(fmi1Component c) {
    Model *m = (Model *)c;
    if (m) m->cb.freeMemory(m);
}

EXPORT fmi1Status F(fmiSetDebugLogging)(fmi1Component c, fmi1Boolean on) { (void)c; (void)on; return fmi1OK; }

EXPORT fmi1Status F(fmiInitializeSlave)(fmi1Component c, fmi1Real tStart, fmi1Boolean stopDefined, fmi1Real tStop) {
    Model *m = (Model *)c;
    (void)stopDefined; (void)tStop;
    m->time = tStart;
    m->y = 0.0;
    return fmi1OK;
}

EXPORT fmi1Status F(fmiTerminateSlave)(fmi1Component c) { (void)c; return fmi1OK; }

EXPORT fmi1Status F(fmiResetSlave)(fmi1Component c) {
    Model *m = (Model *)c;
    m->k = 0.5;
    m->gain = 2.0;
    m->n = 1;
    m->y = 0.0;
    return fmi1OK;
}

EXPORT fmi1Status F(fmiSetReal)(fmi1Component c, const fmi1ValueReference vr[], size_t n, const fmi1Real v[]) {
    Model *m = (Model *)c;
    for (size_t i = 0; i < n; i++) {
        if (vr[i] == 0) m->k = v[i];
        else if (vr[i] == 1) m->gain = v[i];
        else return fmi1Error;
    }
    return fmi1OK;
}

EXPORT fmi1Status F(fmiSetInteger)(fmi1Component c, const fmi1ValueReference vr[], size_t n, const fmi1Integer v[]) {
    Model *m = (Model *)c;
    for (size_t i = 0; i < n; i++) {
        if (vr[i] != 0) return fmi1Error;
        m->n = v[i];
    }
    return fmi1OK;
}

EXPORT fmi1Status F(fmiSetBoolean)(fmi1Component c, const fmi1ValueReference vr[], size_t n, const fmi1Boolean v[]) {
    (void)c; (void)vr; (void)v;
    return n ? fmi1Error : fmi1OK;
}

EXPORT fmi1Status F(fmiSetString)(fmi1Component c, const fmi1ValueReference vr[], size_t n, const fmi1String v[]) {
    (void)c; (void)vr; (void)v;
    return n ? fmi1Error : fmi1OK;
}

EXPORT fmi1Status F(fmiGetReal)(fmi1Component c, const fmi1ValueReference vr[], size_t n, fmi1Real v[]) {
    Model *m = (Model *)c;
    for (size_t i = 0; i < n; i++) {
        if (vr[i] == 0) v[i] = m->k;
        else if (vr[i] == 1) v[i] = m->gain;
        else if (vr[i] == 2) v[i] = m->y;
        else return fmi1Error;
    }
    return fmi1OK;
}

EXPORT fmi1Status F(fmiGetInteger)(fmi1Component c, const fmi1ValueReference vr[], size_t n, fmi1Integer v[]) {
    Model *m = (Model *)c;
    for (size_t i = 0; i < n; i++) {
        if (vr[i] != 0) return fmi1Error;
        v[i] = m->n;
    }
    return fmi1OK;
}

EXPORT fmi1Status F(fmiGetBoolean)(fmi1Component c, const fmi1ValueReference vr[], size_t n, fmi1Boolean v[]) {
    (void)c; (void)vr; (void)v;
    return n ? fmi1Error : fmi1OK;
}

EXPORT fmi1Status F(fmiGetString)(fmi1Component c, const fmi1ValueReference vr[], size_t n, fmi1String v[]) {
    (void)c; (void)vr; (void)v;
    return n ? fmi1Error : fmi1OK;
}

EXPORT fmi1Status F(fmiDoStep)(fmi1Component c, fmi1Real t, fmi1Real h, fmi1Boolean newStep) {
    Model *m = (Model *)c;
    double target = m->gain + 0.1 * m->n / m->k;
    (void)newStep;
    m->y = target + (m->y - target) * exp(-m->k * h);
    m->time = t + h;
    return fmi1OK;
}

EXPORT fmi1Status F(fmiSetRealInputDerivatives)(fmi1Component c, const fmi1ValueReference vr[], size_t n,
                                                const fmi1Integer o[], const fmi1Real v[]) {
    (void)c; (void)vr; (void)n; (void)o; (void)v;
    return fmi1Error;
}
EXPORT fmi1Status F(fmiGetRealOutputDerivatives)(fmi1Component c, const fmi1ValueReference vr[], size_t n,
                                                 const fmi1Integer o[], fmi1Real v[]) {
    (void)c; (void)vr; (void)n; (void)o; (void)v;
    return fmi1Error;
}
EXPORT fmi1Status F(fmiCancelStep)(fmi1Component c) { (void)c; return fmi1Error; }
EXPORT fmi1Status F(fmiGetStatus)(fmi1Component c, const fmi1StatusKind s, fmi1Status *v) { (void)c; (void)s; (void)v; return fmi1Discard; }
EXPORT fmi1Status F(fmiGetRealStatus)(fmi1Component c, const fmi1StatusKind s, fmi1Real *v) { (void)c; (void)s; (void)v; return fmi1Discard; }
EXPORT fmi1Status F(fmiGetIntegerStatus)(fmi1Component c, const fmi1StatusKind s, fmi1Integer *v) { (void)c; (void)s; (void)v; return fmi1Discard; }
EXPORT fmi1Status F(fmiGetBooleanStatus)(fmi1Component c, const fmi1StatusKind s, fmi1Boolean *v) { (void)c; (void)s; (void)v; return fmi1Discard; }
EXPORT fmi1Status F(fmiGetStringStatus)(fmi1Component c, const fmi1StatusKind s, fmi1String *v) { (void)c; (void)s; (void)v; return fmi1Discard; }
