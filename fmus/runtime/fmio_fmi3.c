/* fmio_fmi3.c - FMI 3.0 (co-simulation and model exchange) API on top of fmio_core.c.
 * Exported without a function prefix (FMI3_FUNCTION_PREFIX undefined), as a shared library must. */
#include "fmi3Functions.h"
#include "fmio_runtime.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    fmi3InstanceEnvironment env;
    fmi3LogMessageCallback log;
} Fmi3Env;

static void fmi3_log(FmioInstance *m, int status, const char *category, const char *message) {
    Fmi3Env *e = (Fmi3Env *)m->env;
    if (e && e->log) e->log(e->env, (fmi3Status)status, category, message);
}

#define GUARD(c)                                                                        \
    FmioInstance *m = (FmioInstance *)(c);                                              \
    if (!m) return fmi3Error;                                                           \
    if (m->phase == FMIO_FAILED) {                                                      \
        fmio_error(m, "The instance failed earlier; call fmi3Reset or fmi3FreeInstance."); \
        return fmi3Error;                                                               \
    }

static fmi3Status unsupported(fmi3Instance c, const char *what) {
    FmioInstance *m = (FmioInstance *)c;
    if (m) fmio_error(m, "%s is not supported by this FMU.", what);
    return fmi3Error;
}

const char *fmi3GetVersion(void) { return fmi3Version; }

fmi3Status fmi3SetDebugLogging(fmi3Instance c, fmi3Boolean loggingOn, size_t nCategories,
                               const fmi3String categories[]) {
    FmioInstance *m = (FmioInstance *)c;
    (void)nCategories;
    (void)categories;
    if (!m) return fmi3Error;
    m->logging_on = loggingOn ? 1 : 0;
    return fmi3OK;
}

static FmioInstance *instantiate(fmi3String name, fmi3String token, fmi3String resources, int me, int logging,
                                 fmi3InstanceEnvironment env, fmi3LogMessageCallback log) {
    Fmi3Env *e = (Fmi3Env *)calloc(1, sizeof(Fmi3Env));
    FmioInstance *m;
    if (!e) return NULL;
    e->env = env;
    e->log = log;
    m = fmio_new(name ? name : "", token, me, logging, fmi3_log, e);
    if (!m) {
        free(e);
        return NULL;
    }
    if (fmio_set_resources(m, resources) != FMIO_OK || (me && !MODEL.derivatives)) {
        if (me && !MODEL.derivatives) fmio_error(m, "This FMU does not support model exchange.");
        fmio_free(m);
        free(e);
        return NULL;
    }
    return m;
}

fmi3Instance fmi3InstantiateModelExchange(fmi3String instanceName, fmi3String instantiationToken,
                                          fmi3String resourcePath, fmi3Boolean visible, fmi3Boolean loggingOn,
                                          fmi3InstanceEnvironment instanceEnvironment,
                                          fmi3LogMessageCallback logMessage) {
    (void)visible;
    return instantiate(instanceName, instantiationToken, resourcePath, 1, loggingOn, instanceEnvironment,
                       logMessage);
}

fmi3Instance fmi3InstantiateCoSimulation(fmi3String instanceName, fmi3String instantiationToken,
                                         fmi3String resourcePath, fmi3Boolean visible, fmi3Boolean loggingOn,
                                         fmi3Boolean eventModeUsed, fmi3Boolean earlyReturnAllowed,
                                         const fmi3ValueReference requiredIntermediateVariables[],
                                         size_t nRequiredIntermediateVariables,
                                         fmi3InstanceEnvironment instanceEnvironment,
                                         fmi3LogMessageCallback logMessage,
                                         fmi3IntermediateUpdateCallback intermediateUpdate) {
    (void)visible;
    (void)eventModeUsed;
    (void)earlyReturnAllowed;
    (void)requiredIntermediateVariables;
    (void)nRequiredIntermediateVariables;
    (void)intermediateUpdate;
    return instantiate(instanceName, instantiationToken, resourcePath, 0, loggingOn, instanceEnvironment,
                       logMessage);
}

