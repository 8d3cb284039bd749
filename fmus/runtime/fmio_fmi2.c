/* fmio_fmi2.c - FMI 2.0 (co-simulation and model exchange) API on top of fmio_core.c. */
#include "fmi2Functions.h"
#include "fmio_runtime.h"

#include <math.h>
#include <string.h>

typedef struct {
    fmi2CallbackFunctions cb;
} Fmi2Env;

static Fmi2Env *env_of(FmioInstance *m) { return (Fmi2Env *)m->env; }

static void fmi2_log(FmioInstance *m, int status, const char *category, const char *message) {
    Fmi2Env *e = env_of(m);
    if (e && e->cb.logger)
        e->cb.logger(e->cb.componentEnvironment, m->name, (fmi2Status)status, category, "%s", message);
}

/* Guard: non-NULL instance not in the failed phase. */
#define GUARD(c)                                                                       \
    FmioInstance *m = (FmioInstance *)(c);                                             \
    if (!m) return fmi2Error;                                                          \
    if (m->phase == FMIO_FAILED) {                                                     \
        fmio_error(m, "The instance failed earlier; call fmi2Reset or fmi2FreeInstance."); \
        return fmi2Error;                                                              \
    }

const char *fmi2GetTypesPlatform(void) { return fmi2TypesPlatform; }
const char *fmi2GetVersion(void) { return fmi2Version; }

fmi2Status fmi2SetDebugLogging(fmi2Component c, fmi2Boolean loggingOn, size_t nCategories,
                               const fmi2String categories[]) {
    FmioInstance *m = (FmioInstance *)c;
    (void)nCategories;
    (void)categories;
    if (!m) return fmi2Error;
    m->logging_on = loggingOn ? 1 : 0;
    return fmi2OK;
}

fmi2Component fmi2Instantiate(fmi2String instanceName, fmi2Type fmuType, fmi2String fmuGUID,
                              fmi2String fmuResourceLocation, const fmi2CallbackFunctions *functions,
                              fmi2Boolean visible, fmi2Boolean loggingOn) {
    Fmi2Env *env;
    FmioInstance *m;
    (void)visible;
    if (!functions) return NULL;
    env = (Fmi2Env *)calloc(1, sizeof(Fmi2Env));
    if (!env) return NULL;
    env->cb = *functions;
    m = fmio_new(instanceName ? instanceName : "", fmuGUID, fmuType == fmi2ModelExchange, loggingOn ? 1 : 0,
                 fmi2_log, env);
    if (!m) {
        free(env);
        return NULL;
    }
    if (fmio_set_resources(m, fmuResourceLocation) != FMIO_OK) {
        fmio_free(m);
        free(env);
        return NULL;
    }
    if (fmuType == fmi2ModelExchange && !MODEL.derivatives) {
        fmio_error(m, "This FMU does not support model exchange.");
        fmio_free(m);
        free(env);
        return NULL;
    }
    return (fmi2Component)m;
}

void fmi2FreeInstance(fmi2Component c) {
    FmioInstance *m = (FmioInstance *)c;
    void *env;
    if (!m) return;
    env = m->env;
    fmio_free(m);
    free(env);
}

fmi2Status fmi2SetupExperiment(fmi2Component c, fmi2Boolean toleranceDefined, fmi2Real tolerance,
                               fmi2Real startTime, fmi2Boolean stopTimeDefined, fmi2Real stopTime) {
    GUARD(c)
    (void)toleranceDefined;
    (void)tolerance;
    (void)stopTimeDefined;
    (void)stopTime;
    if (m->phase != FMIO_INSTANTIATED) {
        fmio_error(m, "fmi2SetupExperiment must be called before initialization.");
        return fmi2Error;
    }
    m->start_time = startTime;
    m->time = startTime;
    return fmi2OK;
}

fmi2Status fmi2EnterInitializationMode(fmi2Component c) {
    GUARD(c)
    return (fmi2Status)fmio_enter_init(m);
}

fmi2Status fmi2ExitInitializationMode(fmi2Component c) {
    GUARD(c)
    return (fmi2Status)fmio_exit_init(m);
}