fmi3Instance fmi3InstantiateScheduledExecution(fmi3String instanceName, fmi3String instantiationToken,
                                               fmi3String resourcePath, fmi3Boolean visible,
                                               fmi3Boolean loggingOn, fmi3InstanceEnvironment instanceEnvironment,
                                               fmi3LogMessageCallback logMessage,
                                               fmi3ClockUpdateCallback clockUpdate,
                                               fmi3LockPreemptionCallback lockPreemption,
                                               fmi3UnlockPreemptionCallback unlockPreemption) {
    (void)instanceName; (void)instantiationToken; (void)resourcePath; (void)visible; (void)loggingOn;
    (void)clockUpdate; (void)lockPreemption; (void)unlockPreemption;
    if (logMessage) logMessage(instanceEnvironment, fmi3Error, "logStatusError", "Scheduled execution is not supported.");
    return NULL;
}

void fmi3FreeInstance(fmi3Instance c) {
    FmioInstance *m = (FmioInstance *)c;
    void *env;
    if (!m) return;
    env = m->env;
    fmio_free(m);
    free(env);
}

fmi3Status fmi3EnterInitializationMode(fmi3Instance c, fmi3Boolean toleranceDefined, fmi3Float64 tolerance,
                                       fmi3Float64 startTime, fmi3Boolean stopTimeDefined, fmi3Float64 stopTime) {
    GUARD(c)
    (void)toleranceDefined;
    (void)tolerance;
    (void)stopTimeDefined;
    (void)stopTime;
    if (m->phase == FMIO_INSTANTIATED) {
        m->start_time = startTime;
        m->time = startTime;
    }
    return (fmi3Status)fmio_enter_init(m);
}

fmi3Status fmi3ExitInitializationMode(fmi3Instance c) {
    GUARD(c)
    return (fmi3Status)fmio_exit_init(m);
}

fmi3Status fmi3EnterEventMode(fmi3Instance c) {
    GUARD(c)
    return fmi3OK;
}

fmi3Status fmi3Terminate(fmi3Instance c) {
    GUARD(c)
    m->phase = FMIO_TERMINATED;
    return fmi3OK;
}

fmi3Status fmi3Reset(fmi3Instance c) {
    FmioInstance *m = (FmioInstance *)c;
    if (!m) return fmi3Error;
    return (fmi3Status)fmio_reset(m);
}

/* ---- getters and setters (scalar variables only: nValues must equal nValueReferences) ---- */

static int scalar_counts(FmioInstance *m, size_t nvr, size_t nvalues) {
    if (nvr != nvalues) {
        fmio_error(m, "Only scalar variables: %d value references but %d values.", (int)nvr, (int)nvalues);
        return 0;
    }
    return 1;
}

fmi3Status fmi3GetFloat64(fmi3Instance c, const fmi3ValueReference vr[], size_t nvr, fmi3Float64 values[],
                          size_t nValues) {
    size_t k;
    GUARD(c)
    if (!scalar_counts(m, nvr, nValues) || fmio_update(m) != FMIO_OK) return fmi3Error;
    for (k = 0; k < nvr; k++) {
        const FmioVar *v = fmio_lookup(m, vr[k], FMIO_REAL);
        if (!v) return fmi3Error;
        values[k] = v->causality == FMIO_INDEPENDENT ? m->time : m->r[v->index];
    }
    return fmi3OK;
}

fmi3Status fmi3SetFloat64(fmi3Instance c, const fmi3ValueReference vr[], size_t nvr, const fmi3Float64 values[],
                          size_t nValues) {
    size_t k;
    GUARD(c)
    if (!scalar_counts(m, nvr, nValues)) return fmi3Error;
    for (k = 0; k < nvr; k++) {
        const FmioVar *v = fmio_lookup(m, vr[k], FMIO_REAL);
        if (!v || !fmio_can_set(m, v)) return fmi3Error;
        if (!isfinite(values[k])) {
            fmio_error(m, "Variable '%s' set to a non-finite value.", v->name);
            return fmi3Error;
        }
        m->r[v->index] = values[k];
    }
    m->dirty = 1;
    return fmi3OK;
}

fmi3Status fmi3GetInt32(fmi3Instance c, const fmi3ValueReference vr[], size_t nvr, fmi3Int32 values[],
                        size_t nValues) {
    size_t k;
    GUARD(c)
    if (!scalar_counts(m, nvr, nValues) || fmio_update(m) != FMIO_OK) return fmi3Error;
    for (k = 0; k < nvr; k++) {
        const FmioVar *v = fmio_lookup(m, vr[k], FMIO_INTEGER);
        if (!v) return fmi3Error;
        values[k] = m->i[v->index];
    }
    return fmi3OK;
}

fmi3Status fmi3SetInt32(fmi3Instance c, const fmi3ValueReference vr[], size_t nvr, const fmi3Int32 values[],
                        size_t nValues) {
    size_t k;
    GUARD(c)
    if (!scalar_counts(m, nvr, nValues)) return fmi3Error;
    for (k = 0; k < nvr; k++) {
        const FmioVar *v = fmio_lookup(m, vr[k], FMIO_INTEGER);
        if (!v || !fmio_can_set(m, v)) return fmi3Error;
        m->i[v->index] = values[k];
    }
    m->dirty = 1;
    return fmi3OK;
}

fmi3Status fmi3GetBoolean(fmi3Instance c, const fmi3ValueReference vr[], size_t nvr, fmi3Boolean values[],
                          size_t nValues) {
    size_t k;
    GUARD(c)
    if (!scalar_counts(m, nvr, nValues) || fmio_update(m) != FMIO_OK) return fmi3Error;
    for (k = 0; k < nvr; k++) {
        const FmioVar *v = fmio_lookup(m, vr[k], FMIO_BOOLEAN);
        if (!v) return fmi3Error;
        values[k] = m->b[v->index] ? fmi3True : fmi3False;
    }
    return fmi3OK;
}

fmi3Status fmi3SetBoolean(fmi3Instance c, const fmi3ValueReference vr[], size_t nvr, const fmi3Boolean values[],
                          size_t nValues) {
    size_t k;
    GUARD(c)
    if (!scalar_counts(m, nvr, nValues)) return fmi3Error;
    for (k = 0; k < nvr; k++) {
        const FmioVar *v = fmio_lookup(m, vr[k], FMIO_BOOLEAN);
        if (!v || !fmio_can_set(m, v)) return fmi3Error;
        m->b[v->index] = values[k] ? 1 : 0;
    }
    m->dirty = 1;
    return fmi3OK;
}

fmi3Status fmi3GetString(fmi3Instance c, const fmi3ValueReference vr[], size_t nvr, fmi3String values[],
                         size_t nValues) {
    size_t k;
    GUARD(c)
    if (!scalar_counts(m, nvr, nValues)) return fmi3Error;
    for (k = 0; k < nvr; k++) {
        const FmioVar *v = fmio_lookup(m, vr[k], FMIO_STRING);
        if (!v) return fmi3Error;
        values[k] = m->s[v->index];
    }
    return fmi3OK;
}

fmi3Status fmi3SetString(fmi3Instance c, const fmi3ValueReference vr[], size_t nvr, const fmi3String values[],
                         size_t nValues) {
    size_t k;
    GUARD(c)
    if (!scalar_counts(m, nvr, nValues)) return fmi3Error;
    for (k = 0; k < nvr; k++) {
        const FmioVar *v = fmio_lookup(m, vr[k], FMIO_STRING);
        if (!v || !fmio_can_set(m, v) || fmio_set_string(m, v, values[k]) != FMIO_OK) return fmi3Error;
    }
    m->dirty = 1;
    return fmi3OK;
}