fmi2Status fmi2Terminate(fmi2Component c) {
    GUARD(c)
    m->phase = FMIO_TERMINATED;
    return fmi2OK;
}

fmi2Status fmi2Reset(fmi2Component c) {
    FmioInstance *m = (FmioInstance *)c;
    if (!m) return fmi2Error;
    return (fmi2Status)fmio_reset(m);
}

/* ---- getters and setters ---- */

fmi2Status fmi2GetReal(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, fmi2Real value[]) {
    size_t k;
    GUARD(c)
    if (fmio_update(m) != FMIO_OK) return fmi2Error;
    for (k = 0; k < nvr; k++) {
        const FmioVar *v = fmio_lookup(m, vr[k], FMIO_REAL);
        if (!v) return fmi2Error;
        value[k] = m->r[v->index];
    }
    return fmi2OK;
}

fmi2Status fmi2GetInteger(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, fmi2Integer value[]) {
    size_t k;
    GUARD(c)
    if (fmio_update(m) != FMIO_OK) return fmi2Error;
    for (k = 0; k < nvr; k++) {
        const FmioVar *v = fmio_lookup(m, vr[k], FMIO_INTEGER);
        if (!v) return fmi2Error;
        value[k] = m->i[v->index];
    }
    return fmi2OK;
}

fmi2Status fmi2GetBoolean(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, fmi2Boolean value[]) {
    size_t k;
    GUARD(c)
    if (fmio_update(m) != FMIO_OK) return fmi2Error;
    for (k = 0; k < nvr; k++) {
        const FmioVar *v = fmio_lookup(m, vr[k], FMIO_BOOLEAN);
        if (!v) return fmi2Error;
        value[k] = m->b[v->index] ? fmi2True : fmi2False;
    }
    return fmi2OK;
}

fmi2Status fmi2GetString(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, fmi2String value[]) {
    size_t k;
    GUARD(c)
    for (k = 0; k < nvr; k++) {
        const FmioVar *v = fmio_lookup(m, vr[k], FMIO_STRING);
        if (!v) return fmi2Error;
        value[k] = m->s[v->index];
    }
    return fmi2OK;
}

fmi2Status fmi2SetReal(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, const fmi2Real value[]) {
    size_t k;
    GUARD(c)
    for (k = 0; k < nvr; k++) {
        const FmioVar *v = fmio_lookup(m, vr[k], FMIO_REAL);
        if (!v || !fmio_can_set(m, v)) return fmi2Error;
        if (!isfinite(value[k])) {
            fmio_error(m, "Variable '%s' set to a non-finite value.", v->name);
            return fmi2Error;
        }
        m->r[v->index] = value[k];
    }
    m->dirty = 1;
    return fmi2OK;
}

fmi2Status fmi2SetInteger(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, const fmi2Integer value[]) {
    size_t k;
    GUARD(c)
    for (k = 0; k < nvr; k++) {
        const FmioVar *v = fmio_lookup(m, vr[k], FMIO_INTEGER);
        if (!v || !fmio_can_set(m, v)) return fmi2Error;
        m->i[v->index] = value[k];
    }
    m->dirty = 1;
    return fmi2OK;
}

fmi2Status fmi2SetBoolean(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, const fmi2Boolean value[]) {
    size_t k;
    GUARD(c)
    for (k = 0; k < nvr; k++) {
        const FmioVar *v = fmio_lookup(m, vr[k], FMIO_BOOLEAN);
        if (!v || !fmio_can_set(m, v)) return fmi2Error;
        m->b[v->index] = value[k] ? 1 : 0;
    }
    m->dirty = 1;
    return fmi2OK;
}

fmi2Status fmi2SetString(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, const fmi2String value[]) {
    size_t k;
    GUARD(c)
    for (k = 0; k < nvr; k++) {
        const FmioVar *v = fmio_lookup(m, vr[k], FMIO_STRING);
        if (!v || !fmio_can_set(m, v)) return fmi2Error;
        if (fmio_set_string(m, v, value[k]) != FMIO_OK) return fmi2Error;
    }
    m->dirty = 1;
    return fmi2OK;
}

/* ---- FMU state, directional derivatives: not supported (capability flags say so) ---- */