/* Types this runtime does not store: asking for them is an error (the XML declares none). */
#define NO_TYPE(GET, SET, T)                                                                               \
    fmi3Status GET(fmi3Instance c, const fmi3ValueReference vr[], size_t nvr, T values[], size_t nValues) { \
        (void)vr; (void)nvr; (void)values; (void)nValues;                                                  \
        return unsupported(c, #GET);                                                                       \
    }                                                                                                      \
    fmi3Status SET(fmi3Instance c, const fmi3ValueReference vr[], size_t nvr, const T values[],            \
                   size_t nValues) {                                                                       \
        (void)vr; (void)nvr; (void)values; (void)nValues;                                                  \
        return unsupported(c, #SET);                                                                       \
    }

NO_TYPE(fmi3GetFloat32, fmi3SetFloat32, fmi3Float32)
NO_TYPE(fmi3GetInt8, fmi3SetInt8, fmi3Int8)
NO_TYPE(fmi3GetUInt8, fmi3SetUInt8, fmi3UInt8)
NO_TYPE(fmi3GetInt16, fmi3SetInt16, fmi3Int16)
NO_TYPE(fmi3GetUInt16, fmi3SetUInt16, fmi3UInt16)
NO_TYPE(fmi3GetUInt32, fmi3SetUInt32, fmi3UInt32)
NO_TYPE(fmi3GetInt64, fmi3SetInt64, fmi3Int64)
NO_TYPE(fmi3GetUInt64, fmi3SetUInt64, fmi3UInt64)

fmi3Status fmi3GetBinary(fmi3Instance c, const fmi3ValueReference vr[], size_t nvr, size_t valueSizes[],
                         fmi3Binary values[], size_t nValues) {
    (void)vr; (void)nvr; (void)valueSizes; (void)values; (void)nValues;
    return unsupported(c, "fmi3GetBinary");
}
fmi3Status fmi3SetBinary(fmi3Instance c, const fmi3ValueReference vr[], size_t nvr, const size_t valueSizes[],
                         const fmi3Binary values[], size_t nValues) {
    (void)vr; (void)nvr; (void)valueSizes; (void)values; (void)nValues;
    return unsupported(c, "fmi3SetBinary");
}
fmi3Status fmi3GetClock(fmi3Instance c, const fmi3ValueReference vr[], size_t nvr, fmi3Clock values[]) {
    (void)vr; (void)nvr; (void)values;
    return unsupported(c, "fmi3GetClock");
}
fmi3Status fmi3SetClock(fmi3Instance c, const fmi3ValueReference vr[], size_t nvr, const fmi3Clock values[]) {
    (void)vr; (void)nvr; (void)values;
    return unsupported(c, "fmi3SetClock");
}

fmi3Status fmi3GetNumberOfVariableDependencies(fmi3Instance c, fmi3ValueReference vr, size_t *n) {
    (void)vr; (void)n;
    return unsupported(c, "fmi3GetNumberOfVariableDependencies");
}
fmi3Status fmi3GetVariableDependencies(fmi3Instance c, fmi3ValueReference dependent, size_t elementIndices[],
                                       fmi3ValueReference independents[], size_t independentIndices[],
                                       fmi3DependencyKind kinds[], size_t n) {
    (void)dependent; (void)elementIndices; (void)independents; (void)independentIndices; (void)kinds; (void)n;
    return unsupported(c, "fmi3GetVariableDependencies");
}

fmi3Status fmi3GetFMUState(fmi3Instance c, fmi3FMUState *s) { (void)s; return unsupported(c, "fmi3GetFMUState"); }
fmi3Status fmi3SetFMUState(fmi3Instance c, fmi3FMUState s) { (void)s; return unsupported(c, "fmi3SetFMUState"); }
fmi3Status fmi3FreeFMUState(fmi3Instance c, fmi3FMUState *s) { (void)s; return unsupported(c, "fmi3FreeFMUState"); }
fmi3Status fmi3SerializedFMUStateSize(fmi3Instance c, fmi3FMUState s, size_t *n) {
    (void)s; (void)n;
    return unsupported(c, "fmi3SerializedFMUStateSize");
}
fmi3Status fmi3SerializeFMUState(fmi3Instance c, fmi3FMUState s, fmi3Byte b[], size_t n) {
    (void)s; (void)b; (void)n;
    return unsupported(c, "fmi3SerializeFMUState");
}
fmi3Status fmi3DeserializeFMUState(fmi3Instance c, const fmi3Byte b[], size_t n, fmi3FMUState *s) {
    (void)s; (void)b; (void)n;
    return unsupported(c, "fmi3DeserializeFMUState");
}
fmi3Status fmi3GetDirectionalDerivative(fmi3Instance c, const fmi3ValueReference u[], size_t nu,
                                        const fmi3ValueReference k[], size_t nk, const fmi3Float64 s[], size_t ns,
                                        fmi3Float64 sens[], size_t nsens) {
    (void)u; (void)nu; (void)k; (void)nk; (void)s; (void)ns; (void)sens; (void)nsens;
    return unsupported(c, "fmi3GetDirectionalDerivative");
}
fmi3Status fmi3GetAdjointDerivative(fmi3Instance c, const fmi3ValueReference u[], size_t nu,
                                    const fmi3ValueReference k[], size_t nk, const fmi3Float64 s[], size_t ns,
                                    fmi3Float64 sens[], size_t nsens) {
    (void)u; (void)nu; (void)k; (void)nk; (void)s; (void)ns; (void)sens; (void)nsens;
    return unsupported(c, "fmi3GetAdjointDerivative");
}

fmi3Status fmi3EnterConfigurationMode(fmi3Instance c) { return unsupported(c, "fmi3EnterConfigurationMode"); }
fmi3Status fmi3ExitConfigurationMode(fmi3Instance c) { return unsupported(c, "fmi3ExitConfigurationMode"); }

fmi3Status fmi3GetIntervalDecimal(fmi3Instance c, const fmi3ValueReference vr[], size_t n, fmi3Float64 iv[],
                                  fmi3IntervalQualifier q[]) {
    (void)vr; (void)n; (void)iv; (void)q;
    return unsupported(c, "fmi3GetIntervalDecimal");
}
fmi3Status fmi3GetIntervalFraction(fmi3Instance c, const fmi3ValueReference vr[], size_t n, fmi3UInt64 cnt[],
                                   fmi3UInt64 res[], fmi3IntervalQualifier q[]) {
    (void)vr; (void)n; (void)cnt; (void)res; (void)q;
    return unsupported(c, "fmi3GetIntervalFraction");
}
fmi3Status fmi3GetShiftDecimal(fmi3Instance c, const fmi3ValueReference vr[], size_t n, fmi3Float64 s[]) {
    (void)vr; (void)n; (void)s;
    return unsupported(c, "fmi3GetShiftDecimal");
}
fmi3Status fmi3GetShiftFraction(fmi3Instance c, const fmi3ValueReference vr[], size_t n, fmi3UInt64 cnt[],
                                fmi3UInt64 res[]) {
    (void)vr; (void)n; (void)cnt; (void)res;
    return unsupported(c, "fmi3GetShiftFraction");
}
fmi3Status fmi3SetIntervalDecimal(fmi3Instance c, const fmi3ValueReference vr[], size_t n, const fmi3Float64 iv[]) {
    (void)vr; (void)n; (void)iv;
    return unsupported(c, "fmi3SetIntervalDecimal");
}
fmi3Status fmi3SetIntervalFraction(fmi3Instance c, const fmi3ValueReference vr[], size_t n,
                                   const fmi3UInt64 cnt[], const fmi3UInt64 res[]) {
    (void)vr; (void)n; (void)cnt; (void)res;
    return unsupported(c, "fmi3SetIntervalFraction");
}
fmi3Status fmi3SetShiftDecimal(fmi3Instance c, const fmi3ValueReference vr[], size_t n, const fmi3Float64 s[]) {
    (void)vr; (void)n; (void)s;
    return unsupported(c, "fmi3SetShiftDecimal");
}
fmi3Status fmi3SetShiftFraction(fmi3Instance c, const fmi3ValueReference vr[], size_t n, const fmi3UInt64 cnt[],
                                const fmi3UInt64 res[]) {
    (void)vr; (void)n; (void)cnt; (void)res;
    return unsupported(c, "fmi3SetShiftFraction");
}

fmi3Status fmi3EvaluateDiscreteStates(fmi3Instance c) {
    GUARD(c)
    return fmi3OK;
}

fmi3Status fmi3UpdateDiscreteStates(fmi3Instance c, fmi3Boolean *discreteStatesNeedUpdate,
                                    fmi3Boolean *terminateSimulation, fmi3Boolean *nominalsChanged,
                                    fmi3Boolean *valuesChanged, fmi3Boolean *nextEventTimeDefined,
                                    fmi3Float64 *nextEventTime) {
    double te;
    GUARD(c)
    te = fmio_next_event(m);
    *discreteStatesNeedUpdate = fmi3False;
    *terminateSimulation = fmi3False;
    *nominalsChanged = fmi3False;
    *valuesChanged = fmi3False;
    *nextEventTimeDefined = isfinite(te) && te < 1e300 ? fmi3True : fmi3False;
    *nextEventTime = *nextEventTimeDefined ? te : 0.0;
    m->dirty = 1;
    return fmi3OK;
}

/* ---- model exchange ---- */

fmi3Status fmi3EnterContinuousTimeMode(fmi3Instance c) {
    GUARD(c)
    return fmi3OK;
}

fmi3Status fmi3CompletedIntegratorStep(fmi3Instance c, fmi3Boolean noSetPrior, fmi3Boolean *enterEventMode,
                                       fmi3Boolean *terminateSimulation) {
    GUARD(c)
    (void)noSetPrior;
    *enterEventMode = fmi3False;
    *terminateSimulation = fmi3False;
    if (fmio_completed_step(m) != FMIO_OK) {
        m->phase = FMIO_FAILED;
        return fmi3Error;
    }
    return fmi3OK;
}

fmi3Status fmi3SetTime(fmi3Instance c, fmi3Float64 time) {
    GUARD(c)
    m->time = time;
    m->dirty = 1;
    return fmi3OK;
}

static int check_nx(FmioInstance *m, size_t nx, const char *fn) {
    if ((int)nx != MODEL.n_states) {
        fmio_error(m, "%s: nx = %d, the model has %d states.", fn, (int)nx, MODEL.n_states);
        return 0;
    }
    return 1;
}

fmi3Status fmi3SetContinuousStates(fmi3Instance c, const fmi3Float64 x[], size_t nx) {
    GUARD(c)
    if (!check_nx(m, nx, "fmi3SetContinuousStates")) return fmi3Error;
    memcpy(m->x, x, nx * sizeof(double));
    m->dirty = 1;
    return fmi3OK;
}

fmi3Status fmi3GetContinuousStateDerivatives(fmi3Instance c, fmi3Float64 derivatives[], size_t nx) {
    double dx[FMIO_MAX_STATES];
    GUARD(c)
    if (!check_nx(m, nx, "fmi3GetContinuousStateDerivatives") || fmio_derivatives(m, dx) != FMIO_OK)
        return fmi3Error;
    memcpy(derivatives, dx, nx * sizeof(double));
    return fmi3OK;
}

fmi3Status fmi3GetEventIndicators(fmi3Instance c, fmi3Float64 eventIndicators[], size_t ni) {
    GUARD(c)
    (void)eventIndicators;
    if (ni != 0) {
        fmio_error(m, "This model has no event indicators (asked for %d).", (int)ni);
        return fmi3Error;
    }
    return fmi3OK;
}

fmi3Status fmi3GetContinuousStates(fmi3Instance c, fmi3Float64 x[], size_t nx) {
    GUARD(c)
    if (!check_nx(m, nx, "fmi3GetContinuousStates")) return fmi3Error;
    memcpy(x, m->x, nx * sizeof(double));
    return fmi3OK;
}

fmi3Status fmi3GetNominalsOfContinuousStates(fmi3Instance c, fmi3Float64 nominals[], size_t nx) {
    size_t k;
    GUARD(c)
    for (k = 0; k < nx; k++) nominals[k] = 1.0;
    return fmi3OK;
}

fmi3Status fmi3GetNumberOfEventIndicators(fmi3Instance c, size_t *n) {
    GUARD(c)
    *n = 0;
    return fmi3OK;
}

fmi3Status fmi3GetNumberOfContinuousStates(fmi3Instance c, size_t *n) {
    GUARD(c)
    *n = (size_t)MODEL.n_states;
    return fmi3OK;
}

/* ---- co-simulation ---- */

fmi3Status fmi3EnterStepMode(fmi3Instance c) {
    GUARD(c)
    return fmi3OK;
}

fmi3Status fmi3GetOutputDerivatives(fmi3Instance c, const fmi3ValueReference vr[], size_t nvr,
                                    const fmi3Int32 orders[], fmi3Float64 values[], size_t nValues) {
    (void)vr; (void)nvr; (void)orders; (void)values; (void)nValues;
    return unsupported(c, "fmi3GetOutputDerivatives");
}

fmi3Status fmi3DoStep(fmi3Instance c, fmi3Float64 currentCommunicationPoint, fmi3Float64 communicationStepSize,
                      fmi3Boolean noSetFMUStatePriorToCurrentPoint, fmi3Boolean *eventHandlingNeeded,
                      fmi3Boolean *terminateSimulation, fmi3Boolean *earlyReturn, fmi3Float64 *lastSuccessfulTime) {
    fmi3Status status;
    GUARD(c)
    (void)noSetFMUStatePriorToCurrentPoint;
    if (m->is_model_exchange) {
        fmio_error(m, "fmi3DoStep called on a model-exchange instance.");
        return fmi3Error;
    }
    status = (fmi3Status)fmio_do_step(m, currentCommunicationPoint, communicationStepSize);
    *eventHandlingNeeded = fmi3False;
    *terminateSimulation = fmi3False;
    *earlyReturn = fmi3False;
    *lastSuccessfulTime = m->time;
    return status;
}

fmi3Status fmi3ActivateModelPartition(fmi3Instance c, fmi3ValueReference clockReference,
                                      fmi3Float64 activationTime) {
    (void)clockReference; (void)activationTime;
    return unsupported(c, "fmi3ActivateModelPartition");
}