static fmi2Status unsupported(fmi2Component c, const char *what) {
    FmioInstance *m = (FmioInstance *)c;
    if (m) fmio_error(m, "%s is not supported by this FMU.", what);
    return fmi2Error;
}

fmi2Status fmi2GetFMUstate(fmi2Component c, fmi2FMUstate *s) { (void)s; return unsupported(c, "fmi2GetFMUstate"); }
fmi2Status fmi2SetFMUstate(fmi2Component c, fmi2FMUstate s) { (void)s; return unsupported(c, "fmi2SetFMUstate"); }
fmi2Status fmi2FreeFMUstate(fmi2Component c, fmi2FMUstate *s) { (void)s; return unsupported(c, "fmi2FreeFMUstate"); }
fmi2Status fmi2SerializedFMUstateSize(fmi2Component c, fmi2FMUstate s, size_t *n) {
    (void)s; (void)n;
    return unsupported(c, "fmi2SerializedFMUstateSize");
}
fmi2Status fmi2SerializeFMUstate(fmi2Component c, fmi2FMUstate s, fmi2Byte b[], size_t n) {
    (void)s; (void)b; (void)n;
    return unsupported(c, "fmi2SerializeFMUstate");
}
fmi2Status fmi2DeSerializeFMUstate(fmi2Component c, const fmi2Byte b[], size_t n, fmi2FMUstate *s) {
    (void)s; (void)b; (void)n;
    return unsupported(c, "fmi2DeSerializeFMUstate");
}
fmi2Status fmi2GetDirectionalDerivative(fmi2Component c, const fmi2ValueReference u[], size_t nu,
                                        const fmi2ValueReference k[], size_t nk, const fmi2Real dk[],
                                        fmi2Real du[]) {
    (void)u; (void)nu; (void)k; (void)nk; (void)dk; (void)du;
    return unsupported(c, "fmi2GetDirectionalDerivative");
}

/* ---- model exchange ---- */

fmi2Status fmi2EnterEventMode(fmi2Component c) {
    GUARD(c)
    return fmi2OK;
}

fmi2Status fmi2NewDiscreteStates(fmi2Component c, fmi2EventInfo *info) {
    double te;
    GUARD(c)
    te = fmio_next_event(m);
    info->newDiscreteStatesNeeded = fmi2False;
    info->terminateSimulation = fmi2False;
    info->nominalsOfContinuousStatesChanged = fmi2False;
    info->valuesOfContinuousStatesChanged = fmi2False;
    info->nextEventTimeDefined = isfinite(te) && te < 1e300 ? fmi2True : fmi2False;
    info->nextEventTime = info->nextEventTimeDefined ? te : 0.0;
    m->dirty = 1;
    return fmi2OK;
}

fmi2Status fmi2EnterContinuousTimeMode(fmi2Component c) {
    GUARD(c)
    return fmi2OK;
}

fmi2Status fmi2CompletedIntegratorStep(fmi2Component c, fmi2Boolean noSetPrior, fmi2Boolean *enterEventMode,
                                       fmi2Boolean *terminateSimulation) {
    GUARD(c)
    (void)noSetPrior;
    *enterEventMode = fmi2False;
    *terminateSimulation = fmi2False;
    if (fmio_completed_step(m) != FMIO_OK) {
        m->phase = FMIO_FAILED;
        return fmi2Error;
    }
    return fmi2OK;
}

fmi2Status fmi2SetTime(fmi2Component c, fmi2Real time) {
    GUARD(c)
    m->time = time;
    m->dirty = 1;
    return fmi2OK;
}

fmi2Status fmi2SetContinuousStates(fmi2Component c, const fmi2Real x[], size_t nx) {
    GUARD(c)
    if ((int)nx != MODEL.n_states) {
        fmio_error(m, "fmi2SetContinuousStates: nx = %d, the model has %d states.", (int)nx, MODEL.n_states);
        return fmi2Error;
    }
    memcpy(m->x, x, nx * sizeof(double));
    m->dirty = 1;
    return fmi2OK;
}

fmi2Status fmi2GetDerivatives(fmi2Component c, fmi2Real derivatives[], size_t nx) {
    double dx[FMIO_MAX_STATES];
    GUARD(c)
    if ((int)nx != MODEL.n_states) {
        fmio_error(m, "fmi2GetDerivatives: nx = %d, the model has %d states.", (int)nx, MODEL.n_states);
        return fmi2Error;
    }
    if (fmio_derivatives(m, dx) != FMIO_OK) return fmi2Error;
    memcpy(derivatives, dx, nx * sizeof(double));
    return fmi2OK;
}

fmi2Status fmi2GetEventIndicators(fmi2Component c, fmi2Real eventIndicators[], size_t ni) {
    GUARD(c)
    (void)eventIndicators;
    if (ni != 0) {
        fmio_error(m, "This model has no event indicators (asked for %d).", (int)ni);
        return fmi2Error;
    }
    return fmi2OK;
}

fmi2Status fmi2GetContinuousStates(fmi2Component c, fmi2Real x[], size_t nx) {
    GUARD(c)
    if ((int)nx != MODEL.n_states) {
        fmio_error(m, "fmi2GetContinuousStates: nx = %d, the model has %d states.", (int)nx, MODEL.n_states);
        return fmi2Error;
    }
    memcpy(x, m->x, nx * sizeof(double));
    return fmi2OK;
}

fmi2Status fmi2GetNominalsOfContinuousStates(fmi2Component c, fmi2Real x_nominal[], size_t nx) {
    size_t k;
    GUARD(c)
    for (k = 0; k < nx; k++) x_nominal[k] = 1.0;
    return fmi2OK;
}

/* ---- co-simulation ---- */

fmi2Status fmi2SetRealInputDerivatives(fmi2Component c, const fmi2ValueReference vr[], size_t nvr,
                                       const fmi2Integer order[], const fmi2Real value[]) {
    (void)vr; (void)nvr; (void)order; (void)value;
    return unsupported(c, "fmi2SetRealInputDerivatives");
}

fmi2Status fmi2GetRealOutputDerivatives(fmi2Component c, const fmi2ValueReference vr[], size_t nvr,
                                        const fmi2Integer order[], fmi2Real value[]) {
    (void)vr; (void)nvr; (void)order; (void)value;
    return unsupported(c, "fmi2GetRealOutputDerivatives");
}

fmi2Status fmi2DoStep(fmi2Component c, fmi2Real currentCommunicationPoint, fmi2Real communicationStepSize,
                      fmi2Boolean noSetFMUStatePriorToCurrentPoint) {
    GUARD(c)
    (void)noSetFMUStatePriorToCurrentPoint;
    if (m->is_model_exchange) {
        fmio_error(m, "fmi2DoStep called on a model-exchange instance.");
        return fmi2Error;
    }
    return (fmi2Status)fmio_do_step(m, currentCommunicationPoint, communicationStepSize);
}

fmi2Status fmi2CancelStep(fmi2Component c) { return unsupported(c, "fmi2CancelStep"); }

fmi2Status fmi2GetStatus(fmi2Component c, const fmi2StatusKind s, fmi2Status *value) {
    (void)s; (void)value;
    return unsupported(c, "fmi2GetStatus");
}
fmi2Status fmi2GetRealStatus(fmi2Component c, const fmi2StatusKind s, fmi2Real *value) {
    FmioInstance *m = (FmioInstance *)c;
    if (m && s == fmi2LastSuccessfulTime) {
        *value = m->time;
        return fmi2OK;
    }
    return unsupported(c, "fmi2GetRealStatus");
}
fmi2Status fmi2GetIntegerStatus(fmi2Component c, const fmi2StatusKind s, fmi2Integer *value) {
    (void)s; (void)value;
    return unsupported(c, "fmi2GetIntegerStatus");
}
fmi2Status fmi2GetBooleanStatus(fmi2Component c, const fmi2StatusKind s, fmi2Boolean *value) {
    FmioInstance *m = (FmioInstance *)c;
    if (m && s == fmi2Terminated) {
        *value = fmi2False;
        return fmi2OK;
    }
    return unsupported(c, "fmi2GetBooleanStatus");
}
fmi2Status fmi2GetStringStatus(fmi2Component c, const fmi2StatusKind s, fmi2String *value) {
    (void)s; (void)value;
    return unsupported(c, "fmi2GetStringStatus");
}
